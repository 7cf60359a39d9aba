/**
 * The prober, run inside a private host namespace. Every interval it opens a fresh TCP
 * connection and sends a fresh UDP datagram (new source ports, so every probe is a new
 * flow through the NAT) to the internet hosts, and writes one JSON line per probe to
 * stdout, in the order the probes were sent, so the reader can compute outage windows
 * from a plain sequence.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';

export interface ProbeTarget {
  proto: 'tcp' | 'udp';
  host: string;
  port: number;
}

export interface ProberOptions {
  targets: ProbeTarget[];
  intervalMs: number;
  timeoutMs: number;
}

/** One probe's outcome, as written on stdout. */
export interface ProbeResult {
  seq: number;
  /** When the probe was sent (epoch ms). */
  t: number;
  proto: 'tcp' | 'udp';
  target: string;
  ok: boolean;
  /** The address the internet host saw (the NAT's public address). */
  answer?: string;
  rttMs?: number;
  error?: string;
}

export function probeTcp(target: ProbeTarget, timeoutMs: number): Promise<{ answer: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port });
    let data = '';
    const timer = setTimeout(() => fail(new Error('timeout')), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', fail);
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      const answer = data.trim();
      if (answer) resolve({ answer });
      else reject(new Error('empty answer'));
    });
  });
}

export function probeUdp(target: ProbeTarget, timeoutMs: number, seq: number): Promise<{ answer: string }> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const token = `probe-${process.pid}-${seq}`;
    const timer = setTimeout(() => finish(new Error('timeout')), timeoutMs);
    const finish = (err: Error | undefined, answer?: string): void => {
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve({ answer: answer ?? '' });
    };
    socket.on('error', (err) => finish(err));
    socket.on('message', (msg) => {
      const [seen, payload] = msg.toString('utf8').split(' ');
      if (payload === token && seen) finish(undefined, seen);
    });
    socket.send(token, target.port, target.host);
  });
}

export function runProber(options: ProberOptions, write: (line: string) => void = (l) => void process.stdout.write(l)): { close(): void } {
  let seq = 0;
  let nextToEmit = 0;
  const done = new Map<number, ProbeResult>();
  const emit = (r: ProbeResult): void => {
    done.set(r.seq, r);
    while (done.has(nextToEmit)) {
      write(JSON.stringify(done.get(nextToEmit)) + '\n');
      done.delete(nextToEmit++);
    }
  };
  const probeOnce = (target: ProbeTarget): void => {
    const mySeq = seq++;
    const t = Date.now();
    const started = performance.now();
    const base = { seq: mySeq, t, proto: target.proto, target: `${target.host}:${target.port}` };
    const p = target.proto === 'tcp' ? probeTcp(target, options.timeoutMs) : probeUdp(target, options.timeoutMs, mySeq);
    p.then(
      ({ answer }) => emit({ ...base, ok: true, answer, rttMs: Math.round((performance.now() - started) * 100) / 100 }),
      (err: Error) => emit({ ...base, ok: false, error: err.message }),
    );
  };
  // Scheduled against the start time, so the interval does not drift with event-loop delays.
  const start = Date.now();
  let tick = 0;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    for (const target of options.targets) probeOnce(target);
    tick++;
    timer = setTimeout(schedule, Math.max(0, start + tick * options.intervalMs - Date.now()));
  };
  schedule();
  return { close: () => clearTimeout(timer) };
}
