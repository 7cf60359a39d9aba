/**
 * What `hanat status` and `hanat failover` read about a stack's NATs, with
 * Describe calls only: its private route tables and their default routes, its
 * NAT instances, their Auto Scaling health, its Elastic IPs. Every lookup is
 * scoped by the `hanat:stack` tag (DESIGN.md "Tag contract"), and every call
 * retries throttling and 5xx errors (cfn.ts `retrying`).
 */
import { DescribeAutoScalingGroupsCommand, DescribeAutoScalingInstancesCommand, DescribeScalingActivitiesCommand } from '@aws-sdk/client-auto-scaling';
import type { Stack } from '@aws-sdk/client-cloudformation';
import { DescribeAddressesCommand, DescribeInstanceStatusCommand, DescribeInstancesCommand, DescribeRouteTablesCommand, type Instance, type RouteTable } from '@aws-sdk/client-ec2';
import { NETWORK_PRIVATE, TAG, defaultRoute, routeOwner, routeTarget, stackFilters, tagValue, type AutoScaling, type Ec2, type OwnerReason } from '@hanat/core';
import { checkTarget, localRegion, type StackTargetOptions } from './aws.js';
import { describeStack, ownershipOf, retrying, templateUnreadable } from './cfn.js';
import type { ActionDeps, AwsClients } from './deps.js';
import { OperationError, UsageError } from './errors.js';
import { checkStackName } from './validate.js';

type PollDeps = Pick<ActionDeps, 'clock' | 'signal' | 'pollIntervalMs' | 'reporter'>;

/** A private route table as status and failover see it. */
export interface TableState {
  routeTableId: string;
  /** `hanat:az`: the AZ whose NAT serves it by default. */
  az: string;
  /** `hanat:override`, the manual failover pin, if any. */
  override: string | undefined;
  /** `hanat:owner`, `hanat:owner-since`, `hanat:owner-reason`: who last pointed the route, when, and why. */
  owner: { instanceId: string; since: string | undefined; reason: OwnerReason | undefined } | undefined;
  /** The 0.0.0.0/0 route; undefined when there is none. */
  route:
    | {
        /** What it points at, by id: a network interface, else an instance, NAT gateway, gateway, transit gateway, peering connection… (core routeTarget). */
        target: string;
        networkInterfaceId: string | undefined;
        instanceId: string | undefined;
        state: string | undefined;
      }
    | undefined;
}

/** A NAT instance of the stack (any state but terminated). */
export interface NatState {
  instanceId: string;
  az: string;
  state: string;
  /** The primary network interface (device index 0), which routes target. */
  networkInterfaceId: string | undefined;
  /** Every network interface of the instance, the primary first. */
  networkInterfaceIds: string[];
  privateIp: string | undefined;
  publicIp: string | undefined;
  sourceDestCheck: boolean | undefined;
  launchTime: string | undefined;
  /** From Auto Scaling (readAutoScaling); undefined when no group knows the instance. */
  autoScaling?: { group: string; health: string; lifecycle: string } | undefined;
  /**
   * EC2's status checks of a running NAT (readStatusChecks): `ok`, `impaired`,
   * `initializing`, `insufficient-data`; impairedSince is when the instance check failed.
   */
  statusChecks?: { instance: string; system: string; impairedSince: string | undefined } | undefined;
}

export interface EipState {
  allocationId: string;
  publicIp: string | undefined;
  az: string | undefined;
  instanceId: string | undefined;
  networkInterfaceId: string | undefined;
}

export interface StackState {
  stack: string;
  region: string;
  stackStatus: string;
  tables: TableState[];
  nats: NatState[];
  eips: EipState[];
}

/**
 * Local checks, the profile and region, and the stack: it must exist and be
 * hanat's (tagged, or made from hanat's template; cfn.ts ownershipOf).
 * Returns the region and the stack. Changes nothing.
 */
