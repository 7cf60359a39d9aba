/**
 * Runs a command on a real pseudo-terminal, so that tests drive it the way a
 * person at a terminal does: its stdin, stdout and stderr are a tty, keystrokes
 * go through the kernel's line discipline (Ctrl-C becomes SIGINT for the
 * foreground process group when the program has not put the terminal in raw
 * mode, Ctrl-D ends a line read), and the program decides for itself whether it
 * is interactive.
 *
 * The terminal comes from util-linux's `script` (Debian's bsdutils, an essential
 * package), which copies our pipe into the terminal's master side and the
 * master's output back out; `-e` makes it exit with the command's own status.
 */
import { spawn, spawnSync } from 'node:child_process';

export const KEY = { enter: '\r', ctrlC: '\x03', ctrlD: '\x04' } as const;

export interface PtyExit {
  /** The command's exit status, as `script -e` reports it (128 + n for a signal). */
  code: number | null;
  /** Everything the terminal showed, with carriage returns dropped. */
  screen: string;
}

export interface PtySession {
  /** What the terminal has shown so far. */
  screen(): string;
  /** Resolves once the screen contains `text` (after `from` characters); rejects after `timeoutMs`. */
  waitFor(text: string | RegExp, timeoutMs?: number, from?: number): Promise<void>;
  /** Types keystrokes into the terminal, as a person would. */
  type(keys: string): void;
  exited: Promise<PtyExit>;
  /** Kills the whole session (for cleanup after a failed assertion). */
  kill(): void;
}

/** Throws when this machine has no `script` to make a terminal with: a pty test must never skip. */
export function requirePty(): void {
  const r = spawnSync('script', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error('the pseudo-terminal tests need util-linux `script` (Debian package bsdutils)');
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function spawnPty(argv: readonly string[], opts: { env: NodeJS.ProcessEnv; cwd?: string }): PtySession {
  const child = spawn('script', ['-q', '-f', '-e', '-c', `exec ${argv.map(quote).join(' ')}`, '/dev/null'], {
    env: { TERM: 'xterm', ...opts.env },
    cwd: opts.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let screen = '';
  const waiters = new Set<() => void>();
  let done = false;
  const onData = (b: Buffer) => {
    screen += b.toString('utf8').replace(/\r/g, '');
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);

  const exited = new Promise<PtyExit>((resolve) => {
    child.on('close', (code) => {
      done = true;
      for (const w of waiters) w();
      resolve({ code, screen });
    });
  });

  return {
    screen: () => screen,
    waitFor(text, timeoutMs = 15_000, from = 0) {
      const seen = () => (typeof text === 'string' ? screen.indexOf(text, from) >= 0 : text.test(screen.slice(from)));
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(text)} on the terminal; it shows:\n${screen}`));
        }, timeoutMs);
        const check = () => {
          if (seen()) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          } else if (done) {
            clearTimeout(timer);
            waiters.delete(check);
            reject(new Error(`the command exited before ${String(text)} appeared; the terminal shows:\n${screen}`));
          }
        };
        waiters.add(check);
        check();
      });
    },
    type(keys) {
      child.stdin.write(keys);
    },
    exited,
    kill() {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}
