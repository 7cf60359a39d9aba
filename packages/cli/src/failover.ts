/**
 * `hanat failover`: manual failover (DESIGN.md "Manual failover").
 *
 * `--az A [--to B]` moves A's private default routes to B's NAT and pins them
 * there with `hanat:override=B`, so that no agent undoes it. The writes come in
 * an order that A's agent cannot undo half-way, and that needs no agent at all:
 *   1. tag A's tables `hanat:override=B` (A's agent leaves pinned tables alone),
 *   2. point 0.0.0.0/0 at B's NAT's primary network interface (replace, else create),
 *   3. write `hanat:owner` / `hanat:owner-since` / `hanat:owner-reason=manual-failover` (B's NAT, now).
 * Re-running it finishes an interrupted failover, and does nothing when all is done.
 *
 * `--az A --restore` removes the pin and nothing else: A's agent takes the
 * routes back at its next route check, after its own checks.
 */
import { CreateTagsCommand, DeleteTagsCommand } from '@aws-sdk/client-ec2';
import { DEFAULT_ROUTE_INTERVAL_S, TAG, ownerTags, pointDefaultRoute, successorAz, type RouteWrite } from '@hanat/core';
import type { StackTargetOptions } from './aws.js';
import { retrying } from './cfn.js';
import type { ActionDeps } from './deps.js';
import { HanatError, InterruptedError, OperationError, UsageError, isAbort } from './errors.js';
import {
  checkStackTarget,
  findHanatStack,
  isLeaving,
  readAutoScaling,
  readNats,
  readTables,
  requireTables,
  unfitness,
  untaggedWarning,
  type NatState,
  type TableState,
} from './observe.js';

export interface FailoverOptions extends StackTargetOptions {
  az: string;
  to?: string | undefined;
  restore?: boolean | undefined;
  yes?: boolean | undefined;
}

export interface FailoverTable {
  routeTableId: string;
  /** `set` (written now), `kept` (already there), `removed` (restore), `none` (restore: there was no pin). */
  pin: 'set' | 'kept' | 'removed' | 'none';
  /** The AZ the pin names: B for a failover, the removed value for a restore. */
  pinnedTo: string | null;
  route: RouteWrite | 'unchanged';
  /** What the default route pointed at before (null: no route). */
  previousTarget: string | null;
  owner: 'written' | 'unchanged';
}

export interface FailoverResult {
  stack: string;
  region: string;
  action: 'failover' | 'restore';
  az: string;
  /** B: the AZ whose NAT now serves A (failover only). */
  to: string | undefined;
  instanceId: string | undefined;
  networkInterfaceId: string | undefined;
  /** False when there was nothing to do. */
  changed: boolean;
  routeTables: FailoverTable[];
  /** What happens next and how to undo it, for people. */
  notes: string[];
  /** The command that undoes a failover. */
  undo: string | undefined;
  pinTag: string;
}

export const NOT_INTERACTIVE_FAILOVER_MESSAGE =
  'Refusing to move traffic without confirmation: no terminal to ask on. Pass --yes to fail over without a prompt.';
export const NOT_INTERACTIVE_RESTORE_MESSAGE =
  'Refusing to remove the failover pin without confirmation: no terminal to ask on. Pass --yes to restore without a prompt.';


function checkAzFlag(value: string, flag: '--az' | '--to'): string {
  const az = value.trim();
  if (az === '' || /\s/.test(az)) {
    throw new UsageError(`${flag} "${value}": give an Availability Zone name of the stack, e.g. ${flag} eu-west-1a (hanat status --name <stack> lists them).`);
  }
  return az;
}

function cmdTail(name: string, region: string, profile: string | undefined): string {
  return `--name ${name} --region ${region}${profile ? ` --profile ${profile}` : ''}`;
}

function running(nats: readonly NatState[], az: string): NatState[] {
  return nats.filter((n) => n.az === az && n.state === 'running');
}

function found(nats: readonly NatState[], az: string): string {
  const there = nats.filter((n) => n.az === az);
  return there.length ? there.map((n) => `${n.instanceId} (${n.state})`).join(', ') : 'no NAT instance';
}

