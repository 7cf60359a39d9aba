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

export class NoLabError extends Error {
  override readonly name = 'NoLabError';
}

function isRunning(s: RunState): s is RunningLab {
  const admin = s.admin as { url?: unknown; token?: unknown } | undefined;
  return s.ready === true && typeof admin?.url === 'string' && typeof admin.token === 'string' && pidAlive(s.pid);
}

/** The running lab named by `prefix`, or the only one running. */
export function findLab(stateDir: string, prefix?: string): RunningLab {
  const runs = readRunStates(stateDir).filter(isRunning);
  if (prefix !== undefined) {
    const run = runs.find((r) => r.prefix === prefix);
    if (!run) throw new NoLabError(`no running lab ${prefix}${runs.length ? `; running: ${runs.map((r) => r.prefix).join(', ')}` : ''}`);
    return run;
  }
  if (runs.length === 0) {
    const unreadable = unreadableReason(stateDir);
    if (unreadable) throw new NoLabError(`cannot read ${stateDir}, where running labs publish how to reach them (${unreadable}); run hanat-lab as root, like \`hanat-lab up\``);
    throw new NoLabError('no lab is running; start one with `hanat-lab up`');
  }
  if (runs.length > 1) throw new NoLabError(`${runs.length} labs are running (${runs.map((r) => r.prefix).join(', ')}); choose one with --lab <prefix>`);
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
