/**
 * `hanat status`: which NAT serves which AZ. Describe calls only (observe.ts);
 * a verdict per private route table and per AZ. The action returns the result;
 * the program prints it and exits 1 when an AZ's traffic does not flow
 * (statusFailure), so `hanat status --json | jq` works either way.
 */
import { TAG } from '@hanat/core';
import type { StackTargetOptions } from './aws.js';
import type { ActionDeps } from './deps.js';
import { HanatError, InterruptedError, OperationError, isAbort } from './errors.js';
import {
  checkStackTarget,
  findHanatStack,
  isImpaired,
  natFor,
  readAutoScaling,
  readEips,
  readNats,
  readStatusChecks,
  readTables,
  requireTables,
  untaggedWarning,
  type EipState,
  type NatState,
  type TableState,
} from './observe.js';

export type StatusOptions = StackTargetOptions;

/**
 * - `ok`: the AZ's own running NAT serves it, route active.
 * - `takeover`: another AZ's running NAT serves it (an agent moved it).
 * - `pinned`: `hanat:override` pins it to another AZ (a manual failover).
 * - `blackhole`: the route's target is gone or stopped; EC2 drops the traffic.
 * - `no-route`: no 0.0.0.0/0 route at all.
 * - `stale`: the route is active but its target is not a running NAT of the stack.
 * - `cannot-forward`: the route is active and its target is a running NAT of the
 *   stack, but that NAT has source/dest check on, so EC2 drops what it would forward.
 * - `impaired`: the route is active and its target is a running NAT of the stack, but
 *   EC2's status checks of that NAT failed: it crashed in place and answers nothing.
 */
export type Verdict = 'ok' | 'takeover' | 'pinned' | 'blackhole' | 'no-route' | 'stale' | 'impaired' | 'cannot-forward';

/** Verdicts under which the AZ's private subnets reach the internet. */
export const FLOWING: ReadonlySet<Verdict> = new Set<Verdict>(['ok', 'takeover', 'pinned']);

/** Worst first: the AZ's verdict is the worst of its tables'. */
const SEVERITY: Verdict[] = ['blackhole', 'no-route', 'stale', 'impaired', 'cannot-forward', 'pinned', 'takeover', 'ok'];

export interface TableVerdict extends TableState {
  verdict: Verdict;
  /** The running NAT the route sends traffic to, when it is one of the stack's. */
  servedBy: { instanceId: string; az: string } | undefined;
  /** One line for people: why this verdict. */
  detail: string;
}

export interface AzStatus {
  az: string;
  verdict: Verdict;
  routeTables: TableVerdict[];
}

export interface StatusResult {
  stack: string;
  region: string;
  stackStatus: string;
  azs: AzStatus[];
  nats: NatState[];
  eips: EipState[];
  /** AZs whose traffic does not flow (blackhole, no-route, stale, impaired, cannot-forward). */
  degraded: string[];
  /** Private route tables without `hanat:az`: in no AZ, claimed by no agent (a warning on stderr). */
  untagged: string[];
}

function sinceText(table: TableState, instanceId: string): string {
  return table.owner?.instanceId === instanceId && table.owner.since ? ` since ${table.owner.since}` : '';
}

/** The verdict of one private route table, given the stack's NATs. */
export function judgeTable(table: TableState, nats: readonly NatState[]): TableVerdict {
  const pin = table.override && table.override !== table.az ? table.override : undefined;
  const pinNote = pin ? `; pinned to ${pin} (${TAG.override})` : '';
  const route = table.route;
  if (!route) return { ...table, verdict: 'no-route', servedBy: undefined, detail: `no 0.0.0.0/0 route${pinNote}` };
  const nat = natFor(nats, route);
  if (route.state === 'blackhole') {
    const what = nat ? `${nat.az}'s NAT ${nat.instanceId} (${nat.state})` : 'a target that no longer exists';
    return { ...table, verdict: 'blackhole', servedBy: undefined, detail: `route to ${route.target} is a blackhole: ${what}${pinNote}` };
  }
  if (!nat || nat.state !== 'running') {
    const why = nat ? `${nat.az}'s NAT ${nat.instanceId}, which is ${nat.state}` : 'not a NAT instance of this stack';
    return { ...table, verdict: 'stale', servedBy: undefined, detail: `route to ${route.target}: ${why}${pinNote}` };
  }
  const servedBy = { instanceId: nat.instanceId, az: nat.az };
  const whose = nat.az === table.az ? `its own NAT ${nat.instanceId}` : `${nat.az}'s NAT ${nat.instanceId}`;
  if (isImpaired(nat)) {
    const since = nat.statusChecks?.impairedSince ? ` since ${nat.statusChecks.impairedSince}` : '';
    return {
      ...table,
      verdict: 'impaired',
      servedBy,
      detail: `route to ${whose}, whose EC2 status checks are impaired${since}: it answers nothing, although EC2 reports it running and the route active${pinNote}`,
    };
  }
  if (nat.sourceDestCheck === true) {
    return {
      ...table,
      verdict: 'cannot-forward',
      servedBy,
      detail: `route to ${whose}, which has source/dest check on, so EC2 drops the traffic it would forward${pinNote}`,
    };
  }
  if (pin) {
    const where = nat.az === pin ? `served by ${nat.az}'s NAT ${nat.instanceId}${sinceText(table, nat.instanceId)}` : `still served by ${nat.az}'s NAT ${nat.instanceId}, not yet by ${pin}'s`;
    return { ...table, verdict: 'pinned', servedBy, detail: `pinned to ${pin} by hanat failover: ${where}` };
  }
  if (nat.az === table.az) return { ...table, verdict: 'ok', servedBy, detail: `served by its own NAT ${nat.instanceId}` };
  return { ...table, verdict: 'takeover', servedBy, detail: `taken over by ${nat.az}'s NAT ${nat.instanceId}${sinceText(table, nat.instanceId)}` };
}

