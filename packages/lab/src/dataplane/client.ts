/** Finding a running lab from another process (`hanat-lab status`, `fault`, `probe`, `down`). */
import { readdirSync } from 'node:fs';
import { pidAlive, readRunStates } from './state.js';
import type { RunState } from './state.js';

export interface RunningLab extends RunState {
  ready: true;
  region: string;
  apiEndpoint: string;
  admin: { url: string; token: string };
}

/**
 * Why no lab was found: `none` (nothing runs, or not the lab asked for), `ambiguous` (several
 * run and nothing says which), `unreadable` (the state directory cannot be read).
 */
export type NoLabReason = 'none' | 'ambiguous' | 'unreadable';

export class NoLabError extends Error {
  override readonly name = 'NoLabError';
  constructor(
    message: string,
    readonly reason: NoLabReason = 'none',
  ) {
    super(message);
  }
}

function isRunning(s: RunState): s is RunningLab {
  const admin = s.admin as { url?: unknown; token?: unknown } | undefined;
  return s.ready === true && typeof admin?.url === 'string' && typeof admin.token === 'string' && pidAlive(s.pid);
}

/** The labs that run now (their owner process is alive and they are ready). */
export function runningLabs(stateDir: string): RunningLab[] {
  return readRunStates(stateDir).filter(isRunning);
}

/** Runs whose owner process is gone without cleaning up (killed, crashed): `hanat-lab cleanup` removes them. */
export function orphanedRuns(stateDir: string): RunState[] {
  return readRunStates(stateDir).filter((s) => !pidAlive(s.pid));
}

/** A sentence about orphaned runs, or '' when there are none. */
export function orphanNote(stateDir: string): string {
  const orphans = orphanedRuns(stateDir);
  if (orphans.length === 0) return '';
  const which = orphans.map((o) => `${o.prefix} (pid ${o.pid})`).join(', ');
  const them = orphans.length === 1 ? `lab ${which} stopped without cleaning up; its namespaces and processes may remain` : `labs ${which} stopped without cleaning up; their namespaces and processes may remain`;
  return `${them}: \`hanat-lab cleanup\` removes them`;
}

function sameEndpoint(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/**
 * The running lab named by `prefix`; else the one whose API is `endpoint` (the shell's
 * AWS_ENDPOINT_URL, as `eval "$(hanat-lab up --detach)"` set it); else the only one running.
 */
export function findLab(stateDir: string, prefix?: string, endpoint?: string): RunningLab {
  const runs = runningLabs(stateDir);
  if (prefix !== undefined) {
    const run = runs.find((r) => r.prefix === prefix);
    if (!run) throw new NoLabError(`no running lab ${prefix}${runs.length ? `; running: ${runs.map((r) => r.prefix).join(', ')}` : ''}`);
    return run;
  }
  if (runs.length === 0) {
    const unreadable = unreadableReason(stateDir);
    if (unreadable) throw new NoLabError(`cannot read ${stateDir}, where running labs publish how to reach them (${unreadable}); run hanat-lab as root, like \`hanat-lab up\``, 'unreadable');
    const orphans = orphanNote(stateDir);
    throw new NoLabError(`no lab is running; ${orphans ? `${orphans}; ` : ''}start one with \`hanat-lab up\``);
  }
  const pointedAt = endpoint ? runs.find((r) => sameEndpoint(r.apiEndpoint, endpoint)) : undefined;
  if (pointedAt) return pointedAt;
  if (runs.length > 1) {
    const list = runs.map((r) => `${r.prefix} at ${r.apiEndpoint}`).join(', ');
    const env = endpoint ? `; AWS_ENDPOINT_URL (${endpoint}) is none of them` : '; AWS_ENDPOINT_URL, which would pick one, is not set';
    throw new NoLabError(`${runs.length} labs are running (${list})${env}; choose one with --lab <prefix>`, 'ambiguous');
  }
  return runs[0]!;
}

/** Why the state directory cannot be listed (EACCES for a non-root user), if it exists and cannot. */
function unreadableReason(stateDir: string): string | undefined {
  try {
    readdirSync(stateDir);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? undefined : (code ?? String(err));
  }
}