/**
 * B's NAT: its running instance. With two (a replacement in progress) one that
 * can serve (observe.ts unfitness: HEALTHY, InService, source/dest check off)
 * before one that cannot; among those, the one B's own table routes to, else
 * the newest, which is the one the agents let win.
 */
function natOf(nats: readonly NatState[], tables: readonly TableState[], az: string): NatState | undefined {
  const candidates = running(nats, az);
  if (candidates.length <= 1) return candidates[0];
  const fit = candidates.filter((n) => unfitness(n) === undefined);
  const pool = fit.length ? fit : candidates;
  const own = tables.filter((t) => t.az === az && t.route?.state !== 'blackhole').map((t) => t.route?.networkInterfaceId);
  return pool.find((n) => own.includes(n.networkInterfaceId)) ?? pool[pool.length - 1];
}

/** The AZ that `az`'s own tables are pinned to by a failover, if any: its NAT is out of service by hand. */
function pinnedAway(tables: readonly TableState[], az: string): string | undefined {
  return tables.find((t) => t.az === az && t.override !== undefined && t.override !== az)?.override;
}

/**
 * Why AZ `z` cannot take over another AZ's traffic, or undefined when it can
 * (the successor rule, core successorAz): its own tables are not pinned away,
 * and its NAT runs and can serve (observe.ts unfitness).
 */
function whyNot(z: string, nats: readonly NatState[], tables: readonly TableState[], tail: string): string | undefined {
  const pin = pinnedAway(tables, z);
  if (pin) return `its own tables are pinned to ${pin} (undo with hanat failover ${tail} --az ${z} --restore)`;
  const nat = natOf(nats, tables, z);
  if (!nat) return `no running NAT (found: ${found(nats, z)})`;
  return unfitness(nat);
}

async function confirmOrRefuse(opts: FailoverOptions, deps: ActionDeps, question: string, refusal: string, untouched: string): Promise<void> {
  if (opts.yes) return;
  if (!deps.interactive) throw new UsageError(refusal);
  const ok = await deps.confirm(question, deps.signal);
  if (deps.signal.aborted) throw new InterruptedError(`Interrupted: ${untouched}`);
  if (!ok) throw new OperationError(`Not changed: ${untouched}`);
}

