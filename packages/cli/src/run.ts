/**
 * The one exit path: runs the program and maps every outcome to an exit
 * code and a message on stderr. main.ts sets process.exitCode from it.
 */
import { CommanderError } from 'commander';
import { VERSION } from '@hanat/core';
import { debugFromEnv } from './debug.js';
import { EXIT, HanatError, InterruptedError } from './errors.js';
import { palette, useColor } from './format.js';
import { buildProgram, type ProgramDeps } from './program.js';

export interface RunDeps extends ProgramDeps {
  /** For the bug report of an internal error. */
  platform?: { node: string; os: string; arch: string };
}

function causeChain(err: unknown): string {
  const lines: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const text = e instanceof Error ? (e.stack ?? e.message) : JSON.stringify(e);
    lines.push(depth === 0 ? text : `caused by: ${text}`);
    e = (e as { cause?: unknown }).cause;
  }
  return lines.join('\n') + '\n';
}

export async function run(argv: readonly string[], deps: RunDeps): Promise<number> {
  const program = buildProgram(deps);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    const opts = program.opts<{ debug?: boolean; color?: 'auto' | 'always' | 'never' }>();
    const debug = Boolean(opts.debug) || argv.includes('--debug') || debugFromEnv(deps.env.HANAT_DEBUG);
    const p = palette(useColor(opts.color ?? 'auto', deps.stderrIsTTY, deps.env));

    if (err instanceof CommanderError) {
      // commander has already written its message (or the help) to stderr/stdout.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof InterruptedError) {
      deps.stderr(`${p.yellow('interrupted:')} ${err.message}\n`);
      if (debug) deps.stderr(causeChain(err));
      return err.exitCode;
    }
    if (err instanceof HanatError && err.exitCode !== EXIT.internal) {
      deps.stderr(`${p.red('error:')} ${err.message}\n`);
      if (debug) deps.stderr(causeChain(err));
      return err.exitCode;
    }
    const platform = deps.platform ?? { node: process.version, os: process.platform, arch: process.arch };
    deps.stderr(
      `${p.red('error:')} internal error: ${err instanceof Error ? err.message : String(err)}\n` +
        `This is a bug in hanat. Please report it with the command you ran (without secrets) and these versions:\n` +
        `  hanat ${VERSION}, node ${platform.node}, ${platform.os} ${platform.arch}\n` +
        (debug ? causeChain(err) : 'Run the command again with --debug to include the stack trace.\n'),
    );
    return EXIT.internal;
  }
}
