/**
 * Every [y/N] prompt of the built `hanat` binary, answered at a real
 * pseudo-terminal against the emulator: what a person types (y, yes, YES, n,
 * an empty line, other text, Ctrl-D, Ctrl-C) and what that did to the world
 * (whether the stack exists, whether the route moved).
 *
 * The unit tests inject `confirm`; this file is the one that goes through the
 * real readline on a real terminal, the path that once answered "no" to every
 * "y". It needs no root, and it never skips: a machine without `script`
 * (util-linux) fails it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateRouteCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  ModifyInstanceAttributeCommand,
  type Instance,
  type RouteTable,
} from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KEY, requirePty, spawnPty, type PtyExit, type PtySession } from '../../../test-support/pty.js';
import { REPO, requireBundles } from './bundle-helpers.js';
import type { LatencyProfile } from '../src/emulator/index.js';
import { credentials, eventually, startLab, type Harness } from './emulator/helpers.js';

const CLI = join(REPO, 'packages/cli/bin/hanat.mjs');
const PROMPT = '[y/N]';

let h: Harness;
const sessions: PtySession[] = [];
/** Every HOME handed to a session: removed once the file's sessions are over. */
const homes: string[] = [];
afterAll(() => {
  for (const dir of homes.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempHome(): string {
  const dir = mkdtempSync(join(tmpdir(), 'hanat-pty-home-'));
  homes.push(dir);
  return dir;
}

/** The shell of someone who ran `eval "$(hanat-lab up --detach)"`, with no AWS config of their own. */
const labEnv = (): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: tempHome(),
  AWS_ENDPOINT_URL: h.url,
  AWS_ACCESS_KEY_ID: credentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  AWS_REGION: 'us-east-1',
  NO_COLOR: '1',
});

/** `hanat <argv>` on a terminal of its own, pointed at the emulator. */
function hanatOnPty(argv: string[]): PtySession {
  const s = spawnPty(['node', CLI, ...argv], { env: labEnv() });
  sessions.push(s);
  return s;
}

/** Runs `hanat <argv>`, waits for its prompt, types `keys`, and returns how it ended. */
async function answer(argv: string[], keys: string): Promise<PtyExit> {
  const s = hanatOnPty(argv);
  await s.waitFor(PROMPT, 30_000);
  s.type(keys);
  return s.exited;
}

const stack = (name: string) => h.emu.world.cloudformation.findStack(name);
const changeSetsOf = (name: string) => [...h.emu.world.cloudformation.changeSets.values()].filter((c) => c.stack.name === name);
const tag = (r: { Tags?: { Key?: string; Value?: string }[] }, key: string) => r.Tags?.find((t) => t.Key === key)?.Value;

describe('hanat prompts at a real terminal (the built binary on a pseudo-terminal)', () => {
  beforeAll(async () => {
    requireBundles('cli');
    requirePty();
    h = await startLab({ latency: 'zero', bootDelayMs: 10 });
  });
  afterEach(() => {
    for (const s of sessions.splice(0)) s.kill();
  });
  afterAll(async () => {
    await h?.close();
  });

  const deploy = (name: string, ...more: string[]) => ['deploy', '--name', name, '--cidr-prefix', '10.9', '--azs', '2', ...more];

  it.each([
    ['n + Enter', `n${KEY.enter}`],
    ['an empty line', KEY.enter],
    ['other text', `sure${KEY.enter}`],
    ['Ctrl-D', KEY.ctrlD],
  ])('deploy answered %s declines: exit 1, "unchanged", no stack and no change set left', { timeout: 60_000 }, async (_what, keys) => {
    const r = await answer(deploy('declined'), keys);
    expect(r.screen).toContain('Deploy these changes to stack declined in us-east-1? [y/N]');
    expect(r.code, r.screen).toBe(1);
    expect(r.screen).toContain('Not deployed: the change set was declined and deleted; stack declined is unchanged.');
    expect(stack('declined')).toBeUndefined();
    expect(changeSetsOf('declined')).toEqual([]);
  });

  it('deploy answered Ctrl-C exits 130, deletes the change set and leaves no stack', { timeout: 60_000 }, async () => {
    const r = await answer(deploy('interrupted'), KEY.ctrlC);
    expect(r.code, r.screen).toBe(130);
    expect(r.screen).toContain('interrupted: Interrupted before deploying: the change set was deleted and stack interrupted is unchanged.');
    expect(stack('interrupted')).toBeUndefined();
    expect(changeSetsOf('interrupted')).toEqual([]);
  });

  it('deploy answered y creates the stack, and an update answered YES is executed', { timeout: 90_000 }, async () => {
    const created = await answer(deploy('tty'), `y${KEY.enter}`);
    expect(created.code, created.screen).toBe(0);
    expect(created.screen).not.toContain('Not deployed');
    expect(stack('tty')?.status).toBe('CREATE_COMPLETE');

    const updated = await answer(deploy('tty', '--instance-type', 't4g.micro'), `YES${KEY.enter}`);
    expect(updated.code, updated.screen).toBe(0);
    expect(stack('tty')?.status).toBe('UPDATE_COMPLETE');
    expect(changeSetsOf('tty').filter((c) => c.executionStatus !== 'EXECUTE_COMPLETE')).toEqual([]);
  });

  describe('failover and restore', () => {
    let nats: Map<string, Instance>;
    const eniOf = (az: string) => nats.get(az)!.NetworkInterfaces!.find((n) => n.Attachment?.DeviceIndex === 0)!.NetworkInterfaceId!;
    const tableOf = async (az: string): Promise<RouteTable> => {
      const out = await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: ['tty'] }, { Name: 'tag:network', Values: ['private'] }] }));
      return out.RouteTables!.find((t) => tag(t, 'hanat:az') === az)!;
    };
    const target = async (az: string) => (await tableOf(az)).Routes!.find((r) => r.DestinationCidrBlock === '0.0.0.0/0')?.NetworkInterfaceId;

    beforeAll(async () => {
      // The stack the test above deployed; no agent runs in the emulator alone, so do
      // what each agent does at start-up: source/dest check off, its AZ's route, the owner tag.
      nats = await eventually(async () => {
        const out = await h.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: ['tty'] }, { Name: 'instance-state-name', Values: ['running'] }] }));
        const list = out.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
        return list.length === 2 ? new Map(list.map((i) => [tag(i, 'hanat:az')!, i])) : undefined;
      }, 20_000, 'two running NATs');
      for (const [az, nat] of nats) {
        await h.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: nat.InstanceId, SourceDestCheck: { Value: false } }));
        const t = await tableOf(az);
        await h.ec2.send(new CreateRouteCommand({ RouteTableId: t.RouteTableId, DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: eniOf(az) }));
        await h.ec2.send(new CreateTagsCommand({ Resources: [t.RouteTableId!], Tags: [{ Key: 'hanat:owner', Value: nat.InstanceId }, { Key: 'hanat:owner-since', Value: new Date().toISOString() }] }));
      }
    });

    it('failover answered n or Ctrl-C leaves the route where it was; y moves and pins it; restore answered yes unpins it', { timeout: 90_000 }, async () => {
      const [a, b] = [...nats.keys()].sort() as [string, string];
      const failover = ['failover', '--name', 'tty', '--az', a, '--to', b];

      const declined = await answer(failover, `n${KEY.enter}`);
      expect(declined.code, declined.screen).toBe(1);
      expect(declined.screen).toContain('Not changed:');
      expect(await target(a)).toBe(eniOf(a));

      const interrupted = await answer(failover, KEY.ctrlC);
      expect(interrupted.code, interrupted.screen).toBe(130);
      expect(await target(a)).toBe(eniOf(a));
      expect(tag(await tableOf(a), 'hanat:override')).toBeUndefined();

      const moved = await answer(failover, `y${KEY.enter}`);
      expect(moved.code, moved.screen).toBe(0);
      expect(await target(a)).toBe(eniOf(b));
      expect(tag(await tableOf(a), 'hanat:override')).toBe(b);

      const keptPin = await answer(['failover', '--name', 'tty', '--az', a, '--restore'], `no${KEY.enter}`);
      expect(keptPin.code, keptPin.screen).toBe(1);
      expect(tag(await tableOf(a), 'hanat:override')).toBe(b);

      const restored = await answer(['failover', '--name', 'tty', '--az', a, '--restore'], `Yes${KEY.enter}`);
      expect(restored.code, restored.screen).toBe(0);
      expect(tag(await tableOf(a), 'hanat:override')).toBeUndefined();
    });
  });

  it('destroy answered n or Ctrl-C keeps the stack; answered yes deletes it', { timeout: 90_000 }, async () => {
    const declined = await answer(['destroy', '--name', 'tty'], `n${KEY.enter}`);
    expect(declined.code, declined.screen).toBe(1);
    expect(declined.screen).toContain('Not destroyed: stack tty is unchanged.');
    expect(stack('tty')?.status).toBe('UPDATE_COMPLETE');

    const interrupted = await answer(['destroy', '--name', 'tty'], KEY.ctrlC);
    expect(interrupted.code, interrupted.screen).toBe(130);
    expect(stack('tty')?.status).toBe('UPDATE_COMPLETE');

    const destroyed = await answer(['destroy', '--name', 'tty'], `yes${KEY.enter}`);
    expect(destroyed.code, destroyed.screen).toBe(0);
    expect(destroyed.screen).not.toContain('Not destroyed');
    expect(stack('tty')).toBeUndefined();
  });
});

