/**
 * `hanat-lab serve`: the AWS control-plane emulator alone (no namespaces, no
 * root), on loopback, until SIGINT/SIGTERM/SIGHUP. Prints the environment that points
 * the AWS SDK/CLI and hanat at it.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { createEmulator, isLoopbackHost } from '../emulator/index.js';
import { LabUsageError, envExports } from '../dataplane/cli-support.js';
import { addLatencyOptions, describeLatency, parseOpLatency, type LatencyOptions } from './latency.js';
import type { CliDeps } from './program.js';

export interface ServeOptions extends LatencyOptions {
  port: string;
  host: string;
  bootDelay: string;
  statusCheckDelay: string;
  rateLimits?: string;
  region: string;
}

export interface ServeResult {
  url: string;
  region: string;
  /** The latency in effect, for the start-up message: `aws, ec2:CreateRoute 250 ms`. */
  latency: string;
}

function integer(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new LabUsageError(`${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * Starts the emulator and resolves once it is listening; `stopped` resolves
 * after `signal` aborts and the server has closed.
 */
export async function serveAction(opts: ServeOptions, deps: CliDeps): Promise<ServeResult & { stopped: Promise<void> }> {
  if (!isLoopbackHost(opts.host)) {
    throw new LabUsageError(`--host ${opts.host}: hanat-lab serves on loopback only (127.0.0.1, ::1 or localhost); the emulator checks no signatures and must not be reachable from other machines.`);
  }
  const port = integer('--port', opts.port, 0, 65535);
  const bootDelayMs = integer('--boot-delay', opts.bootDelay, 0, 3_600_000);
  if (!/^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/.test(opts.region)) throw new LabUsageError(`--region ${opts.region}: not an AWS region name (like us-east-1)`);
  const statusCheckDelayMs = integer('--status-check-delay', opts.statusCheckDelay, 0, 3_600_000);
  const opLatency = parseOpLatency(opts.opLatency);
  const emulator = createEmulator({
    latency: opts.latency,
    opLatency,
    bootDelayMs,
    statusCheckDelayMs,
    ...(opts.rateLimits !== undefined ? { rateLimits: opts.rateLimits === 'on' } : {}),
    region: opts.region, log: (m) => deps.stderr(`hanat-lab: ${m}\n`) });
  let listener;
  try {
    listener = await emulator.listen({ host: opts.host, port });
  } catch (err) {
    throw new LabUsageError(`cannot listen on ${opts.host}:${port}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      void emulator.close().then(resolve);
    };
    if (deps.signal.aborted) stop();
    else deps.signal.addEventListener('abort', stop, { once: true });
  });
  return { url: listener.url!, region: opts.region, latency: describeLatency(opts.latency, opLatency), stopped };
}

export function registerServe(program: Command, deps: CliDeps): void {
  const serve = program
    .command('serve')
    .description('run the AWS control-plane emulator (EC2, Auto Scaling, CloudFormation, SSM, IMDS) on loopback, without namespaces')
    .option('--port <n>', 'TCP port (0 picks a free one)', '4566')
    .option('--host <address>', 'loopback address to listen on', '127.0.0.1');
  addLatencyOptions(serve)
    .option('--boot-delay <ms>', 'time from an Auto Scaling launch to the instance running', '0')
    .option('--status-check-delay <ms>', 'time from a crash in place to EC2 status checks reporting the instance impaired', '60000')
    .addOption(new Option('--rate-limits <on|off>', "AWS's API rate limits (token buckets per action); default: on with --latency aws, off with zero").choices(['on', 'off']))
    .option('--region <name>', 'default region (a request signed for another region gets its own)', 'us-east-1')
    .addHelpText(
      'after',
      `
Prints on stdout the environment that points the AWS CLI, the SDK and hanat at it:
  export AWS_ENDPOINT_URL=http://127.0.0.1:<port> ... (fake credentials)
Admin endpoints (loopback only): GET /_lab/counters, POST /_lab/faults, ... (see EMULATOR.md).
Stops on SIGINT, SIGTERM or SIGHUP.`,
    )
    .action(async (opts: ServeOptions) => {
      const r = await serveAction(opts, deps);
      deps.stderr(`hanat-lab: AWS emulator listening on ${r.url} (region ${r.region}, latency ${r.latency}, boot delay ${opts.bootDelay} ms); Ctrl-C stops it\n`);
      deps.stdout(envExports(r.url, r.region));
      await r.stopped;
      deps.stderr('hanat-lab: emulator stopped\n');
    });
}
