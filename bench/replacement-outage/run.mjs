#!/usr/bin/env node
// bench/replacement-outage: how long a private subnet is cut off while Auto Scaling
// replaces its dead NAT instance, the only recovery the original design had.
//
// Deploys the stack in the lab with a realistic boot delay (30 s) and the AWS-like latency
// profile, then kills the NATs of every AZ at the same moment, round after round. With every
// NAT dead at once nothing but Auto Scaling's replacement (and the new agent's boot claim of
// its AZ's routes) can bring traffic back, whatever the agents can do otherwise. Each kill
// is one sample: the time until every private host of that AZ reaches the internet again
// (the worst of its hosts' TCP and UDP outage windows, probed every 100 ms).
//
// Usage (root, after pnpm build): node bench/replacement-outage/run.mjs [--rounds 5] [--azs 3] [--boot-delay 30000] [--latency aws]
// Writes bench/results/replacement-outage.json and prints the figures.
import { parseArgs } from 'node:util';
import { LabSession, log, median, preflight, writeResult } from './lab-session.mjs';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    azs: { type: 'string', default: '3' },
    'boot-delay': { type: 'string', default: '30000' },
    latency: { type: 'string', default: 'aws' },
  },
});
const rounds = Number(values.rounds);
const azs = Number(values.azs);
const bootDelayMs = Number(values['boot-delay']);
const STACK = 'bench-outage';

preflight();
log(`replacement outage: ${rounds} rounds x ${azs} AZs, boot delay ${bootDelayMs} ms, latency ${values.latency}`);
const lab = await LabSession.start(['--latency', values.latency, '--boot-delay', String(bootDelayMs)]);
const samples = [];
try {
  log(`lab ${lab.prefix} up; deploying ${STACK}`);
  await lab.deploy(STACK, azs);
  await lab.waitOwnAz(600);
  const zones = [...new Set((await lab.status()).hosts.map((h) => h.az))].sort();
  log(`traffic flows through each AZ's own NAT in ${zones.join(', ')}`);
  for (let round = 1; round <= rounds; round++) {
    log(`round ${round}/${rounds}: killing the NATs of ${zones.join(', ')}`);
    const results = await Promise.all(zones.map((az) => lab.labCmd(['fault', 'kill', az, '--wait', '--timeout', '900', '--json']).then(JSON.parse)));
    for (const [i, r] of results.entries()) {
      const outageMs = Math.max(...r.outages.map((o) => o.outageMs));
      samples.push({ round, az: zones[i], killed: r.instances[0], killedAt: new Date(r.at).toISOString(), outageMs, windows: r.outages });
      log(`  ${zones[i]}: ${(outageMs / 1000).toFixed(1)} s`);
    }
    await lab.waitOwnAz(600);
  }
} finally {
  await lab.stop(STACK);
}

const ms = samples.map((s) => s.outageMs);
const result = {
  bench: 'replacement-outage',
  description: 'private subnet outage while Auto Scaling replaces a killed NAT instance (original design: replacement only)',
  note: 'a lower bound for AWS: the lab reports a killed instance terminated at once and Auto Scaling notices within 3-6 s; on AWS a dead NAT stays running until its status checks fail (packages/lab/EMULATOR.md, Known differences)',
  date: new Date().toISOString(),
  config: { rounds, azs, bootDelayMs, latency: values.latency, probeIntervalMs: 100, killsPerAz: rounds },
  medianMs: median(ms),
  worstMs: Math.max(...ms),
  bestMs: Math.min(...ms),
  meanMs: Math.round(ms.reduce((a, b) => a + b, 0) / ms.length),
  samplesMs: ms,
  samples,
};
const file = writeResult('replacement-outage', result);
console.log(`replacement outage over ${ms.length} kills (${rounds} per AZ, boot delay ${bootDelayMs / 1000} s, latency ${values.latency}):`);
console.log(`  median ${(result.medianMs / 1000).toFixed(1)} s, worst ${(result.worstMs / 1000).toFixed(1)} s, best ${(result.bestMs / 1000).toFixed(1)} s`);
console.log(`  samples (s): ${ms.map((x) => (x / 1000).toFixed(1)).join(' ')}`);
console.log(`  written to ${file}`);
