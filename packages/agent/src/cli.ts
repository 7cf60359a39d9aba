/**
 * hanat-agent's commands. `main` turns typed errors into exit codes and returns
 * the code; src/main.ts (the bundle's entry) is the one place that exits.
 * The host, IMDS, AWS and output are injectable so tests run `main` itself.
 */
import { connect } from 'node:net';
import type { DestinationStream } from 'pino';
import { SetInstanceHealthCommand } from '@aws-sdk/client-auto-scaling';
import { VERSION, autoScalingClient, connectionPool, ec2Client, type AutoScaling, type Connections, type Ec2 } from '@hanat/core';
import { Agent, type HaWiring } from './agent.js';
import { check } from './check.js';
import { probeAddress } from './ha/peers.js';
import { udpSocket, type SocketFactory } from './ha/socket.js';
import { systemClock, type Clock } from './clock.js';
import { HELP, parseCommandLine, resolveConfig, type Config, type Options } from './config.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, OperationError, UsageError, errorMessage } from './errors.js';
import { realExec, realFs, type Exec, type HostFs } from './host.js';
import { cidrContains, readIdentity, type Identity } from './identity.js';
import { DEFAULT_IMDS_ENDPOINT, Imds } from './imds.js';
import { Kernel } from './kernel.js';
import { createLogger, type Logger } from './log.js';

/**
 * SDK settings the agent needs whatever the environment says otherwise:
 * - the SDK's instance-profile credential provider falls back to IMDSv1 when IMDS
 *   refuses it a token; hanat never uses IMDSv1, so that fallback is off;
 * - that provider reads IMDS at AWS_EC2_METADATA_SERVICE_ENDPOINT, so the endpoint
 *   hanat's own client uses (`--imds-endpoint` included) is set there too: both
 *   ask the same IMDS;
 * - the SDK's Node-version notice is plain multi-line text on stderr; the agent
 *   logs the Node version itself.
 */
