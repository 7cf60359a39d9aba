/**
 * The host, injected: every shell-out goes through `Exec` (argv, never a shell)
 * and file reads through `HostFs`, so unit tests check the exact argv and the
 * kernel test can run the same code inside a network namespace.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file` with `args`. Resolves with the exit code (never rejects on a non-zero exit); rejects when it cannot start. */
export type Exec = (file: string, args: readonly string[], opts?: { input?: string }) => Promise<ExecResult>;

export interface HostFs {
  readFile(path: string): Promise<string>;
}

const EXEC_TIMEOUT_MS = 10_000;

export const realExec: Exec = (file, args, opts) =>
  new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
      timeout: EXEC_TIMEOUT_MS,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.on('error', () => {});
    child.stdin.end(opts?.input ?? '');
  });

export const realFs: HostFs = {
  readFile: (path) => readFile(path, 'utf8'),
};
