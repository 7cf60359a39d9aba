/**
 * `hanat-lab up`: the emulator plus the namespace data plane, in the foreground until
 * SIGINT, SIGTERM, SIGHUP (its terminal closed) or `hanat-lab down`, or detached
 * (`--detach`) with its log in the run directory. Prints the AWS environment to use as
 * shell exports on stdout once ready.
 * Also registers the hidden `_worker` command that runs lab workers inside namespaces.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { Option } from 'commander';
import { LabOperationError, LabUsageError, envExports, stateDirOf, type LabCommandDeps } from '../dataplane/cli-support.js';
import { Lab } from '../dataplane/lab.js';
import { newPrefix } from '../dataplane/names.js';
import { runningLabs } from '../dataplane/client.js';
import { readRunStates, pidAlive } from '../dataplane/state.js';
import { runWorker } from '../dataplane/workers/index.js';
import { labEmulator, type EmulatorSettings } from '../dataplane/emulator-adapter.js';
import { registerDown } from './down.js';
import { registerFault } from './fault.js';
import { addLatencyOptions, describeLatency, latencyArgs, parseOpLatency, type LatencyOptions } from './latency.js';
import { registerProbe } from './probe.js';
import { registerStatus } from './status.js';

export interface UpOptions extends LatencyOptions {
  bootDelay: string;
  /** ms from a crash in place to impaired status checks. */
  statusCheckDelay: string;
  /** ms; replaces every Auto Scaling group's health check grace period (unset: the group's own). */
  healthCheckGrace?: string;
  /** `on` / `off`; unset: on with `--latency aws`. */
  rateLimits?: string;
  /** ms from SIGTERM to SIGKILL when an instance shuts down; unset: the image unit's TimeoutStopSec. */
  stopTimeout?: string;
  port: string;
  region: string;
  agent?: string;
  runDir?: string;
  probeInterval: string;
  /** Comma-separated AZs whose private hosts probe; unset: every AZ's. */
  probeAzs?: string;
  /** HANAT_ROUTE_INTERVAL for every agent (seconds); unset: the agent's default (30 s). */
  agentRouteInterval?: string;
  /** false (`--no-agent-ha`): HANAT_HA=0 for every agent, the original design's agents alone (baselines). */
  agentHa?: boolean;
  detach?: boolean;
  prefix?: string;
  /** Run as the child of `up --detach`: stdout and stderr are lab.log, so JSON lines only, and no exports. */
  daemon?: boolean;
}

/** The agent bundle next to this lab bundle in the repository (packages/agent/dist). */
function defaultAgentBundle(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, '../../agent/dist/hanat-agent.cjs'), join(here, '../../../agent/dist/hanat-agent.cjs')]) {
    if (existsSync(candidate)) return candidate;
  }
  return join(here, '../../agent/dist/hanat-agent.cjs');
}

