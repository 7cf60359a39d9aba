/**
 * `hanat status`: which NAT serves which AZ. Describe calls only (observe.ts);
 * a verdict per private route table and per AZ. The action returns the result;
 * the program prints it and exits 1 when an AZ's traffic does not flow
 * (statusFailure), so `hanat status --json | jq` works either way.
 */
import { TAG, type OwnerReason } from '@hanat/core';
import type { StackTargetOptions } from './aws.js';
import type { ActionDeps, AwsClients } from './deps.js';
import { HanatError, InterruptedError, OperationError, UsageError, isAbort } from './errors.js';
import {
  checkStackTarget,
  findHanatStack,
  isImpaired,
  natFor,
  readAutoScaling,
  readEips,
  readFailedLaunches,
  readNats,
  readStatusChecks,
  readTables,
  requireTables,
  untaggedWarning,
  type EipState,
  type FailedLaunch,
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
  /** Since when `servedBy` serves it (`hanat:owner-since`), when `hanat:owner` names that NAT. */
  since: string | undefined;
  /** Why `servedBy` serves it (`hanat:owner-reason`), when `hanat:owner` names that NAT. */
  reason: OwnerReason | undefined;
  /** One line for people: who serves it and why, or why nobody does. */
  detail: string;
}

export interface AzStatus {
  az: string;
  verdict: Verdict;
  /** Who serves the AZ, since when and why: those of the table that decides its verdict (its worst). */
  servedBy: { instanceId: string; az: string } | undefined;
  since: string | undefined;
  reason: OwnerReason | undefined;
  detail: string;
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
  /** AZs without a running NAT whose group's latest launch failed: AWS's reason, and when. */
  failedLaunches: FailedLaunch[];
}

/** What the owner tags say about `instanceId`, the NAT the route points at: nothing when they name another. */
function recorded(table: TableState, instanceId: string): { since: string | undefined; reason: OwnerReason | undefined } {
  return table.owner?.instanceId === instanceId ? { since: table.owner.since, reason: table.owner.reason } : { since: undefined, reason: undefined };
}

function sinceText(since: string | undefined): string {
  return since ? ` since ${since}` : '';
}

/**
 * Why another AZ's NAT serves a table, in words, from `hanat:owner-reason`; `whose` is
 * the NAT that no longer serves it ("its", or "eu-west-1c's" for a pinned table).
 */
