/**
 * A run's state file, /run/hanat-lab/<prefix>.json: who owns the run and where to reach
 * it. Commands use it to find a running lab; cleanup uses it and the namespace names
 * (every one carries the run's prefix) to remove what a crashed run left behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Exec } from './exec.js';
import { RUN_NAMESPACE_PATTERN, assertPrefix } from './names.js';
import { destroyNamespaces, listNamespaces } from './processes.js';

export const DEFAULT_STATE_DIR = '/run/hanat-lab';

export interface RunState {
  prefix: string;
  /** The process that owns the run. */
  pid: number;
  startedAt: string;
  /** Where the run keeps logs. */
  runDir: string;
  /** Anything the owner wants commands to find (admin endpoint, emulator port...). */
  [key: string]: unknown;
}

export function stateFile(stateDir: string, prefix: string): string {
  return join(stateDir, `${assertPrefix(prefix)}.json`);
}

export function writeRunState(stateDir: string, state: RunState): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(stateFile(stateDir, state.prefix), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
}

export function readRunStates(stateDir: string): RunState[] {
  let files: string[];
  try {
    files = readdirSync(stateDir);
  } catch {
    return [];
  }
  const out: RunState[] = [];
  for (const f of files) {
    if (!/^hl[0-9a-f]{4}\.json$/.test(f)) continue;
    try {
      out.push(JSON.parse(readFileSync(join(stateDir, f), 'utf8')) as RunState);
    } catch {
      // a half-written or foreign file is not a run
    }
  }
  return out;
}

export function removeRunState(stateDir: string, prefix: string): void {
  rmSync(stateFile(stateDir, prefix), { force: true });
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The namespaces of one run (prefix given) or of every run. */
export async function runNamespaces(exec: Exec, prefix?: string): Promise<string[]> {
  return (await listNamespaces(exec)).filter((ns) => {
    const m = RUN_NAMESPACE_PATTERN.exec(ns);
    return m !== null && (prefix === undefined || m[1] === prefix);
  });
}

/** Removes a run: its processes, namespaces (and so links) and state file. Idempotent. */
export async function cleanupRun(exec: Exec, stateDir: string, prefix: string): Promise<string[]> {
  const namespaces = await runNamespaces(exec, assertPrefix(prefix));
  await destroyNamespaces(exec, namespaces);
  removeRunState(stateDir, prefix);
  return namespaces;
}

/** `cleanup --all`: every namespace named like a lab run's, and every state file. */
export async function cleanupAll(exec: Exec, stateDir: string): Promise<string[]> {
  const namespaces = await runNamespaces(exec);
  await destroyNamespaces(exec, namespaces);
  for (const s of readRunStates(stateDir)) removeRunState(stateDir, s.prefix);
  return namespaces;
}

/**
 * The same as `cleanupRun`, synchronously, for a process `exit` handler (where nothing
 * asynchronous runs). Best effort: it must not throw while the process is exiting.
 */
export function cleanupRunSync(stateDir: string, prefix: string): void {
  const run = (args: string[]): string => {
    try {
      return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  const namespaces = run(['-j', 'netns', 'list']).trim();
  const names = namespaces ? (JSON.parse(namespaces) as { name: string }[]).map((n) => n.name).filter((n) => n.startsWith(`${prefix}-`)) : [];
  for (const ns of names) {
    for (const pid of run(['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
  // Killed processes release their namespace asynchronously; give them a moment.
  const deadline = Date.now() + 2_000;
  while (Date.now() < deadline && names.some((ns) => run(['netns', 'pids', ns]).trim() !== '')) {
    execFileSync('sleep', ['0.02']);
  }
  for (const ns of names) run(['netns', 'del', ns]);
  try {
    removeRunState(stateDir, prefix);
  } catch {
    // best effort
  }
}
