/**
 * The real hanat CLI in process against an emulator: its program with its own
 * SDK clients, pointed at the emulator through the environment as a user's shell
 * would be after `eval "$(hanat-lab serve …)"`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll } from 'vitest';
import { awsFactory } from '../../../cli/src/aws.js';
import { run } from '../../../cli/src/run.js';
import { credentials } from './helpers.js';

const SDK_ENV = ['AWS_ENDPOINT_URL', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_PROFILE', 'AWS_DEFAULT_REGION'];

/** Saves the SDK's environment before a file's tests and puts it back after them. */
export function keepSdkEnv(): void {
  const saved: Record<string, string | undefined> = {};
  beforeAll(() => {
    for (const k of SDK_ENV) saved[k] = process.env[k];
  });
  afterAll(() => {
    for (const k of SDK_ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  });
}

/** Points every SDK client the CLI makes at the emulator, with the test credentials. */
export function pointSdkAt(url: string): void {
  process.env.AWS_ENDPOINT_URL = url;
  process.env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
  process.env.AWS_REGION = 'us-east-1';
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

/**
 * Runs `hanat <argv>` with no terminal. `confirm` answers any prompt (there is none
 * without a terminal unless a command asks anyway); `onStderr` sees each write.
 */
export async function hanatCli(
  argv: string[],
  opts: { confirm?: boolean; onStderr?: (s: string) => void } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    aws: awsFactory(() => {}),
    stdout: (s) => (stdout += s),
    stderr: (s) => {
      stderr += s;
      opts.onStderr?.(s);
    },
    stdinIsTTY: false,
    stderrIsTTY: false,
    env: { ...process.env, NO_COLOR: '1' },
    confirm: () => Promise.resolve(opts.confirm ?? false),
    clock: { now: () => Date.now(), sleep: (ms, signal) => sleep(ms, undefined, { signal }) },
    signal: new AbortController().signal,
    pollIntervalMs: 25,
  });
  return { code, stdout, stderr };
}
