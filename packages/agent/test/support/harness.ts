/** Small test helpers: captured log lines, a fake clock, fake AWS errors. */
import { Writable } from 'node:stream';
import type { Clock } from '../../src/clock.js';

export interface LogLine {
  level: string;
  event?: string;
  component?: string;
  msg: string;
  [k: string]: unknown;
}

/** A pino destination that keeps the parsed lines. */
export function logCapture(): { stream: Writable & { write(s: string): boolean }; lines: LogLine[]; events(): string[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
      cb();
    },
  });
  // pino calls write() synchronously with one line at a time.
  const sync = Object.assign(stream, {
    write(s: string) {
      for (const l of s.split('\n')) if (l.trim()) lines.push(JSON.parse(l) as LogLine);
      return true;
    },
  });
  return { stream: sync, lines, events: () => lines.map((l) => l.event ?? '').filter(Boolean) };
}

/** A clock the test moves by hand. `sleep` resolves when the test advances past it. */
export class FakeClock implements Clock {
  private t = Date.parse('2030-01-01T00:00:00.000Z');
  private sleepers: { at: number; resolve: () => void }[] = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((x) => x !== s);
        resolve();
      };
      const s = {
        at: this.t + ms,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.sleepers.push(s);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Resolves once the code under test is waiting on the clock again (after its I/O, loopback included, settled). */
  async idle(timeoutMs = 5_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (let turn = 0; this.sleepers.length === 0; turn++) {
      if (Date.now() > end) throw new Error('the code under test never went to sleep on the clock');
      await new Promise((r) => (turn % 50 === 49 ? setTimeout(r, 1) : setImmediate(r)));
    }
  }

  /** Moves time forward and wakes every sleeper that is due. */
  tick(ms: number): void {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.at <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.at > this.t);
    for (const s of due) s.resolve();
  }

  /** `tick`, then wait until the code sleeps again. */
  async advance(ms: number): Promise<void> {
    this.tick(ms);
    await this.idle();
  }

  /** The delay of the earliest pending sleep, if any. */
  nextWakeIn(): number | undefined {
    if (this.sleepers.length === 0) return undefined;
    return Math.min(...this.sleepers.map((s) => s.at)) - this.t;
  }
}

/** An error shaped like the SDK's service exceptions. */
export function awsError(name: string, status = 400, message = `${name} (fake)`): Error {
  return Object.assign(new Error(message), { name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

/** Fake credentials and region so no SDK code ever looks for real ones. */
export function fakeAwsEnv(): void {
  process.env.AWS_ACCESS_KEY_ID = 'AKIDFAKEFAKEFAKE';
  process.env.AWS_SECRET_ACCESS_KEY = 'fake-secret';
  process.env.AWS_REGION = 'us-east-1';
  delete process.env.AWS_PROFILE;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
}

/**
 * An in-memory UDP network for the HA runtime: sockets bound by address, datagrams
 * delivered on the next macrotask unless `drop` says otherwise. `sent` records every
 * datagram.
 */
export class FakeUdpNetwork {
  readonly sent: { from: string; to: string; buf: Buffer }[] = [];
  private readonly bound = new Map<string, (buf: Buffer, from: string) => void>();
  drop: (from: string, to: string) => boolean = () => false;

  readonly factory = (bind: { address: string; port: number }, onMessage: (buf: Buffer, from: string) => void) => {
    const key = `${bind.address}:${bind.port}`;
    this.bound.set(key, onMessage);
    return Promise.resolve({
      send: (buf: Buffer, port: number, address: string) => {
        this.sent.push({ from: bind.address, to: address, buf });
        if (this.drop(bind.address, address)) return;
        const deliver = this.bound.get(`${address}:${port}`);
        if (deliver) setImmediate(() => deliver(buf, bind.address));
      },
      close: () => {
        this.bound.delete(key);
      },
    });
  };
}