export async function findHanatStack(
  clients: AwsClients,
  opts: StackTargetOptions & { regionOpt: string | undefined },
  deps: PollDeps,
  command: 'status' | 'failover',
): Promise<{ region: string; stack: Stack }> {
  const region = await checkTarget(clients, { profile: opts.profile, profileFrom: opts.profileFrom, region: opts.regionOpt });
  const stack = await describeStack(clients.cloudFormation, opts.name, deps);
  if (!stack) {
    throw new UsageError(
      `Stack ${opts.name} does not exist in ${region}. hanat ${command} works on a stack made by hanat deploy: check --name and --region ` +
        `(aws cloudformation describe-stacks --region ${region} lists the stacks there).`,
    );
  }
  const owner = await ownershipOf(clients.cloudFormation, stack, deps);
  if (owner === 'foreign' || owner === 'unreadable') {
    throw new UsageError(
      `Stack ${opts.name} in ${region} was not created by hanat (it has no ${TAG.stack} tag and was not made from hanat's template), so it has no hanat NATs to ${command === 'status' ? 'report on' : 'move'}. Check --name.` +
        (owner === 'unreadable' ? templateUnreadable(command) : ''),
    );
  }
  return { region, stack };
}

/** The stack's name and region from flags, checked locally (no AWS call). */
export function checkStackTarget(opts: StackTargetOptions, env: Readonly<Record<string, string | undefined>>): { name: string; regionOpt: string | undefined } {
  return { name: checkStackName(opts.name), regionOpt: localRegion(opts, env) };
}

/** The stack's private route tables: those with `hanat:az`, sorted by AZ then id, and the ids of those without. */
export interface PrivateTables {
  tables: TableState[];
  /** Tables tagged `network=private` but without `hanat:az`: no AZ's NAT serves them by default, no agent claims them. */
  untagged: string[];
}

/** Every private route table of the stack (one DescribeRouteTables, paged). */
export async function readTables(ec2: Ec2, stack: string, deps: PollDeps): Promise<PrivateTables> {
  const tables: RouteTable[] = [];
  let token: string | undefined;
  do {
    const out = await retrying(
      'DescribeRouteTables',
      () => ec2.send(new DescribeRouteTablesCommand({ Filters: stackFilters(stack, { [TAG.network]: NETWORK_PRIVATE }), NextToken: token })),
      deps,
    );
    tables.push(...(out.RouteTables ?? []));
    token = out.NextToken;
  } while (token);
  const withId = tables.filter((t): t is RouteTable & { RouteTableId: string } => typeof t.RouteTableId === 'string' && t.RouteTableId !== '');
  const azOf = (t: RouteTable) => tagValue(t.Tags, TAG.az)?.trim() || undefined;
  return {
    tables: withId
      .flatMap((t) => {
        const az = azOf(t);
        return az ? [tableState(t, az)] : [];
      })
      .sort((a, b) => a.az.localeCompare(b.az) || a.routeTableId.localeCompare(b.routeTableId)),
    untagged: withId
      .filter((t) => !azOf(t))
      .map((t) => t.RouteTableId)
      .sort(),
  };
}

/** The stderr warning for private route tables without `hanat:az`, naming them and the tag to add. */
export function untaggedWarning(untagged: readonly string[], stack: string, region: string): string {
  const ids = untagged.join(', ');
  return (
    `${untagged.length === 1 ? 'Private route table' : 'Private route tables'} ${ids} of stack ${stack} ${untagged.length === 1 ? 'has' : 'have'} no ${TAG.az} tag, ` +
    `so no agent claims ${untagged.length === 1 ? 'it' : 'them'} and hanat leaves ${untagged.length === 1 ? 'it' : 'them'} out. ` +
    `Tag each with the AZ of its subnets: aws ec2 create-tags --region ${region} --resources ${untagged[0]} --tags Key=${TAG.az},Value=<AZ>`
  );
}

