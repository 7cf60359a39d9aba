/**
 * The `hanat-lab` bundle entry and its one exit path: wires the process
 * (streams, environment, signals) into the program and maps errors to exit
 * codes (0 ok, 1 failed, 2 bad usage). The only file that touches `process`.
 */
import { CommanderError } from 'commander';
import { buildProgram } from './cli/program.js';

// SIGHUP too: closing the terminal of a foreground `hanat-lab up` must tear the lab down,
// not kill Node before its teardown runs (an 'exit' handler does not run on a signal).
const stop = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (stop.signal.aborted) process.exit(130);
    stop.abort();
  });
}
process.removeAllListeners('warning');
// `hanat-lab probe | head`: a reader that goes away early is not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

const program = buildProgram({
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
  signal: stop.signal,
  stdoutIsTTY: process.stdout.isTTY === true,
}).exitOverride();

try {
  await program.parseAsync(process.argv);
  process.exitCode = 0;
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    const { exitCode: code, reported } = err as { exitCode?: unknown; reported?: unknown };
    // A detached lab's failure is already in its log, as a JSON line (lab.log holds nothing else).
    if (reported !== true) process.stderr.write(`hanat-lab: ${err instanceof Error ? err.message : String(err)}\n`);
    if (typeof code !== 'number' && err instanceof Error && err.stack && process.env.HANAT_LAB_DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = typeof code === 'number' ? code : 1;
  }
}
