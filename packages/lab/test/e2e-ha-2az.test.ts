/**
 * HA with two AZs in the lab (docs/ha.md "Two AZs"): no third peer can witness a silence.
 * A partition between the two NATs (60 s) changes nothing, though each reads the other's EC2
 * status checks while it hears nothing. A NAT that EC2 shows gone (killed, terminated) is
 * taken over in seconds, because the survivor asks EC2 as soon as its peer goes silent. A NAT
 * that crashes in place (EC2 still says running) is taken over once EC2's status checks read
 * impaired, which the survivor reads every 10 s while its peer is silent.
 *
 * Settings for CI: status checks fail 5 s after a crash (AWS: a minute or more), Auto Scaling
 * acts on them 15 s later (so that the takeover seen is the agents', not the replacement's),
 * a 4 s boot delay, a 5 s failback hold-down; the agents' peer timeout is the default 0.8 s.
 */
import { loadavg } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { hostRoutes } from '../src/cli/probe.js';
import type { Lab } from '../src/dataplane/lab.js';
import type { CounterSnapshot } from '../src/emulator/index.js';
import { haView, sleep, startE2eLab, type E2eLab } from './e2e-helpers.js';

const REGION = 'us-east-1';
const STACK = 'e2e-ha-2az';
const PROBE_INTERVAL_MS = 100;
const BOOT_DELAY_MS = 4_000;
const STATUS_CHECK_DELAY_MS = 5_000;
const HEALTH_CHECK_DELAY_MS = 15_000;
/** The agent's status poll while a peer is silent (STATUS_POLL_MS in packages/agent/src/agent.ts). */
const STATUS_POLL_MS = 10_000;
/** The issue's number: a partition between two healthy NATs for 60 s. */
const PARTITION_MS = 60_000;

