/**
 * Every host change the data plane makes goes through an injected `Exec`, so tests can
 * read the argv and the lab has one place where commands run (STYLE.md, practice 11).
 */
import { spawn } from 'node:child_process';

export interface ExecOptions {
  /** Written to the command's stdin (for `ip -batch -` and `nft -f -`). */
  input?: string;
}

/** Runs argv and resolves with its stdout; rejects with `ExecError` on a non-zero exit. */
export type Exec = (argv: readonly string[], options?: ExecOptions) => Promise<string>;

export class ExecError extends Error {
  override readonly name = 'ExecError';
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    options?: ErrorOptions,
  ) {
    super(`${argv.join(' ')} failed (exit ${exitCode ?? 'signal'}): ${stderr.trim() || 'no output'}`, options);
  }
}

export const execCommand: Exec = (argv, options = {}) =>
  new Promise((resolve, reject) => {
    const [file, ...args] = argv;
    if (file === undefined) {
      reject(new RangeError('exec: empty argv'));
      return;
    }
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new ExecError(argv, null, err.message, { cause: err })));
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new ExecError(argv, code, stderr))));
    child.stdin.on('error', () => {}); // a command that exits early closes its stdin: the exit code tells
    child.stdin.end(options.input ?? '');
  });

/** `ip -n <ns> ...` */
export function ipIn(ns: string, ...args: string[]): string[] {
  return ['ip', '-n', ns, ...args];
}

/** A command run inside a namespace: `ip netns exec <ns> ...` */
export function inNamespace(ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}
