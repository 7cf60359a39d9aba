/**
 * The set-up every lab end-to-end test shares: a lab with the real agent bundle in every NAT
 * namespace and probing private hosts, the real CLI bundle pointed at it with the environment
 * `hanat-lab up` prints, a stack deployed with it, and every private host through its own AZ's
 * NAT before the first test. Each file then adds what it needs (HA's rise, status checks).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostRoutes, type HostRoute } from '../src/cli/probe.js';
import { envExports } from '../src/dataplane/cli-support.js';
import { labEmulator, type EmulatorSettings } from '../src/dataplane/emulator-adapter.js';
import { Lab, type InstanceStatus, type LabStatus } from '../src/dataplane/lab.js';
import type { Outage } from '../src/dataplane/probes.js';
import type { CounterSnapshot } from '../src/emulator/index.js';
import { buildWorkers } from './dataplane-helpers.js';
import { REPO, requireBundles } from './bundle-helpers.js';

export const CLI = join(REPO, 'packages/cli/dist/hanat.mjs');
export const AGENT = join(REPO, 'packages/agent/dist/hanat-agent.cjs');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface E2eLabOptions {
  /** Stack name, also the run directory's prefix. */
  stack: string;
  azs: number;
  /** `hanat deploy --cidr-prefix`. */
  cidrPrefix: string;
  region?: string;
  /** The emulator's settings (latency profile, boot delay, status checks…). */
  emulator: Omit<EmulatorSettings, 'region'>;
  /** Extra environment of every agent (HANAT_HA, shortened HA settings). */
  agentEnv?: Record<string, string>;
  /** Probe interval of the private hosts (the timeout is 1 s). */
  probeIntervalMs?: number;
  /** How long the deploy may take until every private host goes out through its own AZ's NAT. */
  deployTimeoutMs?: number;
  /** Environment the CLI starts from, before the exports (default: PATH, HOME, NO_COLOR). */
  baseEnv?: NodeJS.ProcessEnv;
}

export interface E2eLab {
  lab: Lab;
  dir: string;
  region: string;
  /** The environment `hanat-lab up` prints, applied as `eval` would, over PATH, HOME and NO_COLOR. */
  env: NodeJS.ProcessEnv;
  /** Runs the CLI bundle; resolves with its exit code instead of throwing on a non-zero one. */
  hanat(...args: string[]): Promise<CliRun>;
  /** Stops the lab and removes its run directory (kept when HANAT_KEEP_LAB is set). */
  stop(): Promise<void>;
}

