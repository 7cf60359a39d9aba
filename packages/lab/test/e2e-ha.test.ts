/**
 * High availability end to end in the lab (docs/ha.md): the real agent bundle in every
 * NAT namespace with its HA defaults (heartbeats every 200 ms, peer timeout 800 ms,
 * self-checks every 1 s, rise 3, fall 3), the AWS-like API latency profile, 3 AZs, and
 * private hosts whose probes (a new TCP connection and a new UDP flow every 100 ms)
 * record what the users of each AZ saw. Settings changed for CI: a 4 s boot delay for
 * Auto Scaling's replacements, a 5 s failback hold-down (default 30 s), and a 1.5 s peer
 * timeout (default 0.8 s; see below).
 *
 * Each scenario ends with every AZ served by its own, healthy NAT again, so the next one
 * starts from a clean stack.
 */
import { AutoScalingClient, TerminateInstanceInAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { execCommand } from '../src/dataplane/exec.js';
import type { InstanceStatus, Lab, LabStatus } from '../src/dataplane/lab.js';
import type { Outage } from '../src/dataplane/probes.js';
import { haView, routeWrites, sleep, startE2eLab, until, type E2eLab } from './e2e-helpers.js';

const REGION = 'us-east-1';
const STACK = 'e2e-ha';
const BOOT_DELAY_MS = 4_000;
const PROBE_INTERVAL_MS = 100;
/** The takeover target for a dead NAT with a 1.5 s peer timeout, with CI's margin (the issue's target, with the 0.8 s default: median 1.5 s, p95 2.5 s). */
const DEAD_TARGET_MS = 3_000;
/** A gray failure: fall (3) × 1 s self-checks, then the hand-over (the issue's target: p95 5 s), with CI's margin. */
const GRAY_TARGET_MS = 6_500;

describe.runIf(requireRoot('lab HA e2e', ['ip', 'nft', 'iptables']))('HA in the lab: takeover, step-aside, fencing, failback, hand-over', { timeout: 120_000 }, () => {
  let e2e: E2eLab;
  let lab: Lab;
  let azs: [string, string, string];
  const eip = new Map<string, string>();

  let view: ReturnType<typeof haView>;
  const status = (): LabStatus => lab.status();
  const natOf = (az: string, s = status()): InstanceStatus | undefined => view.natOf(az, s);
  const privateTables = (az: string) => view.privateTables(az);
  const answeredBy = (az: string, address: string) => view.answeredBy(az, address);
  const picture = () => view.picture(azs);
  const outagesSince = (az: string, since: number) => view.outagesSince(az, since);
  const worst = (outages: Outage[]) => view.worst(outages);
  const agentEvents = (instanceId: string, event: string) => view.agentEvents(instanceId, event);
  const counters = () => view.counters();
  const settled = (timeoutMs: number) => view.settled(azs, eip, timeoutMs);

  beforeAll(async () => {
    e2e = await startE2eLab({
      stack: STACK,
      azs: 3,
      cidrPrefix: '10.0',
      region: REGION,
      emulator: { latency: 'aws', bootDelayMs: BOOT_DELAY_MS },
      // A peer timeout of 1.5 s instead of the default 0.8 s: CI shares 2 vCPUs with many lab
      // tests at once (load averages of 15–25 seen), and starved agents then miss each other's
      // heartbeats for more than 0.8 s. docs/ha.md gives the figures with the defaults.
      agentEnv: { HANAT_FAILBACK_DELAY: '5', HANAT_PEER_TIMEOUT: '1.5' },
      probeIntervalMs: PROBE_INTERVAL_MS,
    });
    ({ lab } = e2e);
    view = haView(e2e, PROBE_INTERVAL_MS);
    azs = [...new Set(status().hosts.map((h) => h.az))].sort() as [string, string, string];
    for (const az of azs) eip.set(az, natOf(az)!.publicIp!);
    await settled(30_000);
  }, 180_000);

  afterAll(async () => {
    await e2e?.stop();
  }, 60_000);

  it('steady state: heartbeats cost no API call; each agent makes at most 6 EC2 calls a minute, and nothing moves', async () => {
    await fetch(`${lab.apiEndpoint}/_lab/counters`, { method: 'DELETE' });
    const t0 = Date.now();
    await sleep(60_000);
    const c = await counters();
    const nats = azs.map((az) => natOf(az)!.instanceId);
    const perAgent = Object.fromEntries(nats.map((id) => [id, Object.entries(c.byCaller[id] ?? {}).filter(([k]) => !k.startsWith('imds:')).reduce((n, [, v]) => n + v, 0)]));
    console.log(`steady state over ${Date.now() - t0} ms: EC2/Auto Scaling calls per agent ${JSON.stringify(perAgent)}; by call ${JSON.stringify(c.byCaller[nats[0]!])}`);
    for (const id of nats) expect(perAgent[id], id).toBeLessThanOrEqual(6);
    expect(routeWrites(c)).toBe(0);
    for (const az of azs) expect(outagesSince(az, t0)).toEqual([]);
  });

  it('partition between two healthy NATs for 60 s (3 AZs): no route change, nobody fenced, no host loses a probe', async () => {
    const [a, b] = [natOf(azs[0])!.instanceId, natOf(azs[1])!.instanceId];
    const before = await counters();
    const t0 = Date.now();
    await lab.fault({ kind: 'partition', target: a, other: b });
    await sleep(60_000); // the issue's number
    await lab.fault({ kind: 'partition', target: a, other: b, off: true });
    await sleep(2_000);
    const after = await counters();
    // Both sides saw the other go silent, and nobody corroborated it.
    expect(agentEvents(a, 'peer.suspect').map((e) => e.peer)).toContain(b);
    expect(agentEvents(b, 'peer.suspect').map((e) => e.peer)).toContain(a);
    expect([...agentEvents(a, 'peer.down'), ...agentEvents(b, 'peer.down')]).toEqual([]);
    expect(routeWrites(after) - routeWrites(before)).toBe(0);
    expect(after.calls['autoscaling:SetInstanceHealth'] ?? 0).toBe(before.calls['autoscaling:SetInstanceHealth'] ?? 0);
    for (const az of azs) expect(outagesSince(az, t0), az).toEqual([]);
    for (const az of azs) expect(privateTables(az).map((t) => t.via)).toEqual([natOf(az)!.instanceId]);
  });

  it('NAT rule deleted: the agent repairs it within one kernel interval, with no takeover', async () => {
    const nat = natOf(azs[2])!;
    const before = await counters();
    const t0 = Date.now();
    await execCommand(['ip', 'netns', 'exec', nat.namespace!, 'nft', 'delete', 'table', 'ip', 'hanat']);
    await until(() => agentEvents(nat.instanceId, 'kernel.drift_repaired').length > 0, 5_000 + 2_000, () => 'kernel.drift_repaired');
    await until(() => answeredBy(azs[2], eip.get(azs[2])!), 3_000, picture);
    const after = await counters();
    console.log(`NAT rule deleted: outage of ${azs[2]}'s hosts ${outagesSince(azs[2], t0).map((o) => `${o.proto} ${o.durationMs} ms`).join(', ') || 'none'}`);
    expect(routeWrites(after) - routeWrites(before)).toBe(0);
    expect(agentEvents(nat.instanceId, 'self.step_aside')).toEqual([]);
    expect(worst(outagesSince(azs[2], t0))).toBeLessThanOrEqual(5_000 + 1_000);
  });

  it("NAT killed: its AZ's hosts are back through the successor within the target, then through the replacement", async () => {
    const [a, b] = [azs[0], azs[1]];
    const dead = natOf(a)!.instanceId;
    const killed = await lab.fault({ kind: 'kill', target: dead });
    const outages = await lab.waitForRecovery(killed.affectedHosts, killed.at, 15_000);
    console.log(`kill ${dead} (${a}): outage ${outages.map((o) => `${o.proto} ${o.outageMs} ms → ${o.answerAfter}`).join(', ')}`);
    for (const o of outages) {
      expect(o.outageMs).toBeLessThanOrEqual(DEAD_TARGET_MS);
      expect(o.answerAfter).toBe(eip.get(b)); // the successor: the next AZ
    }
    expect(agentEvents(natOf(b)!.instanceId, 'takeover').length).toBeGreaterThan(0);
    expect(agentEvents(natOf(azs[2])!.instanceId, 'takeover')).toEqual([]); // the other survivor does not act
    await settled(BOOT_DELAY_MS + 25_000);
    const replacement = natOf(a)!.instanceId;
    expect(replacement).not.toBe(dead);
    expect(agentEvents(replacement, 'failback').length).toBeGreaterThan(0);
  });

  it('NAT crashes in place (EC2 still says running, its route stays active): hosts back through the successor within the target; the successor fences it; the replacement serves again', async () => {
    const [c, a] = [azs[2], azs[0]];
    const crashed = natOf(c)!.instanceId;
    const before = await counters();
    const hit = await lab.fault({ kind: 'crash', target: crashed });
    const outages = await lab.waitForRecovery(hit.affectedHosts, hit.at, 15_000);
    console.log(`crash ${crashed} (${c}): outage ${outages.map((o) => `${o.proto} ${o.outageMs} ms → ${o.answerAfter}`).join(', ')}`);
    for (const o of outages) {
      expect(o.outageMs).toBeLessThanOrEqual(DEAD_TARGET_MS);
      expect(o.answerAfter).toBe(eip.get(a)); // the successor wraps around to the first AZ
    }
    const successor = natOf(a)!.instanceId;
    await until(() => agentEvents(successor, 'peer.fenced').some((e) => e.instanceId === crashed), 10_000, () => 'peer.fenced');
    expect(((await counters()).calls['autoscaling:SetInstanceHealth'] ?? 0) - (before.calls['autoscaling:SetInstanceHealth'] ?? 0)).toBeGreaterThanOrEqual(1);
    await settled(BOOT_DELAY_MS + 30_000);
    expect(natOf(c)!.instanceId).not.toBe(crashed);
    // Then through the replacement, once healthy: the takeover and the failback, at most 2 route changes.
    const changes = routeWrites(await counters()) - routeWrites(before);
    console.log(`crash ${crashed} (${c}): ${changes} route change(s) from the crash to the replacement serving`);
    expect(answeredBy(c, eip.get(c)!)).toBe(true);
    expect(changes).toBeGreaterThanOrEqual(1);
    expect(changes).toBeLessThanOrEqual(2);
  });

  it('gray failure: the NAT steps aside, the successor takes over, the NAT is marked Unhealthy and replaced', async () => {
    const [b, c] = [azs[1], azs[2]];
    const gray = natOf(b)!.instanceId;
    const before = await counters();
    const hit = await lab.fault({ kind: 'gray', target: gray });
    const outages = await lab.waitForRecovery(hit.affectedHosts, hit.at, 20_000);
    console.log(`gray ${gray} (${b}): outage ${outages.map((o) => `${o.proto} ${o.outageMs} ms → ${o.answerAfter}`).join(', ')}`);
    for (const o of outages) {
      expect(o.outageMs).toBeLessThanOrEqual(GRAY_TARGET_MS);
      expect(o.answerAfter).toBe(eip.get(c));
    }
    expect(agentEvents(gray, 'self.step_aside')).toHaveLength(1);
    const verdict = agentEvents(gray, 'self.unhealthy')[0];
    expect(verdict, JSON.stringify(verdict)).toMatchObject({ failed: ['forward'] });
    await until(() => agentEvents(gray, 'self.marked_unhealthy').length > 0, 5_000, () => 'self.marked_unhealthy');
    expect(((await counters()).calls['autoscaling:SetInstanceHealth'] ?? 0) - (before.calls['autoscaling:SetInstanceHealth'] ?? 0)).toBeGreaterThanOrEqual(1);
    await settled(BOOT_DELAY_MS + 30_000);
    expect(natOf(b)!.instanceId).not.toBe(gray);
  });

  it('upstream cut: the NAT steps aside, the successor takes over, the NAT is marked Unhealthy and replaced', async () => {
    const [c, a] = [azs[2], azs[0]];
    const cut = natOf(c)!.instanceId;
    const hit = await lab.fault({ kind: 'cut-upstream', target: cut });
    const outages = await lab.waitForRecovery(hit.affectedHosts, hit.at, 20_000);
    console.log(`upstream cut ${cut} (${c}): outage ${outages.map((o) => `${o.proto} ${o.outageMs} ms → ${o.answerAfter}`).join(', ')}`);
    for (const o of outages) {
      expect(o.outageMs).toBeLessThanOrEqual(GRAY_TARGET_MS);
      expect(o.answerAfter).toBe(eip.get(a)); // wraps around: the first AZ
    }
    expect(agentEvents(cut, 'self.unhealthy')[0]).toMatchObject({ failed: expect.arrayContaining(['upstream']) as unknown });
    await until(() => agentEvents(cut, 'self.marked_unhealthy').length > 0, 5_000, () => 'self.marked_unhealthy');
    await settled(BOOT_DELAY_MS + 30_000);
    expect(natOf(c)!.instanceId).not.toBe(cut);
  });

  it('SIGTERM on a serving NAT (Auto Scaling terminates it): routes handed over first, no new-connection probe fails', async () => {
    const [a, b] = [azs[0], azs[1]];
    const leaving = natOf(a)!.instanceId;
    const t0 = Date.now();
    const asg = new AutoScalingClient({ region: REGION, endpoint: lab.apiEndpoint, credentials: { accessKeyId: 'AKIDLAB', secretAccessKey: 'lab' } });
    await asg.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: leaving, ShouldDecrementDesiredCapacity: false }));
    asg.destroy();
    await until(() => answeredBy(a, eip.get(b)!), 10_000, picture);
    await until(() => agentEvents(leaving, 'agent.stopped').length > 0, 10_000, () => 'agent.stopped');
    await sleep(1_500);
    console.log(`SIGTERM ${leaving} (${a}): hand-over ${JSON.stringify(agentEvents(leaving, 'agent.handed_over')[0]?.durationMs)} ms; outages ${outagesSince(a, t0).map((o) => `${o.proto} ${o.durationMs} ms`).join(', ') || 'none'}`);
    expect(agentEvents(leaving, 'agent.stopped')[0]).toMatchObject({ handover: true });
    expect(outagesSince(a, t0)).toEqual([]);
    await settled(BOOT_DELAY_MS + 30_000);
  });

  it("agent hung (SIGSTOP) while the kernel forwards: no host loses the internet beyond the target; the NAT is fenced and replaced", async () => {
    const [b, c] = [azs[1], azs[2]];
    const hung = natOf(b)!.instanceId;
    const t0 = Date.now();
    await lab.fault({ kind: 'stop-agent', target: hung });
    await until(() => answeredBy(b, eip.get(c)!), 10_000, picture);
    await sleep(1_500);
    console.log(`SIGSTOP ${hung} (${b}): outages ${outagesSince(b, t0).map((o) => `${o.proto} ${o.durationMs} ms`).join(', ') || 'none'}`);
    expect(worst(outagesSince(b, t0))).toBeLessThanOrEqual(DEAD_TARGET_MS);
    await until(() => agentEvents(natOf(c)!.instanceId, 'peer.fenced').some((e) => e.instanceId === hung), 5_000, () => 'peer.fenced');
    await settled(BOOT_DELAY_MS + 30_000);
    expect(natOf(b)!.instanceId).not.toBe(hung);
  });

  it('manual failover sticks against running agents with HA, and --restore returns the routes', async () => {
    const [a, b] = [azs[0], azs[1]];
    const fo = await e2e.hanat('failover', '--name', STACK, '--az', a, '--to', b, '--yes');
    expect(fo.code, fo.stderr).toBe(0);
    await until(() => answeredBy(a, eip.get(b)!), 5_000, picture);
    const held = Date.now();
    while (Date.now() - held < 8_000) {
      for (const t of privateTables(a)) expect(t.via).toBe(natOf(b)!.instanceId);
      await sleep(250);
    }
    const re = await e2e.hanat('failover', '--name', STACK, '--az', a, '--restore', '--yes');
    expect(re.code, re.stderr).toBe(0);
    await until(() => answeredBy(a, eip.get(a)!), 35_000, picture);
  });
});