function intOption(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new LabUsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

/** The agent's own lower bound for HANAT_ROUTE_INTERVAL (packages/agent config.ts). */
const AGENT_MIN_ROUTE_INTERVAL_S = 5;

/** The agents' extra environment: only what `up` was asked to set. */
function agentEnvOf(opts: UpOptions): Record<string, string> {
  const env: Record<string, string> = {};
  if (opts.agentRouteInterval !== undefined) env.HANAT_ROUTE_INTERVAL = String(intOption('agent-route-interval', opts.agentRouteInterval, AGENT_MIN_ROUTE_INTERVAL_S));
  if (opts.agentHa === false) env.HANAT_HA = '0';
  return env;
}

function checkRoot(): void {
  if (process.getuid?.() !== 0) throw new LabUsageError('hanat-lab up needs root (it creates network namespaces); run it as root');
}

/** One log line: a JSON object with the time and the event name (LAB.md: logs are JSON lines). */
function logLine(event: string, fields: Record<string, unknown> = {}): string {
  return `${JSON.stringify({ t: new Date().toISOString(), event, ...fields })}\n`;
}

/** An error that `up` has already logged (as JSON, in lab.log): the entry point need not print it again. */
export class ReportedError extends LabOperationError {
  readonly reported = true;
}

/**
 * Says so when other labs run beside the new one: a second lab is allowed (tests and
 * benchmarks run several), but a user who meant to reuse the first should know, and know
 * how later commands pick one.
 */
function otherLabsNote(deps: LabCommandDeps, prefix: string): string | undefined {
  const others = runningLabs(stateDirOf(deps)).filter((r) => r.prefix !== prefix);
  if (others.length === 0) return undefined;
  const first = others[0]!.prefix;
  const list = others.map((r) => `${r.prefix} (API ${r.apiEndpoint})`).join(', ');
  return (
    `hanat-lab: note: ${others.length === 1 ? `lab ${list} was` : `labs ${list} were`} already running; ${prefix} is another lab beside it. ` +
    `Commands without --lab use the lab that AWS_ENDPOINT_URL points at (these exports: ${prefix}). ` +
    `To keep using ${first} instead: \`hanat-lab down --lab ${prefix}\` and \`eval "$(hanat-lab status --env --lab ${first})"\`.\n`
  );
}

/** The agent bundle to run, which must exist. */
function agentBundle(opts: UpOptions): string {
  const agent = resolve(opts.agent ?? defaultAgentBundle());
  if (!existsSync(agent)) throw new LabUsageError(`the agent bundle ${agent} does not exist; build it with \`node scripts/build.mjs agent\` or pass --agent <path>`);
  return agent;
}

/** Runs the lab in this process until it is told to stop. */
export async function upForeground(opts: UpOptions, deps: LabCommandDeps, onReady: (lab: Lab) => void): Promise<void> {
  checkRoot();
  const prefix = opts.prefix ?? newPrefix();
  const runDir = resolve(opts.runDir ?? join(process.cwd(), '.lab'), prefix);
  const agent = agentBundle(opts);
  const settings: EmulatorSettings = {
    latency: opts.latency,
    opLatency: parseOpLatency(opts.opLatency),
    bootDelayMs: intOption('boot-delay', opts.bootDelay, 0),
    statusCheckDelayMs: intOption('status-check-delay', opts.statusCheckDelay, 0),
    ...(opts.healthCheckGrace !== undefined ? { healthCheckGracePeriodMs: intOption('health-check-grace', opts.healthCheckGrace, 0) } : {}),
    ...(opts.rateLimits !== undefined ? { rateLimits: opts.rateLimits === 'on' } : {}),
    region: opts.region,
    log: (m) => deps.stderr(logLine('emulator', { message: m })),
  };
  const agentEnv = agentEnvOf(opts);
  const probe = { intervalMs: intOption('probe-interval', opts.probeInterval, 10), timeoutMs: 1_000, ...probeAzsOption(opts) };
  if (!opts.daemon && deps.stdoutIsTTY === false) {
    deps.stderr(
      'hanat-lab: note: stdout is not a terminal. If this is `eval "$(hanat-lab up)"`, the shell waits until this lab stops, ' +
        'and its exports then point at a stopped lab: use `eval "$(hanat-lab up --detach)"` instead. ' +
        'This lab runs in the foreground until Ctrl-C, SIGTERM or `hanat-lab down`.\n',
    );
  }
  mkdirSync(runDir, { recursive: true });

  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((r) => (stopRequested = r));
  // SIGINT/SIGTERM/SIGHUP arrive as the program's abort signal (main.ts owns the process).
  const signal = deps.signal ?? new AbortController().signal;
  signal.addEventListener('abort', () => stopRequested(), { once: true });
  let lab: Lab | undefined;
  try {
    lab = await Lab.start({
      emulator: (launcher) => labEmulator(launcher, settings),
      runDir,
      apiPort: intOption('port', opts.port, 0),
      admin: true,
      onDownRequested: () => stopRequested(),
      logger: {
        info: (event, fields) => deps.stderr(logLine(event, fields)),
        warn: (event, fields) => deps.stderr(logLine(event, { level: 'warn', ...fields })),
      },
      dataplane: {
        prefix,
        stateDir: stateDirOf(deps),
        workerCommand: workerCommand(),
        agentCommand: [process.execPath, agent, 'run'],
        agentEnv,
        ...(opts.stopTimeout !== undefined ? { terminateGraceMs: intOption('stop-timeout', opts.stopTimeout, 0) } : {}),
        probe,
      },
    });
    lab.dataplane.installExitCleanup();
    onReady(lab);
    await stopped;
  } catch (err) {
    throw new LabOperationError(`the lab did not start: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    await lab?.stop();
  }
}

/** Starts `up` again as a detached process and waits until it has published its state. */
export async function upDetached(opts: UpOptions, deps: LabCommandDeps): Promise<{ prefix: string; apiEndpoint: string; region: string; log: string; latency: string; others: string | undefined }> {
  checkRoot();
  // A bad value fails here, not in the detached child's log.
  const latency = describeLatency(opts.latency, parseOpLatency(opts.opLatency));
  agentEnvOf(opts);
  agentBundle(opts);
  intOption('boot-delay', opts.bootDelay, 0);
  intOption('port', opts.port, 0);
  intOption('probe-interval', opts.probeInterval, 10);
  probeAzsOption(opts);
  intOption('status-check-delay', opts.statusCheckDelay, 0);
  if (opts.healthCheckGrace !== undefined) intOption('health-check-grace', opts.healthCheckGrace, 0);
  if (opts.stopTimeout !== undefined) intOption('stop-timeout', opts.stopTimeout, 0);
  const prefix = newPrefix();
  const runDir = resolve(opts.runDir ?? join(process.cwd(), '.lab'));
  mkdirSync(join(runDir, prefix), { recursive: true });
  const log = join(runDir, prefix, 'lab.log');
  const args = [process.argv[1]!, 'up', '--daemon', '--prefix', prefix, ...latencyArgs(opts), '--boot-delay', opts.bootDelay, '--status-check-delay', opts.statusCheckDelay, '--port', opts.port, '--region', opts.region, '--probe-interval', opts.probeInterval, '--run-dir', runDir];
  if (opts.agent) args.push('--agent', resolve(opts.agent));
  if (opts.agentRouteInterval !== undefined) args.push('--agent-route-interval', opts.agentRouteInterval);
  if (opts.agentHa === false) args.push('--no-agent-ha');
  if (opts.healthCheckGrace !== undefined) args.push('--health-check-grace', opts.healthCheckGrace);
  if (opts.rateLimits !== undefined) args.push('--rate-limits', opts.rateLimits);
  if (opts.stopTimeout !== undefined) args.push('--stop-timeout', opts.stopTimeout);
  if (opts.probeAzs !== undefined) args.push('--probe-azs', opts.probeAzs);
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...deps.env } });
  closeSync(fd);
  child.unref();
  const deadline = Date.now() + 60_000;
  const stateDir = stateDirOf(deps);
  while (Date.now() < deadline) {
    const run = readRunStates(stateDir).find((s) => s.prefix === prefix);
    if (run?.ready === true) return { prefix, apiEndpoint: String(run.apiEndpoint), region: String(run.region), log, latency, others: otherLabsNote(deps, prefix) };
    if (child.pid === undefined || !pidAlive(child.pid)) {
      const why = failureLogged(log);
      throw new LabOperationError(`the lab exited while starting${why ? `: ${why}` : ''}; see ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new LabOperationError(`the lab did not become ready within 60 s; see ${log}`);
}

/** The reason the detached child logged (`lab.failed`) before it exited, if any. */
function failureLogged(log: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').reverse()) {
    try {
      const entry = JSON.parse(line) as { event?: unknown; err?: unknown };
      if (entry.event === 'lab.failed' && typeof entry.err === 'string') return entry.err.replace(/^the lab did not start: /, '');
    } catch {
      // not a log line
    }
  }
  return undefined;
}

/** `--probe-azs a,b`: the AZs whose private hosts probe, or nothing (every AZ's). */
function probeAzsOption(opts: UpOptions): { azs?: string[] } {
  if (opts.probeAzs === undefined) return {};
  const azs = opts.probeAzs.split(',').map((s) => s.trim()).filter(Boolean);
  if (azs.length === 0 || azs.some((az) => !/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/.test(az))) throw new LabUsageError(`--probe-azs must be a comma-separated list of AZ names such as us-east-1a, got ${JSON.stringify(opts.probeAzs)}`);
  return { azs };
}

/**
 * How the data plane starts a worker: from the workers' own bundle beside this one
 * (dist/hanat-lab-worker.mjs, a few kB), else through this bundle's `_worker` command. Every
 * private host runs a prober: loaded from the whole lab bundle (4.7 MB, the AWS SDK in it),
 * each took ~110 MB and a burst of CPU to start, which is what limited how many stacks a
 * bench could run on one machine.
 */
function workerCommand(): string[] {
  const own = fileURLToPath(new URL('./hanat-lab-worker.mjs', import.meta.url));
  return existsSync(own) ? [process.execPath, own] : [process.execPath, process.argv[1]!, '_worker'];
}

/** Registers `up`, `status`, `probe`, `fault`, `down`, `cleanup` and the hidden `_worker`. */
export function registerLabCommands(program: Command, deps: LabCommandDeps): void {
  registerUp(program, deps);
  registerStatus(program, deps);
  registerProbe(program, deps);
  registerFault(program, deps);
  registerDown(program, deps);
}

export function registerUp(program: Command, deps: LabCommandDeps): void {
  const up = program
    .command('up')
    .description('start the lab: the AWS emulator and a VPC of network namespaces running the real agent (as root)');
  addLatencyOptions(up)
    .option('--boot-delay <ms>', 'time from an Auto Scaling launch to the instance running', '5000')
    .option('--status-check-delay <ms>', 'time from a crash in place (fault crash) to EC2 status checks reporting the instance impaired; EC2 checks every minute', '60000')
    .option('--health-check-grace <ms>', "replace every Auto Scaling group's health check grace period (default: the group's own, 120 s in hanat's template)")
    .option('--stop-timeout <ms>', "when an instance is terminated, how long its agent has between SIGTERM and SIGKILL (default: the image's unit, TimeoutStopSec in scripts/systemd/hanat-agent.service, 30 s)")
    .addOption(new Option('--rate-limits <on|off>', "AWS's API rate limits (token buckets per action); default: on with --latency aws, off with zero").choices(['on', 'off']))
    .option('--port <n>', 'loopback port of the AWS API (0: any free port)', '0')
    .option('--region <region>', 'the emulated region', 'us-east-1')
    .option('--agent <path>', 'the agent bundle (default: packages/agent/dist/hanat-agent.cjs)')
    .option('--run-dir <dir>', 'logs and agent logs go to <dir>/<lab prefix> (default ./.lab)')
    .option('--probe-interval <ms>', 'how often private hosts probe the internet', '100')
    .option('--probe-azs <azs>', 'only the private hosts of these AZs (comma-separated, e.g. us-east-1a) probe the internet; each prober takes ~2 % of a core, so a lab of many stacks on a small machine probes only where it measures (default: every AZ)')
    .option('--agent-route-interval <s>', "every agent's route table check period (HANAT_ROUTE_INTERVAL, at least 5; default: the agent's 30)")
    .option('--no-agent-ha', 'run every agent with HANAT_HA=0: no heartbeats or takeover, so a dead NAT waits for Auto Scaling (the baseline of bench/replacement-outage)')
    .option('--detach', 'run in the background; stop it with `hanat-lab down`')
    .addOption(new Option('--prefix <hlxxxx>', 'the run prefix (set by --detach)').hideHelp())
    .addOption(new Option('--daemon', 'run as the detached child of --detach: JSON log lines only').hideHelp())
    .addHelpText(
      'after',
      `
Prints the environment for the AWS CLI and hanat on stdout, as shell exports:
  eval "$(hanat-lab up --detach)" && hanat deploy --name lab --cidr-prefix 10.0 --yes
Logs (JSON lines) go to stderr, or to <run-dir>/<prefix>/lab.log with --detach;
each instance's agent log is <run-dir>/<prefix>/instances/<id>/agent.log.`,
    )
    .action(async (opts: UpOptions) => {
      if (opts.detach) {
        const r = await upDetached(opts, deps);
        deps.stdout(envExports(r.apiEndpoint, r.region));
        deps.stderr(`hanat-lab: lab ${r.prefix} is up (latency ${r.latency}; log ${r.log}); stop it with \`hanat-lab down\`\n`);
        if (r.others) deps.stderr(r.others);
        return;
      }
      const running = upForeground(opts, deps, (lab) => {
        if (opts.daemon) {
          deps.stderr(logLine('lab.ready', { prefix: lab.prefix, apiEndpoint: lab.apiEndpoint, region: lab.emulator.region, latency: describeLatency(opts.latency, parseOpLatency(opts.opLatency)) }));
          return;
        }
        deps.stdout(envExports(lab.apiEndpoint, lab.emulator.region));
        deps.stderr(`hanat-lab: lab ${lab.prefix} is up (latency ${describeLatency(opts.latency, parseOpLatency(opts.opLatency))}); Ctrl-C or \`hanat-lab down\` stops it\n`);
        const others = otherLabsNote(deps, lab.prefix);
        if (others) deps.stderr(others);
      });
      if (!opts.daemon) return running;
      // The detached child's stdout and stderr are lab.log: its failure, too, is a JSON line there.
      return running.catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        deps.stderr(logLine('lab.failed', { level: 'error', err: message }));
        throw new ReportedError(message, { cause: err });
      });
    });

  program
    .command('_worker', { hidden: true })
    .description('run a lab worker (inside a namespace)')
    .allowUnknownOption()
    .helpOption(false)
    .argument('<args...>')
    .action(async (args: string[]) => {
      await runWorker(args);
    });
}