function tableState(t: RouteTable & { RouteTableId: string }, az: string): TableState {
  const route = defaultRoute(t);
  const owner = routeOwner(t.Tags);
  const override = tagValue(t.Tags, TAG.override)?.trim();
  return {
    routeTableId: t.RouteTableId,
    az,
    override: override || undefined,
    owner: owner ? { instanceId: owner.instanceId, since: owner.since === undefined ? undefined : new Date(owner.since).toISOString(), reason: owner.reason } : undefined,
    route: route
      ? {
          target: routeTarget(route),
          networkInterfaceId: route.NetworkInterfaceId,
          instanceId: route.InstanceId,
          state: route.State,
        }
      : undefined,
  };
}

const LIVE_STATES = ['pending', 'running', 'shutting-down', 'stopping', 'stopped'];

/** The stack's NAT instances that are not terminated, sorted by AZ then launch time. */
export async function readNats(ec2: Ec2, stack: string, deps: PollDeps): Promise<NatState[]> {
  const instances: Instance[] = [];
  let token: string | undefined;
  do {
    const out = await retrying(
      'DescribeInstances',
      () =>
        ec2.send(
          new DescribeInstancesCommand({
            Filters: [...stackFilters(stack), { Name: 'instance-state-name', Values: LIVE_STATES }],
            NextToken: token,
          }),
        ),
      deps,
    );
    for (const r of out.Reservations ?? []) instances.push(...(r.Instances ?? []));
    token = out.NextToken;
  } while (token);
  return instances
    .filter((i): i is Instance & { InstanceId: string } => typeof i.InstanceId === 'string' && i.InstanceId !== '')
    .map((i) => natState(i))
    .sort((a, b) => a.az.localeCompare(b.az) || (a.launchTime ?? '').localeCompare(b.launchTime ?? '') || a.instanceId.localeCompare(b.instanceId));
}

function natState(i: Instance & { InstanceId: string }): NatState {
  const enis = [...(i.NetworkInterfaces ?? [])].sort((a, b) => (a.Attachment?.DeviceIndex ?? 99) - (b.Attachment?.DeviceIndex ?? 99));
  const ids = enis.flatMap((e) => (e.NetworkInterfaceId ? [e.NetworkInterfaceId] : []));
  const primary = enis.find((e) => e.Attachment?.DeviceIndex === 0)?.NetworkInterfaceId;
  return {
    instanceId: i.InstanceId,
    az: tagValue(i.Tags, TAG.az)?.trim() || i.Placement?.AvailabilityZone || '(unknown)',
    state: i.State?.Name ?? 'unknown',
    networkInterfaceId: primary,
    networkInterfaceIds: ids,
    privateIp: i.PrivateIpAddress,
    publicIp: i.PublicIpAddress,
    sourceDestCheck: i.SourceDestCheck,
    launchTime: i.LaunchTime ? new Date(i.LaunchTime).toISOString() : undefined,
  };
}

/** Adds each NAT's Auto Scaling group, health and lifecycle state (DescribeAutoScalingInstances, 50 ids a call). */
export async function readAutoScaling(asg: AutoScaling, nats: NatState[], deps: PollDeps): Promise<void> {
  const byId = new Map(nats.map((n) => [n.instanceId, n]));
  const ids = [...byId.keys()];
  for (let i = 0; i < ids.length; i += 50) {
    const chunk = ids.slice(i, i + 50);
    let token: string | undefined;
    do {
      const out = await retrying(
        'DescribeAutoScalingInstances',
        () => asg.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: chunk, NextToken: token })),
        deps,
      );
      for (const row of out.AutoScalingInstances ?? []) {
        const nat = row.InstanceId ? byId.get(row.InstanceId) : undefined;
        if (nat) nat.autoScaling = { group: row.AutoScalingGroupName ?? '', health: row.HealthStatus ?? 'unknown', lifecycle: row.LifecycleState ?? 'unknown' };
      }
      token = out.NextToken;
    } while (token);
  }
}