describe('hanat at a real terminal, outside the prompt', () => {
  // Each resource takes 1.5 s, so a deploy is still running when Ctrl-C arrives.
  const slow: LatencyProfile = { name: 'test', api: () => 0, resource: () => 1500, changeSet: () => 20, instanceShutdown: () => 10, healthCheck: () => 0, launchRetry: () => 1000 };
  beforeAll(async () => {
    requireBundles('cli');
    requirePty();
    h = await startLab({ latency: slow, bootDelayMs: 10 });
  });
  afterEach(() => {
    for (const s of sessions.splice(0)) s.kill();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('Ctrl-C while a deploy runs stops watching with exit 130 and says how to follow it; the stack goes on to CREATE_COMPLETE', { timeout: 90_000 }, async () => {
    const s = hanatOnPty(['deploy', '--name', 'watched', '--cidr-prefix', '10.8', '--azs', '2', '--yes']);
    await s.waitFor('following stack events', 30_000);
    await s.waitFor(/CREATE_IN_PROGRESS\s+AWS::EC2::VPC\b/, 30_000);
    expect(stack('watched')?.status).toBe('CREATE_IN_PROGRESS');
    s.type(KEY.ctrlC);
    const r = await s.exited;
    expect(r.code, r.screen).toBe(130);
    expect(r.screen).toContain('interrupted: Stopped watching; the creation of stack watched goes on in CloudFormation.');
    expect(r.screen).toContain('aws cloudformation wait stack-create-complete --stack-name watched --region us-east-1');
    expect(stack('watched')?.status).toBe('CREATE_IN_PROGRESS');
    await eventually(() => (stack('watched')?.status === 'CREATE_COMPLETE' ? true : undefined), 60_000, 'the stack to finish without hanat');
  });

  it('without a terminal and without --yes, the built binary refuses to deploy with exit 2 and creates nothing', { timeout: 30_000 }, () => {
    const r = spawnSync('node', [CLI, 'deploy', '--name', 'piped', '--cidr-prefix', '10.7', '--azs', '2'], { env: labEnv(), input: 'y\n', encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toContain('error: Refusing to deploy without confirmation: no terminal to ask on. Pass --yes');
    expect(stack('piped')).toBeUndefined();
  });

  it('colours its errors on a terminal, and not with NO_COLOR or when stderr is a pipe', { timeout: 30_000 }, async () => {
    const bad = ['deploy', '--name', '9lives', '--cidr-prefix', '10.0', '--yes'];
    const coloured = spawnPty(['node', CLI, ...bad], { env: { ...labEnv(), NO_COLOR: undefined } });
    sessions.push(coloured);
    const c = await coloured.exited;
    expect(c.code).toBe(2);
    expect(c.screen).toContain('\x1b[31merror:\x1b[0m --name "9lives"');

    const plain = await answerless(['node', CLI, ...bad], labEnv());
    expect(plain.code).toBe(2);
    expect(plain.screen).toContain('error: --name "9lives"');
    expect(plain.screen).not.toContain('\x1b[');

    const piped = spawnSync('node', [CLI, ...bad], { env: { ...labEnv(), NO_COLOR: undefined }, encoding: 'utf8' });
    expect(piped.status).toBe(2);
    expect(piped.stderr).toMatch(/^error: --name "9lives"/);
  });
});

async function answerless(argv: string[], env: NodeJS.ProcessEnv): Promise<PtyExit> {
  const s = spawnPty(argv, { env });
  sessions.push(s);
  return s.exited;
}
