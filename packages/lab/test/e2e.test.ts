/**
 * hanat end to end in the lab: the emulator, the namespace data plane, the real `hanat`
 * CLI bundle deploying the stack, and the real agent bundle running in every NAT instance
 * namespace. Zero API latency and a short boot delay keep it quick.
 */
import { DescribeAddressesCommand, EC2Client, ModifyInstanceAttributeCommand } from '@aws-sdk/client-ec2';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { hostRoutes } from '../src/cli/probe.js';
import { labEmulator } from '../src/dataplane/emulator-adapter.js';
import { execCommand } from '../src/dataplane/exec.js';
import { Lab } from '../src/dataplane/lab.js';
import { buildWorkers } from './dataplane-helpers.js';

const root = join(import.meta.dirname, '../../..');
const REGION = 'us-east-1';
const STACK = 'e2e';
const BOOT_DELAY_MS = 1_500;

// A replacement, hanat destroy and teardown take seconds each, longer on a loaded CI machine.
describe.runIf(requireRoot('lab e2e', ['ip', 'nft', 'iptables']))('hanat end to end in the lab', { timeout: 120_000 }, () => {
  let dir: string;
  let lab: Lab;
  let env: NodeJS.ProcessEnv;
  let ec2: EC2Client;
  const pidsSeen = new Set<number>();
  /** Agents launched in this AZ run with source/dest check left on (HANAT_SKIP_SRCDST=1). */
  let skipSrcDstIn: string | undefined;

  const hanat = (...args: string[]) => promisify(execFile)(process.execPath, [join(root, 'packages/cli/bin/hanat.mjs'), ...args], { env, timeout: 120_000 });
  const rememberPids = async () => {
    for (const p of await lab.dataplane.processes()) pidsSeen.add(p);
  };
  /** Polls the lab until every private host reaches the internet through its own AZ's NAT. */
  const ownAz = async (timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const routes = hostRoutes(lab.status());
      if (routes.length > 0 && routes.every((r) => r.ownAz)) return routes;
      if (Date.now() > deadline) throw new Error(`private hosts not all through their own AZ's NAT: ${JSON.stringify(routes.map((r) => ({ az: r.az, ip: r.ip, tcp: r.tcp, nat: r.nat })))}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const eipOfAz = async () => {
    const res = await ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: [STACK] }] }));
    return new Map((res.Addresses ?? []).map((a) => [a.Tags?.find((t) => t.Key === 'hanat:az')?.Value ?? '', a.PublicIp ?? '']));
  };

  beforeAll(async () => {
    // The bundles under test: the agent that runs in the namespaces and the CLI that deploys.
    // `pnpm test` builds them first; build them here only when missing (rebuilding while other
    // test files run them would race).
    const missing = ['agent', 'cli'].filter((b) => !existsSync(join(root, b === 'agent' ? 'packages/agent/dist/hanat-agent.cjs' : 'packages/cli/dist/hanat.mjs')));
    if (missing.length) execFileSync(process.execPath, [join(root, 'scripts/build.mjs'), ...missing], { stdio: 'ignore' });
    dir = mkdtempSync(join(tmpdir(), 'hanat-e2e-'));
    lab = await Lab.start({
      emulator: (launcher) => labEmulator(launcher, { latency: 'zero', bootDelayMs: BOOT_DELAY_MS, region: REGION }),
      runDir: dir,
      dataplane: {
        workerCommand: await buildWorkers(),
        stateDir: join(dir, 'state'),
        agentCommand: [process.execPath, join(root, 'packages/agent/dist/hanat-agent.cjs'), 'run'],
        // HA off (HANAT_HA=0): this file tests the agent on its own, as the original design ran it
        // (claims, source/dest check, replacement by Auto Scaling); e2e-ha.test.ts tests takeover.
        agentEnv: (spec): Record<string, string> => ({ HANAT_HA: '0', ...(spec.az === skipSrcDstIn ? { HANAT_SKIP_SRCDST: '1' } : {}) }),
        terminateGraceMs: 5_000,
        probe: { intervalMs: 100, timeoutMs: 1_000 },
      },
    });
    lab.dataplane.installExitCleanup();
    env = { PATH: process.env.PATH, HOME: dir, AWS_ENDPOINT_URL: lab.apiEndpoint, AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'AKIAHANATLAB00000000', AWS_SECRET_ACCESS_KEY: 'hanat-lab-fake-secret' };
    ec2 = new EC2Client({ region: REGION, endpoint: lab.apiEndpoint, credentials: { accessKeyId: 'AKIAHANATLAB00000000', secretAccessKey: 'hanat-lab-fake-secret' } });
    await hanat('deploy', '--name', STACK, '--cidr-prefix', '10.0', '--azs', '2', '--yes');
    await ownAz(60_000);
    await rememberPids();
  }, 180_000);

  afterAll(async () => {
    ec2?.destroy();
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("after deploy, every private host reaches the internet, answered by its own AZ's Elastic IP", async () => {
    const eips = await eipOfAz();
    const routes = hostRoutes(lab.status());
    expect(new Set(routes.map((r) => r.az)).size).toBe(2);
    expect(routes).toHaveLength(4); // two private subnets per AZ
    for (const r of routes) {
      expect(r.tcp?.answer).toBe(eips.get(r.az));
      expect(r.udp?.answer).toBe(eips.get(r.az));
    }
    // The routes were claimed by the agents: each private table's owner is its AZ's NAT.
    const status = lab.status();
    for (const t of status.routeTables.filter((x) => x.network === 'private')) {
      const owner = status.instances.find((i) => i.instanceId === t.owner);
      expect(owner?.az).toBe(t.az);
      expect(t.via).toBe(t.owner);
    }
  });

  it('a second stack on the same --cidr-prefix is refused with the overlap as its reason, and the first keeps its internet', async () => {
    const before = hostRoutes(lab.status());
    const refused = await hanat('deploy', '--name', `${STACK}-same-range`, '--cidr-prefix', '10.0', '--azs', '2', '--yes').then(
      () => ({ code: 0, stderr: '' }),
      (err: { code?: number; stderr?: string }) => ({ code: err.code, stderr: err.stderr ?? '' }),
    );
    expect(refused.code, refused.stderr).toBe(1);
    // The stack fails on its VPC, with EC2's error as CloudFormation's reason, naming the VPC in the way.
    expect(refused.stderr).toMatch(/Vpc \(AWS::EC2::VPC\) CREATE_FAILED: .*The CIDR '10\.0\.0\.0\/16' overlaps 10\.0\.0\.0\/16 of vpc-[0-9a-f]+ \(us-east-1, stack e2e\)/);
    expect(refused.stderr).toContain('hanat-lab routes every VPC through one router');
    await hanat('destroy', '--name', `${STACK}-same-range`, '--yes');
    // Nothing of it reached the data plane: the first stack's hosts, and only they, still leave through their own AZ's NAT.
    const after = await ownAz(5_000);
    expect(after.map((r) => r.id)).toEqual(before.map((r) => r.id));
  });

  it("the lab's source/dest check is real: with the check back on, that NAT's AZ loses the internet, the other AZ does not", async () => {
    const routes = hostRoutes(lab.status());
    const [azA, azB] = [...new Set(routes.map((r) => r.az))].sort() as [string, string];
    const natA = routes.find((r) => r.az === azA)!.nat!.instanceId;
    const since = Date.now();
    await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: natA, SourceDestCheck: { Value: true } }));
    try {
      await lab.dataplane.probes.waitFor(
        () => {
          const now = hostRoutes(lab.status());
          return now.filter((r) => r.az === azA).every((r) => r.tcp?.ok === false && r.udp?.ok === false && r.tcp.since >= since);
        },
        5_000,
        `${azA}'s private hosts cut off`,
      );
      expect(hostRoutes(lab.status()).filter((r) => r.az === azB).every((r) => r.ownAz)).toBe(true);
    } finally {
      await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: natA, SourceDestCheck: { Value: false } }));
    }
    await ownAz(5_000);
  });

  it('an agent run with the source/dest step disabled claims the routes but leaves its AZ without internet', async () => {
    const routes = hostRoutes(lab.status());
    const [azA, azB] = [...new Set(routes.map((r) => r.az))].sort() as [string, string];
    skipSrcDstIn = azA;
    let replacement: string | undefined;
    try {
      const killed = await lab.fault({ kind: 'kill', target: azA });
      // Wait until the replacement's agent has pointed the AZ's routes at itself.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const status = lab.status();
        const next = status.instances.find((i) => i.az === azA && i.state === 'running' && !killed.instances.includes(i.instanceId));
        const tables = status.routeTables.filter((t) => t.network === 'private' && t.az === azA);
        if (next && tables.length > 0 && tables.every((t) => t.via === next.instanceId)) {
          replacement = next.instanceId;
          break;
        }
        if (Date.now() > deadline) throw new Error(`no replacement claimed ${azA}'s routes within 60 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const claimedAt = Date.now();
      // 2 s of probes at 100 ms after the claim: a NAT with the check on forwards nothing.
      await new Promise((r) => setTimeout(r, 2_000));
      const now = hostRoutes(lab.status());
      const cutOff = now.filter((r) => r.az === azA);
      expect(cutOff).toHaveLength(2);
      for (const r of cutOff) {
        expect(r.tcp?.ok).toBe(false);
        expect(r.udp?.ok).toBe(false);
        expect(r.tcp!.since).toBeLessThanOrEqual(claimedAt); // failing since before the claim, not a blip
      }
      expect(now.filter((r) => r.az === azB).every((r) => r.ownAz)).toBe(true);
    } finally {
      skipSrcDstIn = undefined;
      // What the agent would have done: with the check off, the same NAT carries the AZ again.
      if (replacement) await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: replacement, SourceDestCheck: { Value: false } }));
    }
    await ownAz(10_000);
    await rememberPids();
  });

  // A terminated NAT (`fault kill`: a Spot interruption, someone terminating it), which EC2 and
  // Auto Scaling see at once. A NAT that dies in place, the lab's default failure, waits for
  // EC2's status checks first: e2e-crash.test.ts.
  it('a terminated NAT is replaced by Auto Scaling, the new agent takes the routes back, and the outage is recorded', async () => {
    const routes = hostRoutes(lab.status());
    const az = [...new Set(routes.map((r) => r.az))].sort()[0]!;
    const eip = (await eipOfAz()).get(az);
    const killed = await lab.fault({ kind: 'kill', target: az });
    expect(killed.affectedHosts).toHaveLength(2);
    const outages = await lab.waitForRecovery(killed.affectedHosts, killed.at, 60_000);
    await rememberPids();
    expect(outages).toHaveLength(4);
    for (const o of outages) {
      // At least the boot delay: nothing but the replacement brings traffic back.
      expect(o.outageMs).toBeGreaterThanOrEqual(BOOT_DELAY_MS);
      expect(o.outageMs).toBeLessThan(30_000);
      expect(o.answerBefore).toBe(eip);
      expect(o.answerAfter).toBe(eip); // the AZ's EIP moved to the replacement
    }
    const status = lab.status();
    const replacement = status.instances.find((i) => i.az === az && i.state === 'running')!;
    expect(replacement.instanceId).not.toBe(killed.instances[0]);
    for (const t of status.routeTables.filter((x) => x.network === 'private' && x.az === az)) expect(t.via).toBe(replacement.instanceId);
    console.log(`outage after killing ${killed.instances[0]} (boot delay ${BOOT_DELAY_MS} ms): ${outages.map((o) => `${o.proto} ${o.outageMs} ms`).join(', ')}`);
  });

  it('teardown leaves no namespace, link or process behind', async () => {
    await hanat('destroy', '--name', STACK, '--yes');
    await rememberPids();
    const names = lab.dataplane.names;
    await lab.stop();
    expect(await lab.dataplane.namespaces()).toEqual([]);
    expect([...pidsSeen].filter((p) => { try { process.kill(p, 0); return true; } catch { return false; } })).toEqual([]);
    const links = JSON.parse(await execCommand(['ip', '-j', 'link', 'show'])) as { ifname: string }[];
    expect(links.filter((l) => l.ifname.startsWith(names.prefix))).toEqual([]);
  });
});