/**
 * Adds each running NAT's EC2 status checks (DescribeInstanceStatus, 100 ids a call).
 * A NAT that crashed in place (hung, kernel panic, failed hardware) still reads
 * `running` and its routes `active`; only these checks show it, once they fail.
 */
export async function readStatusChecks(ec2: Ec2, nats: NatState[], deps: PollDeps): Promise<void> {
  const running = nats.filter((n) => n.state === 'running');
  const byId = new Map(running.map((n) => [n.instanceId, n]));
  const ids = [...byId.keys()];
  for (let i = 0; i < ids.length; i += 100) {
    const chunk = ids.slice(i, i + 100);
    const out = await retrying('DescribeInstanceStatus', () => ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: chunk })), deps);
    for (const row of out.InstanceStatuses ?? []) {
      const nat = row.InstanceId ? byId.get(row.InstanceId) : undefined;
      if (!nat) continue;
      const failed = row.InstanceStatus?.Details?.find((d) => d.ImpairedSince)?.ImpairedSince ?? row.SystemStatus?.Details?.find((d) => d.ImpairedSince)?.ImpairedSince;
      nat.statusChecks = {
        instance: row.InstanceStatus?.Status ?? 'unknown',
        system: row.SystemStatus?.Status ?? 'unknown',
        impairedSince: failed ? new Date(failed).toISOString() : undefined,
      };
    }
  }
}

/** EC2's status checks say the NAT is impaired: it may answer nothing although it reads `running`. */
export function isImpaired(nat: NatState): boolean {
  return nat.statusChecks?.instance === 'impaired' || nat.statusChecks?.system === 'impaired';
}

/** An AZ's most recent failed scaling activity, as Auto Scaling words it. */
export interface FailedLaunch {
  az: string;
  group: string;
  /** ISO time the activity started. */
  time: string | undefined;
  /** AWS's reason (StatusMessage), e.g. "The image id '[ami-…]' does not exist. Launching EC2 instance failed." */
  message: string;
  description: string | undefined;
}

/** How many of a group's newest activities are looked at for a failed launch. */
const ACTIVITIES = 10;

/**
 * For each AZ in `azs` (those without a running NAT), its group's most recent
 * failed scaling activity, unless a successful one came after it: why the
 * group has no NAT there (an image deleted, no capacity, a tag refused, a
 * quota). One DescribeAutoScalingGroups (filtered by the stack's tag), then one
 * DescribeScalingActivities per such AZ; nothing at all when every AZ has a
 * running NAT.
 */
export async function readFailedLaunches(asg: AutoScaling, stack: string, azs: readonly string[], deps: PollDeps): Promise<FailedLaunch[]> {
  if (azs.length === 0) return [];
  const groups = new Map<string, string>();
  let token: string | undefined;
  do {
    const out = await retrying(
      'DescribeAutoScalingGroups',
      () => asg.send(new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: `tag:${TAG.stack}`, Values: [stack] }], NextToken: token })),
      deps,
    );
    for (const g of out.AutoScalingGroups ?? []) {
      const az = tagValue(g.Tags, TAG.az)?.trim();
      if (az && g.AutoScalingGroupName && azs.includes(az)) groups.set(az, g.AutoScalingGroupName);
    }
    token = out.NextToken;
  } while (token);
  const failed: FailedLaunch[] = [];
  for (const az of [...azs].sort()) {
    const group = groups.get(az);
    if (!group) continue;
    const out = await retrying(
      'DescribeScalingActivities',
      () => asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: group, MaxRecords: ACTIVITIES })),
      deps,
    );
    const newestFirst = [...(out.Activities ?? [])].sort((a, b) => new Date(b.StartTime ?? 0).getTime() - new Date(a.StartTime ?? 0).getTime());
    const last = newestFirst.find((a) => a.StatusCode === 'Failed' || a.StatusCode === 'Successful');
    if (last?.StatusCode !== 'Failed') continue;
    failed.push({
      az,
      group,
      time: last.StartTime ? new Date(last.StartTime).toISOString() : undefined,
      message: last.StatusMessage ?? last.Description ?? 'no reason given',
      description: last.Description,
    });
  }
  return failed;
}

