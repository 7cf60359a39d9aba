/**
 * The agent's kernel configuration on a real kernel, in network namespaces this
 * test creates (unique per run) and removes afterwards, even on failure:
 *
 *   private (10.0.1.10) --- nat (10.0.1.1 | 203.0.113.1) --- internet (203.0.113.10)
 *
 * The internet namespace has no route back to 10.0.0.0/16, so a reply only comes
 * back when the NAT translated the source; the receiver reports the address it saw.
 */
import { DescribeAddressesCommand, DescribeInstanceAttributeCommand, DescribeRouteTablesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { Agent } from '../src/agent.js';
import { systemClock } from '../src/clock.js';
import { HA_DEFAULTS } from '../src/config.js';
import { realExec, realFs, type Exec } from '../src/host.js';
import { Kernel } from '../src/kernel.js';
import { fakeAwsEnv, logCapture } from './support/harness.js';

const run = requireRoot('agent kernel', ['ip', 'nft', 'iptables']);

const id = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`.slice(-8);
const NS = { priv: `hanat-${id}-priv`, nat: `hanat-${id}-nat`, inet: `hanat-${id}-inet` };
const IF = { priv: `hp${id}`, natIn: `hn${id}`, natOut: `ho${id}`, inet: `hi${id}` };
const VPC = '10.0.0.0/16';
const NAT_OUT = '203.0.113.1';
const SERVER = '203.0.113.10';
const PORT = 8080;

async function sh(args: string[], input?: string): Promise<string> {
  const res = await realExec(args[0]!, args.slice(1), input === undefined ? undefined : { input });
  if (res.code !== 0) throw new Error(`${args.join(' ')} failed (${res.code}): ${res.stderr}`);
  return res.stdout;
}

/** Runs commands inside a namespace: how the agent's exec behaves when the agent itself runs there. */
function inNamespace(ns: string): Exec {
  return (file, args, opts) => realExec('ip', ['netns', 'exec', ns, file, ...args], opts);
}

/** Connects from the private namespace to the server; resolves with the source address the server saw, or 'unreachable'. */
async function probe(): Promise<string> {
  const script = `const s=require('net').connect(${PORT},'${SERVER}');s.setTimeout(1500,()=>{process.stdout.write('unreachable');process.exit(0)});s.on('data',d=>process.stdout.write(d));s.on('error',()=>{process.stdout.write('unreachable')});s.on('end',()=>process.exit(0))`;
  return (await sh(['ip', 'netns', 'exec', NS.priv, process.execPath, '-e', script])).trim();
}

async function ruleCount(): Promise<number> {
  const json = JSON.parse(await sh(['ip', 'netns', 'exec', NS.nat, 'nft', '-j', 'list', 'ruleset'])) as { nftables: Record<string, unknown>[] };
  return json.nftables.filter((o) => 'rule' in o).length;
}

async function hanatRuleHandles(): Promise<number[]> {
  const res = await inNamespace(NS.nat)('nft', ['-j', 'list', 'chain', 'ip', 'hanat', 'postrouting']);
  if (res.code !== 0) return [];
  const json = JSON.parse(res.stdout) as { nftables: { rule?: { handle: number; comment?: string } }[] };
  return json.nftables.flatMap((o) => (o.rule?.comment === 'hanat' ? [o.rule.handle] : []));
}

describe.runIf(run)('kernel NAT in network namespaces (real kernel)', () => {
  let server: ChildProcess | undefined;
  let mac = '';

  beforeAll(async () => {
    fakeAwsEnv();
    for (const ns of Object.values(NS)) await sh(['ip', 'netns', 'add', ns]);
    await sh(['ip', '-n', NS.priv, 'link', 'add', IF.priv, 'type', 'veth', 'peer', 'name', IF.natIn, 'netns', NS.nat]);
    await sh(['ip', '-n', NS.nat, 'link', 'add', IF.natOut, 'type', 'veth', 'peer', 'name', IF.inet, 'netns', NS.inet]);
    const setup: [string, string[]][] = [
      [NS.priv, ['addr', 'add', '10.0.1.10/24', 'dev', IF.priv]],
      [NS.priv, ['link', 'set', IF.priv, 'up']],
      [NS.priv, ['link', 'set', 'lo', 'up']],
      [NS.priv, ['route', 'add', 'default', 'via', '10.0.1.1']],
      [NS.nat, ['addr', 'add', '10.0.1.1/24', 'dev', IF.natIn]],
      [NS.nat, ['addr', 'add', `${NAT_OUT}/24`, 'dev', IF.natOut]],
      [NS.nat, ['link', 'set', IF.natIn, 'up']],
      [NS.nat, ['link', 'set', IF.natOut, 'up']],
      [NS.nat, ['link', 'set', 'lo', 'up']],
      [NS.inet, ['addr', 'add', `${SERVER}/24`, 'dev', IF.inet]],
      [NS.inet, ['link', 'set', IF.inet, 'up']],
      [NS.inet, ['link', 'set', 'lo', 'up']],
    ];
    for (const [ns, args] of setup) await sh(['ip', '-n', ns, ...args]);
    const links = JSON.parse(await sh(['ip', '-n', NS.nat, '-j', 'link', 'show', IF.natOut])) as { address: string }[];
    mac = links[0]!.address;

    // A rule hanat did not write, in the shared nat table (as iptables-nft users have).
    await sh(['ip', 'netns', 'exec', NS.nat, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-d', '192.0.2.99/32', '-m', 'comment', '--comment', 'unrelated', '-j', 'RETURN']);

    // The receiver: answers each connection with the peer address it sees.
    const script = `require('net').createServer(s=>s.end(s.remoteAddress)).listen(${PORT},'${SERVER}',()=>console.log('listening'))`;
    server = spawn('ip', ['netns', 'exec', NS.inet, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      server!.stdout!.once('data', () => resolve());
      server!.once('exit', (code) => reject(new Error(`receiver exited ${code}`)));
    });
  }, 30_000);

  afterAll(async () => {
    server?.kill();
    for (const ns of Object.values(NS)) await realExec('ip', ['netns', 'del', ns]).catch(() => undefined);
  });

  it('is needed: without the agent, the private host cannot reach the internet namespace', async () => {
    expect(await probe()).toBe('unreachable');
  });

  it('forwards with the source translated to the NAT address once the agent configured the kernel', async () => {
    const logs = logCapture();
    const kernel = new Kernel({ exec: inNamespace(NS.nat), fs: realFs, log: pino(logs.stream) });
    const report = await kernel.reconcile({ vpcCidrs: [VPC], mac });
    expect(report.changes.length).toBeGreaterThan(0);
    expect(await probe()).toBe(NAT_OUT);
    expect(await sh(['ip', 'netns', 'exec', NS.nat, 'sysctl', '-n', `net.ipv4.conf.${IF.natOut}.send_redirects`])).toBe('0\n');
  });

  it('changes nothing when applied again, and leaves the unrelated rule alone', async () => {
    const before = await ruleCount();
    const handles = await hanatRuleHandles();
    const kernel = new Kernel({ exec: inNamespace(NS.nat), fs: realFs, log: pino({ level: 'silent' }) });
    const report = await kernel.reconcile({ vpcCidrs: [VPC], mac });
    expect(report.changes).toEqual([]);
    expect(await ruleCount()).toBe(before);
    expect(await hanatRuleHandles()).toEqual(handles);
    expect(await sh(['ip', 'netns', 'exec', NS.nat, 'iptables', '-t', 'nat', '-S', 'POSTROUTING'])).toMatch(/-d 192\.0\.2\.99\/32 .*--comment unrelated -j RETURN/);
  });

  it('restores a deleted NAT rule from the loop', async () => {
    const ec2Mock = mockClient(EC2Client);
    ec2Mock.on(DescribeInstanceAttributeCommand).resolves({ SourceDestCheck: { Value: false } });
    ec2Mock.on(DescribeAddressesCommand).resolves({ Addresses: [] });
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [] });
    const logs = logCapture();
    const kernel = new Kernel({ exec: inNamespace(NS.nat), fs: realFs, log: pino(logs.stream) });
    const identity = {
      instanceId: 'i-0123456789abcdef0',
      region: 'us-east-1',
      az: 'us-east-1a',
      mac,
      eniId: 'eni-0ccccccccccccccc1',
      subnetId: 'subnet-0aaaaaaaaaaaaaaa1',
      vpcId: 'vpc-0bbbbbbbbbbbbbbb1',
      vpcCidrs: [VPC],
      privateIp: NAT_OUT,
      tags: {},
    };
    const config = { stack: 'prod', az: 'us-east-1a', logLevel: 'info' as const, intervalMs: 100, routeIntervalMs: 60_000, recheckIntervalMs: 600_000, maxFailures: 5, skipSourceDest: false, ...HA_DEFAULTS, ha: false, from: {} };
    const agent = new Agent(config, identity, { ec2: new EC2Client({ region: 'us-east-1' }), kernel, log: pino(logs.stream), clock: systemClock });
    const stop = new AbortController();
    const loop = agent.run(stop.signal);
    try {
      // Delete only after the agent's boot configuration, or the boot pass (not the loop) restores it.
      const booted = Date.now() + 10_000;
      while (!logs.lines.some((l) => l.event === 'kernel.configured') && Date.now() < booted) await systemClock.sleep(20);
      expect(logs.lines.map((l) => l.event)).toContain('kernel.configured');
      const [handle] = await hanatRuleHandles();
      await sh(['ip', 'netns', 'exec', NS.nat, 'nft', 'delete', 'rule', 'ip', 'hanat', 'postrouting', 'handle', String(handle)]);
      // (No check that the rule is gone here: the loop may already be putting it back.)
      // The rule shows in nft before the tick ends (sysctls and the read-back come after it),
      // so wait for the tick's report, not for the rule.
      const deadline = Date.now() + 10_000;
      while (!logs.lines.some((l) => l.event === 'kernel.drift_repaired') && Date.now() < deadline) await systemClock.sleep(50);
      expect(logs.lines.find((l) => l.event === 'kernel.drift_repaired')).toMatchObject({ changes: ['nft: added the masquerade rule'] });
      expect(await hanatRuleHandles()).toHaveLength(1);
      expect(await probe()).toBe(NAT_OUT);
    } finally {
      stop.abort();
      await loop;
      ec2Mock.restore();
    }
  }, 30_000);

  it('owns table ip hanat wholly: rebuilding it removes a rule others put there, and no other table is touched', async () => {
    // Someone recreated hanat's table with another chain priority and a rule of their own.
    await sh(['ip', 'netns', 'exec', NS.nat, 'nft', '-f', '-'], 'delete table ip hanat\ntable ip hanat {\n  chain postrouting {\n    type nat hook postrouting priority 50; policy accept;\n    ip daddr 192.0.2.98 counter\n  }\n}\n');
    const kernel = new Kernel({ exec: inNamespace(NS.nat), fs: realFs, log: pino({ level: 'silent' }) });
    const report = await kernel.reconcile({ vpcCidrs: [VPC], mac });
    expect(report.changes).toContain('nft: rebuilt table ip hanat (set or chain definition had changed)');
    const table = await sh(['ip', 'netns', 'exec', NS.nat, 'nft', 'list', 'table', 'ip', 'hanat']);
    expect(table).not.toMatch(/192\.0\.2\.98/);
    expect(await hanatRuleHandles()).toHaveLength(1);
    expect(await sh(['ip', 'netns', 'exec', NS.nat, 'iptables', '-t', 'nat', '-S', 'POSTROUTING'])).toMatch(/-d 192\.0\.2\.99\/32 .*--comment unrelated -j RETURN/);
    expect(await probe()).toBe(NAT_OUT);
  });
});
