/**
 * API rate limits as AWS applies them: token buckets per account and region.
 *
 * EC2 (Developer Guide, "Request throttling for the Amazon EC2 API",
 * https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): request rate
 * limiting evaluates each API action on its own bucket. A request takes one token; a bucket
 * below its capacity gets `refill` tokens a second; a request that finds the bucket empty is
 * answered `RequestLimitExceeded`. Sizes by category:
 *
 * | category | capacity | refill/s |
 * |---|---|---|
 * | non-mutating (`Describe*`, `List*`, `Search*`, `Get*`) | 100 | 20 |
 * | unfiltered and unpaginated non-mutating (DescribeInstances, DescribeInstanceStatus, DescribeNetworkInterfaces, DescribeSecurityGroups, … without a filter or pagination) | 50 | 10 |
 * | mutating (all others), resource-intensive (AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress, CreateKeyPair, …) | 50 | 5 |
 * | uncategorized: CreateTags, DeleteTags | 100 | 10 |
 * | uncategorized: CreateLaunchTemplateVersion, ModifyLaunchTemplate, ModifyNetworkInterfaceAttribute, TerminateInstances, … | 100 | 5 |
 * | uncategorized: RunInstances | 5 | 2 |
 *
 * Auto Scaling: all of its API calls share one bucket per account and region (AWS
 * Knowledge Center, "autoscaling-api-calls-throttled"); AWS publishes no size, so the lab
 * gives it EC2's non-mutating figures, 100 and 20/s. CloudFormation publishes none either:
 * one shared bucket of 100 and 20/s as well. SSM Parameter Store: GetParameter and
 * GetParameters share 40 transactions a second (Service Quotas, "Max throughput"): 40 and 40/s.
 */
import type { Clock } from './clock.js';
import type { Service } from './latency.js';

export interface BucketSpec {
  capacity: number;
  refillPerSecond: number;
}

const NON_MUTATING: BucketSpec = { capacity: 100, refillPerSecond: 20 };
const UNFILTERED: BucketSpec = { capacity: 50, refillPerSecond: 10 };
const MUTATING: BucketSpec = { capacity: 50, refillPerSecond: 5 };

/** The EC2 actions that use the smaller bucket when called without a filter and without pagination. */
const UNFILTERED_ACTIONS = new Set(['DescribeInstances', 'DescribeInstanceStatus', 'DescribeNetworkInterfaces', 'DescribeSecurityGroups', 'DescribeSnapshots', 'DescribeSpotInstanceRequests', 'DescribeVolumes']);

/** EC2's uncategorized actions that the emulator has, with their own sizes. */
const EC2_UNCATEGORIZED: Record<string, BucketSpec> = {
  CreateTags: { capacity: 100, refillPerSecond: 10 },
  DeleteTags: { capacity: 100, refillPerSecond: 10 },
  CreateLaunchTemplateVersion: { capacity: 100, refillPerSecond: 5 },
  ModifyLaunchTemplate: { capacity: 100, refillPerSecond: 5 },
  ModifyNetworkInterfaceAttribute: { capacity: 100, refillPerSecond: 5 },
  CreateNetworkInterface: { capacity: 100, refillPerSecond: 5 },
  DeleteNetworkInterface: { capacity: 100, refillPerSecond: 5 },
  AssociateIamInstanceProfile: { capacity: 100, refillPerSecond: 5 },
  DeregisterImage: { capacity: 100, refillPerSecond: 5 },
  TerminateInstances: { capacity: 100, refillPerSecond: 5 },
  RunInstances: { capacity: 5, refillPerSecond: 2 },
};

const SHARED: Partial<Record<Service, BucketSpec>> = {
  autoscaling: { capacity: 100, refillPerSecond: 20 },
  cloudformation: { capacity: 100, refillPerSecond: 20 },
};
const SSM_PARAMETER_READS: BucketSpec = { capacity: 40, refillPerSecond: 40 };

/** Which bucket a request draws from: its name (unique within a region) and size. */
export function bucketFor(service: Service, action: string, request: { filteredOrPaged: boolean }): { name: string; spec: BucketSpec } | undefined {
  if (service === 'ec2') {
    const own = EC2_UNCATEGORIZED[action];
    if (own) return { name: `ec2:${action}`, spec: own };
    if (/^(Describe|Get|List|Search)/.test(action)) {
      if (UNFILTERED_ACTIONS.has(action) && !request.filteredOrPaged) return { name: `ec2:${action} (unfiltered)`, spec: UNFILTERED };
      return { name: `ec2:${action}`, spec: NON_MUTATING };
    }
    return { name: `ec2:${action}`, spec: MUTATING };
  }
  if (service === 'ssm') return action === 'GetParameter' || action === 'GetParameters' ? { name: 'ssm:GetParameter*', spec: SSM_PARAMETER_READS } : undefined;
  const shared = SHARED[service];
  return shared ? { name: `${service}:*`, spec: shared } : undefined;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets per region and bucket name, refilled lazily from the clock. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly clock: Clock) {}

  /**
   * Takes one token; false when the bucket is empty (the request is throttled). `scale`
   * (account settings, tests) multiplies the bucket's capacity (at least 1) and refill rate.
   */
  take(region: string, name: string, bucketSpec: BucketSpec, scale = 1): boolean {
    const spec = scale === 1 ? bucketSpec : { capacity: Math.max(1, bucketSpec.capacity * scale), refillPerSecond: bucketSpec.refillPerSecond * scale };
    const key = `${region} ${name}`;
    const now = this.clock.now();
    const b = this.buckets.get(key) ?? { tokens: spec.capacity, at: now };
    b.tokens = Math.min(spec.capacity, b.tokens + ((now - b.at) / 1000) * spec.refillPerSecond);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Forgets every bucket (all full again). */
  reset(): void {
    this.buckets.clear();
  }
}