/** The stack's Elastic IPs, sorted by AZ. */
export async function readEips(ec2: Ec2, stack: string, deps: PollDeps): Promise<EipState[]> {
  const out = await retrying('DescribeAddresses', () => ec2.send(new DescribeAddressesCommand({ Filters: stackFilters(stack) })), deps);
  return (out.Addresses ?? [])
    .filter((a) => typeof a.AllocationId === 'string')
    .map((a) => ({
      allocationId: a.AllocationId!,
      publicIp: a.PublicIp,
      az: tagValue(a.Tags, TAG.az)?.trim() || undefined,
      instanceId: a.InstanceId || undefined,
      networkInterfaceId: a.NetworkInterfaceId || undefined,
    }))
    .sort((a, b) => (a.az ?? '').localeCompare(b.az ?? '') || a.allocationId.localeCompare(b.allocationId));
}

/** The NAT a route target names (network interface or instance id), if it is one of the stack's. */
export function natFor(nats: readonly NatState[], route: TableState['route']): NatState | undefined {
  if (!route) return undefined;
  if (route.networkInterfaceId) return nats.find((n) => n.networkInterfaceIds.includes(route.networkInterfaceId!));
  if (route.instanceId) return nats.find((n) => n.instanceId === route.instanceId);
  return undefined;
}

/** Throws when the stack has no private route table to act on. */
export function requireTables({ tables, untagged }: PrivateTables, stack: string, region: string, stackStatus: string): void {
  if (tables.length > 0) return;
  if (untagged.length > 0) {
    throw new OperationError(
      `Stack ${stack} in ${region} (${stackStatus}) has private route tables, but none tagged ${TAG.az}: ${untagged.join(', ')}. ` +
        `Tag each with the AZ of its subnets (aws ec2 create-tags --region ${region} --resources <id> --tags Key=${TAG.az},Value=<AZ>), then run this again.`,
    );
  }
  throw new OperationError(
    `Stack ${stack} in ${region} (${stackStatus}) has no private route tables tagged ${TAG.stack}=${stack} and ${TAG.network}=${NETWORK_PRIVATE}. ` +
      `If the stack is still being created, wait for it (hanat deploy shows its progress); otherwise its route tables were deleted or untagged outside hanat.`,
  );
}

/** Auto Scaling is about to take the NAT away: marked UNHEALTHY, or terminating. */
export function isLeaving(nat: NatState): boolean {
  return nat.autoScaling !== undefined && (nat.autoScaling.health.toUpperCase() === 'UNHEALTHY' || /^Terminat/i.test(nat.autoScaling.lifecycle));
}

/**
 * Why a running NAT cannot serve another AZ's traffic, or undefined when it can:
 * Auto Scaling has it HEALTHY and InService (or no group knows it: a NAT
 * detached from its group still forwards, and nothing will take it away),
 * its source/dest check is off, and routes can target its primary interface.
 */
export function unfitness(nat: NatState): string | undefined {
  const asg = nat.autoScaling;
  if (asg && asg.health.toUpperCase() !== 'HEALTHY') return `${nat.instanceId} is ${asg.health} in Auto Scaling (${asg.lifecycle}): its group replaces it`;
  if (asg && asg.lifecycle !== 'InService') return `${nat.instanceId} is ${asg.lifecycle} in Auto Scaling, not InService`;
  if (nat.sourceDestCheck === true) return `${nat.instanceId} has source/dest check on, so it cannot forward`;
  if (!nat.networkInterfaceId) return `${nat.instanceId} has no primary network interface`;
  return undefined;
}