describe.runIf(requireRoot('lab HA e2e (2 AZs)', ['ip', 'nft', 'iptables']))('HA in the lab with two AZs', { timeout: 120_000 }, () => {
  let e2e: E2eLab;
  let lab: Lab;
  let v: ReturnType<typeof haView>;
  let azs: [string, string];
  const eip = new Map<string, string>();

  const events = (id: string, event: string) => v.agentEvents(id, event);
  const counters = (): Promise<CounterSnapshot> => v.counters();
  const writes = (c: CounterSnapshot) => (c.calls['ec2:ReplaceRoute'] ?? 0) + (c.calls['ec2:CreateRoute'] ?? 0) + (c.calls['autoscaling:SetInstanceHealth'] ?? 0);
  const statusReads = (c: CounterSnapshot, id: string) => c.byCaller[id]?.['ec2:DescribeInstanceStatus'] ?? 0;

  beforeAll(async () => {
    e2e = await startE2eLab({
      stack: STACK,
      azs: 2,
      cidrPrefix: '10.1',
      region: REGION,
      emulator: { latency: 'aws', bootDelayMs: BOOT_DELAY_MS, statusCheckDelayMs: STATUS_CHECK_DELAY_MS, healthCheckDelayMs: HEALTH_CHECK_DELAY_MS },
      agentEnv: { HANAT_FAILBACK_DELAY: '5' },
      probeIntervalMs: PROBE_INTERVAL_MS,
    });
    lab = e2e.lab;
    v = haView(e2e, PROBE_INTERVAL_MS);
    azs = [...new Set(lab.status().hosts.map((h) => h.az))].sort() as [string, string];
    for (const az of azs) eip.set(az, v.natOf(az)!.publicIp!);
    // Both agents healthy (risen) before any fault.
    await v.settled(azs, eip, 30_000);
  }, 150_000);

  afterAll(async () => {
    await e2e?.stop();
  }, 60_000);

  it('a partition between the two NATs for 60 s: each suspects the other and reads its status checks, nothing moves, nobody is fenced, no probe fails', async () => {
    const [a, b] = azs.map((az) => v.natOf(az)!.instanceId) as [string, string];
    const before = await counters();
    const t0 = Date.now();
    await lab.fault({ kind: 'partition', target: a, other: b });
    await sleep(PARTITION_MS);
    await lab.fault({ kind: 'partition', target: a, other: b, off: true });
    await sleep(1_000);
    const after = await counters();
    console.log(
      `2 AZs, partition for ${PARTITION_MS / 1000} s: ${writes(after) - writes(before)} route writes or fencing calls; status-check reads ${statusReads(after, a) - statusReads(before, a)} by ${a}, ` +
        `${statusReads(after, b) - statusReads(before, b)} by ${b}; load average ${loadavg()[0]!.toFixed(1)}`,
    );
    expect(events(a, 'peer.suspect').length).toBeGreaterThan(0);
    expect(events(b, 'peer.suspect').length).toBeGreaterThan(0);
    expect([...events(a, 'peer.down'), ...events(b, 'peer.down')]).toEqual([]);
    expect(writes(after) - writes(before)).toBe(0);
    expect(hostRoutes(lab.status()).flatMap((h) => h.outages.filter((o) => o.start >= t0))).toEqual([]);
    // The witness costs at most one DescribeInstanceStatus per 10 s while the peer is silent.
    for (const id of [a, b]) {
      expect(statusReads(after, id) - statusReads(before, id), id).toBeGreaterThan(0);
      expect(statusReads(after, id) - statusReads(before, id), id).toBeLessThanOrEqual(PARTITION_MS / STATUS_POLL_MS + 1);
    }
  });

  it('a killed NAT (EC2 shows it terminated) is taken over by the other AZ within seconds', async () => {
    const [azA, azB] = azs;
    const killed = await lab.fault({ kind: 'kill', target: azA });
    const outages = await lab.waitForRecovery(killed.affectedHosts, killed.at, 10_000);
    console.log(`2 AZs, kill ${killed.instances[0]}: outage ${outages.map((o) => `${o.proto} ${o.outageMs} ms → ${o.answerAfter}`).join(', ')}`);
    for (const o of outages) {
      expect(o.outageMs).toBeLessThanOrEqual(3_000);
      expect(o.answerAfter).toBe(eip.get(azB));
    }
    // Auto Scaling notices the terminated NAT after its health-check delay and replaces it.
    await v.settled(azs, eip, HEALTH_CHECK_DELAY_MS + BOOT_DELAY_MS + 30_000);
  });

  it('a NAT that crashes in place (EC2 still says running) is taken over once EC2 shows its status checks impaired, then fenced and replaced', async () => {
    const [azA, azB] = azs;
    const crashed = v.natOf(azA)!.instanceId;
    const survivor = v.natOf(azB)!.instanceId;
    const hit = await lab.fault({ kind: 'crash', target: crashed });
    const outages = await lab.waitForRecovery(hit.affectedHosts, hit.at, STATUS_CHECK_DELAY_MS + STATUS_POLL_MS + 10_000);
    const down = events(survivor, 'peer.down').find((e) => e.peer === crashed);
    console.log(
      `2 AZs, crash in place of ${crashed}: outage ${outages.map((o) => `${o.proto} ${o.outageMs} ms → ${o.answerAfter}`).join(', ')} ` +
        `(status checks impaired ${STATUS_CHECK_DELAY_MS} ms after the crash, read every ${STATUS_POLL_MS} ms); load average ${loadavg()[0]!.toFixed(1)}`,
    );
    // Taken over on EC2's word, not on silence alone and not because Auto Scaling replaced it.
    expect(down).toMatchObject({ by: 'ec2', statusChecks: 'impaired' });
    for (const o of outages) {
      expect(o.answerAfter).toBe(eip.get(azB));
      expect(o.outageMs).toBeGreaterThanOrEqual(STATUS_CHECK_DELAY_MS - 500);
      expect(o.outageMs).toBeLessThanOrEqual(STATUS_CHECK_DELAY_MS + STATUS_POLL_MS + 3_000);
    }
    await sleep(3_500);
    expect(events(survivor, 'peer.fenced').some((e) => e.instanceId === crashed)).toBe(true);
    await v.settled(azs, eip, BOOT_DELAY_MS + 30_000);
    expect(v.natOf(azA)!.instanceId).not.toBe(crashed);
  });
});
