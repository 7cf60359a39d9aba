/**
 * What the lab's commands (`up`, `status`, `fault`, `probe`, `down`, `cleanup`) share:
 * their dependencies, their errors (with the exit code each maps to) and the text
 * rendering of results. Commands stay thin: parse options, call an action, print.
 */
import { findLab, type RunningLab } from './client.js';
import type { FaultResult, HostStatus, LabStatus, OutageReport } from './lab.js';
import { DEFAULT_STATE_DIR } from './state.js';

export interface LabCommandDeps {
  stdout(s: string): void;
  stderr(s: string): void;
  env: NodeJS.ProcessEnv;
  /** Where runs publish their state (default /run/hanat-lab). */
  stateDir?: string;
  /** Aborts on SIGINT, SIGTERM or SIGHUP: `up` then stops the lab cleanly. */
  signal?: AbortSignal;
  /** stdout is a terminal (not a pipe, a file or `$(…)`). */
  stdoutIsTTY?: boolean;
}

export function stateDirOf(deps: LabCommandDeps): string {
  return deps.stateDir ?? deps.env.HANAT_LAB_STATE_DIR ?? DEFAULT_STATE_DIR;
}

/** The lab a command means: `--lab`, else the one AWS_ENDPOINT_URL points at, else the only one. */
export function labFor(deps: LabCommandDeps, prefix: string | undefined): RunningLab {
  return findLab(stateDirOf(deps), prefix, deps.env.AWS_ENDPOINT_URL);
}

/** Bad usage or input: exit 2. */
export class LabUsageError extends Error {
  override readonly name = 'LabUsageError';
  readonly exitCode = 2;
}

/** The operation failed: exit 1. */
export class LabOperationError extends Error {
  override readonly name = 'LabOperationError';
  readonly exitCode = 1;
}

/**
 * Fake credentials and the endpoint, as shell `export` lines: `eval "$(hanat-lab up --detach)"`.
 * A profile or session token left in the shell must go: with AWS_PROFILE set the SDK skips
 * the environment's keys and reads the profile's real credentials instead. So must
 * per-service endpoints, which win over AWS_ENDPOINT_URL, and the switch that makes the SDK
 * ignore configured endpoints: either would send a command to another endpoint than the lab.
 */
/** The per-service endpoint variables of every service hanat, its tests and the AWS CLI steps call. */
export const SERVICE_ENDPOINT_VARS = ['EC2', 'AUTO_SCALING', 'CLOUDFORMATION', 'SSM', 'STS', 'IAM'].map((s) => `AWS_ENDPOINT_URL_${s}`);

export function envExports(apiEndpoint: string, region: string): string {
  return [
    `export AWS_ENDPOINT_URL=${apiEndpoint}`,
    `export AWS_REGION=${region}`,
    // The AWS CLI v1 (Debian's awscli) reads only this one.
    `export AWS_DEFAULT_REGION=${region}`,
    // Obviously fake: the emulator requires a signature but never checks it.
    'export AWS_ACCESS_KEY_ID=AKIAHANATLAB00000000',
    'export AWS_SECRET_ACCESS_KEY=hanat-lab-fake-secret',
    'unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_IGNORE_CONFIGURED_ENDPOINT_URLS',
    `unset ${SERVICE_ENDPOINT_VARS.join(' ')}`,
    '',
  ].join('\n');
}

const time = (t: number): string => new Date(t).toISOString().slice(11, 23);

function probeLine(p: HostStatus['tcp'], proto: string): string {
  if (!p) return `${proto} -`;
  return p.ok ? `${proto} ok via ${p.answer ?? '?'}` : `${proto} FAILING since ${time(p.since)} (${p.lastError ?? 'no answer'})`;
}

