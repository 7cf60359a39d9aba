/**
 * Runs the built `hanat` binary (packages/cli/bin/hanat.mjs, which loads the
 * esbuild bundle) as a separate process, the way a user does, on the wall clock.
 * `pnpm test` builds the bundle first; these tests do not build it.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const REPO = join(import.meta.dirname, '../../../..');
export const HANAT_BIN = join(REPO, 'packages/cli/bin/hanat.mjs');

export function requireCliBundle(): void {
  if (!existsSync(join(REPO, 'packages/cli/dist/hanat.mjs'))) throw new Error('missing packages/cli/dist/hanat.mjs: run `pnpm build` first (`pnpm test` does)');
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock time from spawn to exit, ms. */
  ms: number;
}

/**
 * Runs `hanat args` with `env` only (PATH aside: nothing inherited, so no AWS
 * setting of the machine leaks in); stdin is closed. Killed after `killAfterMs`.
 */
export function runHanat(args: readonly string[], env: Record<string, string>, killAfterMs = 10_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(process.execPath, [HANAT_BIN, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - start });
    });
  });
}