export async function failover(opts: FailoverOptions, deps: ActionDeps): Promise<FailoverResult> {
  const { name, regionOpt } = checkStackTarget(opts, deps.env);
  const az = checkAzFlag(opts.az, '--az');
  const to = opts.to === undefined ? undefined : checkAzFlag(opts.to, '--to');
  if (opts.restore && to !== undefined) throw new UsageError('--restore takes no --to: it removes the pin of --az and lets that AZ\'s own NAT take its routes back.');
  if (to === az) {
    throw new UsageError(`--to ${to} is the AZ being failed over (--az ${az}): pass another AZ, or leave out --to for the next AZ with a running NAT. To undo a failover, use --restore.`);
  }

  const clients = deps.aws({ region: regionOpt, profile: opts.profile, debug: opts.debug });
  try {
    const { region, stack } = await findHanatStack(clients, { ...opts, name, regionOpt }, deps, 'failover');
    const read = await readTables(clients.ec2, name, deps);
    if (read.untagged.length) deps.reporter.warn(untaggedWarning(read.untagged, name, region));
    requireTables(read, name, region, stack.StackStatus ?? 'UNKNOWN');
    const tables = read.tables;
    const stackAzs = [...new Set(tables.map((t) => t.az))].sort();
    if (!stackAzs.includes(az)) {
      throw new UsageError(`--az ${az} is not an Availability Zone of stack ${name} in ${region}: its AZs are ${stackAzs.join(', ')}.`);
    }
    if (to !== undefined && !stackAzs.includes(to)) {
      throw new UsageError(`--to ${to} is not an Availability Zone of stack ${name} in ${region}: its AZs are ${stackAzs.join(', ')}.`);
    }
    const mine = tables.filter((t) => t.az === az);
    const nats = await readNats(clients.ec2, name, deps);
    const tail = cmdTail(name, region, opts.profile);
    const base = { stack: name, region, az, pinTag: TAG.override };

    if (opts.restore) return await restore(opts, deps, clients.ec2, { ...base, mine, nats, tail });

    await readAutoScaling(clients.autoScaling, nats, deps);
    const others = stackAzs.filter((z) => z !== az);
    const reasons = new Map(others.map((z) => [z, whyNot(z, nats, tables, tail)]));
    const fit = others.filter((z) => reasons.get(z) === undefined);
    const target = to ?? successorAz(az, stackAzs, (z) => reasons.get(z) === undefined);
    if (target === undefined) {
      throw new OperationError(
        `No AZ can take over ${az}: no other AZ of stack ${name} has a NAT that can serve it (${others.map((z) => `${z}: ${reasons.get(z)}`).join('; ')}). ` +
          `Nothing was changed. Wait until Auto Scaling has replaced them or their agents have started (hanat status --name ${name} shows the NATs), then run this again.`,
      );
    }
    const alternatives = fit.filter((z) => z !== target);
    const orAnother = alternatives.length ? `, or pass --to with another AZ: ${alternatives.join(', ')}.` : '.';
    // Without --to the successor passed every check below; they guard an explicit --to.
    const pin = pinnedAway(tables, target);
    if (pin) {
      throw new UsageError(
        `${target}'s own route tables are pinned to ${pin} (${TAG.override}: a failover moved them), so its NAT is out of service by hand and would not serve ${az} for long. ` +
          `Nothing was changed. Restore ${target} first: hanat failover ${tail} --az ${target} --restore${orAnother}`,
      );
    }
    const nat = natOf(nats, tables, target);
    if (!nat) {
      throw new UsageError(
        `${target} has no running NAT to take over ${az} (found: ${found(nats, target)}). Nothing was changed. ` +
          `Wait until its Auto Scaling group has replaced it (hanat status --name ${name} shows the NATs)` +
          (alternatives.length ? `, or pass --to with an AZ whose NAT runs: ${alternatives.join(', ')}.` : '.'),
      );
    }
    if (isLeaving(nat)) {
      throw new UsageError(
        `${target}'s NAT ${nat.instanceId} is ${nat.autoScaling!.health} and ${nat.autoScaling!.lifecycle} in its Auto Scaling group ${nat.autoScaling!.group}: the group is replacing it, ` +
          `and the traffic of ${az} would go down with it. Nothing was changed. Wait until the replacement runs (hanat status --name ${name} shows the NATs)${orAnother}`,
      );
    }
    if (nat.sourceDestCheck === true) {
      throw new UsageError(
        `${target}'s NAT ${nat.instanceId} has source/dest check on, so it would drop the traffic of ${az}: its agent turns the check off when it starts, ` +
          `before it claims any route, so it is still starting or its agent is not running. Nothing was changed. ` +
          `Wait and look again with hanat status --name ${name}${orAnother}`,
      );
    }
    const eni = nat.networkInterfaceId;
    if (!eni) {
      throw new OperationError(
        `${target}'s NAT ${nat.instanceId} has no primary network interface (device index 0) in DescribeInstances; routes must target one. Nothing was changed. ` +
          `Check the instance: aws ec2 describe-instances --region ${region} --instance-ids ${nat.instanceId} --query 'Reservations[].Instances[].NetworkInterfaces' ` +
          `(an interface detached by hand, or an instance still being set up)${orAnother}`,
      );
    }
    const passedOver = to === undefined ? others.filter((z) => reasons.get(z) !== undefined).map((z) => `${z} (${reasons.get(z)})`) : [];
    const passedNote = passedOver.length ? [`Passed over: ${passedOver.join('; ')}.`] : [];

    const plan = mine.map((t) => ({
      table: t,
      pin: t.override === target,
      route: t.route?.networkInterfaceId === eni && t.route.state !== 'blackhole',
      owner: t.owner?.instanceId === nat.instanceId,
    }));
    const undo = `hanat failover ${tail} --az ${az} --restore`;
    const result = (changed: boolean, routeTables: FailoverTable[], notes: string[]): FailoverResult => ({
      ...base,
      action: 'failover',
      to: target,
      instanceId: nat.instanceId,
      networkInterfaceId: eni,
      changed,
      routeTables,
      notes,
      undo,
    });
    const undoNote = `Undo with: ${undo} (${az}'s own NAT then takes its routes back within ${DEFAULT_ROUTE_INTERVAL_S} s).`;
    if (plan.every((p) => p.pin && p.route && p.owner)) {
      return result(
        false,
        plan.map((p) => ({ routeTableId: p.table.routeTableId, pin: 'kept', pinnedTo: target, route: 'unchanged', previousTarget: p.table.route?.target ?? null, owner: 'unchanged' })),
        [...passedNote, undoNote],
      );
    }

    const ids = mine.map((t) => t.routeTableId).join(', ');
    const current = [...new Set(mine.map((t) => t.route?.target ?? 'no route'))].join(', ');
    await confirmOrRefuse(
      opts,
      deps,
      `Move the internet traffic of ${az} (route table ${ids}, now to ${current}) to ${target}'s NAT ${nat.instanceId} (${eni}) and pin it there? ` +
        `Connections open through ${az}'s NAT break: their packets leave by another public address, and the new NAT knows nothing of them.`,
      NOT_INTERACTIVE_FAILOVER_MESSAGE,
      `the route tables of ${az} are unchanged.`,
    );

    const ec2 = clients.ec2;
    const unpinned = plan.filter((p) => !p.pin).map((p) => p.table.routeTableId);
    const written = new Map<string, RouteWrite>();
    const owners = plan.filter((p) => !p.route || !p.owner).map((p) => p.table.routeTableId);
    // What is written so far, for a failure or Ctrl-C part-way.
    let pinned = unpinned.length === 0;
    const routed = new Set(plan.filter((p) => p.route).map((p) => p.table.routeTableId));
    const leftState = (): string => {
      const stuck = mine.filter((t) => !routed.has(t.routeTableId));
      return stuck.length
        ? `${az} is already pinned to ${target} (${TAG.override}), but its route ${stuck
            .map((t) => `in ${t.routeTableId} still points at ${t.route ? t.route.target : 'nothing (no 0.0.0.0/0 route)'}`)
            .join(', ')}, not at ${target}'s NAT ${eni}.`
        : `${az} is pinned to ${target} and its route points at ${target}'s NAT ${eni}, but the ${TAG.owner} tags were not written.`;
    };
    const goOn =
      `Run the same command again to finish: hanat failover ${tail} --az ${az} --to ${target} --yes; ` +
      `or undo it: hanat failover ${tail} --az ${az} --restore (${az}'s own NAT then takes its routes back).`;
    try {
      if (unpinned.length) {
        await retrying('CreateTags', () => ec2.send(new CreateTagsCommand({ Resources: unpinned, Tags: [{ Key: TAG.override, Value: target }] })), deps);
        pinned = true;
      }
      for (const p of plan.filter((x) => !x.route)) {
        const id = p.table.routeTableId;
        written.set(id, await pointDefaultRoute(ec2, id, eni, p.table.route !== undefined, (action, call) => retrying(action, call, deps)));
        routed.add(id);
      }
      if (owners.length) {
        const tags = ownerTags(nat.instanceId, new Date(deps.clock.now()), 'manual-failover');
        await retrying('CreateTags', () => ec2.send(new CreateTagsCommand({ Resources: owners, Tags: tags })), deps);
      }
    } catch (err) {
      if (!pinned) {
        // Step 1 did not happen: nothing was written.
        if (isAbort(err, deps.signal)) throw new InterruptedError(`Interrupted before any change: the route tables of ${az} are unchanged.`, { cause: err });
        throw err;
      }
      if (isAbort(err, deps.signal)) throw new InterruptedError(`Stopped part-way: ${leftState()} ${goOn}`, { cause: err });
      if (err instanceof HanatError) throw new OperationError(`${err.message}\nThe failover stopped part-way: ${leftState()} ${goOn}`, { cause: err });
      throw err;
    }
    const ownNat = running(nats, az);
    return result(
      true,
      plan.map((p) => ({
        routeTableId: p.table.routeTableId,
        pin: p.pin ? 'kept' : 'set',
        pinnedTo: target,
        route: written.get(p.table.routeTableId) ?? 'unchanged',
        previousTarget: p.table.route?.target ?? null,
        owner: owners.includes(p.table.routeTableId) ? 'written' : 'unchanged',
      })),
      [
        `The pin stays until you remove it: no agent moves these routes while it is there` +
          (ownNat.length ? ` (${az}'s own NAT ${ownNat.map((n) => n.instanceId).join(', ')} keeps running but serves nothing).` : '.'),
        ...passedNote,
        undoNote,
      ],
    );
  } catch (err) {
    if (!(err instanceof HanatError) && isAbort(err, deps.signal)) {
      throw new InterruptedError(`Interrupted before any change: the route tables of ${az} are unchanged.`, { cause: err });
    }
    throw err;
  } finally {
    clients.destroy();
  }
}

