/**
 * The EC2 calls the agent makes, each named with its action and resource so that a
 * failure (AccessDenied above all) says what was refused on what. Only the Command
 * classes used here are imported, so the bundle keeps only their schemas.
 */
import {
  AssociateAddressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateTagsCommand,
  DescribeAddressesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  ModifyInstanceAttributeCommand,
  type Address,
  type RouteTable,
  type SecurityGroup,
} from '@aws-sdk/client-ec2';
import { NETWORK_PRIVATE, TAG, awsErrorName, isRetryableAwsError, pointDefaultRoute, stackFilters, tagValue, type Ec2, type RouteWrite } from '@hanat/core';
import { errorMessage } from './errors.js';
import { isIpv4 } from './identity.js';
import type { PeerInfo } from './ha/peers.js';

/** An AWS call that failed, with what it tried to do to what. */
export class AwsCallError extends Error {
  override readonly name = 'AwsCallError';
  readonly code: string;
  constructor(
    readonly action: string,
    readonly resource: string,
    cause: unknown,
  ) {
    super(`${action} on ${resource} failed: ${awsErrorName(cause) ?? 'Error'}: ${errorMessage(cause)}`, { cause });
    this.code = awsErrorName(cause) ?? 'Error';
  }
}

/**
 * How the loop treats a failure:
 * - `retryable`: throttling, 5xx, network errors, credentials not there yet; retried fast.
 * - `denied`: AWS refused for want of permission.
 * - `rejected`: AWS answered with any other client error (a resource not found, a
 *   parameter it calls invalid). Like `denied`, AWS would answer a restarted agent
 *   the same way, so both are retried slowly, forever.
 * - `local`: everything else (nft, sysctl, a bug); counts toward giving up.
 */
export type FailureKind = 'retryable' | 'denied' | 'rejected' | 'local';

const DENIED = new Set(['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException', 'AuthFailure', 'OptInRequired', 'Blocked']);
/** Credentials not there yet (the instance profile appears a moment after boot) or being rotated. */
const TRANSIENT = new Set(['CredentialsProviderError', 'ExpiredToken', 'RequestExpired', 'ProviderError']);

export function classify(err: unknown): FailureKind {
  const cause = err instanceof AwsCallError ? err.cause : err;
  const name = awsErrorName(cause);
  if (name && DENIED.has(name)) return 'denied';
  if (isRetryableAwsError(cause) || (name !== undefined && TRANSIENT.has(name))) return 'retryable';
  if (err instanceof AwsCallError && answeredByAws(cause)) return 'rejected';
  return 'local';
}

/**
 * What EC2's eventual consistency looks like right after launch (EC2 Developer
 * Guide, "Eventual consistency in the Amazon EC2 API"): the instance's own ids
 * not found yet, and a new instance profile's permissions not in effect yet.
 * The agent names only its own instance and interface in these calls, so at
 * start-up these errors mean "not yet", not "never".
 */
const NOT_YET = new Set(['InvalidInstanceID.NotFound', 'InvalidNetworkInterfaceID.NotFound', 'UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException', 'AuthFailure']);

/** Whether a failure is one that EC2's eventual consistency explains while the instance is new. */
export function mayBeEventualConsistency(err: unknown): boolean {
  const name = awsErrorName(err instanceof AwsCallError ? err.cause : err);
  return name !== undefined && NOT_YET.has(name);
}

/** An SDK service exception: AWS received the request and answered it with an error. */
function answeredByAws(err: unknown): boolean {
  const e = err as { $fault?: unknown; $metadata?: { httpStatusCode?: unknown } } | undefined;
  return e?.$fault === 'client' || e?.$fault === 'server' || typeof e?.$metadata?.httpStatusCode === 'number';
}

async function call<T>(action: string, resource: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new AwsCallError(action, resource, err);
  }
}

export class Ec2Api {
  constructor(private readonly ec2: Ec2) {}

