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

function confirm(question: string, signal: AbortSignal): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return new Promise<boolean>((resolve) => {
    const done = (answer: boolean) => {
      rl.close();
      resolve(answer);
    };
    rl.on('SIGINT', () => {
      interrupt.abort();
      done(false);
    });
    rl.on('close', () => resolve(false));
    signal.addEventListener('abort', () => done(false), { once: true });
    rl.question(`${question} [y/N] `, (a) => done(/^y(es)?$/i.test(a.trim())));
  });
}

process.exitCode = await run(argv, {
  aws: awsFactory((line) => process.stderr.write(`${line}\n`), process.env),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  stdinIsTTY: Boolean(process.stdin.isTTY),
  stderrIsTTY: Boolean(process.stderr.isTTY),
  env: process.env,
  confirm,
  clock,
  signal: interrupt.signal,
});
