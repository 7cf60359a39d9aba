/**
 * `hanat status --watch` through the real thing: the built `hanat` binary on a real
 * pseudo-terminal (util-linux `script`), against the emulator. While it watches, a route
 * moves as a successor's agent moves it (ReplaceRoute, then the owner tags with the
 * reason); the screen must redraw in place to show who serves the AZ now and why, and a
 * real Ctrl-C typed at the terminal must end it with exit 0. Off a terminal (pipes), a
 * real SIGINT ends it with exit 0 too, and nothing but text reaches stdout.
 *
 * The unit tests (packages/cli/test/status-watch.test.ts) inject the clock, the
 * terminal and Ctrl-C; this file does not. It needs no root, and never skips.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateRouteCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  ModifyInstanceAttributeCommand,
  ReplaceRouteCommand,
  type Instance,
  type RouteTable,
} from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KEY, requirePty, spawnPty, type PtySession } from '../../../test-support/pty.js';
import { REPO, requireBundles } from './bundle-helpers.js';
import { credentials, eventually, startLab, type Harness } from './emulator/helpers.js';

const CLI = join(REPO, 'packages/cli/bin/hanat.mjs');
const STACK = 'watched';
const HOME = '\x1b[H';
const CLEAR_SCREEN = '\x1b[2J';

let h: Harness;
const sessions: PtySession[] = [];
let nats: Map<string, Instance>;

/** The shell of someone who ran `eval "$(hanat-lab up --detach)"`, with no AWS config of their own. */
const labEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: mkdtempSync(join(tmpdir(), 'hanat-pty-home-')),
  AWS_ENDPOINT_URL: h.url,
  AWS_ACCESS_KEY_ID: credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  AWS_REGION: 'us-east-1',
  NO_COLOR: '1',
});

const tag = (r: { Tags?: { Key?: string; Value?: string }[] }, key: string) => r.Tags?.find((t) => t.Key === key)?.Value;
const eniOf = (az: string) => nats.get(az)!.NetworkInterfaces!.find((n) => n.Attachment?.DeviceIndex === 0)!.NetworkInterfaceId!;
const tableOf = async (az: string): Promise<RouteTable> => {
  const out = await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: [STACK] }, { Name: 'tag:network', Values: ['private'] }] }));
  return out.RouteTables!.find((t) => tag(t, 'hanat:az') === az)!;
};
const count = (text: string, part: string) => text.split(part).length - 1;

/** What an agent writes when it points a table at its NAT: the route, then the owner tags with the reason, in one call. */
async function pointAt(az: string, natAz: string, reason: string, exists: boolean): Promise<void> {
  const t = await tableOf(az);
  const input = { RouteTableId: t.RouteTableId, DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: eniOf(natAz) };
  await h.ec2.send(exists ? new ReplaceRouteCommand(input) : new CreateRouteCommand(input));
  const owner = [
    { Key: 'hanat:owner', Value: nats.get(natAz)!.InstanceId },
    { Key: 'hanat:owner-since', Value: new Date().toISOString() },
    { Key: 'hanat:owner-reason', Value: reason },
  ];
  await h.ec2.send(new CreateTagsCommand({ Resources: [t.RouteTableId!], Tags: owner }));
}

describe('hanat status --watch at a real terminal (the built binary on a pseudo-terminal, against the emulator)', () => {
  beforeAll(async () => {
    requireBundles('cli');
    requirePty();
    h = await startLab({ latency: 'zero', bootDelayMs: 10 });
    // A 2-AZ stack, deployed by the built binary itself (on a terminal of its own: spawnSync would block the emulator).
    const deploy = spawnPty(['node', CLI, 'deploy', '--name', STACK, '--cidr-prefix', '10.6', '--azs', '2', '--yes'], { env: labEnv() });
    sessions.push(deploy);
    const deployed = await deploy.exited;
    expect(deployed.code, deployed.screen).toBe(0);
    nats = await eventually(async () => {
      const out = await h.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: [STACK] }, { Name: 'instance-state-name', Values: ['running'] }] }));
      const list = out.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
      return list.length === 2 ? new Map(list.map((i) => [tag(i, 'hanat:az')!, i])) : undefined;
    }, 20_000, 'two running NATs');
    // No agent runs in the emulator alone: do what each agent does at start-up.
    for (const [az, nat] of nats) {
      await h.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: nat.InstanceId, SourceDestCheck: { Value: false } }));
      await pointAt(az, az, 'own-az', false);
    }
  }, 90_000);
  afterEach(() => {
    for (const s of sessions.splice(0)) s.kill();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('redraws in place to show a takeover, who serves the AZ and why, and Ctrl-C ends it with exit 0', { timeout: 90_000 }, async () => {
    const [a, b] = [...nats.keys()].sort() as [string, string];
    const s = spawnPty(['node', CLI, 'status', '--name', STACK, '--watch', '--interval', '2'], { env: labEnv() });
    sessions.push(s);
    await s.waitFor(new RegExp(`${a} +ok +.*served by its own NAT ${nats.get(a)!.InstanceId}`), 30_000);
    const firstLook = s.screen().length;
    expect(s.screen().startsWith(HOME + CLEAR_SCREEN)).toBe(true);

    // b's agent takes a's table over: a's NAT stopped heartbeating, and a witness agreed.
    await pointAt(a, b, 'peer-down', true);
    await s.waitFor(new RegExp(`${a} +TAKEOVER +.*taken over by ${b}'s NAT ${nats.get(b)!.InstanceId} since \\S+ because its NAT failed: it stopped sending heartbeats, and another NAT missed it too \\(peer down\\)`), 30_000, firstLook);
    const screen = s.screen();
    // Redrawn from the top-left corner, never by clearing (and scrolling) the screen again.
    expect(count(screen, HOME)).toBeGreaterThanOrEqual(2);
    expect(count(screen, CLEAR_SCREEN)).toBe(1);
    expect(screen.slice(firstLook)).toContain(`every AZ reaches the internet (${a} TAKEOVER)`);
    expect(screen).not.toContain('\x1b[3'); // NO_COLOR: no colour

    s.type(KEY.ctrlC);
    const r = await s.exited;
    expect(r.code, r.screen).toBe(0);
    expect(r.screen).not.toMatch(/interrupted|error/);
    await pointAt(a, a, 'own-az', true);
  });

  it('without a terminal prints look after look, and a real SIGINT ends it with exit 0', { timeout: 60_000 }, async () => {
    const child = spawn('node', [CLI, 'status', '--name', STACK, '--watch', '--interval', '2'], { env: labEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await eventually(() => (count(stdout, 'hanat status --watch: ') >= 2 ? true : undefined), 30_000, 'two looks on stdout');
      child.kill('SIGINT');
      expect(await exited, stderr).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(stderr).toBe('');
    expect(stdout).not.toContain('\x1b');
    expect(stdout).toMatch(/^hanat status --watch: stack watched in us-east-1, a look every 2 s; last look \d\d:\d\d:\d\d UTC\. Ctrl-C stops\.\nevery AZ reaches the internet\n\nStack watched in us-east-1 /);
  });
});
