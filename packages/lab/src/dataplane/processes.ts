/** Processes inside lab namespaces: start them, and kill everything a namespace holds. */
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { Exec } from './exec.js';

export interface SpawnInOptions {
  /** The whole environment of the process (nothing is inherited). */
  env: Record<string, string>;
  /** Append stdout and stderr to this file (stdin is then /dev/null); otherwise all three are pipes. */
  logFile?: string;
  cwd?: string;
}

/**
 * Starts argv inside a namespace. `ip netns exec` execs the command, so the child's pid is
 * the command's own pid, and signals sent to it reach the command. A worker's stdin is a
 * pipe: workers exit when it closes, that is when the lab process dies.
 */
export function spawnIn(ns: string, argv: readonly string[], options: SpawnInOptions): ChildProcess {
  let stdio: StdioOptions = ['pipe', 'pipe', 'pipe'];
  let fd: number | undefined;
  if (options.logFile !== undefined) {
    fd = openSync(options.logFile, 'a');
    stdio = ['ignore', fd, fd];
  }
  try {
    return spawn('ip', ['netns', 'exec', ns, ...argv], { stdio, env: options.env, cwd: options.cwd ?? '/' });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A minimal environment for processes in namespaces. */
export function baseEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: home,
    LANG: 'C.UTF-8',
  };
}

/** Pids of the processes whose network namespace is `ns` (none when the namespace is gone). */
export async function namespacePids(exec: Exec, ns: string): Promise<number[]> {
  let out: string;
  try {
    out = await exec(['ip', 'netns', 'pids', ns]);
  } catch {
    return [];
  }
  return out
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

export async function namespaceExists(exec: Exec, ns: string): Promise<boolean> {
  return (await listNamespaces(exec)).includes(ns);
}

export async function listNamespaces(exec: Exec): Promise<string[]> {
  const out = await exec(['ip', '-j', 'netns', 'list']);
  if (!out.trim()) return []; // ip prints nothing when /run/netns does not exist yet
  return (JSON.parse(out) as { name: string }[]).map((n) => n.name);
}

export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false; // already gone
  }
}

/**
 * Whether a process still runs. A zombie does not: it has left its namespaces already, and an
 * orphan's zombie waits for the machine's init to reap it, which on some hosts polls (every
 * ~2 s here), so counting it held every kill up by that long.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false; // reaped meanwhile
  }
}

/**
 * Kills every process in the namespaces (SIGKILL), waits until they are gone, then deletes
 * the namespaces, which deletes their links. A namespace that still holds a process would
 * outlive its name, so processes go first. Idempotent.
 */
export async function destroyNamespaces(exec: Exec, namespaces: readonly string[], deadlineMs = 5_000): Promise<void> {
  const existing = new Set(await listNamespaces(exec));
  const targets = namespaces.filter((ns) => existing.has(ns));
  const pids = (await Promise.all(targets.map((ns) => namespacePids(exec, ns)))).flat();
  for (const pid of pids) signalPid(pid, 'SIGKILL');
  const deadline = Date.now() + deadlineMs;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const ns of targets) {
    try {
      await exec(['ip', 'netns', 'del', ns]);
    } catch (err) {
      if (await namespaceExists(exec, ns)) throw err;
    }
  }
}