function worst(verdicts: readonly Verdict[]): Verdict {
  return SEVERITY.find((v) => verdicts.includes(v)) ?? 'ok';
}

/** Verdicts per AZ, sorted by AZ. */
export function judge(tables: readonly TableState[], nats: readonly NatState[]): AzStatus[] {
  const byAz = new Map<string, TableVerdict[]>();
  for (const t of tables) {
    const list = byAz.get(t.az) ?? [];
    list.push(judgeTable(t, nats));
    byAz.set(t.az, list);
  }
  return [...byAz.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([az, routeTables]) => ({ az, verdict: worst(routeTables.map((t) => t.verdict)), routeTables }));
}

export async function status(opts: StatusOptions, deps: ActionDeps): Promise<StatusResult> {
  const { name, regionOpt } = checkStackTarget(opts, deps.env);
  const clients = deps.aws({ region: regionOpt, profile: opts.profile, debug: opts.debug });
  try {
    const { region, stack } = await findHanatStack(clients, { ...opts, name, regionOpt }, deps, 'status');
    const stackStatus = stack.StackStatus ?? 'UNKNOWN';
    const read = await readTables(clients.ec2, name, deps);
    if (read.untagged.length) deps.reporter.warn(untaggedWarning(read.untagged, name, region));
    requireTables(read, name, region, stackStatus);
    const nats = await readNats(clients.ec2, name, deps);
    await readAutoScaling(clients.autoScaling, nats, deps);
    await readStatusChecks(clients.ec2, nats, deps);
    const eips = await readEips(clients.ec2, name, deps);
    const azs = judge(read.tables, nats);
    const degraded = azs.filter((a) => !FLOWING.has(a.verdict)).map((a) => a.az);
    return { stack: name, region, stackStatus, azs, nats, eips, degraded, untagged: read.untagged };
  } catch (err) {
    if (!(err instanceof HanatError) && isAbort(err, deps.signal)) throw new InterruptedError('Interrupted: hanat status only reads, so nothing was changed.', { cause: err });
    throw err;
  } finally {
    clients.destroy();
  }
}

/** The exit-1 error for a degraded stack, naming each AZ whose traffic does not flow; undefined when all flow. */
export function statusFailure(result: StatusResult): OperationError | undefined {
  if (result.degraded.length === 0) return undefined;
  const lines = result.azs
    .filter((a) => !FLOWING.has(a.verdict))
    .flatMap((a) => a.routeTables.filter((t) => !FLOWING.has(t.verdict)).map((t) => `  ${a.az} ${t.verdict}: ${t.routeTableId} ${t.detail}`));
  const n = result.degraded.length;
  return new OperationError(
    `${n} ${n === 1 ? 'AZ' : 'AZs'} of stack ${result.stack} cannot reach the internet: ${result.degraded.join(', ')}\n${lines.join('\n')}\n` +
      result.azs
        .filter((a) => !FLOWING.has(a.verdict))
        .map((a) => advice(a, result))
        .join('\n'),
  );
}

/** What to do about one AZ whose traffic does not flow. */
function advice(a: AzStatus, r: StatusResult): string {
  const cmd = `hanat failover --name ${r.stack} --region ${r.region} --az ${a.az}`;
  const broken = a.routeTables.filter((t) => !FLOWING.has(t.verdict));
  const ownNat = r.nats.find((n) => n.az === a.az && n.state === 'running' && n.sourceDestCheck !== true);
  const pin = broken.find((t) => t.override !== undefined && t.override !== a.az)?.override;
  if (pin && ownNat) {
    return `${a.az}: pinned to ${pin}, whose NAT does not serve it, while its own NAT ${ownNat.instanceId} runs. Remove the pin and it takes its routes back: ${cmd} --restore`;
  }
  const impaired = broken.find((t) => t.verdict === 'impaired')?.servedBy;
  if (impaired) {
    return (
      `${a.az}: NAT ${impaired.instanceId} fails EC2's status checks. Auto Scaling's EC2 health check replaces it once the group's grace period is over, and the new NAT claims the routes. ` +
      `Until then move the traffic by hand: ${cmd}`
    );
  }
  const deaf = broken.find((t) => t.verdict === 'cannot-forward')?.servedBy;
  if (deaf) {
    return (
      `${a.az}: NAT ${deaf.instanceId} has source/dest check on; its agent turns the check off when it starts, so the agent is still starting or not running. ` +
      `Check the agent on ${deaf.instanceId} (systemctl status hanat-agent; journalctl -u hanat-agent), or move the traffic to another AZ: ${cmd}`
    );
  }
  return (
    `${a.az}: its NAT claims the route again once it runs (Auto Scaling replaces a dead one). Meanwhile move the traffic by hand: ` +
    `${cmd} (to the next AZ whose NAT can serve it).`
  );
}
