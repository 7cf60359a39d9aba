/**
 * HA with two AZs in the lab (docs/ha.md "Two AZs"): no third peer can witness a silence,
 * so silence alone never moves routes. A partition between the two NATs changes nothing;
 * a NAT that EC2 shows gone (killed, terminated) is taken over in seconds, because the
 * survivor asks EC2 as soon as its peer goes silent.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { hostRoutes } from '../src/cli/probe.js';
import type { Lab } from '../src/dataplane/lab.js';
import type { CounterSnapshot } from '../src/emulator/index.js';
import { sleep, startE2eLab, type E2eLab } from './e2e-helpers.js';

const REGION = 'us-east-1';
const STACK = 'e2e-ha-2az';
const PROBE_INTERVAL_MS = 100;

describe.runIf(requireRoot('lab HA e2e (2 AZs)', ['ip', 'nft', 'iptables']))('HA in the lab with two AZs', { timeout: 90_000 }, () => {
  let e2e: E2eLab;
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
    e2e = await startE2eLab({
      stack: STACK,
      azs: 2,
      cidrPrefix: '10.1',
      region: REGION,
      emulator: { latency: 'aws', bootDelayMs: 30_000 },
      probeIntervalMs: PROBE_INTERVAL_MS,
    });
    ({ lab, dir } = e2e);
    // Both agents healthy (risen) before any fault.
    const azs = [...new Set(lab.status().hosts.map((h) => h.az))].sort();
    while (!azs.every((az) => events(natOf(az)!.instanceId, 'self.healthy').length > 0)) await sleep(200);
  }, 150_000);

  afterAll(async () => {
    await e2e?.stop();
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
