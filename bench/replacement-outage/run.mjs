#!/usr/bin/env node
// bench/replacement-outage: how long a private subnet is cut off while Auto Scaling replaces
// its dead NAT instance, the only recovery the original design had. Two ways to die, measured
// side by side in one run, in alternate rounds:
//
// - crashed: the NAT dies in place (`hanat-lab fault crash`: hardware fault, kernel panic,
//   hang). EC2 goes on reporting it running and its route active until its status checks fail
//   (60 s: EC2 checks every minute), then Auto Scaling's EC2 health check (3-6 s in the AWS-like
//   profile) marks it Unhealthy and replaces it, then the boot (30 s), then the new agent claims
//   the routes. The lab's default way for a NAT to die.
// - terminated: the NAT is terminated (`hanat-lab fault kill`: a Spot interruption, someone
//   terminating it). EC2 reports it terminated at once; Auto Scaling notices within 3-6 s.
//
// Each round hits the NATs of every AZ at the same moment, so nothing but the replacement can
// bring traffic back, whatever the agents could otherwise do. One sample per AZ and round: the
// time until every private host of that AZ reaches the internet again (the worst of its hosts'
// TCP and UDP outage windows, probed every 100 ms).
//
// The lab runs with --health-check-grace 0: a sample stands for a NAT that crashes long after
// it booted, when the group's grace period (120 s in the template) is long over. Rounds follow
// each other within seconds, so without this the crash samples would measure the grace period.
//
// Usage (root, after pnpm build): node bench/replacement-outage/run.mjs [--rounds 5] [--azs 3]
//   [--boot-delay 30000] [--status-check-delay 60000] [--latency aws]
// Writes bench/results/replacement-outage.json and prints the figures.
import { parseArgs } from 'node:util';
import { LabSession, log, median, preflight, writeResult } from './lab-session.mjs';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    azs: { type: 'string', default: '3' },
    'boot-delay': { type: 'string', default: '30000' },
    'status-check-delay': { type: 'string', default: '60000' },
    latency: { type: 'string', default: 'aws' },
  },
});
const rounds = Number(values.rounds);
const azs = Number(values.azs);
const bootDelayMs = Number(values['boot-delay']);
const statusCheckDelayMs = Number(values['status-check-delay']);
const STACK = 'bench-outage';
const KINDS = {
  crashed: { fault: 'crash', event: 'a NAT that dies in place (hardware fault, kernel panic, hang): running until its status checks fail' },
  terminated: { fault: 'kill', event: 'a NAT that is terminated (Spot interruption, someone terminates it): terminated at once' },
};

/** The p-th percentile (nearest rank). */
function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

function summary(samples) {
  const ms = samples.map((s) => s.outageMs);
  return {
    trials: ms.length,
    medianMs: median(ms),
    p95Ms: percentile(ms, 95),
    worstMs: Math.max(...ms),
    bestMs: Math.min(...ms),
    meanMs: Math.round(ms.reduce((a, b) => a + b, 0) / ms.length),
    samplesMs: ms,
  };
}

preflight();
log(`replacement outage: ${rounds} rounds each of crashed and terminated x ${azs} AZs, boot delay ${bootDelayMs} ms, status-check delay ${statusCheckDelayMs} ms, latency ${values.latency}`);
const lab = await LabSession.start([
  '--latency',
  values.latency,
  '--boot-delay',
  String(bootDelayMs),
  '--status-check-delay',
  String(statusCheckDelayMs),
  '--health-check-grace',
  '0',
  // The baseline: agents without HA, as the original design ran, so only Auto Scaling brings an AZ back.
  '--no-agent-ha',
]);
const samples = { crashed: [], terminated: [] };
try {
  log(`lab ${lab.prefix} up; deploying ${STACK}`);
  await lab.deploy(STACK, azs);
  await lab.waitOwnAz(600);
  const zones = [...new Set((await lab.status()).hosts.map((h) => h.az))].sort();
  log(`traffic flows through each AZ's own NAT in ${zones.join(', ')}`);
  for (let round = 1; round <= rounds; round++) {
    // Alternate which kind goes first, so that neither always follows the other.
    const order = round % 2 === 1 ? ['crashed', 'terminated'] : ['terminated', 'crashed'];
    for (const kind of order) {
      const { fault } = KINDS[kind];
      log(`round ${round}/${rounds}, ${kind}: fault ${fault} on the NATs of ${zones.join(', ')}`);
      const results = await Promise.all(zones.map((az) => lab.labCmd(['fault', fault, az, '--wait', '--timeout', '900', '--json']).then(JSON.parse)));
      for (const [i, r] of results.entries()) {
        const outageMs = Math.max(...r.outages.map((o) => o.outageMs));
        samples[kind].push({ round, az: zones[i], instance: r.instances[0], at: new Date(r.at).toISOString(), outageMs, windows: r.outages });
        log(`  ${zones[i]}: ${(outageMs / 1000).toFixed(1)} s`);
      }
      await lab.waitOwnAz(600);
    }
  }
} finally {
  await lab.stop(STACK);
}

const result = {
  bench: 'replacement-outage',
  description: 'private subnet outage while Auto Scaling replaces a dead NAT instance (original design: replacement only), for a NAT that crashes in place and one that is terminated',
  date: new Date().toISOString(),
  config: { rounds, azs, bootDelayMs, statusCheckDelayMs, healthCheckGracePeriodMs: 0, latency: values.latency, healthCheckDelayMs: '3000-6000 (aws profile)', probeIntervalMs: 100, trialsPerKindPerAz: rounds },
  crashed: { event: KINDS.crashed.event, ...summary(samples.crashed), samples: samples.crashed },
  terminated: { event: KINDS.terminated.event, ...summary(samples.terminated), samples: samples.terminated },
};
const file = writeResult('replacement-outage', result);
const line = (k) => {
  const s = result[k];
  return `  ${k.padEnd(10)} median ${(s.medianMs / 1000).toFixed(1)} s, p95 ${(s.p95Ms / 1000).toFixed(1)} s, worst ${(s.worstMs / 1000).toFixed(1)} s, best ${(s.bestMs / 1000).toFixed(1)} s over ${s.trials} trials; samples (s): ${s.samplesMs.map((x) => (x / 1000).toFixed(1)).join(' ')}`;
};
console.log(`replacement outage (${rounds} rounds x ${azs} AZs per kind, boot delay ${bootDelayMs / 1000} s, status checks ${statusCheckDelayMs / 1000} s, latency ${values.latency}):`);
console.log(line('crashed'));
console.log(line('terminated'));
console.log(`  written to ${file}`);
