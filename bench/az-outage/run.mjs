#!/usr/bin/env node
// bench/az-outage: an AZ goes down for a whole account. Many hanat stacks of 3 AZs each run in
// one account and region (one lab, one emulator, one API budget: EC2 throttles per account,
// region and action), and every NAT in one AZ crashes at the same moment (`fault crash`: dies
// in place, EC2 goes on saying running). In every stack the two surviving NATs must see it,
// agree, take the AZ over, fence the dead NAT, and later hand the AZ back to Auto Scaling's
// replacement, all through the same rate-limited API at once.
//
// Reported per stack: the outage its private hosts in that AZ saw (the longest of their TCP
// and UDP windows until traffic flowed again, through the successor), and when its hosts were
// served by their own AZ's replacement NAT again (the bench waits for that: it is the proof
// that fencing, replacement and failback also get through the throttled API). Reported for
// the account: the calls and the throttled calls per action (the emulator's /_lab/counters)
// during the takeover (until every stack's hosts were served again) and over the whole
// episode (until every stack was back on its own AZ), and what the machine spent: the agents'
// RSS, the CPU the whole lab took in steady state, the load average.
//
// The lab: AWS-like profile (API latency and rate limits, 30 s boot, Auto Scaling health
// checks every 3-6 s), default HA settings, health-check grace 0, stacks deployed with
// --no-eip (the lab enforces AWS's default quota of 5 Elastic IPs per region) on
// --cidr-prefix 10.1 ... 10.N. Each stack is 3 NAT namespaces with a node agent each and 6
// private hosts; a prober takes ~2 % of a core at the default 100 ms interval, so only the hosts
// of the AZ that fails probe (`hanat-lab up --probe-azs`): 2 per stack instead of 6, which is
// what lets 10 stacks run on a 2-core machine. --probe-all probes every AZ's hosts (and checks
// that the surviving AZs lose nothing); --probe-interval 200 halves the probers' share at the
// cost of resolution.
//
// Usage (root, after pnpm build): pnpm bench:az-outage [--stacks 10] [--az us-east-1a]
//   [--probe-all] [--probe-interval 100] [--boot-delay 30000] [--latency aws] [--timeout 900]
//   [--name az-outage]
// About 5 min plus 20 s per stack for the deploys. Writes bench/results/<name>.json.
import { readFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { LabSession, Stack, agentUnderSystemd, load, log, median, percentile, preflight, sleep, successorOf, writeResult } from '../replacement-outage/lab-session.mjs';

const { values } = parseArgs({
  options: {
    stacks: { type: 'string', default: '10' },
    az: { type: 'string', default: 'us-east-1a' },
    'probe-all': { type: 'boolean', default: false },
    'probe-interval': { type: 'string', default: '100' },
    'boot-delay': { type: 'string', default: '30000' },
    latency: { type: 'string', default: 'aws' },
    timeout: { type: 'string', default: '900' },
    'deploy-batch': { type: 'string', default: '5' },
    name: { type: 'string', default: 'az-outage' },
  },
});
const N = Number(values.stacks);
const PROBE_MS = Number(values['probe-interval']);
const BOOT_MS = Number(values['boot-delay']);
const TIMEOUT_MS = Number(values.timeout) * 1000;
const BATCH = Number(values['deploy-batch']);
const AZ = values.az;
/** Hosts per stack that probe: each AZ of a stack has 2 private hosts. */
const PROBED_PER_STACK = values['probe-all'] ? 6 : 2;

preflight();
const startedAt = new Date();
const loadStart = load();
log(`az-outage: ${N} stacks x 3 AZs in one lab (${N * 3} NATs, ${N * 6} private hosts, ${N * PROBED_PER_STACK} of them probing), every NAT of one AZ crashes at once. Expected duration about ${Math.round((300 + N * 20) / 60)} min. Load average ${loadStart.join(' ')} on ${cpus().length} CPUs, ${Math.round(freemem() / 2 ** 20)} of ${Math.round(totalmem() / 2 ** 20)} MiB free.`);

/** RSS (MiB) and CPU time (s) of a process and its children (the agent under agentUnderSystemd's wrapper), from /proc. */
function proc(pid) {
  let kids = [];
  try {
    kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    /* gone */
  }
  const parts = [procOne(pid), ...kids.map(procOne)].filter(Boolean);
  return parts.length ? { rssMB: parts.reduce((a, p) => a + p.rssMB, 0), cpuS: parts.reduce((a, p) => a + p.cpuS, 0) } : undefined;
}

function procOne(pid) {
  try {
    const rssKb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { rssMB: rssKb / 1024, cpuS: (Number(f[11]) + Number(f[12])) / 100 };
  } catch {
    return undefined;
  }
}

/** Busy share of all CPUs between two /proc/stat readings. */
function cpuTimes() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  return { idle, total: f.reduce((a, b) => a + b, 0) };
}

function summary(xs) {
  return xs.length ? { n: xs.length, medianMs: median(xs), p95Ms: percentile(xs, 95), worstMs: Math.max(...xs), bestMs: Math.min(...xs) } : { n: 0 };
}

