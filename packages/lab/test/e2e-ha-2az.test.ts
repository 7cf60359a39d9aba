/**
 * HA with two AZs in the lab (docs/ha.md "Two AZs"): no third peer can witness a silence,
 * so silence alone never moves routes. A partition between the two NATs changes nothing;
 * a NAT that EC2 shows gone (killed, terminated) is taken over in seconds, because the
 * survivor asks EC2 as soon as its peer goes silent.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { hostRoutes } from '../src/cli/probe.js';
import { envExports } from '../src/dataplane/cli-support.js';
import { labEmulator } from '../src/dataplane/emulator-adapter.js';
import { Lab } from '../src/dataplane/lab.js';
import type { CounterSnapshot } from '../src/emulator/index.js';
import { buildWorkers } from './dataplane-helpers.js';
import { REPO, requireBundles } from './bundle-helpers.js';

const REGION = 'us-east-1';
const STACK = 'e2e-ha-2az';
const PROBE_INTERVAL_MS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(requireRoot('lab HA e2e (2 AZs)', ['ip', 'nft', 'iptables']))('HA in the lab with two AZs', { timeout: 90_000 }, () => {
  let dir: string;
  let lab: Lab;

  const natOf = (az: string) => lab.status().instances.filter((i) => i.az === az && i.state === 'running' && i.agentPid !== undefined).at(-1);
  const events = (id: string, event: string) => {
    try {
      return readFileSync(join(dir, 'instances', id, 'agent.log'), 'utf8').split('\n').filter((l) => l.includes(`"event":"${event}"`));
    } catch {
      return [];
    }
  };
  const counters = async (): Promise<CounterSnapshot> => (await (await fetch(`${lab.apiEndpoint}/_lab/counters`)).json()) as CounterSnapshot;
  const writes = (c: CounterSnapshot) => (c.calls['ec2:ReplaceRoute'] ?? 0) + (c.calls['ec2:CreateRoute'] ?? 0) + (c.calls['autoscaling:SetInstanceHealth'] ?? 0);

  beforeAll(async () => {
    requireBundles('cli', 'agent');
    dir = mkdtempSync(join(tmpdir(), 'hanat-e2e-ha2-'));
    lab = await Lab.start({
      emulator: (launcher) => labEmulator(launcher, { latency: 'aws', bootDelayMs: 30_000, region: REGION }),
      runDir: dir,
      dataplane: {
        workerCommand: await buildWorkers(),
        stateDir: join(dir, 'state'),
        agentCommand: [process.execPath, join(REPO, 'packages/agent/dist/hanat-agent.cjs'), 'run'],
        terminateGraceMs: 5_000,
        probe: { intervalMs: PROBE_INTERVAL_MS, timeoutMs: 1_000 },
      },
    });
    lab.dataplane.installExitCleanup();
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, NO_COLOR: '1' };
    for (const line of envExports(lab.apiEndpoint, REGION).split('\n')) {
      const set = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
      if (set) env[set[1]!] = set[2]!;
    }
    const code = await new Promise<number>((resolve) =>
      execFile(process.execPath, [join(REPO, 'packages/cli/dist/hanat.mjs'), 'deploy', '--name', STACK, '--cidr-prefix', '10.1', '--azs', '2', '--yes'], { env }, (err) => resolve(err ? Number(err.code ?? 1) : 0)),
    );
    expect(code).toBe(0);
    const t0 = Date.now();
    while (!(hostRoutes(lab.status()).length === 4 && hostRoutes(lab.status()).every((h) => h.ownAz))) {
      if (Date.now() - t0 > 90_000) throw new Error('hosts never reached the internet through their own NAT');
      await sleep(100);
    }
    // Both agents healthy (risen) before any fault.
    const azs = [...new Set(lab.status().hosts.map((h) => h.az))].sort();
    while (!azs.every((az) => events(natOf(az)!.instanceId, 'self.healthy').length > 0)) await sleep(200);
  }, 150_000);

  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('a partition between the two NATs: each suspects the other, nothing moves, nobody is fenced, no probe fails', async () => {
    const [a, b] = [...new Set(lab.status().hosts.map((h) => h.az))].sort().map((az) => natOf(az)!.instanceId) as [string, string];
    const before = await counters();
    const t0 = Date.now();
    await lab.fault({ kind: 'partition', target: a, other: b });
    await sleep(15_000);
    await lab.fault({ kind: 'partition', target: a, other: b, off: true });
    await sleep(1_000);
    expect(events(a, 'peer.suspect').length).toBeGreaterThan(0);
    expect(events(b, 'peer.suspect').length).toBeGreaterThan(0);
    expect([...events(a, 'peer.down'), ...events(b, 'peer.down')]).toEqual([]);
    expect(writes(await counters()) - writes(before)).toBe(0);
    expect(hostRoutes(lab.status()).flatMap((h) => h.outages.filter((o) => o.start >= t0))).toEqual([]);
  });

  it('a killed NAT (EC2 shows it terminated) is taken over by the other AZ within seconds', async () => {
    const [azA, azB] = [...new Set(lab.status().hosts.map((h) => h.az))].sort() as [string, string];
    const eipB = natOf(azB)!.publicIp;
    const killed = await lab.fault({ kind: 'kill', target: azA });
    const outages = await lab.waitForRecovery(killed.affectedHosts, killed.at, 10_000);
    console.log(`2 AZs, kill ${killed.instances[0]}: outage ${outages.map((o) => `${o.proto} ${o.outageMs} ms → ${o.answerAfter}`).join(', ')} (boot delay 30 s: not the replacement)`);
    for (const o of outages) {
      expect(o.outageMs).toBeLessThanOrEqual(3_000);
      expect(o.answerAfter).toBe(eipB);
    }
  });
});
