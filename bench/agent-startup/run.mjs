#!/usr/bin/env node
// Benchmark (not a test) of hanat-agent's start-up: bundle size, process start to
// the first `route.claimed` log line, and RSS after 60 s of the loop, with IMDS and
// EC2 answered on loopback. In the same run it times the original approach, a shell
// script making the same calls through the AWS CLI, when `aws` is installed.
//
// Needs root: everything runs inside a network namespace this script creates (only
// `lo` up, no route anywhere), so the agent's real kernel changes stay in there.
//
//   node scripts/build.mjs agent && node bench/agent-startup/run.mjs [--runs 5] [--rss-seconds 60] [--bundle PATH]
//   ... --rss-try='--jitless' [--rss-try='...']: only RSS, with the unit's flags and with each set given
//
// Prints a summary and writes bench/results/agent-startup.json.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { IDENTITY, PEERS, startEc2, startImds, startPeers } from './fakes.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = join(root, 'bench/results/agent-startup.json');
const { values: args } = parseArgs({
  options: {
    bundle: { type: 'string', default: join(root, 'packages/agent/dist/hanat-agent.cjs') },
    runs: { type: 'string', default: '5' },
    'rss-seconds': { type: 'string', default: '60' },
    inside: { type: 'boolean', default: false },
    // Experiments: only the RSS runs, once per set of node flags given (space-separated), beside
    // the unit's own; prints the figures and writes nothing.
    'rss-try': { type: 'string', multiple: true, default: [] },
  },
});
const bundle = args.bundle;
const RUNS = Number(args.runs);
const RSS_SECONDS = Number(args['rss-seconds']);
/** The node flags of the image's systemd unit (scripts/systemd/hanat-agent.service, ExecStart), read from it. */
export const NODE_FLAGS = unitNodeFlags();
/** Issue 11: RSS after 60 s ≤ 55 MB with the heartbeats on (it was 90 MB before HA). */
const TARGETS = { startToRouteClaimedMs: 600, rssMB: 55, bundleMB: 1.6 };

const LOAD_START = loadavg().map((x) => round(x, 2));
if (args.inside) await inside();
else await outside();

