/**
 * Lab workers: small processes the data plane runs inside namespaces (`hanat-lab _worker
 * <name> ...`). Each prints one `{"ready":true}` line when it serves, and stops when its
 * stdin closes, that is when the lab process that started it dies: `runWorker` then
 * closes everything it opened and resolves, so the process ends on its own.
 */
import { parseArgs } from 'node:util';
import { runEcho } from './echo.js';
import type { ProbeTarget } from './prober.js';
import { runProber } from './prober.js';
import { runProxy } from './proxy.js';

export class WorkerUsageError extends Error {
  override readonly name = 'WorkerUsageError';
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new WorkerUsageError(`expected host:port, got ${JSON.stringify(s)}`);
  return { host: s.slice(0, i), port };
}

function positive(name: string, s: string | undefined, fallback: number): number {
  const n = s === undefined ? fallback : Number(s);
  if (!Number.isFinite(n) || n <= 0) throw new WorkerUsageError(`--${name} must be a positive number, got ${JSON.stringify(s)}`);
  return n;
}

/** Runs the worker named by argv[0] until its stdin closes or stdout's reader goes away. */
export async function runWorker(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  let close: () => void;
  switch (name) {
    case 'proxy': {
      const { values } = parseArgs({ args: rest, options: { listen: { type: 'string', multiple: true }, socket: { type: 'string' } } });
      if (!values.socket || !values.listen?.length) throw new WorkerUsageError('proxy needs --socket and at least one --listen host:port');
      const proxy = await runProxy({ listen: values.listen.map(hostPort), socketPath: values.socket });
      close = () => proxy.close();
      break;
    }
    case 'echo': {
      const { values } = parseArgs({ args: rest, options: { address: { type: 'string', multiple: true }, port: { type: 'string' } } });
      if (!values.address?.length) throw new WorkerUsageError('echo needs at least one --address');
      const echo = await runEcho({ addresses: values.address, port: positive('port', values.port, 7) });
      close = () => echo.close();
      break;
    }
    case 'prober': {
      const { values } = parseArgs({
        args: rest,
        options: { tcp: { type: 'string', multiple: true }, udp: { type: 'string', multiple: true }, interval: { type: 'string' }, timeout: { type: 'string' } },
      });
      const targets: ProbeTarget[] = [
        ...(values.tcp ?? []).map((s) => ({ proto: 'tcp' as const, ...hostPort(s) })),
        ...(values.udp ?? []).map((s) => ({ proto: 'udp' as const, ...hostPort(s) })),
      ];
      if (targets.length === 0) throw new WorkerUsageError('prober needs at least one --tcp or --udp target');
      const prober = runProber({ targets, intervalMs: positive('interval', values.interval, 100), timeoutMs: positive('timeout', values.timeout, 1000) });
      close = () => prober.close();
      break;
    }
    default:
      throw new WorkerUsageError(`unknown worker ${JSON.stringify(name)}: expected proxy, echo or prober`);
  }
  await new Promise<void>((resolve) => {
    process.stdout.on('error', () => resolve()); // the reader is gone
    process.stdin.on('end', resolve).on('close', resolve).on('error', resolve);
    process.stdin.resume();
    process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  });
  close();
  process.stdin.destroy();
}