export function takeoverWhy(reason: OwnerReason | undefined, whose: string): string {
  switch (reason) {
    case 'peer-down':
      return `because ${whose} NAT failed: it stopped sending heartbeats, and another NAT missed it too (peer down)`;
    case 'stepped-aside':
      return `because ${whose} NAT failed its own checks and stepped aside (unhealthy)`;
    case 'ec2-not-running':
      return `because ${whose} NAT failed: EC2 says it is not running`;
    case 'ec2-impaired':
      return `because ${whose} NAT failed: EC2's status checks say it is impaired`;
    case 'shutdown':
      return `because ${whose} NAT handed its routes over as it shut down`;
    case 'manual-failover':
      return `by hanat failover, whose pin has been removed since: ${whose} NAT takes the routes back at its next route check`;
    default:
      return `(why is not recorded: no ${TAG.ownerReason} for this NAT)`;
  }
}
/** The verdict of one private route table, given the stack's NATs. */
export function judgeTable(table: TableState, nats: readonly NatState[]): TableVerdict {
  const pin = table.override && table.override !== table.az ? table.override : undefined;
  const pinNote = pin ? `; pinned to ${pin} (${TAG.override})` : '';
  const route = table.route;
  const nobody = { servedBy: undefined, since: undefined, reason: undefined };
  if (!route) return { ...table, verdict: 'no-route', ...nobody, detail: `no 0.0.0.0/0 route${pinNote}` };
  const nat = natFor(nats, route);
  if (route.state === 'blackhole') {
    const what = nat ? `${nat.az}'s NAT ${nat.instanceId} (${nat.state})` : 'a target that no longer exists';
    return { ...table, verdict: 'blackhole', ...nobody, detail: `route to ${route.target} is a blackhole: ${what}${pinNote}` };
  }
  if (!nat || nat.state !== 'running') {
    const why = nat ? `${nat.az}'s NAT ${nat.instanceId}, which is ${nat.state}` : 'not a NAT instance of this stack';
    return { ...table, verdict: 'stale', ...nobody, detail: `route to ${route.target}: ${why}${pinNote}` };
  }
  const { since, reason } = recorded(table, nat.instanceId);
  const servedBy = { instanceId: nat.instanceId, az: nat.az };
  const served = { servedBy, since, reason };
  const whose = nat.az === table.az ? `its own NAT ${nat.instanceId}` : `${nat.az}'s NAT ${nat.instanceId}`;
  if (isImpaired(nat)) {
    const since = nat.statusChecks?.impairedSince ? ` since ${nat.statusChecks.impairedSince}` : '';
    return {
      ...table,
      verdict: 'impaired',
      ...served,
      detail: `route to ${whose}, whose EC2 status checks are impaired${since}: it answers nothing, although EC2 reports it running and the route active${pinNote}`,
    };
  }
  if (nat.sourceDestCheck === true) {
    return {
      ...table,
      verdict: 'cannot-forward',
      ...served,
      detail: `route to ${whose}, which has source/dest check on, so EC2 drops the traffic it would forward${pinNote}`,
    };
  }
  if (pin) {
    let where: string;
    if (nat.az === pin) where = `served by ${nat.az}'s NAT ${nat.instanceId}${sinceText(since)}`;
    // The pinned AZ's NAT failed, and its successor took the table over, as the agents do for a pinned table.
    else if (nat.az !== table.az && reason !== undefined && reason !== 'own-az' && reason !== 'manual-failover') where = `taken over by ${nat.az}'s NAT ${nat.instanceId}${sinceText(since)} ${takeoverWhy(reason, `${pin}'s`)}`;
    else where = `still served by ${nat.az}'s NAT ${nat.instanceId}, not yet by ${pin}'s`;
    return { ...table, verdict: 'pinned', ...served, detail: `pinned to ${pin} by hanat failover (${TAG.override}): ${where}` };
  }
  if (nat.az === table.az) return { ...table, verdict: 'ok', ...served, detail: `served by its own NAT ${nat.instanceId}${sinceText(since)}` };
  return { ...table, verdict: 'takeover', ...served, detail: `taken over by ${nat.az}'s NAT ${nat.instanceId}${sinceText(since)} ${takeoverWhy(reason, 'its')}` };
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
    .map(([az, routeTables]) => {
      const verdict = worst(routeTables.map((t) => t.verdict));
      const decides = routeTables.find((t) => t.verdict === verdict)!;
      return { az, verdict, servedBy: decides.servedBy, since: decides.since, reason: decides.reason, detail: decides.detail, routeTables };
    });
}

interface Target {
  name: string;
  region: string;
  stackStatus: string;
}

/**
 * One look at the stack's NATs: what can change from one moment to the next (routes,
 * owner tags, NATs, their health, the Elastic IPs). For a healthy stack: DescribeRouteTables,
 * DescribeInstances, DescribeInstanceStatus, DescribeAddresses, DescribeAutoScalingInstances.
 */
async function observeStack(clients: AwsClients, target: Target, deps: ActionDeps, warnUntagged: boolean): Promise<StatusResult> {
  const { name, region, stackStatus } = target;
  const read = await readTables(clients.ec2, name, deps);
  if (warnUntagged && read.untagged.length) deps.reporter.warn(untaggedWarning(read.untagged, name, region));
  requireTables(read, name, region, stackStatus);
  const nats = await readNats(clients.ec2, name, deps);
  await readAutoScaling(clients.autoScaling, nats, deps);
  await readStatusChecks(clients.ec2, nats, deps);
  const eips = await readEips(clients.ec2, name, deps);
  const azs = judge(read.tables, nats);
  const degraded = azs.filter((a) => !FLOWING.has(a.verdict)).map((a) => a.az);
  // Only AZs without a running NAT can have a launch failing now: no extra call when every AZ has one.
  const natless = azs.map((a) => a.az).filter((az) => !nats.some((n) => n.az === az && n.state === 'running'));
  const failedLaunches = await readFailedLaunches(clients.autoScaling, name, natless, deps);
  return { stack: name, region, stackStatus, azs, nats, eips, degraded, untagged: read.untagged, failedLaunches };
}

async function findTarget(clients: AwsClients, opts: StatusOptions, name: string, regionOpt: string | undefined, deps: ActionDeps): Promise<Target> {
  const { region, stack } = await findHanatStack(clients, { ...opts, name, regionOpt }, deps, 'status');
  return { name, region, stackStatus: stack.StackStatus ?? 'UNKNOWN' };
}

