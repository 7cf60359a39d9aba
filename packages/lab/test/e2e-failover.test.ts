/**
 * `hanat failover` and `hanat status` end to end in the lab, with real traffic: the real
 * CLI bundle (pointed at the lab with the environment the lab prints), the real agent
 * bundle in every NAT namespace, and private hosts whose probes record which public
 * address answered.
 *
 * The agents run with HANAT_ROUTE_INTERVAL=5 (the agent's minimum; its default is 30 s),
 * so that "the pinned AZ's own agent leaves the route alone for longer than one route
 * check" and "restore is taken back at the next route check" both fit in seconds. The boot
 * delay is 5 s, long enough to run `hanat status` between killing a NAT and Auto Scaling's
 * replacement claiming its routes.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { hostRoutes, type HostRoute } from '../src/cli/probe.js';
import type { Lab, LabStatus } from '../src/dataplane/lab.js';
import type { Outage, ProbeResult } from '../src/dataplane/probes.js';
import { sleep, startE2eLab, type CliRun, type E2eLab } from './e2e-helpers.js';

const REGION = 'us-east-1';
const STACK = 'e2e-failover';
const BOOT_DELAY_MS = 5_000;
const ROUTE_INTERVAL_S = 5;
const PROBE_INTERVAL_MS = 100;

/** What `hanat status --json` prints, as far as this test reads it. */
interface StatusJson {
  healthy: boolean;
  degraded: string[];
  azs: {
    az: string;
    verdict: string;
    routeTables: { routeTableId: string; verdict: string; detail: string; override: string | null; servedBy: { instanceId: string; az: string } | null }[];
  }[];
}