export function renderHosts(hosts: HostStatus[]): string {
  if (hosts.length === 0) return '  (none yet: private hosts appear with the private subnets of a deployed stack)\n';
  return hosts
    .slice()
    .sort((a, b) => a.az.localeCompare(b.az) || a.ip.localeCompare(b.ip))
    .map((h) => {
      if (h.probed === false) return `  ${h.az.padEnd(12)} ${h.ip.padEnd(15)} not probed (hanat-lab up --probe-azs)\n`;
      const closed = h.outages.filter((o) => o.durationMs !== undefined);
      const last = closed.at(-1);
      const outages = `outages ${closed.length}${last ? ` (last ${last.proto} ${last.durationMs} ms at ${time(last.start)})` : ''}`;
      return `  ${h.az.padEnd(12)} ${h.ip.padEnd(15)} ${probeLine(h.tcp, 'tcp').padEnd(34)} ${probeLine(h.udp, 'udp').padEnd(34)} ${outages}\n`;
    })
    .join('');
}

export function renderStatus(s: LabStatus): string {
  const out: string[] = [];
  out.push(`lab ${s.prefix}  region ${s.region}  API ${s.apiEndpoint}`);
  out.push(`router: world version ${s.sync.version}, ${s.sync.syncs} syncs, last ${s.sync.lastLatencyMs} ms, max ${s.sync.maxLatencyMs} ms, ${s.sync.errors} errors`);
  out.push('', 'Route tables (0.0.0.0/0)');
  const tables = s.routeTables.slice().sort((a, b) => (a.network ?? '').localeCompare(b.network ?? '') || (a.az ?? '').localeCompare(b.az ?? ''));
  for (const t of tables) {
    const owner = t.owner ? `  owner ${t.owner}${t.ownerSince ? ` since ${t.ownerSince}` : ''}` : '';
    const pin = t.override ? `  PINNED to ${t.override}` : '';
    out.push(`  ${t.routeTableId.padEnd(22)} ${(t.network ?? '-').padEnd(8)} ${(t.az ?? '').padEnd(12)} → ${t.defaultRoute ?? 'none (drops)'}${owner}${pin}`);
  }
  out.push('', 'Instances');
  if (s.instances.length === 0) out.push('  (none)');
  for (const i of s.instances.slice().sort((a, b) => a.az.localeCompare(b.az))) {
    const agent = i.agentPid ? `agent pid ${i.agentPid}` : i.namespace ? 'agent not running' : '';
    out.push(`  ${i.instanceId.padEnd(20)} ${i.az.padEnd(12)} ${i.state.padEnd(13)} ${i.privateIp.padEnd(15)} ${(i.publicIp ?? '-').padEnd(15)} src/dst ${i.sourceDestCheck ? 'on ' : 'off'}  ${agent}`);
  }
  out.push('', 'Private hosts (probing 198.51.100.10 tcp/7 and 203.0.113.10 udp/7)');
  out.push(renderHosts(s.hosts).trimEnd());
  const f = s.faults;
  const faults = [
    ...f.crashed.map((i) => `crashed ${i}`),
    ...f.gray.map((i) => `gray ${i}`),
    ...f.upstreamCut.map((i) => `upstream cut ${i}`),
    ...f.partitions.map(([a, b]) => `partition ${a} ${b}`),
    ...f.blockedAzs.map((a) => `no launches in ${a}`),
    ...(f.throttling.length ? [`API throttling (${f.throttling.length})`] : []),
  ];
  out.push('', `Faults: ${faults.length ? faults.join(', ') : 'none'}`, '');
  return out.join('\n');
}

export function renderFault(r: FaultResult): string {
  const hosts = r.affectedHosts.length ? `\n  private hosts routed through it: ${r.affectedHosts.join(', ')}` : '';
  return `${r.detail} at ${time(r.at)}${hosts}\n`;
}

export function renderOutages(outages: OutageReport[]): string {
  return outages
    .slice()
    .sort((a, b) => a.az.localeCompare(b.az) || a.hostId.localeCompare(b.hostId) || a.proto.localeCompare(b.proto))
    .map((o) => `  ${o.az.padEnd(12)} ${o.hostId.padEnd(30)} ${o.proto}  outage ${(o.outageMs / 1000).toFixed(1)} s  (${o.answerBefore ?? '?'} → ${o.answerAfter ?? '?'})\n`)
    .join('');
}
