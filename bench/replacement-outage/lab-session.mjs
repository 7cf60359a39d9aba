// A lab session for benchmarks: start `hanat-lab up --detach`, deploy the stack with the
// real `hanat deploy`, run the lab's commands, tear everything down. Drives the built
// bundles (pnpm build) exactly as a user would.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
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

  async deploy(name, azs) {
    await this.hanat(['deploy', '--name', name, '--cidr-prefix', '10.0', '--azs', String(azs), '--yes']);
  }

  /** Waits until every private host reaches the internet through its own AZ's NAT. */
  async waitOwnAz(timeoutS) {
    await this.labCmd(['probe', '--check', '--wait', String(timeoutS)]);
  }

  async stop(stack) {
    if (stack) await this.hanat(['destroy', '--name', stack, '--yes']).catch((e) => log(`destroy failed: ${e.message}`));
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