// agentUnderSystemd: agents restart 10 s after failing, as systemd does on the NAT image (the lab does not restart them).
const lab = await LabSession.start([
  '--latency', values.latency, '--boot-delay', String(BOOT_MS), '--health-check-grace', '0', '--probe-interval', String(PROBE_MS),
  ...(values['probe-all'] ? [] : ['--probe-azs', AZ]),
  '--agent', agentUnderSystemd({}, 'az-outage'),
]);
lab.adminEndpoint();
const stacks = Array.from({ length: N }, (_, i) => new Stack(lab, `bench-az${String(i + 1).padStart(2, '0')}`, `10.${i + 1}`, PROBE_MS));
let result;
try {
  const t0 = Date.now();
  for (let i = 0; i < N; i += BATCH) {
    const batch = stacks.slice(i, i + BATCH);
    log(`deploying ${batch.map((s) => s.name).join(', ')}`);
    await Promise.all(batch.map((s) => lab.deploy(s.name, 3, s.cidrPrefix, ['--no-eip'])));
  }
  const deployS = Math.round((Date.now() - t0) / 1000);
  log(`deployed ${N} stacks in ${deployS} s; waiting until every host leaves through its own AZ's NAT`);
  await allSettled(600_000);

  // Steady state: what the lab costs the machine.
  const s0 = await lab.fullStatus();
  const agents = s0.instances.filter((i) => i.agentPid !== undefined);
  const c0 = cpuTimes();
  const a0 = agents.map((a) => proc(a.agentPid));
  await sleep(30_000);
  const c1 = cpuTimes();
  const a1 = agents.map((a) => proc(a.agentPid));
  const rss = a1.filter(Boolean).map((p) => p.rssMB);
  const agentCpu = a1.reduce((sum, p, i) => sum + (p && a0[i] ? p.cpuS - a0[i].cpuS : 0), 0) / 30;
  const machine = {
    agents: agents.length,
    agentRssMB: { median: Math.round(median(rss) * 10) / 10, total: Math.round(rss.reduce((a, b) => a + b, 0)), max: Math.round(Math.max(...rss) * 10) / 10 },
    agentsCpuCores: Math.round(agentCpu * 100) / 100,
    machineCpuBusy: Math.round((1 - (c1.idle - c0.idle) / (c1.total - c0.total)) * 100) / 100,
    freeMemMiB: Math.round(freemem() / 2 ** 20),
    loadavg: load(),
  };
  log(`steady state over 30 s: ${JSON.stringify(machine)}`);

  // The outage.
  const zones = stacks[0].view(s0).zones;
  const az = AZ;
  if (!zones.includes(az)) throw new Error(`--az ${az} is not one of the stacks' AZs (${zones.join(', ')})`);
  const succAz = successorOf(az, zones);
  await lab.resetCounters();
  const views = stacks.map((s) => s.view(s0));
  const targets = views.map((v) => v.natOf(az));
  const successors = views.map((v) => v.natOf(succAz));
  log(`crashing ${targets.length} NATs in ${az} at once`);
  const hits = await Promise.all(targets.map((t) => lab.fault({ kind: 'crash', target: t.instanceId })));
  const at = Math.min(...hits.map((h) => h.at));
  const outages = await Promise.all(
    hits.map((h) =>
      lab.outage(h.affectedHosts, h.at, 300_000).then(
        (w) => ({ ok: true, windows: w }),
        (err) => ({ ok: false, error: err.message }),
      ),
    ),
  );
  const servedAgainAt = Date.now();
  await sleep(5_000);
  const takeoverCounters = await lab.counters();
  log(`every stack's hosts in ${az} are served again (or gave up); waiting until each is served by ${az}'s replacement NAT`);
  const ownAgain = await ownAzAgain(az, targets, hits, TIMEOUT_MS);
  const episodeCounters = await lab.counters();
  const sEnd = await lab.fullStatus();

  const perStack = stacks.map((s, i) => {
    const o = outages[i];
    const outageMs = o.ok ? Math.max(...o.windows.map((w) => w.outageMs)) : undefined;
    const laterWindows = s
      .view(sEnd)
      .hosts.filter((h) => h.az === az)
      .flatMap((h) => h.outages.filter((x) => x.start > (o.ok ? Math.max(...o.windows.map((w) => w.end)) : Infinity)).map((x) => ({ proto: x.proto, start: x.start, durationMs: x.durationMs, failed: x.failed })));
    return {
      stack: s.name,
      cidr: `${s.cidrPrefix}.0.0/16`,
      crashed: targets[i].instanceId,
      successor: successors[i].instanceId,
      at: new Date(hits[i].at).toISOString(),
      recovered: o.ok,
      ...(o.ok ? { outageMs, throughSuccessor: o.windows.every((w) => w.answerAfter === successors[i].publicIp), windows: o.windows } : { error: o.error }),
      ownAzAgainAfterMs: ownAgain[i],
      laterWindows,
    };
  });
  const pick = (c) => ({ calls: c.calls, throttled: c.throttled, injected: c.injected });
  const outs = perStack.filter((p) => p.recovered).map((p) => p.outageMs);
  result = {
    bench: 'az-outage',
    description: `every NAT in one AZ crashes at once, across ${N} stacks of 3 AZs in one account and region`,
    command: `pnpm bench:az-outage ${process.argv.slice(2).join(' ')}`.trim(),
    date: startedAt.toISOString(),
    durationS: Math.round((Date.now() - startedAt.getTime()) / 1000),
    machine: { cpus: cpus().length, totalMemMiB: Math.round(totalmem() / 2 ** 20), node: process.version, loadavgStart: loadStart, loadavgEnd: load(), steadyState: machine },
    config: { stacks: N, azsPerStack: 3, az, successorAz: succAz, latency: values.latency, rateLimits: 'on (aws profile)', bootDelayMs: BOOT_MS, healthCheckGracePeriodMs: 0, probeIntervalMs: PROBE_MS, probedAzs: values['probe-all'] ? 'all' : [az], probedHostsPerStack: PROBED_PER_STACK, haSettings: 'defaults', eip: 'none (--no-eip)', deploySeconds: deployS },
    outage: summary(outs),
    allRecovered: perStack.every((p) => p.recovered),
    allThroughSuccessor: perStack.every((p) => p.throughSuccessor === true),
    allOwnAzAgain: perStack.every((p) => p.ownAzAgainAfterMs !== undefined),
    ownAzAgain: summary(perStack.filter((p) => p.ownAzAgainAfterMs !== undefined).map((p) => p.ownAzAgainAfterMs)),
    api: {
      takeover: { note: `from the crash until every stack's hosts were served again, plus 5 s (${Math.round((servedAgainAt + 5_000 - at) / 1000)} s)`, ...pick(takeoverCounters) },
      episode: { note: "from the crash until every stack was back on its own AZ's replacement NAT", ...pick(episodeCounters) },
    },
    stacks: perStack,
  };
} finally {
  await lab.stop();
}
const file = writeResult(values.name, result);
const s = (ms) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);
console.log(`az-outage: ${N} stacks x 3 AZs, every NAT in ${result.config.az} crashed at once (load ${loadStart[0]} -> ${result.machine.loadavgEnd[0]}):`);
for (const p of result.stacks) console.log(`  ${p.stack}  outage ${p.recovered ? s(p.outageMs) : `NOT RECOVERED (${p.error})`}${p.throughSuccessor === false ? ' (not through the successor)' : ''}; own AZ again after ${s(p.ownAzAgainAfterMs)}`);
console.log(`  outage median ${s(result.outage.medianMs)}, p95 ${s(result.outage.p95Ms)}, worst ${s(result.outage.worstMs)}; all recovered: ${result.allRecovered}; all on their own AZ again: ${result.allOwnAzAgain}`);
console.log(`  throttled during the takeover: ${JSON.stringify(result.api.takeover.throttled)}; over the episode: ${JSON.stringify(result.api.episode.throttled)}`);
console.log(`  steady state: ${JSON.stringify(result.machine.steadyState)}`);
console.log(`written to ${file}`);
process.exit(0);

