/**
 * The tag contract (DESIGN.md "Tag contract"). The template writes these tags,
 * the agent and the CLI read and write them, and the lab honours them.
 * Never spell a tag name anywhere else.
 */
export const TAG = {
  /** Stack name, on every taggable resource: scope of every lookup and IAM condition. */
  stack: 'hanat:stack',
  /** `public` or `private`, on subnets and route tables (kept from the original design). */
  network: 'network',
  /** AZ name, on private route tables, NAT groups and instances, EIPs: whose NAT serves it by default. */
  az: 'hanat:az',
  /** Which NAT (instance id) last pointed the default route of a private route table. */
  owner: 'hanat:owner',
  /** ISO-8601 time at which `hanat:owner` last changed. */
  ownerSince: 'hanat:owner-since',
  /** Why `hanat:owner` serves the table (an `OwnerReason`), written with `hanat:owner` in the same call. */
  ownerReason: 'hanat:owner-reason',
  /** A manual failover pin: the AZ whose NAT must serve this table until the tag is removed. */
  override: 'hanat:override',
} as const;

export type TagName = (typeof TAG)[keyof typeof TAG];

export const NETWORK_PUBLIC = 'public';
export const NETWORK_PRIVATE = 'private';

/** The default route that hanat manages in every private route table. */
export const DEFAULT_ROUTE_CIDR = '0.0.0.0/0';

/** A tag list as the AWS SDKs return it. */
export interface AwsTag {
  Key?: string | undefined;
  Value?: string | undefined;
}

/** Reads one tag from an SDK tag list. */
export function tagValue(tags: readonly AwsTag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}

/** EC2 `Filters` that scope a Describe call to one hanat stack (plus extra tag filters). */
export function stackFilters(stack: string, extra: Record<string, string> = {}): { Name: string; Values: string[] }[] {
  return [
    { Name: `tag:${TAG.stack}`, Values: [stack] },
    ...Object.entries(extra).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] })),
  ];
}
