/**
 * `hanat-lab probe`: what the private hosts' probers see: the public address that answers
 * (and so which NAT, in which AZ, carries the traffic) and every outage window.
 * `--check` turns it into an assertion: every private host reaches the internet through
 * its own AZ's NAT (exit 1 otherwise), or with `--via <az>` through that AZ's NAT (after a
 * manual failover); `--wait` keeps checking until that holds.
 */
import type { Command } from 'commander';
import { AdminRequestError, adminRequest } from '../dataplane/admin.js';
import { NoLabError } from '../dataplane/client.js';
import { LabOperationError, LabUsageError, labFor, renderHosts, type LabCommandDeps } from '../dataplane/cli-support.js';
import type { HostStatus, LabStatus } from '../dataplane/lab.js';

/** The lab CLI's error for a way of not reaching a lab (other errors pass through). */
export function labError(err: unknown): unknown {
  if (err instanceof NoLabError) return new LabUsageError(err.message, { cause: err });
  if (err instanceof AdminRequestError) {
    if (err.status === 400) return new LabUsageError(err.message, { cause: err });
    return new LabOperationError(err.message, { cause: err });
  }
  return err;
}

/** Maps the ways of not reaching a lab to the lab CLI's errors. */
export async function labCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw labError(err);
  }
}

export interface HostRoute extends HostStatus {
  /** The instance whose public address answered the last TCP probe, and its AZ. */
  nat?: { instanceId: string; az: string; publicIp: string };
  /** Both protocols reach the internet, through a NAT of the host's own AZ. */
  ownAz: boolean;
}

export function hostRoutes(status: LabStatus, az?: string): HostRoute[] {
  const byPublicIp = new Map(status.instances.filter((i) => i.publicIp && i.state === 'running').map((i) => [i.publicIp!, i]));
  return status.hosts
    .filter((h) => az === undefined || h.az === az)
    .sort((a, b) => a.az.localeCompare(b.az) || a.ip.localeCompare(b.ip, undefined, { numeric: true }))
    .map((h) => {
      const i = h.tcp?.answer ? byPublicIp.get(h.tcp.answer) : undefined;
      const nat = i ? { instanceId: i.instanceId, az: i.az, publicIp: i.publicIp! } : undefined;
      const ownAz = h.tcp?.ok === true && h.udp?.ok === true && nat?.az === h.az && h.udp.answer === nat.publicIp;
      return { ...h, ...(nat ? { nat } : {}), ownAz };
    });
}

export interface ProbeOptions {
  lab?: string;
  az?: string;
  /** Expect the hosts to leave through this AZ's NAT instead of their own. */
  via?: string;
  check?: boolean;
  wait?: string;
}

/** Both protocols reach the internet through a NAT of `az`, answered by its public address. */
function leavesVia(r: HostRoute, az: string): boolean {
  return r.tcp?.ok === true && r.udp?.ok === true && r.nat?.az === az && r.udp.answer === r.nat.publicIp;
}

export async function probeAction(opts: ProbeOptions, deps: LabCommandDeps): Promise<HostRoute[]> {
  const waitS = opts.wait === undefined ? 0 : Number(opts.wait);
  if (!(waitS >= 0)) throw new LabUsageError(`--wait must be a number of seconds, got ${JSON.stringify(opts.wait)}`);
  const deadline = Date.now() + waitS * 1000;
  const admin = await labCall(() => Promise.resolve(labFor(deps, opts.lab).admin));
  for (;;) {
    const routes = hostRoutes(await labCall(() => adminRequest<LabStatus>(admin, 'GET', '/status')), opts.az);
    const ok = routes.length > 0 && routes.every((r) => (opts.via === undefined ? r.ownAz : leavesVia(r, opts.via)));
    if (!(opts.check || waitS > 0) || ok) return routes;
    if (Date.now() >= deadline) {
      if (!opts.check) return routes;
      const via = opts.via;
      const bad = routes.filter((r) => (via === undefined ? !r.ownAz : !leavesVia(r, via))).map((r) => `${r.az} ${r.ip}`);
      const through = via === undefined ? "its own AZ's NAT" : `${via}'s NAT`;
      throw new LabOperationError(routes.length === 0 ? 'no private hosts yet (is a stack deployed?)' : `not every private host reaches the internet through ${through}: ${bad.join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function renderRoutes(routes: HostRoute[]): string {
  return routes
    .map((r) => {
      const via = r.nat ? `${r.nat.publicIp} = NAT ${r.nat.instanceId} in ${r.nat.az}${r.ownAz ? ' (own AZ)' : r.nat.az === r.az ? '' : ' (ANOTHER AZ)'}` : r.tcp?.ok ? `${r.tcp.answer} (unknown NAT)` : 'no internet';
      return `  ${r.az.padEnd(12)} ${r.ip.padEnd(15)} → ${via}\n`;
    })
    .join('');
}

export function registerProbe(program: Command, deps: LabCommandDeps): void {
  program
    .command('probe')
    .description('show what each private host reaches: the public address that answers (its NAT) and every outage window')
    .option('--lab <prefix>', 'which lab, when several run')
    .option('--az <az>', 'only the private hosts of this AZ')
    .option('--check', "exit 1 unless every private host reaches the internet through its own AZ's NAT")
    .option('--via <az>', "with --check or --wait: through this AZ's NAT instead (a manual failover)")
    .option('--wait <s>', 'keep checking until that holds, for up to this many seconds')
    .option('--json', 'print JSON (probe state, outage windows and answer changes)')
    .action(async (opts: ProbeOptions & { json?: boolean }) => {
      const routes = await probeAction(opts, deps);
      if (opts.json) {
        deps.stdout(JSON.stringify(routes, null, 2) + '\n');
        return;
      }
      deps.stdout(renderRoutes(routes));
      if (opts.check || opts.wait !== undefined) return;
      deps.stdout(`\n${renderHosts(routes)}`);
      for (const h of routes) {
        for (const o of h.outages) {
          const end = o.end === undefined ? 'ongoing' : `${o.durationMs} ms`;
          deps.stdout(`  ${h.az} ${h.ip} ${o.proto} outage from ${new Date(o.start).toISOString()}: ${end}\n`);
        }
      }
    });
}