  /**
   * The AZ a pending or running instance serves: its `hanat:az` tag, as this agent's own
   * AZ may come from that tag, else its placement. Undefined when it is stopping, gone,
   * or unknown to EC2. Used only when a route's newer owner must be placed.
   */
  async liveInstanceAz(instanceId: string): Promise<string | undefined> {
    try {
      const res = await call('DescribeInstances', instanceId, () => this.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] })));
      const instance = (res.Reservations ?? []).flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === instanceId);
      const state = instance?.State?.Name;
      if (state !== 'pending' && state !== 'running') return undefined;
      return tagValue(instance?.Tags, TAG.az) || instance?.Placement?.AvailabilityZone;
    } catch (err) {
      const code = awsErrorName(err instanceof AwsCallError ? err.cause : err);
      if (code === 'InvalidInstanceID.NotFound' || code === 'InvalidInstanceID.Malformed') return undefined;
      throw err;
    }
  }

  /**
   * The stack's pending and running instances (its NATs), for the peer table: instance,
   * AZ (its `hanat:az` tag, else its placement), private address and primary interface.
   * Instances without a valid private address are left out.
   */
  async stackInstances(stack: string): Promise<PeerInfo[]> {
    const out: PeerInfo[] = [];
    let token: string | undefined;
    do {
      const res = await call('DescribeInstances', `${TAG.stack}=${stack}`, () =>
        this.ec2.send(
          new DescribeInstancesCommand({
            Filters: [...stackFilters(stack), { Name: 'instance-state-name', Values: ['pending', 'running'] }],
            NextToken: token,
          }),
        ),
      );
      for (const i of (res.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        const id = i.InstanceId;
        const ip = i.PrivateIpAddress;
        const az = tagValue(i.Tags, TAG.az) || i.Placement?.AvailabilityZone;
        if (!id || !/^i-[0-9a-f]{8,17}$/.test(id) || !ip || !isIpv4(ip) || !az) continue;
        const eni = (i.NetworkInterfaces ?? []).find((n) => n.Attachment?.DeviceIndex === 0)?.NetworkInterfaceId;
        out.push({ instanceId: id, az, privateIp: ip, eniId: eni && /^eni-[0-9a-f]+$/.test(eni) ? eni : undefined, state: i.State?.Name ?? 'unknown' });
      }
      token = res.NextToken;
    } while (token);
    return out;
  }

  /**
   * Whether EC2's status checks of each instance read `impaired` (the instance check or the
   * system check), one DescribeInstanceStatus. An instance EC2 does not list (not running,
   * or no checks yet) reads not impaired; an id EC2 does not know at all, too.
   */
  async statusImpaired(instanceIds: readonly string[]): Promise<Map<string, boolean>> {
    const out = new Map(instanceIds.map((id) => [id, false]));
    if (instanceIds.length === 0) return out;
    try {
      const res = await call('DescribeInstanceStatus', instanceIds.join(','), () => this.ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [...instanceIds] })));
      for (const st of res.InstanceStatuses ?? []) {
        if (st.InstanceId && out.has(st.InstanceId)) out.set(st.InstanceId, st.InstanceStatus?.Status === 'impaired' || st.SystemStatus?.Status === 'impaired');
      }
    } catch (err) {
      // One id gone (terminated and forgotten) fails the whole call; the peer refresh notices it gone.
      if (awsErrorName(err instanceof AwsCallError ? err.cause : err) !== 'InvalidInstanceID.NotFound') throw err;
    }
    return out;
  }

  /** The instance's source/dest check, undefined if EC2 did not say. */
  async sourceDestCheck(instanceId: string): Promise<boolean | undefined> {
    const res = await call('DescribeInstanceAttribute', instanceId, () =>
      this.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: 'sourceDestCheck' })),
    );
    const v = res.SourceDestCheck?.Value;
    return typeof v === 'boolean' ? v : undefined;
  }

  async disableSourceDestCheck(instanceId: string): Promise<void> {
    await call('ModifyInstanceAttribute', instanceId, () =>
      this.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: instanceId, SourceDestCheck: { Value: false } })),
    );
  }

  /** The stack's Elastic IPs for one AZ. */
  async addresses(stack: string, az: string): Promise<Address[]> {
    const res = await call('DescribeAddresses', `${TAG.stack}=${stack},${TAG.az}=${az}`, () =>
      this.ec2.send(new DescribeAddressesCommand({ Filters: stackFilters(stack, { [TAG.az]: az }) })),
    );
    return (res.Addresses ?? []).filter((a) => typeof a.AllocationId === 'string' && /^eipalloc-[0-9a-f]+$/.test(a.AllocationId));
  }

  async associateAddress(allocationId: string, eniId: string, privateIp: string): Promise<string | undefined> {
    const res = await call('AssociateAddress', allocationId, () =>
      this.ec2.send(
        new AssociateAddressCommand({ AllocationId: allocationId, NetworkInterfaceId: eniId, PrivateIpAddress: privateIp, AllowReassociation: true }),
      ),
    );
    return res.AssociationId;
  }

  /** Every private route table of the stack (all AZs: overrides can pin another AZ's table to us). */
  async privateRouteTables(stack: string): Promise<RouteTable[]> {
    const tables: RouteTable[] = [];
    let token: string | undefined;
    do {
      const res = await call('DescribeRouteTables', `${TAG.stack}=${stack},${TAG.network}=${NETWORK_PRIVATE}`, () =>
        this.ec2.send(
          new DescribeRouteTablesCommand({ Filters: stackFilters(stack, { [TAG.network]: NETWORK_PRIVATE }), NextToken: token }),
        ),
      );
      tables.push(...(res.RouteTables ?? []).filter((t) => typeof t.RouteTableId === 'string' && /^rtb-[0-9a-f]+$/.test(t.RouteTableId)));
      token = res.NextToken;
    } while (token);
    return tables;
  }

  /**
   * Points the table's default route at `eniId`, race-safe (core's pointDefaultRoute:
   * replace, else create, else replace after all); a failure names its call and table.
   */
  async pointDefaultRoute(routeTableId: string, eniId: string, routeExists: boolean): Promise<RouteWrite> {
    return pointDefaultRoute(this.ec2, routeTableId, eniId, routeExists, (action, fn) => call(action, routeTableId, fn));
  }

  /** Those of `groupIds` that carry the stack's tag, with their rules. */
  async stackSecurityGroups(stack: string, groupIds: string[]): Promise<SecurityGroup[]> {
    const res = await call('DescribeSecurityGroups', `${groupIds.join(',')} with ${TAG.stack}=${stack}`, () =>
      this.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-id', Values: groupIds }, ...stackFilters(stack)] })),
    );
    return (res.SecurityGroups ?? []).filter((g) => typeof g.GroupId === 'string' && groupIds.includes(g.GroupId));
  }

  /**
   * Admits all traffic from `cidr` into the group. A rule that is already there (another
   * NAT of the stack added it first) is success: the call is idempotent in effect.
   */
  async admitCidr(groupId: string, cidr: string): Promise<'added' | 'present'> {
    try {
      await call('AuthorizeSecurityGroupIngress', groupId, () =>
        this.ec2.send(
          new AuthorizeSecurityGroupIngressCommand({
            GroupId: groupId,
            IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: cidr, Description: 'hanat agent: a VPC CIDR block added after deploy' }] }],
          }),
        ),
      );
      return 'added';
    } catch (err) {
      if (err instanceof AwsCallError && err.code === 'InvalidPermission.Duplicate') return 'present';
      throw err;
    }
  }

  async tag(resources: string[], tags: { Key: string; Value: string }[]): Promise<void> {
    await call('CreateTags', resources.join(','), () => this.ec2.send(new CreateTagsCommand({ Resources: resources, Tags: tags })));
  }
}
