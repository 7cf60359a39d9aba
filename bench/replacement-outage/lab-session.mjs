// A lab session for benchmarks: start `hanat-lab up --detach`, deploy the stack with the
// real `hanat deploy`, run the lab's commands, tear everything down. Drives the built
// bundles (pnpm build) exactly as a user would.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const LAB = join(root, 'packages/lab/bin/hanat-lab.mjs');
const HANAT = join(root, 'packages/cli/bin/hanat.mjs');

export function log(msg) {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Runs a command; resolves with stdout, rejects with stderr on failure. stderr is echoed when `echo`. */
export function run(file, args, { env = process.env, echo = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      if (echo) process.stderr.write(d);
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${[file, ...args].join(' ')} exited ${code}: ${err.trim().split('\n').slice(-5).join('\n')}`))));
  });
}

export function preflight() {
  if (process.getuid?.() !== 0) throw new Error('run as root: the lab creates network namespaces');
  for (const f of [join(root, 'packages/lab/dist/hanat-lab.mjs'), join(root, 'packages/cli/dist/hanat.mjs'), join(root, 'packages/agent/dist/hanat-agent.cjs')]) {
    if (!existsSync(f)) throw new Error(`${f} is missing; run pnpm build first`);
  }
}

export class LabSession {
  constructor(env, prefix) {
    this.env = env;
    this.prefix = prefix;
  }

  /** Starts a detached lab; `upArgs` are passed to `hanat-lab up`. */
  static async start(upArgs) {
    const out = await run(process.execPath, [LAB, 'up', '--detach', '--run-dir', join(root, '.lab'), ...upArgs], { echo: true });
    const env = { ...process.env };
    for (const m of out.matchAll(/^export (\w+)=(.*)$/gm)) env[m[1]] = m[2];
    const status = JSON.parse(await run(process.execPath, [LAB, 'status', '--json'], { env }));
    return new LabSession(env, status.prefix);
  }

  /**
   * The lab's admin endpoint (loopback, bearer token), from its state file: what `hanat-lab
   * status`, `fault` and `probe` call. Calling it directly spares a Node start per poll, which
   * matters on a small machine where benches poll every fraction of a second.
   */
  adminEndpoint() {
    if (!this._admin) {
      const file = join(this.env.HANAT_LAB_STATE_DIR ?? '/run/hanat-lab', `${this.prefix}.json`);
      const state = JSON.parse(readFileSync(file, 'utf8'));
      if (!state.admin) throw new Error(`${file} names no admin endpoint`);
      this._admin = state.admin;
      this.apiEndpoint = state.apiEndpoint;
    }
    return this._admin;
  }

  async admin(method, path, body, timeoutMs = 60_000) {
    const { url, token } = this.adminEndpoint();
    const res = await fetch(url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`lab ${method} ${path}: ${res.status} ${json.error ?? ''}`);
    return json;
  }

  /** The lab's full status (route tables, instances, hosts with their outage windows). */
  fullStatus() {
    return this.admin('GET', '/status');
  }

  /** Injects a fault (`{ kind, target, off }`, as `hanat-lab fault`); resolves with `{ at, instances, affectedHosts }`. */
  fault(req) {
    return this.admin('POST', '/fault', req);
  }

  /** Waits until each host's TCP and UDP probes had an outage starting after `since` and recovered; resolves with the windows. */
  outage(hosts, since, timeoutMs) {
    return this.admin('POST', '/outage', { hosts, since, timeoutMs }, timeoutMs + 5_000);
  }

  /** The emulator's API counters (calls, throttled calls, per action and caller). */
  async counters() {
    this.adminEndpoint();
    return (await fetch(`${this.apiEndpoint}/_lab/counters`)).json();
  }

  async resetCounters() {
    this.adminEndpoint();
    await fetch(`${this.apiEndpoint}/_lab/counters`, { method: 'DELETE' });
  }

  labCmd(args, opts = {}) {
    // every lab command that talks to a running lab takes --lab
    return run(process.execPath, [LAB, ...args, '--lab', this.prefix], { env: this.env, ...opts });
  }

  hanat(args, opts = {}) {
    return run(process.execPath, [HANAT, ...args], { env: this.env, ...opts });
  }

  async status() {
    return JSON.parse(await this.labCmd(['status', '--json']));
  }

  async deploy(name, azs, cidrPrefix = '10.0', extra = []) {
    await this.hanat(['deploy', '--name', name, '--cidr-prefix', cidrPrefix, '--azs', String(azs), '--yes', ...extra]);
  }

  /** Waits until every private host reaches the internet through its own AZ's NAT. */
  async waitOwnAz(timeoutS) {
    await this.labCmd(['probe', '--check', '--wait', String(timeoutS)]);
  }

  async stop(...stacks) {
    for (const stack of stacks.flat()) {
      if (stack) await this.hanat(['destroy', '--name', stack, '--yes']).catch((e) => log(`destroy of ${stack} failed: ${e.message}`));
    }
    await this.labCmd(['down']).catch(async (e) => {
      log(`down failed (${e.message}); cleaning up`);
      await run(process.execPath, [LAB, 'cleanup']).catch(() => {});
    });
  }
}

export function writeResult(name, result) {
  const dir = join(root, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  return file;
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The p-th percentile (nearest rank). */
export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** The machine's 1, 5 and 15 minute load averages, rounded: benches record them, the machine being shared. */
export function load() {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


/**
 * One hanat stack in a lab that may hold several: its NATs and private hosts are those whose
 * private addresses fall in its --cidr-prefix (`10.N.`).
 */
export class Stack {
  constructor(lab, name, cidrPrefix, probeIntervalMs = 100) {
    this.lab = lab;
    this.probeIntervalMs = probeIntervalMs;
    this.name = name;
    this.cidrPrefix = cidrPrefix;
    this.ip = `${cidrPrefix}.`;
  }

  view(s) {
    const faulted = new Set([...s.faults.crashed, ...s.faults.gray, ...s.faults.upstreamCut]);
    const instances = s.instances.filter((i) => i.privateIp?.startsWith(this.ip));
    const nats = instances.filter((i) => i.state === 'running' && i.agentPid !== undefined && !faulted.has(i.instanceId));
    const byIp = new Map(instances.filter((i) => i.publicIp).map((i) => [i.publicIp, i]));
    const all = s.hosts.filter((h) => h.ip.startsWith(this.ip));
    const zones = [...new Set(all.map((h) => h.az))].sort();
    // Hosts that probe (all, unless the lab runs with --probe-azs): the others have nothing to say.
    const hosts = all.filter((h) => h.probed !== false);
    const ownAz = (h) => h.tcp?.ok && h.udp?.ok && h.tcp.answer === h.udp.answer && byIp.get(h.tcp.answer)?.az === h.az && nats.some((n) => n.publicIp === h.tcp.answer);
    return { instances, nats, hosts, zones, ownAz, natOf: (az) => nats.filter((n) => n.az === az).sort((a, b) => a.instanceId.localeCompare(b.instanceId)).at(-1) };
  }

  async current() {
    return this.view(await this.lab.fullStatus());
  }

  /** Every AZ served by exactly one healthy-looking NAT and every host through its own AZ's NAT, for `holdMs` in a row. */
  async settled(timeoutMs, holdMs = 5_000) {
    const t0 = Date.now();
    let since;
    for (;;) {
      const v = await this.current();
      const ok = v.hosts.length > 0 && v.hosts.every(v.ownAz) && v.zones.every((az) => v.nats.filter((n) => n.az === az).length === 1) && !v.instances.some((i) => i.state === 'pending' || i.state === 'shutting-down');
      if (ok) {
        since ??= Date.now();
        if (Date.now() - since >= holdMs) return Date.now() - t0;
      } else since = undefined;
      if (Date.now() - t0 > timeoutMs) throw new Error(`${this.name}: not settled within ${timeoutMs / 1000} s: ${JSON.stringify(v.hosts.map((h) => ({ az: h.az, tcp: h.tcp?.answer, ok: h.tcp?.ok, udp: h.udp?.ok })))}`);
      await sleep(500);
    }
  }

  /** Outage windows of the stack's hosts (optionally of one AZ) that started at or after `since`. */
  async windowsSince(since, az) {
    const v = await this.current();
    return v.hosts
      .filter((h) => az === undefined || h.az === az)
      .flatMap((h) => h.outages.filter((o) => o.start >= since - this.probeIntervalMs).map((o) => ({ hostId: h.id, az: h.az, proto: o.proto, start: o.start, end: o.end, durationMs: o.durationMs, failed: o.failed })));
  }
}

/** `successorAz` of packages/core, for AZs that all serve. */
export function successorOf(az, zones) {
  const others = zones.filter((z) => z !== az).sort();
  return others.find((z) => z > az) ?? others[0];
}


/**
 * An agent "bundle" for `hanat-lab up --agent` that runs the real one as systemd runs it on the
 * NAT image (scripts/systemd/hanat-agent.service): restarted 10 s after it fails
 * (Restart=on-failure, RestartSec=10s), never after exit code 2 (RestartPreventExitStatus=2),
 * SIGTERM passed on. The lab starts an agent once and does not restart it; on a loaded machine
 * an agent whose IMDS calls time out at boot gives up, and on AWS systemd would start it again.
 * `env` adds to the agent's environment (the lab gives agents a fixed one). Restarts are logged
 * to the agent's log as `bench.agent_restart` lines.
 */
export function agentUnderSystemd(env, name) {
  const dir = join(root, '.lab', 'bench-agents');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `agent-${name}.cjs`);
  const bundle = join(root, 'packages/agent/dist/hanat-agent.cjs');
  writeFileSync(
    file,
    `'use strict';
// Written by bench/replacement-outage/lab-session.mjs agentUnderSystemd(): systemd's Restart=on-failure for the lab.
const { spawn } = require('node:child_process');
const env = { ...process.env, ...${JSON.stringify(env)} };
let child;
let stopping = false;
function start() {
  child = spawn(process.execPath, [...process.execArgv, ${JSON.stringify(bundle)}, ...process.argv.slice(2)], { env, stdio: 'inherit' });
  child.on('exit', (code, signal) => {
    if (stopping || signal || code === 0 || code === 2) process.exit(code ?? 1);
    process.stdout.write(JSON.stringify({ event: 'bench.agent_restart', code, restartInMs: 10000 }) + '\\n');
    setTimeout(start, 10000);
  });
}
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => { stopping = true; if (child && child.exitCode === null) child.kill(sig); else process.exit(0); });
start();
`,
  );
  return file;
}