function sdkEnv(env: NodeJS.ProcessEnv, options: Options): void {
  env.AWS_EC2_METADATA_V1_DISABLED = 'true';
  if (options.imdsEndpoint !== undefined) env.AWS_EC2_METADATA_SERVICE_ENDPOINT = options.imdsEndpoint;
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/** The agent's EC2 client (exported for the lab's tests, which run the agent against AWS's rate limits with it). */
export function agentEc2(region: string, connections: Connections): Ec2 {
  // Few SDK attempts: the agent's loop owns retries (jittered, and logged as aws.retry).
  return ec2Client({ region, component: 'agent', maxAttempts: 2, connectionTimeoutMs: 1_000, requestTimeoutMs: 5_000, connections });
}

function agentAutoScaling(region: string): AutoScaling {
  return autoScalingClient({ region, component: 'agent', maxAttempts: 3, connectionTimeoutMs: 1_000, requestTimeoutMs: 5_000 });
}

/** TCP connect to `target` within `timeoutMs`: the NAT's own path to the internet. */
function tcpProbe(target: { host: string; port: number }, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: target.host, port: target.port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/**
 * The HA wiring for `run`. The forward probe sends from this NAT's probe address, which
 * goes on the loopback interface (`ip addr replace`, idempotent); when that address falls
 * inside a VPC CIDR, or cannot be added, the forward probe is off (logged).
 */
async function haWiring(config: Config, id: Identity, deps: MainDeps, log: Logger): Promise<HaWiring> {
  const probe = probeAddress(id.privateIp);
  let forwardProbe = !id.vpcCidrs.some((c) => cidrContains(c, probe));
  if (forwardProbe) {
    const res = await deps.exec('ip', ['addr', 'replace', `${probe}/32`, 'dev', 'lo']).catch((err: unknown) => ({ code: -1, stdout: '', stderr: errorMessage(err) }));
    if (res.code !== 0) {
      forwardProbe = false;
      log.warn({ event: 'ha.forward_probe_off', address: probe, stderr: res.stderr.trim() }, `forward probe off: could not add ${probe} to lo`);
    }
  } else log.warn({ event: 'ha.forward_probe_off', address: probe }, `forward probe off: ${probe} is inside a VPC CIDR`);
  const target = config.probeTarget === undefined ? { host: `ec2.${id.region}.amazonaws.com`, port: 443 } : (config.probeTarget ?? undefined);
  const asg = deps.autoscaling(id.region);
  return {
    settings: {
      port: config.haPort,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      peerTimeoutMs: config.peerTimeoutMs,
      healthIntervalMs: config.healthIntervalMs,
      healthTimeoutMs: config.healthTimeoutMs,
      rise: config.rise,
      fall: config.fall,
      failbackDelayMs: config.failbackDelayMs,
      failbackMaxMs: Math.max(config.failbackDelayMs, 600_000),
      probeTarget: target,
      forwardProbe,
    },
    socket: deps.socket,
    upstreamProbe: deps.upstreamProbe,
    drainMs: 8_000,
    lingerMs: 2_000,
    setUnhealthy: async (instanceId) => {
      await asg.send(new SetInstanceHealthCommand({ InstanceId: instanceId, HealthStatus: 'Unhealthy', ShouldRespectGracePeriod: false }));
    },
  };
}

/** What `main` talks to; the defaults are the real host, process and AWS. */
export interface MainDeps {
  exec: Exec;
  fs: HostFs;
  /** The EC2 client, on `connections`, which the agent drops after associating its Elastic IP. */
  ec2: (region: string, connections: Connections) => Ec2;
  autoscaling: (region: string) => AutoScaling;
  socket: SocketFactory;
  upstreamProbe: (target: { host: string; port: number }, timeoutMs: number) => Promise<boolean>;
  clock: Clock;
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  /** Where `run` logs (default: stdout, synchronously). */
  logDest?: DestinationStream | undefined;
  /** Stops `run` when aborted (default: SIGTERM / SIGINT). */
  signal?: AbortSignal | undefined;
  /** Epoch ms at which the process started. */
  startedAt: number;
}

export function defaultDeps(): MainDeps {
  return {
    exec: realExec,
    fs: realFs,
    ec2: agentEc2,
    autoscaling: agentAutoScaling,
    socket: udpSocket,
    upstreamProbe: tcpProbe,
    clock: systemClock,
    stdout: process.stdout,
    stderr: process.stderr,
    startedAt: Date.now() - Math.round(process.uptime() * 1000),
  };
}

async function run(options: Options, log: Logger, deps: MainDeps): Promise<number> {
  log.info({ event: 'agent.start', node: process.version, pid: process.pid }, `hanat-agent ${VERSION} starting`);
  const imdsLog = log.child({ component: 'imds' });
  const imds = new Imds({ endpoint: options.imdsEndpoint ?? DEFAULT_IMDS_ENDPOINT });
  const t0 = Date.now();
  const id = await readIdentity(imds);
  imdsLog.info(
    { event: 'imds.ready', endpoint: imds.endpoint, instanceId: id.instanceId, region: id.region, az: id.az, eniId: id.eniId, vpcId: id.vpcId, vpcCidrs: id.vpcCidrs, durationMs: Date.now() - t0 },
    'instance identity read',
  );
  const config = resolveConfig(options, id);
  const kernel = new Kernel({ exec: deps.exec, fs: deps.fs, log: log.child({ component: 'kernel' }) });
  const conntrackMax = await kernel.conntrackMax(config.conntrackMax);
  log.info(
    {
      event: 'config.effective',
      config: {
        stack: config.stack,
        az: config.az,
        logLevel: config.logLevel,
        intervalS: config.intervalMs / 1000,
        routeIntervalS: config.routeIntervalMs / 1000,
        recheckIntervalS: config.recheckIntervalMs / 1000,
        maxFailures: config.maxFailures,
        conntrackMax,
        skipSourceDest: config.skipSourceDest,
        imdsEndpoint: imds.endpoint,
        ha: config.ha,
        ...(config.ha
          ? {
              haPort: config.haPort,
              heartbeatIntervalS: config.heartbeatIntervalMs / 1000,
              peerTimeoutS: config.peerTimeoutMs / 1000,
              healthIntervalS: config.healthIntervalMs / 1000,
              healthTimeoutS: config.healthTimeoutMs / 1000,
              rise: config.rise,
              fall: config.fall,
              failbackDelayS: config.failbackDelayMs / 1000,
              peerIntervalS: config.peerIntervalMs / 1000,
              probeTarget: config.probeTarget === null ? 'off' : config.probeTarget ? `${config.probeTarget.host}:${config.probeTarget.port}` : `ec2.${id.region}.amazonaws.com:443`,
            }
          : {}),
      },
      from: { ...config.from, conntrackMax: config.from.conntrackMax ?? '/proc/meminfo MemTotal' },
    },
    `serving ${config.az} for stack ${config.stack}`,
  );

  const connections = connectionPool();
  const ec2 = deps.ec2(id.region, connections);
  const ha = config.ha ? await haWiring(config, id, deps, log.child({ component: 'ha' })) : undefined;
  const agent = new Agent(config, id, { ec2, kernel, log, clock: deps.clock, imds, startedAt: deps.startedAt, ha, freshConnections: () => connections.reset() });
  let signal = deps.signal;
  let detach = () => {};
  if (!signal) {
    const stop = new AbortController();
    const onSignal = (name: NodeJS.Signals) => {
      log.info({ event: 'agent.stopping', signal: name }, `${name} received; stopping`);
      stop.abort();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    detach = () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    };
    signal = stop.signal;
  }
  try {
    return await agent.run(signal);
  } finally {
    detach();
    ec2.destroy();
  }
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv, deps: MainDeps = defaultDeps()): Promise<number> {
  let command, options: Options;
  try {
    ({ command, options } = parseCommandLine(argv, env));
  } catch (err) {
    deps.stderr.write(`hanat-agent: ${errorMessage(err)}\n`);
    return err instanceof UsageError ? EXIT_USAGE : EXIT_FAILED;
  }
  sdkEnv(env, options);
  if (command === 'version') {
    deps.stdout.write(`${VERSION}\n`);
    return EXIT_OK;
  }
  if (command === 'help') {
    deps.stdout.write(HELP);
    return EXIT_OK;
  }

  if (command === 'check') {
    // stdout carries only the verdict; diagnostics go to stderr.
    const log = createLogger(options.logLevel === 'info' ? 'warn' : options.logLevel, deps.logDest ?? deps.stderr);
    try {
      const kernel = new Kernel({ exec: deps.exec, fs: deps.fs, log: log.child({ component: 'kernel' }) });
      const imds = new Imds({ endpoint: options.imdsEndpoint ?? DEFAULT_IMDS_ENDPOINT, totalTimeoutMs: 2_000 });
      const result = await check(options, { imds, kernel, ec2: (region) => deps.ec2(region, connectionPool()) });
      deps.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return result.healthy ? EXIT_OK : EXIT_FAILED;
    } catch (err) {
      return fail(log, err);
    }
  }

  const log = createLogger(options.logLevel, deps.logDest);
  try {
    return await run(options, log, deps);
  } catch (err) {
    return fail(log, err);
  }
}

function fail(log: Logger, err: unknown): number {
  if (err instanceof UsageError) {
    log.fatal({ event: 'config.invalid', err }, err.message);
    return EXIT_USAGE;
  }
  if (err instanceof OperationError) {
    log.fatal({ event: 'agent.failed', err }, err.message);
    return EXIT_FAILED;
  }
  log.fatal({ event: 'agent.internal_error', err, version: VERSION, node: process.version }, `internal error: ${errorMessage(err)}; please report it with this line`);
  return EXIT_FAILED;
}