describe.runIf(requireRoot('lab failover e2e', ['ip', 'nft', 'iptables']))('hanat failover and status in the lab, with real traffic', { timeout: 60_000 }, () => {
  let e2e: E2eLab;
  let lab: Lab;
  /** The AZs (sorted): A is failed over to B. */
  let azA: string;
  let azB: string;
  /** Each AZ's Elastic IP, as the internet host sees it. */
  let eipA: string;
  let eipB: string;
  let natA: string;
  let natB: string;

  /** Runs the CLI bundle; resolves with its exit code instead of throwing on exit 1. */
  const hanat = (...args: string[]): Promise<CliRun> => e2e.hanat(...args);
  const status = async (): Promise<{ run: CliRun; json: StatusJson }> => {
    const run = await hanat('status', '--name', STACK, '--json');
    return { run, json: JSON.parse(run.stdout) as StatusJson };
  };
  const verdicts = (s: StatusJson) => Object.fromEntries(s.azs.map((a) => [a.az, a.verdict]));
  const hostsOf = (az: string, s: LabStatus = lab.status()): HostRoute[] => hostRoutes(s, az);
  const privateTables = (az: string, s: LabStatus = lab.status()) => s.routeTables.filter((t) => t.network === 'private' && t.az === az);
  /** Both protocols of every host of `az` answered by `eip`, on probes sent at or after `since`. */
  const answeredBy = (az: string, eip: string, since: number): boolean => {
    const hosts = hostsOf(az);
    return hosts.length > 0 && hosts.every((h) => [h.tcp, h.udp].every((p) => p?.ok === true && p.answer === eip) && h.answers.every((a) => a.answer === eip || a.t < since));
  };
  /** Polls `condition` every 50 ms until it holds; throws `what` after `timeoutMs`. Resolves with the elapsed ms. */
  const until = async (condition: () => boolean, timeoutMs: number, what: () => string): Promise<number> => {
    const t0 = Date.now();
    while (!condition()) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what()}`);
      await sleep(50);
    }
    return Date.now() - t0;
  };
  const picture = (az: string) => JSON.stringify(hostsOf(az).map((h) => ({ ip: h.ip, tcp: h.tcp?.answer, tcpOk: h.tcp?.ok, udp: h.udp?.answer, udpOk: h.udp?.ok })));
  /** The outage windows of `az`'s hosts that started at or after `since` (one probe interval of slack). */
  const outagesSince = (az: string, since: number): Outage[] => hostsOf(az).flatMap((h) => h.outages.filter((o) => o.start >= since - PROBE_INTERVAL_MS));
  /** The worst window, in ms: 0 when no probe failed. */
  const worst = (outages: Outage[]) => Math.max(0, ...outages.map((o) => o.durationMs ?? Infinity));
  /** Every probe result of `az`'s hosts from now until `stop()`. */
  const record = (az: string) => {
    const ids = new Set(hostsOf(az).map((h) => h.id));
    const results: (ProbeResult & { hostId: string })[] = [];
    const onResult = (hostId: string, r: ProbeResult) => {
      if (ids.has(hostId)) results.push({ ...r, hostId });
    };
    lab.dataplane.probes.on('result', onResult);
    return {
      results,
      stop: () => lab.dataplane.probes.off('result', onResult),
    };
  };
  /**
   * The switch from `from` to `to` seen by the probes, per host and protocol: the send time
   * of the last probe answered by `from`, of the first answered by `to`, and the probes in
   * between that failed. With no failure the gap is one probe interval.
   */
  const switchOver = (results: (ProbeResult & { hostId: string })[], from: string, to: string) => {
    const streams = new Map<string, ProbeResult[]>();
    for (const r of results) streams.set(`${r.hostId} ${r.proto}`, [...(streams.get(`${r.hostId} ${r.proto}`) ?? []), r]);
    return [...streams.entries()].map(([stream, rs]) => {
      const sorted = rs.sort((a, b) => a.t - b.t);
      const first = sorted.find((r) => r.ok && r.answer === to);
      const last = sorted.filter((r) => r.ok && r.answer === from && (first === undefined || r.t < first.t)).at(-1);
      const failed = sorted.filter((r) => !r.ok && (last === undefined || r.t > last.t) && (first === undefined || r.t < first.t)).length;
      const strays = sorted.filter((r) => r.ok && first !== undefined && r.t > first.t && r.answer !== to).length;
      return { stream, gapMs: first && last ? first.t - last.t : Infinity, failed, strays };
    });
  };

  beforeAll(async () => {
    e2e = await startE2eLab({
      stack: STACK,
      azs: 2,
      cidrPrefix: '10.0',
      region: REGION,
      emulator: { latency: 'zero', bootDelayMs: BOOT_DELAY_MS },
      // HA off (HANAT_HA=0): this file tests hanat failover and status against agents that only
      // claim their own AZ (a killed NAT stays a blackhole until its replacement); e2e-ha.test.ts
      // tests manual failover against agents with HA on.
      agentEnv: { HANAT_ROUTE_INTERVAL: String(ROUTE_INTERVAL_S), HANAT_HA: '0' },
      probeIntervalMs: PROBE_INTERVAL_MS,
      // What `hanat-lab up` prints is applied as `eval` would: it must unset this.
      baseEnv: { AWS_PROFILE: 'unset-by-the-exports' },
      deployTimeoutMs: 60_000,
    });
    lab = e2e.lab;
    const s = lab.status();
    [azA, azB] = [...new Set(s.hosts.map((h) => h.az))].sort() as [string, string];
    const nat = (az: string) => s.instances.find((i) => i.az === az && i.state === 'running')!;
    [natA, natB] = [nat(azA).instanceId, nat(azB).instanceId];
    [eipA, eipB] = [nat(azA).publicIp!, nat(azB).publicIp!];
    expect(eipA).not.toBe(eipB);
  }, 120_000);

  afterAll(async () => {
    await e2e?.stop();
  }, 60_000);

  it("after deploy, hanat status reports every AZ ok, served by its own NAT, and exits 0", async () => {
    const { run, json } = await status();
    expect(run.code, run.stderr).toBe(0);
    expect(json.healthy).toBe(true);
    expect(verdicts(json)).toEqual({ [azA]: 'ok', [azB]: 'ok' });
    expect(json.azs.find((a) => a.az === azA)!.routeTables.map((t) => t.servedBy)).toEqual([{ instanceId: natA, az: azA }]);
  });

  it("failover --to moves A's hosts to B's Elastic IP with a short interruption, and B's hosts are untouched", async () => {
    const probes = record(azA);
    const t0 = Date.now();
    const run = await hanat('failover', '--name', STACK, '--az', azA, '--to', azB, '--yes', '--json');
    const t1 = Date.now();
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ action: 'failover', az: azA, to: azB, instanceId: natB, changed: true });
    // The route moved while the command ran; the data plane follows within milliseconds.
    const waited = await until(() => answeredBy(azA, eipB, t0), 5_000, () => `${azA}'s hosts answered by ${azB}'s EIP ${eipB}: ${picture(azA)}`);
    await sleep(1_500); // past the probe timeout, so that every probe sent around the move has its result
    probes.stop();
    const outages = outagesSince(azA, t0);
    const moves = switchOver(probes.results, eipA, eipB);
    console.log(
      `failover ${azA} → ${azB}: command ${t1 - t0} ms; ${azA}'s hosts answered by ${eipB} ${t1 - t0 + waited} ms after it started. ` +
        `Outage of ${azA}'s hosts during the move (probes every ${PROBE_INTERVAL_MS} ms): ${outages.length ? outages.map((o) => `${o.proto} ${o.durationMs} ms`).join(', ') : 'none, no probe failed'}; ` +
        `last ${eipA} answer to first ${eipB} answer per stream: ${moves.map((m) => `${m.stream} ${m.gapMs} ms (${m.failed} failed)`).join(', ')}`,
    );
    expect(moves).toHaveLength(4); // two hosts, tcp and udp
    for (const m of moves) {
      // Small: B's NAT already forwards, so at most the probes in flight while the route moved fail.
      expect(m.gapMs, m.stream).toBeLessThanOrEqual(1_000);
      expect(m.strays, `${m.stream}: answered by another address after ${eipB}`).toBe(0);
    }
    expect(worst(outages)).toBeLessThanOrEqual(1_000);
    // Every table of A is pinned to B and routed to B's NAT.
    for (const t of privateTables(azA)) expect({ override: t.override, via: t.via, owner: t.owner }).toEqual({ override: azB, via: natB, owner: natB });
    // B's hosts: no failed probe, still answered by B's own EIP.
    expect(outagesSince(azB, t0)).toEqual([]);
    expect(hostsOf(azB).every((h) => h.ownAz && h.answers.every((a) => a.t < t0))).toBe(true);
  });

  it("while pinned, A's own agent sees the pin at its route checks and leaves the route on B; status reports A pinned to B and exits 0", async () => {
    const pinnedAt = Date.now();
    const agentLog = lab.status().instances.find((i) => i.instanceId === natA)!.agentLog!;
    expect(existsSync(agentLog)).toBe(true);
    const skipped = () =>
      readFileSync(agentLog, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"route.skipped_override"'))
        .map((l) => JSON.parse(l) as { routeTableId: string; override: string });
    // Hold for longer than one route interval, checking the route and the traffic all along.
    const holdMs = ROUTE_INTERVAL_S * 1000 + 2_000;
    while (Date.now() - pinnedAt < holdMs) {
      const s = lab.status();
      for (const t of privateTables(azA, s)) expect({ override: t.override, via: t.via, owner: t.owner }).toEqual({ override: azB, via: natB, owner: natB });
      for (const h of hostsOf(azA, s)) expect(h.nat?.az, picture(azA)).toBe(azB);
      for (const h of hostsOf(azB, s)) expect(h.ownAz).toBe(true);
      await sleep(200);
    }
    // A's agent did run a route check meanwhile: it logged the pin it leaves alone.
    const tablesA = privateTables(azA).map((t) => t.routeTableId);
    expect(skipped().filter((e) => tablesA.includes(e.routeTableId))).toEqual(tablesA.map((routeTableId) => expect.objectContaining({ routeTableId, override: azB })));
    expect(hostsOf(azA).flatMap((h) => h.answers.filter((a) => a.t >= pinnedAt))).toEqual([]); // never answered by A's EIP again

    const { run, json } = await status();
    expect(run.code, run.stderr).toBe(0);
    expect(json.healthy).toBe(true);
    expect(json.degraded).toEqual([]);
    expect(verdicts(json)).toEqual({ [azA]: 'pinned', [azB]: 'ok' });
    for (const t of json.azs.find((a) => a.az === azA)!.routeTables) {
      expect(t).toMatchObject({ verdict: 'pinned', override: azB, servedBy: { instanceId: natB, az: azB } });
      expect(t.detail).toContain(`pinned to ${azB} by hanat failover (hanat:override): served by ${azB}'s NAT ${natB}`);
    }
  });

  it("restore: A's agent takes the route back at its next route check, A's hosts are answered by A's Elastic IP again, status reports ok", async () => {
    const probes = record(azA);
    const t0 = Date.now();
    const run = await hanat('failover', '--name', STACK, '--az', azA, '--restore', '--yes', '--json');
    const t1 = Date.now();
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ action: 'restore', az: azA, changed: true });
    // One route interval, plus a margin for the agent's calls and the data plane.
    const waited = await until(() => answeredBy(azA, eipA, t0), ROUTE_INTERVAL_S * 1000 + 3_000, () => `${azA}'s hosts answered by their own EIP ${eipA}: ${picture(azA)}`);
    await sleep(1_500);
    probes.stop();
    const outages = outagesSince(azA, t0);
    const moves = switchOver(probes.results, eipB, eipA);
    console.log(
      `restore ${azA}: command ${t1 - t0} ms; ${azA}'s hosts answered by ${eipA} again ${t1 - t0 + waited} ms after it started (agent route interval ${ROUTE_INTERVAL_S} s). ` +
        `Outage of ${azA}'s hosts: ${outages.length ? outages.map((o) => `${o.proto} ${o.durationMs} ms`).join(', ') : 'none, no probe failed'}; ` +
        `last ${eipB} answer to first ${eipA} answer per stream: ${moves.map((m) => `${m.stream} ${m.gapMs} ms (${m.failed} failed)`).join(', ')}`,
    );
    expect(moves).toHaveLength(4);
    for (const m of moves) expect(m.gapMs, m.stream).toBeLessThanOrEqual(1_000);
    expect(worst(outages)).toBeLessThanOrEqual(1_000);
    for (const t of privateTables(azA)) expect({ override: t.override, via: t.via, owner: t.owner }).toEqual({ override: undefined, via: natA, owner: natA });
    expect(outagesSince(azB, t0)).toEqual([]);

    const { run: st, json } = await status();
    expect(st.code, st.stderr).toBe(0);
    expect(verdicts(json)).toEqual({ [azA]: 'ok', [azB]: 'ok' });
    expect(json.azs.find((a) => a.az === azA)!.routeTables.map((t) => ({ override: t.override, servedBy: t.servedBy }))).toEqual([{ override: null, servedBy: { instanceId: natA, az: azA } }]);
  });

  it("status exits 1 naming A while A's NAT is dead and not yet replaced, and 0 once the replacement serves A", async () => {
    const killed = await lab.fault({ kind: 'kill', target: azA });
    expect(killed.instances).toEqual([natA]);
    const dead = await status();
    const tookMs = Date.now() - killed.at;
    // Still before the replacement: it cannot run before the boot delay has passed.
    expect(tookMs).toBeLessThan(BOOT_DELAY_MS);
    expect(dead.run.code, dead.run.stderr).toBe(1);
    expect(dead.json.healthy).toBe(false);
    expect(dead.json.degraded).toEqual([azA]);
    expect(['blackhole', 'stale']).toContain(verdicts(dead.json)[azA]);
    expect(verdicts(dead.json)[azB]).toBe('ok');
    expect(dead.run.stderr).toContain(`cannot reach the internet: ${azA}`);
    expect(dead.run.stderr).toContain(`hanat failover --name ${STACK} --region ${REGION} --az ${azA}`);
    // The probes agree: A's hosts are cut off, B's are not.
    await until(() => hostsOf(azA).every((h) => h.tcp?.ok === false && h.udp?.ok === false), 3_000, () => `${azA}'s hosts cut off: ${picture(azA)}`);
    expect(hostsOf(azB).every((h) => h.ownAz)).toBe(true);

    const outages = await lab.waitForRecovery(killed.affectedHosts, killed.at, 30_000);
    console.log(`kill ${natA}: hanat status exited 1 (${verdicts(dead.json)[azA]}) ${tookMs} ms after the kill; outage until the replacement (boot delay ${BOOT_DELAY_MS} ms): ${outages.map((o) => `${o.proto} ${o.outageMs} ms`).join(', ')}`);
    const replacement = lab.status().instances.find((i) => i.az === azA && i.state === 'running')!;
    expect(replacement.instanceId).not.toBe(natA);
    const { run, json } = await status();
    expect(run.code, run.stderr).toBe(0);
    expect(verdicts(json)).toEqual({ [azA]: 'ok', [azB]: 'ok' });
    expect(json.azs.find((a) => a.az === azA)!.routeTables.map((t) => t.servedBy)).toEqual([{ instanceId: replacement.instanceId, az: azA }]);
    expect(outagesSince(azB, killed.at)).toEqual([]);
  });
});