export async function status(opts: StatusOptions, deps: ActionDeps): Promise<StatusResult> {
  const { name, regionOpt } = checkStackTarget(opts, deps.env);
  const clients = deps.aws({ region: regionOpt, profile: opts.profile, debug: opts.debug });
  try {
    return await observeStack(clients, await findTarget(clients, opts, name, regionOpt, deps), deps, true);
  } catch (err) {
    if (!(err instanceof HanatError) && isAbort(err, deps.signal)) throw new InterruptedError('Interrupted: hanat status only reads, so nothing was changed.', { cause: err });
    throw err;
  } finally {
    clients.destroy();
  }
}

/**
 * `--watch`: the default seconds between two looks. A look at a healthy stack costs 4 EC2
 * Describe calls (one each of 4 actions) and 1 Auto Scaling call; every 5 s that is 12 calls a
 * minute per action, what 6 agents spend on DescribeRouteTables at steady state, and 1 % of the
 * 20 a second EC2 refills each Describe action's bucket with (EC2 Developer Guide, "Request
 * throttling for the Amazon EC2 API"). The agents of every stack in the account share those
 * buckets, and need them most during an AZ outage, exactly when someone watches.
 */
export const DEFAULT_WATCH_INTERVAL_S = 5;
/** The shortest interval `--watch` accepts. */
export const MIN_WATCH_INTERVAL_S = 2;

/** The longest interval `--watch` accepts: an hour. */
export const MAX_WATCH_INTERVAL_S = 3600;

/** `--interval <seconds>`: a number from MIN_WATCH_INTERVAL_S to MAX_WATCH_INTERVAL_S. */
export function parseWatchInterval(value: string): number {
  const n = /^[0-9]+(\.[0-9]+)?$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!(n >= MIN_WATCH_INTERVAL_S && n <= MAX_WATCH_INTERVAL_S)) {
    throw new UsageError(
      `--interval "${value}": pass the seconds between two looks, from ${MIN_WATCH_INTERVAL_S} to ${MAX_WATCH_INTERVAL_S}, e.g. --interval ${DEFAULT_WATCH_INTERVAL_S}. ` +
        `Shorter looks would spend the EC2 API budget the agents of every stack in the account share.`,
    );
  }
  return n;
}

export interface StatusWatchOptions extends StatusOptions {
  intervalMs: number;
}

/** One look of `hanat status --watch`: the result, or why this look failed (the next one tries again). */
export type WatchFrame = { at: number; result: StatusResult; error?: undefined } | { at: number; result?: undefined; error: HanatError };

/**
 * `hanat status --watch`: a look every `intervalMs` until Ctrl-C, which ends the watch
 * cleanly (the generator returns). The stack is looked up once, in the first look, which
 * throws as `status` does (an unknown stack is exit 2); a later look that fails is a
 * frame with its error, and the watch goes on. Each later look makes only the calls of
 * `observeStack`: what cannot change while the watch runs (the profile, the region, the
 * stack being hanat's) is not asked again.
 */
export async function* watchStatus(opts: StatusWatchOptions, deps: ActionDeps): AsyncGenerator<WatchFrame, void, undefined> {
  const { name, regionOpt } = checkStackTarget(opts, deps.env);
  const clients = deps.aws({ region: regionOpt, profile: opts.profile, debug: opts.debug });
  try {
    let target: Target;
    let frame: WatchFrame;
    let started = deps.clock.now();
    try {
      target = await findTarget(clients, opts, name, regionOpt, deps);
      frame = { at: deps.clock.now(), result: await observeStack(clients, target, deps, true) };
    } catch (err) {
      if (!(err instanceof HanatError) && isAbort(err, deps.signal)) return;
      throw err;
    }
    for (;;) {
      yield frame;
      try {
        await deps.clock.sleep(Math.max(0, opts.intervalMs - (deps.clock.now() - started)), deps.signal);
      } catch (err) {
        if (isAbort(err, deps.signal)) return;
        throw err;
      }
      if (deps.signal.aborted) return;
      started = deps.clock.now();
      try {
        frame = { at: started, result: await observeStack(clients, target, deps, false) };
      } catch (err) {
        if (isAbort(err, deps.signal)) return;
        if (!(err instanceof HanatError)) throw err;
        frame = { at: started, error: err };
      }
    }
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
  const failed = r.failedLaunches.find((f) => f.az === a.az);
  if (failed) {
    return (
      `${a.az}: its Auto Scaling group ${failed.group} cannot launch a NAT; the latest attempt${failed.time ? ` (${failed.time})` : ''} failed: ${failed.message} ` +
      `Fix that cause (the group retries by itself), and meanwhile move the traffic by hand: ${cmd}`
    );
  }
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
