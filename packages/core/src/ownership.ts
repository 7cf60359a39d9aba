/**
 * Route ownership rules (DESIGN.md "Tag contract"): which AZ's NAT must serve a
 * private route table, and what its default route points at. The agent claims
 * tables with these rules; the CLI's `status` and `failover` read them the same way.
 */
import { DEFAULT_ROUTE_CIDR, NETWORK_PRIVATE, TAG, tagValue, type AwsTag } from './tags.js';

/** The fields of an EC2 route table that ownership depends on (SDK `RouteTable` fits). */
export interface OwnedRouteTable {
  RouteTableId?: string | undefined;
  Tags?: AwsTag[] | undefined;
  Routes?: RouteLike[] | undefined;
}

export interface RouteLike {
  DestinationCidrBlock?: string | undefined;
  NetworkInterfaceId?: string | undefined;
  InstanceId?: string | undefined;
  GatewayId?: string | undefined;
  NatGatewayId?: string | undefined;
  TransitGatewayId?: string | undefined;
  VpcPeeringConnectionId?: string | undefined;
  EgressOnlyInternetGatewayId?: string | undefined;
  LocalGatewayId?: string | undefined;
  CarrierGatewayId?: string | undefined;
  CoreNetworkArn?: string | undefined;
  State?: string | undefined;
}

/**
 * What a route points at, by its id: a network interface, instance, NAT gateway,
 * gateway (internet, virtual private), transit gateway, peering connection,
 * egress-only gateway, local or carrier gateway, or Cloud WAN core network.
 * `unknown` only for a target EC2 added after this list.
 */
export function routeTarget(r: RouteLike): string {
  return (
    r.NetworkInterfaceId ??
    r.InstanceId ??
    r.NatGatewayId ??
    r.GatewayId ??
    r.TransitGatewayId ??
    r.VpcPeeringConnectionId ??
    r.EgressOnlyInternetGatewayId ??
    r.LocalGatewayId ??
    r.CarrierGatewayId ??
    r.CoreNetworkArn ??
    'unknown'
  );
}

/**
 * The AZ whose NAT must serve this table: the `hanat:override` pin when present,
 * else the table's own `hanat:az`. Undefined for a table without either tag.
 */
export function servingAz(tags: readonly AwsTag[] | undefined): string | undefined {
  return nonEmpty(tagValue(tags, TAG.override)) ?? nonEmpty(tagValue(tags, TAG.az));
}

/** True when the table is tagged `network=private` (only those carry hanat's default route). */
export function isPrivateTable(tags: readonly AwsTag[] | undefined): boolean {
  return tagValue(tags, TAG.network) === NETWORK_PRIVATE;
}

/** The table's 0.0.0.0/0 route, if it has one. */
export function defaultRoute(table: OwnedRouteTable): RouteLike | undefined {
  return table.Routes?.find((r) => r.DestinationCidrBlock === DEFAULT_ROUTE_CIDR);
}

/**
 * Why `hanat:owner` serves a table (`hanat:owner-reason`), as whoever pointed the route knew it:
 * - `own-az`: the table's own AZ's NAT claimed it (at boot, a missing or blackholed route, a failback);
 * - `peer-down`: its AZ's NAT stopped heartbeating, and another NAT missed it too (a second witness);
 * - `stepped-aside`: its AZ's NAT failed its own checks and stepped aside;
 * - `ec2-not-running`: EC2 lists its AZ's NAT as no longer pending or running (terminated, stopped);
 * - `ec2-impaired`: EC2's status checks of its AZ's NAT failed while it was silent;
 * - `shutdown`: its AZ's NAT handed its routes over as it shut down (SIGTERM: scale-in, instance refresh);
 * - `manual-failover`: `hanat failover` moved it (and pinned it with `hanat:override`).
 */
export const OWNER_REASONS = ['own-az', 'peer-down', 'stepped-aside', 'ec2-not-running', 'ec2-impaired', 'shutdown', 'manual-failover'] as const;

export type OwnerReason = (typeof OWNER_REASONS)[number];

/** What `hanat:owner` / `hanat:owner-since` / `hanat:owner-reason` say about who last pointed the default route. */
export interface RouteOwner {
  instanceId: string;
  /** Epoch ms; undefined when the tag is missing or not an ISO time. */
  since?: number | undefined;
  /** Undefined when the tag is missing (written by a hanat before it existed) or not a known reason. */
  reason?: OwnerReason | undefined;
}

export function isOwnerReason(v: string | undefined): v is OwnerReason {
  return (OWNER_REASONS as readonly string[]).includes(v ?? '');
}

export function routeOwner(tags: readonly AwsTag[] | undefined): RouteOwner | undefined {
  const instanceId = nonEmpty(tagValue(tags, TAG.owner));
  if (!instanceId) return undefined;
  const raw = tagValue(tags, TAG.ownerSince);
  const since = raw ? Date.parse(raw) : NaN;
  const reason = tagValue(tags, TAG.ownerReason)?.trim();
  return { instanceId, since: Number.isFinite(since) ? since : undefined, reason: isOwnerReason(reason) ? reason : undefined };
}

/**
 * The owner tags to write when `instanceId` takes a table at `at`, for `reason`. One
 * CreateTags writes all three, so the reason costs no call of its own.
 */
export function ownerTags(instanceId: string, at: Date, reason: OwnerReason): { Key: string; Value: string }[] {
  return [
    { Key: TAG.owner, Value: instanceId },
    { Key: TAG.ownerSince, Value: at.toISOString() },
    { Key: TAG.ownerReason, Value: reason },
  ];
}

function nonEmpty(v: string | undefined): string | undefined {
  return v && v.trim() !== '' ? v : undefined;
}

/**
 * The AZ that takes over `az`'s routes when `az` has no NAT to serve them: the
 * next AZ after it in alphabetical order, wrapping around, among `candidates`
 * (the stack's AZs) that `qualifies` accepts. `az` itself never qualifies, and
 * need not be among the candidates. Undefined when no other AZ qualifies.
 *
 * An AZ qualifies when its NAT can serve another AZ's traffic: it runs, Auto
 * Scaling has it HEALTHY and InService (or does not know it), its source/dest
 * check is off, and the AZ's own tables are not pinned away (`hanat:override`
 * to another AZ: its NAT is out of service by hand). The caller knows those
 * facts and says so in `qualifies`; without it, every candidate qualifies.
 *
 * Every caller must use this one rule (`hanat failover` without `--to` today,
 * the agents' takeover later), so that two survivors never pick different AZs.
 */
export function successorAz(az: string, candidates: Iterable<string>, qualifies: (candidate: string) => boolean = () => true): string | undefined {
  const others = [...new Set(candidates)].filter((c) => c !== az && qualifies(c)).sort();
  return others.find((c) => c > az) ?? others[0];
}
