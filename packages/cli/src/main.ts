/**
 * The `hanat` bundle entry: wires the real world (process streams, the SDK
 * client factory, the wall clock, SIGINT) into run() and sets the exit code.
 * This is the only file that touches `process`.
 */
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { awsFactory } from './aws.js';
import { debugFromEnv } from './debug.js';
import type { Clock } from './deps.js';
import { run } from './run.js';

const argv = process.argv.slice(2);
const debug = argv.includes('--debug') || debugFromEnv(process.env.HANAT_DEBUG);

// Node prints process warnings (the SDK emits a few) to stderr by default;
// users see them only with --debug.
process.removeAllListeners('warning');
if (debug) process.on('warning', (w) => process.stderr.write(`node warning: ${w.stack ?? w.message}\n`));

// First Ctrl-C: stop waiting and leave the stack alone (the action says how
// to watch it again). A second Ctrl-C exits at once.
const interrupt = new AbortController();
process.on('SIGINT', () => {
  if (interrupt.signal.aborted) process.exit(130);
  interrupt.abort();
});

const clock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }),
};

/**
 * Asks on the terminal. Settles exactly once: with the answer typed, or `false`
 * on Ctrl-D (readline closes) or Ctrl-C (readline's own SIGINT, since it holds the
 * terminal in raw mode; it also aborts `interrupt`, so the action exits 130).
 * The answer is settled before the interface is closed, because closing it
 * emits 'close', which must not turn a "y" into a "no".
 */
function confirm(question: string, signal: AbortSignal): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return new Promise<boolean>((resolve) => {
    let settled = false;
    const settle = (answer: boolean) => {
      if (settled) return;
      settled = true;
      resolve(answer);
      rl.close();
    };
    rl.on('SIGINT', () => {
      interrupt.abort();
      settle(false);
    });
    rl.on('close', () => settle(false));
    signal.addEventListener('abort', () => settle(false), { once: true });
    rl.question(`${question} [y/N] `, (a) => settle(/^y(es)?$/i.test(a.trim())));
  });
}

process.exitCode = await run(argv, {
  aws: awsFactory((line) => process.stderr.write(`${line}\n`), process.env),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  stdinIsTTY: Boolean(process.stdin.isTTY),
  stderrIsTTY: Boolean(process.stderr.isTTY),
  stdoutIsTTY: Boolean(process.stdout.isTTY),
  env: process.env,
  confirm,
  clock,
  signal: interrupt.signal,
});