async function restore(
  opts: FailoverOptions,
  deps: ActionDeps,
  ec2: Parameters<typeof pointDefaultRoute>[0],
  ctx: { stack: string; region: string; az: string; pinTag: string; mine: TableState[]; nats: NatState[]; tail: string },
): Promise<FailoverResult> {
  const { az, mine, nats } = ctx;
  const pinned = mine.filter((t) => t.override !== undefined);
  const rows = (pin: 'removed' | 'none'): FailoverTable[] =>
    mine.map((t) => ({
      routeTableId: t.routeTableId,
      pin: t.override !== undefined ? pin : 'none',
      pinnedTo: t.override ?? null,
      route: 'unchanged',
      previousTarget: t.route?.target ?? null,
      owner: 'unchanged',
    }));
  const base = { stack: ctx.stack, region: ctx.region, az, pinTag: ctx.pinTag, action: 'restore' as const, to: undefined, undo: undefined };
  const own = running(nats, az);
  const status = `hanat status ${ctx.tail}`;
  if (pinned.length === 0) {
    return { ...base, instanceId: undefined, networkInterfaceId: undefined, changed: false, routeTables: rows('none'), notes: [] };
  }
  const pins = [...new Set(pinned.map((t) => t.override))].join(', ');
  await confirmOrRefuse(
    opts,
    deps,
    `Remove the failover pin of ${az} (${pinned.map((t) => t.routeTableId).join(', ')}, pinned to ${pins})? ` +
      (own.length ? `${az}'s NAT then takes the routes back, and connections open through ${pins}'s NAT break.` : `${az} has no running NAT, so the routes stay where they are for now.`),
    NOT_INTERACTIVE_RESTORE_MESSAGE,
    `${az} stays pinned to ${pins}.`,
  );
  const ids = pinned.map((t) => t.routeTableId);
  try {
    await retrying('DeleteTags', () => ec2.send(new DeleteTagsCommand({ Resources: ids, Tags: [{ Key: TAG.override }] })), deps);
  } catch (err) {
    if (!(err instanceof HanatError) && isAbort(err, deps.signal)) {
      throw new InterruptedError(`Interrupted: the pin was not removed, ${az} stays pinned to ${pins}. Run the same command again to remove it.`, { cause: err });
    }
    throw err;
  }
  const notes = own.length
    ? [
        `The route stays where it is until ${az}'s NAT ${own.map((n) => n.instanceId).join(', ')} takes it back at its next route check ` +
          `(within ${DEFAULT_ROUTE_INTERVAL_S} s), after its own checks. ${status} shows when: ${az} turns from TAKEOVER to ok.`,
      ]
    : [
        `${az} has no running NAT (found: ${found(nats, az)}): the route stays on ${pins}'s NAT until ${az}'s NAT is replaced and claims it. ${status} shows when.`,
      ];
  return { ...base, instanceId: undefined, networkInterfaceId: undefined, changed: true, routeTables: rows('removed'), notes };
}
