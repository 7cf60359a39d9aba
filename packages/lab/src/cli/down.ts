/** `hanat-lab down` stops a running lab; `hanat-lab cleanup` removes what crashed labs left behind. */
import { Option, type Command } from 'commander';
import { adminRequest } from '../dataplane/admin.js';
import { NoLabError, orphanNote, orphanedRuns, type RunningLab } from '../dataplane/client.js';
import { LabOperationError, LabUsageError, labFor, stateDirOf, type LabCommandDeps } from '../dataplane/cli-support.js';
import { execCommand } from '../dataplane/exec.js';
import { PREFIX_PATTERN } from '../dataplane/names.js';
import { cleanupAll, cleanupRun, pidAlive, readRunStates, runNamespaces } from '../dataplane/state.js';
import { labCall, labError } from './probe.js';

export interface DownResult {
  /** The lab stopped; absent when none was running (`down` is idempotent). */
  prefix?: string;
  /** Why nothing was stopped, and what crashed labs left behind. */
  note?: string;
  /** The lab named was not running, and what its dead process left behind was removed. */
  removedOrphan?: boolean;
}

export async function downAction(opts: { lab?: string; timeout?: string }, deps: LabCommandDeps): Promise<DownResult> {
  let lab: RunningLab;
  try {
    lab = labFor(deps, opts.lab);
  } catch (err) {
    // Nothing to stop is success, as `hanat destroy` of a missing stack is; an ambiguous or
    // unreadable state is not.
    if (err instanceof NoLabError && err.reason === 'none') {
      // `down --lab X` of a lab whose process died (its state file is still here): finish its
      // teardown, as `cleanup --lab X` would. Namespaces alone may be another state directory's lab.
      if (opts.lab !== undefined && orphanedRuns(stateDirOf(deps)).some((r) => r.prefix === opts.lab)) {
        const { removed } = await cleanupAction({ lab: opts.lab }, deps);
        return { removedOrphan: true, note: `lab ${opts.lab} was not running (its process was gone); removed what it left: ${removed.length ? removed.join(' ') : 'its state file'}` };
      }
      const orphans = orphanNote(stateDirOf(deps));
      return { note: `${opts.lab === undefined ? 'no lab is running' : `lab ${opts.lab} is not running`}${orphans ? `; ${orphans}` : ''}` };
    }
    throw labError(err);
  }
  await labCall(() => adminRequest(lab.admin, 'POST', '/down'));
  const deadline = Date.now() + Number(opts.timeout ?? 60) * 1000;
  while (pidAlive(lab.pid) || readRunStates(stateDirOf(deps)).some((s) => s.prefix === lab.prefix)) {
    if (Date.now() > deadline) throw new LabOperationError(`lab ${lab.prefix} (pid ${lab.pid}) did not stop in time; \`hanat-lab cleanup\` removes what is left once it is gone`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { prefix: lab.prefix };
}

/**
 * Without options: the runs whose owner process is gone. With `lab`: that run only, if its
 * owner is gone (other labs, such as tests with their own state directory, are left alone).
 * With `all`: every lab namespace there is.
 */
export async function cleanupAction(opts: { all?: boolean; lab?: string }, deps: LabCommandDeps): Promise<{ removed: string[] }> {
  if (process.getuid?.() !== 0) throw new LabUsageError('cleanup needs root (it deletes network namespaces); run it as root');
  const stateDir = stateDirOf(deps);
  if (opts.all) return { removed: await cleanupAll(execCommand, stateDir) };
  if (opts.lab !== undefined) {
    const prefix = opts.lab;
    if (!PREFIX_PATTERN.test(prefix)) throw new LabUsageError(`--lab must be a lab prefix (hl + 4 hex digits, as \`hanat-lab status\` shows), got ${JSON.stringify(prefix)}`);
    const owner = readRunStates(stateDir).find((s) => s.prefix === prefix && pidAlive(s.pid));
    if (owner) throw new LabUsageError(`lab ${prefix} is still running (pid ${owner.pid}); stop it with \`hanat-lab down --lab ${prefix}\``);
    return { removed: await cleanupRun(execCommand, stateDir, prefix) };
  }
  const live = new Set(readRunStates(stateDir).filter((s) => pidAlive(s.pid)).map((s) => s.prefix));
  const prefixes = new Set<string>([...readRunStates(stateDir).map((s) => s.prefix), ...(await runNamespaces(execCommand)).map((ns) => ns.slice(0, 6))]);
  const removed: string[] = [];
  for (const p of prefixes) if (!live.has(p)) removed.push(...(await cleanupRun(execCommand, stateDir, p)));
  return { removed };
}

export function registerDown(program: Command, deps: LabCommandDeps): void {
  program
    .command('down')
    .description('stop the running lab: agents, namespaces, links and the emulator')
    .option('--lab <prefix>', 'which lab, when several run')
    .option('--timeout <s>', 'how long to wait for it to stop', '60')
    .action(async (opts: { lab?: string; timeout?: string }) => {
      const r = await downAction(opts, deps);
      deps.stderr(r.prefix ? `hanat-lab: lab ${r.prefix} stopped\n` : r.removedOrphan ? `hanat-lab: ${r.note}\n` : `hanat-lab: ${r.note ?? 'no lab is running'}; nothing to stop\n`);
    });
  program
    .command('cleanup')
    .description("remove what crashed labs left behind (their namespaces, links and processes)")
    .addOption(new Option('--lab <prefix>', 'only this run (its owner process must be gone)').conflicts('all'))
    .option('--all', 'remove every lab namespace (hlxxxx-*), running labs included')
    .action(async (opts: { all?: boolean; lab?: string }) => {
      const r = await cleanupAction(opts, deps);
      deps.stdout(r.removed.length ? `removed ${r.removed.join(' ')}\n` : 'nothing to clean up\n');
    });
}
