#!/usr/bin/env node
// bench/nat-throughput: iperf3 throughput through a NAT instance namespace (private host →
// router → NAT instance (the real agent's masquerade) → router → internet gateway →
// internet) against the NAT instance's own traffic in the same lab (NAT instance → router →
// internet gateway → internet), and their ratio.
//
// The baseline is not a private host's path without the NAT: it skips the private host's
// link and the second pass through the router, and the NAT instance sends rather than
// forwards (its packets still match the masquerade rule, which has nothing to rewrite). So
// the ratio mixes the extra hop with the NAT's own cost: it is a lower bound on the NAT's
// throughput relative to plain routing, not the cost of NAT alone.
//
// Usage (root, after pnpm build): node bench/nat-throughput/run.mjs [--seconds 5] [--runs 3] [--streams 1]
// Writes bench/results/nat-throughput.json and prints the figures.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { LabSession, log, median, preflight, run, writeResult } from '../replacement-outage/lab-session.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, runs: { type: 'string', default: '3' }, streams: { type: 'string', default: '1' } } });
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const streams = Number(values.streams);
const STACK = 'bench-throughput';
const SERVER = '198.51.100.10';

preflight();
const lab = await LabSession.start(['--latency', 'zero', '--boot-delay', '1000']);
let server;
const results = { viaNat: [], direct: [] };
let paths;
try {
  log(`lab ${lab.prefix} up; deploying ${STACK}`);
  await lab.deploy(STACK, 2);
  await lab.waitOwnAz(300);
  const status = await lab.status();
  const host = status.hosts.sort((a, b) => a.az.localeCompare(b.az) || a.ip.localeCompare(b.ip))[0];
  const nat = status.instances.find((i) => i.publicIp === host.tcp.answer);
  paths = { viaNat: { from: host.ns, desc: `private host ${host.ip} (${host.az}) through NAT ${nat.instanceId}` }, direct: { from: nat.namespace, desc: `NAT instance ${nat.instanceId}'s own traffic (no private host link, one pass through the router instead of two)` } };
  const internet = `${lab.prefix}-internet`;
  server = spawn('ip', ['netns', 'exec', internet, 'iperf3', '-s', '-B', SERVER], { stdio: 'ignore' });
  // Wait until the server listens (iperf3's port 5201), not a fixed while.
  for (const deadline = Date.now() + 10_000; !(await run('ip', ['netns', 'exec', internet, 'ss', '-Hltn', 'sport = :5201'])).trim(); ) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error('iperf3 -s did not start listening in the internet namespace');
    await new Promise((r) => setTimeout(r, 50));
  }
  for (let i = 1; i <= runs; i++) {
    for (const key of ['viaNat', 'direct']) {
      const out = JSON.parse(await run('ip', ['netns', 'exec', paths[key].from, 'iperf3', '-c', SERVER, '-t', String(seconds), '-P', String(streams), '-J']));
      const bps = out.end.sum_received.bits_per_second;
      results[key].push(bps);
      log(`run ${i} ${key}: ${(bps / 1e9).toFixed(2)} Gbit/s (retransmits ${out.end.sum_sent.retransmits ?? 0})`);
    }
  }
} finally {
  server?.kill();
  await lab.stop(STACK);
}

const viaNat = median(results.viaNat);
const direct = median(results.direct);
const result = {
  bench: 'nat-throughput',
  description:
    "iperf3 TCP throughput from a private host through its NAT instance namespace vs the NAT instance's own traffic in the same lab (no private host link, one pass through the router instead of two). The ratio mixes that extra hop with the NAT's cost: a lower bound on the NAT's throughput relative to plain routing",
  date: new Date().toISOString(),
  config: { seconds, runs, streams, server: SERVER },
  paths: { viaNat: paths.viaNat.desc, direct: paths.direct.desc },
  viaNatGbps: +(viaNat / 1e9).toFixed(3),
  directGbps: +(direct / 1e9).toFixed(3),
  ratio: +(viaNat / direct).toFixed(3),
  runsBps: results,
};
const file = writeResult('nat-throughput', result);
console.log(`NAT throughput (iperf3, ${streams} stream(s), ${seconds} s x ${runs} runs, medians):`);
console.log(`  through the NAT instance: ${result.viaNatGbps} Gbit/s`);
console.log(`  the NAT instance's own:   ${result.directGbps} Gbit/s (one router pass fewer)`);
console.log(`  ratio: ${result.ratio} (a lower bound: it includes the extra hop, not only the NAT)`);
console.log(`  written to ${file}`);