/** Creates the namespace, re-runs this script inside it, removes the namespace. */
async function outside() {
  if (process.getuid?.() !== 0) fail('needs root: it runs the agent, which configures netfilter, inside a network namespace it creates');
  if (!existsSync(bundle)) fail(`${bundle} is missing; run: node scripts/build.mjs agent`);
  const ns = `hanat-bench-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // The agent's private address (its heartbeat socket binds it) and its two peers' (the fake
    // peers heartbeat from them), all on loopback: still no route out of the namespace.
    for (const ip of [IDENTITY.privateIp, ...PEERS.map((p) => p.privateIp)]) execFileSync('ip', ['-n', ns, 'addr', 'add', `${ip}/32`, 'dev', 'lo']);
    const tries = args['rss-try'].map((t) => `--rss-try=${t}`);
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), '--inside', '--bundle', bundle, '--runs', String(RUNS), '--rss-seconds', String(RSS_SECONDS), ...tries], {
      stdio: 'inherit',
    });
    const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
    process.exitCode = code;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

async function inside() {
  const imds = await startImds();
  const ec2 = await startEc2();
  const peers = await startPeers();
  const env = {
    // HA's upstream probe: a TCP connect to the fake EC2 endpoint (the default, the regional EC2 name, needs DNS).
    HANAT_PROBE_TARGET: new URL(ec2.url).host,
    PATH: process.env.PATH,
    HOME: '/nonexistent',
    AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
    AWS_ENDPOINT_URL: ec2.url,
    // No credentials in the environment: the SDK's default chain gets them from (fake) IMDS, as on EC2.
    AWS_CONFIG_FILE: '/nonexistent/config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
  };
  try {
    const bytes = statSync(bundle).size;
    log(`bundle: ${bundle} ${(bytes / 1024).toFixed(0)} KiB`);
    if (args['rss-try'].length > 0) {
      for (const flags of [NODE_FLAGS, ...args['rss-try'].map((t) => t.split(' ').filter(Boolean))]) {
        resetHost();
        ec2.reset();
        peers.reset();
        const r = await rssAfter(env, flags, RSS_SECONDS);
        log(`RSS after ${RSS_SECONDS} s with ${flags.join(' ') || 'no flags'}: ${r.rssMB.toFixed(1)} MB, CPU ${r.cpuSeconds.toFixed(2)} s ${JSON.stringify(r.smaps)}; the peers got ${peers.seen.heartbeats} heartbeats`);
      }
      return;
    }

    // With HA (the default) and without (HANAT_HA=0) in alternation, so that both see the same machine.
    const agentRuns = [];
    const noHaRuns = [];
    for (let i = 0; i < RUNS; i++) {
      for (const [runs, extra, label] of [
        [agentRuns, {}, 'HA on'],
        [noHaRuns, { HANAT_HA: '0' }, 'HA off'],
      ]) {
        resetHost();
        ec2.reset();
        const r = await timeAgent({ ...env, ...extra }, NODE_FLAGS);
        if (ec2.state.routeHistory[0] !== IDENTITY.eniId) fail(`run ${i + 1} (${label}): the route was not pointed at the agent (calls: ${ec2.state.calls.join(', ')})`);
        r.handedOverTo = ec2.state.routeHistory.slice(1);
        runs.push(r);
        log(`agent run ${i + 1}, ${label}: start -> route.claimed ${r.ms.toFixed(0)} ms (agent.ready says ${r.readyMs} ms)${r.handedOverTo.length ? `; on SIGTERM it handed the route to ${r.handedOverTo.join(', ')}` : ''}`);
      }
    }

    // One agent at a time: each binds the heartbeat port on the same address.
    log(`steady state: running the loop for ${RSS_SECONDS} s with HA (heartbeats to and from 2 peers), with and without heap hints, then without HA ...`);
    const rss = {};
    for (const [name, flags, extra] of [
      ['tuned', NODE_FLAGS, {}],
      ['default', [], {}],
      ['noHa', NODE_FLAGS, { HANAT_HA: '0' }],
    ]) {
      resetHost();
      ec2.reset();
      peers.reset();
      const r = await rssAfter({ ...env, ...extra }, flags, RSS_SECONDS);
      rss[name] = { ...r, heartbeatsToPeers: peers.seen.heartbeats, forwardProbes: peers.seen.probes };
      if (name !== 'noHa' && peers.seen.heartbeats === 0) fail(`the ${name} RSS run sent no heartbeat to its peers`);
      log(`RSS after ${RSS_SECONDS} s (${name}): ${r.rssMB.toFixed(1)} MB; the peers got ${peers.seen.heartbeats} heartbeats and ${peers.seen.probes} forward probes`);
    }
    const rssTuned = rss.tuned.rssMB;
    const rssDefault = rss.default.rssMB;

    const cli = awsCli();
    let cliRuns = [];
    if (cli) {
      for (let i = 0; i < Math.min(RUNS, 3); i++) {
        resetHost();
        ec2.reset();
        const r = await timeShell(env, imds.url, ec2.url);
        if (ec2.state.routeEni !== IDENTITY.eniId) fail('the AWS CLI script did not point the route');
        cliRuns.push(r);
        log(`shell + AWS CLI run ${i + 1}: start -> route replaced ${r.toFixed(0)} ms`);
      }
    } else {
      log('aws CLI not installed: the shell-and-AWS-CLI comparison is skipped (Debian: apt-get install awscli)');
    }
    resetHost();

    const agentMedian = median(agentRuns.map((r) => r.ms));
    const cliMedian = cliRuns.length ? median(cliRuns) : undefined;
    const result = {
      date: new Date().toISOString(),
      loadavg: { start: LOAD_START, end: loadavg().map((x) => round(x, 2)) },
      command: 'node scripts/build.mjs agent && node bench/agent-startup/run.mjs',
      machine: { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, kernel: release() },
      bundle: { path: bundle.startsWith(root) ? relative(root, bundle) : bundle, bytes, mb: round(bytes / 1e6, 3), targetMb: TARGETS.bundleMB, ok: bytes / 1e6 <= TARGETS.bundleMB },
      startToRouteClaimedMs: {
        median: round(agentMedian),
        runs: agentRuns.map((r) => round(r.ms)),
        ha: 'on (defaults), with 2 fake peers heartbeating; every run handed the route to a peer on SIGTERM: ' + agentRuns.every((r) => r.handedOverTo.length > 0),
        withoutHa: { median: round(median(noHaRuns.map((r) => r.ms))), runs: noHaRuns.map((r) => round(r.ms)) },
        nodeFlags: NODE_FLAGS,
        target: TARGETS.startToRouteClaimedMs,
        ok: agentMedian <= TARGETS.startToRouteClaimedMs,
      },
      rssAfterLoopMB: {
        seconds: RSS_SECONDS,
        withHeapHints: round(rssTuned, 1),
        withoutHeapHints: round(rssDefault, 1),
        withHeapHintsWithoutHa: round(rss.noHa.rssMB, 1),
        ha: 'on (defaults: heartbeats every 200 ms to 2 fake peers that heartbeat back, self-checks every 1 s) in the first two; HANAT_HA=0 in the third',
        heartbeatsToPeers: { withHeapHints: rss.tuned.heartbeatsToPeers, withoutHeapHints: rss.default.heartbeatsToPeers },
        smapsRollupKB: { withHeapHints: rss.tuned.smaps, withoutHa: rss.noHa.smaps },
        nodeFlags: NODE_FLAGS,
        target: TARGETS.rssMB,
        ok: rssTuned <= TARGETS.rssMB,
      },
      shellAndAwsCli: cli
        ? { awsCli: cli, medianMs: round(cliMedian), runs: cliRuns.map((r) => round(r)), ratio: round(cliMedian / agentMedian, 1) }
        : { awsCli: null, note: 'aws not installed; comparison skipped' },
    };
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    log(
      `summary: bundle ${result.bundle.mb} MB, start -> route claimed ${result.startToRouteClaimedMs.median} ms, RSS ${result.rssAfterLoopMB.withHeapHints} MB` +
        (cliMedian ? `; shell + AWS CLI ${round(cliMedian)} ms (${result.shellAndAwsCli.ratio}x slower)` : '') +
        `; written to ${out}`,
    );
  } finally {
    imds.close();
    ec2.close();
    peers.close();
  }
}

/** Undoes the previous run's kernel changes in this namespace so every run starts from scratch. */
function resetHost() {
  try {
    execFileSync('nft', ['delete', 'table', 'ip', 'hanat'], { stdio: 'ignore' });
  } catch {
    /* not there */
  }
  try {
    execFileSync('iptables', ['-t', 'nat', '-F', 'POSTROUTING'], { stdio: 'ignore' }); // only the shell script's rules live in this namespace
  } catch {
    /* no iptables */
  }
  execFileSync('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=0']);
}

/** Starts the agent; resolves at its first route.claimed line with the elapsed time, then stops it. */
function timeAgent(env, flags) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...flags, bundle, 'run'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let ms;
    let readyMs;
    let buf = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const ev = JSON.parse(line);
        if (process.env.BENCH_DEBUG) log(`  +${(performance.now() - t0).toFixed(0)} ms ${line.slice(0, 300)}`);
        if (ev.event === 'route.claimed' && ms === undefined) ms = performance.now() - t0;
        if (ev.event === 'agent.ready') {
          readyMs = ev.durationMs;
          child.kill('SIGTERM');
        }
      }
    });
    child.on('exit', (code) => (ms !== undefined ? resolve({ ms, readyMs }) : reject(new Error(`agent exited ${code} before claiming the route:\n${stderr}`))));
  });
}

/** Runs the agent for `seconds`, resolves with its resident set size in MB and its smaps_rollup breakdown (kB). */
function rssAfter(env, flags, seconds) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, bundle, 'run'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    const timer = setTimeout(() => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
      const smaps = {};
      try {
        for (const m of readFileSync(`/proc/${child.pid}/smaps_rollup`, 'utf8').matchAll(/^(Rss|Pss_Anon|Pss_File|Anonymous|Shared_Clean|Private_Clean|Private_Dirty):\s+(\d+) kB$/gm)) smaps[m[1]] = Number(m[2]);
      } catch {
        /* older kernel */
      }
      // utime + stime, fields 14 and 15 of /proc/PID/stat, in clock ticks (100 a second on Linux).
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / 100;
      result = { rssMB: kb / 1024, smaps, cpuSeconds };
      child.kill('SIGTERM');
    }, seconds * 1000);
    // Resolves once the agent has exited: the next run binds the same heartbeat address.
    let result;
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (result) resolve(result);
      else reject(new Error(`agent exited ${code} during the RSS run`));
    });
  });
}

function awsCli() {
  try {
    return execFileSync('aws', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * The original design's approach, with the same steps and calls as the agent:
 * IMDSv2 through curl, kernel through sysctl and iptables, AWS through the CLI.
 */
function timeShell(env, imdsUrl, ec2Url) {
  const m = IDENTITY;
  const script = `set -eu
md() { curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "${imdsUrl}/latest/meta-data/$1"; }
TOKEN=$(curl -sf -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "${imdsUrl}/latest/api/token")
ID=$(md instance-id); REGION=$(md placement/region); MAC=$(md mac)
ENI=$(md network/interfaces/macs/$MAC/interface-id); CIDRS=$(md network/interfaces/macs/$MAC/vpc-ipv4-cidr-blocks)
IP=$(md local-ipv4); STACK=$(md tags/instance/hanat:stack); AZ=$(md tags/instance/hanat:az)
sysctl -q -w net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0
for c in $CIDRS; do iptables -t nat -A POSTROUTING -s "$c" ! -d "$c" -j MASQUERADE; done
export AWS_DEFAULT_REGION=$REGION
aws() { command aws --endpoint-url "${ec2Url}" --output text "$@"; }
aws ec2 describe-instance-attribute --instance-id "$ID" --attribute sourceDestCheck >/dev/null
aws ec2 modify-instance-attribute --instance-id "$ID" --no-source-dest-check
ALLOC=$(aws ec2 describe-addresses --filters "Name=tag:hanat:stack,Values=$STACK" "Name=tag:hanat:az,Values=$AZ" --query 'Addresses[0].AllocationId')
aws ec2 associate-address --allocation-id "$ALLOC" --network-interface-id "$ENI" --private-ip-address "$IP" --allow-reassociation >/dev/null
RTB=$(aws ec2 describe-route-tables --filters "Name=tag:hanat:stack,Values=$STACK" "Name=tag:network,Values=private" "Name=tag:hanat:az,Values=$AZ" --query 'RouteTables[0].RouteTableId')
aws ec2 replace-route --route-table-id "$RTB" --destination-cidr-block 0.0.0.0/0 --network-interface-id "$ENI"
echo route.claimed
aws ec2 create-tags --resources "$RTB" --tags "Key=hanat:owner,Value=$ID" "Key=hanat:owner-since,Value=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
`;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let ms;
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      if (ms === undefined && String(d).includes('route.claimed')) ms = performance.now() - t0;
    });
    child.on('exit', (code) => (code === 0 && ms !== undefined ? resolve(ms) : reject(new Error(`the AWS CLI script failed (${code}):\n${stderr}`))));
  });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function round(x, digits = 0) {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function log(msg) {
  process.stderr.write(`bench agent-startup: ${msg}\n`);
}

function fail(msg) {
  log(msg);
  process.exit(1);
}

/** The flags between node and the bundle in the unit's ExecStart. */
function unitNodeFlags() {
  const unit = readFileSync(join(root, 'scripts/systemd/hanat-agent.service'), 'utf8');
  const exec = /^ExecStart=(\S+)\s+(.*?)\s*\/opt\/hanat\/hanat-agent\.cjs run$/m.exec(unit);
  if (!exec) throw new Error('no ExecStart=<node> [flags] /opt/hanat/hanat-agent.cjs run in scripts/systemd/hanat-agent.service');
  return exec[2].split(/\s+/).filter(Boolean);
}