/** The environment `exports` (`export K=V`, `unset K…` lines) applied to `base`. */
export function envFromExports(exports: string, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = { ...base };
  for (const line of exports.split('\n')) {
    const set = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
    if (set) env[set[1]!] = set[2]!;
    else if (line.startsWith('unset ')) for (const k of line.slice(6).trim().split(/\s+/)) delete env[k];
  }
  return env;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts the lab, deploys the stack with the CLI and waits for every private host to go out through its own AZ's NAT. */
export async function startE2eLab(o: E2eLabOptions): Promise<E2eLab> {
  requireBundles('cli', 'agent');
  const region = o.region ?? 'us-east-1';
  const dir = mkdtempSync(join(tmpdir(), `hanat-${o.stack}-`));
  const lab = await Lab.start({
    emulator: (launcher) => labEmulator(launcher, { ...o.emulator, region }),
    runDir: dir,
    dataplane: {
      workerCommand: await buildWorkers(),
      stateDir: join(dir, 'state'),
      agentCommand: [process.execPath, AGENT, 'run'],
      ...(o.agentEnv ? { agentEnv: o.agentEnv } : {}),
      terminateGraceMs: 5_000,
      probe: { intervalMs: o.probeIntervalMs ?? 100, timeoutMs: 1_000 },
    },
  });
  lab.dataplane.installExitCleanup();
  const env = envFromExports(envExports(lab.apiEndpoint, region), { PATH: process.env.PATH, HOME: dir, NO_COLOR: '1', ...o.baseEnv });
  const hanat = (...args: string[]): Promise<CliRun> =>
    new Promise((resolve, reject) => {
      execFile(process.execPath, [CLI, ...args], { env, timeout: 60_000 }, (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') reject(new Error(`hanat ${args.join(' ')} did not run: ${err.message}`, { cause: err }));
        else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      });
    });
  const stop = async (): Promise<void> => {
    await lab.stop();
    if (!process.env.HANAT_KEEP_LAB) rmSync(dir, { recursive: true, force: true });
    else console.log(`lab run directory kept: ${dir}`);
  };
  try {
    const deploy = await hanat('deploy', '--name', o.stack, '--cidr-prefix', o.cidrPrefix, '--azs', String(o.azs), '--yes');
    if (deploy.code !== 0) throw new Error(`hanat deploy exited ${deploy.code}: ${deploy.stderr}`);
    const timeoutMs = o.deployTimeoutMs ?? 90_000;
    const t0 = Date.now();
    for (;;) {
      const routes = hostRoutes(lab.status());
      if (routes.length === 2 * o.azs && routes.every((r) => r.ownAz)) break;
      if (Date.now() - t0 > timeoutMs) {
        throw new Error(`not within ${timeoutMs} ms: every private host through its own AZ's NAT: ${JSON.stringify(routes.map((r) => ({ az: r.az, ip: r.ip, nat: r.nat })))}`);
      }
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { lab, dir, region, env, hanat, stop };
}

/** Polls `condition` every 50 ms until it holds; throws `what()` after `timeoutMs`. Resolves with the elapsed ms. */
export async function until(condition: () => boolean, timeoutMs: number, what: () => string): Promise<number> {
  const t0 = Date.now();
  while (!condition()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what()}`);
    await sleep(50);
  }
  return Date.now() - t0;
}

/** Route writes in the emulator's counters. */
export const routeWrites = (c: CounterSnapshot): number => (c.calls['ec2:ReplaceRoute'] ?? 0) + (c.calls['ec2:CreateRoute'] ?? 0);

/**
 * What the HA e2e tests read of a lab: its NATs, tables and hosts, the agents' log events,
 * the emulator's call counters, and the picture of every AZ for failure messages.
 */
export function haView(e2e: E2eLab, probeIntervalMs = 100) {
  const status = (): LabStatus => e2e.lab.status();
  /** The newest running NAT of `az` whose agent runs. */
  const natOf = (az: string, s = status()): InstanceStatus | undefined =>
    s.instances.filter((i) => i.az === az && i.state === 'running' && i.agentPid !== undefined).sort((a, b) => a.instanceId.localeCompare(b.instanceId)).at(-1);
  const hostsOf = (az: string, s = status()): HostRoute[] => hostRoutes(s, az);
  const privateTables = (az: string, s = status()) => s.routeTables.filter((t) => t.network === 'private' && t.az === az);
  /** Every host of `az` answered (TCP and UDP) by `address` on its latest probes. */
  const answeredBy = (az: string, address: string): boolean => {
    const hosts = hostsOf(az);
    return hosts.length > 0 && hosts.every((h) => [h.tcp, h.udp].every((p) => p?.ok === true && p.answer === address));
  };
  const picture = (azs: readonly string[]) =>
    JSON.stringify(
      azs.map((az) => ({ az, tables: privateTables(az).map((t) => t.via), hosts: hostsOf(az).map((h) => `${h.tcp?.ok ? h.tcp.answer : 'x'}/${h.udp?.ok ? h.udp.answer : 'x'}`) })),
    );
  /** The outage windows of `az`'s hosts that started at or after `since` (one probe interval of slack). */
  const outagesSince = (az: string, since: number): Outage[] => hostsOf(az).flatMap((h) => h.outages.filter((o) => o.start >= since - probeIntervalMs));
  /** The worst window, in ms: 0 when no probe failed, Infinity while one is still open. */
  const worst = (outages: Outage[]) => Math.max(0, ...outages.map((o) => o.durationMs ?? Infinity));
  const agentEvents = (instanceId: string, event: string): Record<string, unknown>[] => {
    const log = status().instances.find((i) => i.instanceId === instanceId)?.agentLog ?? join(e2e.dir, 'instances', instanceId, 'agent.log');
    let text = '';
    try {
      text = readFileSync(log, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((l) => l.includes(`"${event}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.event === event);
  };
  const counters = async (): Promise<CounterSnapshot> => (await (await fetch(`${e2e.lab.apiEndpoint}/_lab/counters`)).json()) as CounterSnapshot;
  /** Every AZ served by its own NAT, which is healthy (it logged self.healthy), and every host answered by its AZ's EIP. */
  const settled = async (azs: readonly string[], eip: ReadonlyMap<string, string>, timeoutMs: number): Promise<void> => {
    await until(
      () =>
        azs.every((az) => {
          const nat = natOf(az);
          return nat !== undefined && agentEvents(nat.instanceId, 'self.healthy').length > 0 && privateTables(az).every((t) => t.via === nat.instanceId) && answeredBy(az, eip.get(az)!);
        }),
      timeoutMs,
      () => `every AZ on its own healthy NAT: ${picture(azs)}`,
    );
  };
  return { status, natOf, hostsOf, privateTables, answeredBy, picture, outagesSince, worst, agentEvents, counters, settled };
}
