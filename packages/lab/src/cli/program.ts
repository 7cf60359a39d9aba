/**
 * The `hanat-lab` command line: one file per command, each exporting a
 * `register*(program, deps)` that declares options and calls an action.
 * buildProgram() assembles them; main.ts is the one exit path.
 */
import { Command } from 'commander';
import { VERSION } from '@hanat/core';
import { registerServe } from './serve.js';
import { registerLabCommands } from './up.js';

export interface CliDeps {
  stdout(s: string): void;
  stderr(s: string): void;
  env: NodeJS.ProcessEnv;
  /** Aborts on SIGINT, SIGTERM or SIGHUP: long-running commands stop cleanly. */
  signal: AbortSignal;
  /** stdout is a terminal (`up` warns when `eval "$(hanat-lab up)"` would wait for it). */
  stdoutIsTTY?: boolean;
}

export function buildProgram(deps: CliDeps): Command {
  const program = new Command('hanat-lab')
    .description('hanat-lab: a VPC in a box. An AWS control-plane emulator plus a network-namespace data plane for hanat.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    // Before the subcommands are added, which copy it: a usage error in `serve --latency slow`
    // must exit 2 through main.ts, not 1 from commander's own process.exit.
    .exitOverride()
    .configureOutput({ writeOut: (s) => deps.stdout(s), writeErr: (s) => deps.stderr(s) });
  registerServe(program, deps);
  registerLabCommands(program, deps);
  return program;
}