/** Waits until every stack has settled (each host through its own AZ's NAT, 5 s in a row). One status poll serves all stacks. */
async function allSettled(timeoutMs) {
  const t0 = Date.now();
  const since = new Map();
  for (;;) {
    const st = await lab.fullStatus();
    let done = 0;
    for (const s of stacks) {
      const v = s.view(st);
      const ok = v.hosts.length === PROBED_PER_STACK && v.hosts.every(v.ownAz) && v.zones.every((z) => v.nats.filter((n) => n.az === z).length === 1);
      if (!ok) since.delete(s.name);
      else if (!since.has(s.name)) since.set(s.name, Date.now());
      if (ok && Date.now() - since.get(s.name) >= 5_000) done++;
    }
    if (done === stacks.length) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`not every stack settled within ${timeoutMs / 1000} s (${done}/${stacks.length})`);
    await sleep(1_000);
  }
}

/** Per stack, ms from its crash until its hosts in `az` were served by a new NAT of `az` (undefined: not within the timeout). */
async function ownAzAgain(az, crashed, hits, timeoutMs) {
  const t0 = Date.now();
  const out = stacks.map(() => undefined);
  for (;;) {
    const st = await lab.fullStatus();
    stacks.forEach((s, i) => {
      if (out[i] !== undefined) return;
      const v = s.view(st);
      const hosts = v.hosts.filter((h) => h.az === az);
      const nat = v.natOf(az);
      if (nat && nat.instanceId !== crashed[i].instanceId && hosts.length > 0 && hosts.every((h) => h.tcp?.ok && h.udp?.ok && h.tcp.answer === nat.publicIp && h.udp.answer === nat.publicIp)) out[i] = Date.now() - hits[i].at;
    });
    if (out.every((x) => x !== undefined) || Date.now() - t0 > timeoutMs) return out;
    await sleep(1_000);
  }
}
