/**
 * Remote check of the Elastic IP quota before a deploy touches the stack.
 *
 * An account may hold 5 Elastic IPs per region by default (Amazon VPC User
 * Guide, "Elastic IP address quotas"; Service Quotas: Amazon EC2, "EC2-VPC
 * Elastic IPs", L-0263D0A3). Every allocated address counts, associated or
 * not. With one EIP per AZ, `--azs 6`, or a second 3-AZ stack in a region, runs
 * over it: CloudFormation creates half the stack, AllocateAddress answers
 * AddressLimitExceeded, and the stack rolls back minutes later. This check says
 * so first, from DescribeAccountAttributes (`vpc-max-elastic-ips`, which
 * follows an approved quota increase) and DescribeAddresses.
 */
import { DescribeAccountAttributesCommand, DescribeAddressesCommand, type Address } from '@aws-sdk/client-ec2';
import { TAG, type Ec2 } from '@hanat/core';
import { awsFailure, isAccessDenied } from './aws.js';
import { UsageError } from './errors.js';

/** The EC2 calls of this check: what the caller's IAM policy must allow for it to run. */
export const EIP_QUOTA_ACTIONS = ['ec2:DescribeAccountAttributes', 'ec2:DescribeAddresses'] as const;

/** The account attribute that holds the region's Elastic IP quota. */
export const EIP_QUOTA_ATTRIBUTE = 'vpc-max-elastic-ips';

/** How Service Quotas names the quota, for the message. */
export const EIP_QUOTA_NAME = 'Amazon EC2 "EC2-VPC Elastic IPs" (L-0263D0A3)';

/** How many addresses in use a refusal lists by name. */
const LISTED = 5;

/** CloudFormation's own tag on every resource it creates: which stack made it. */
const CFN_STACK_TAG = 'aws:cloudformation:stack-name';

export type EipQuotaCheck =
  /** The deploy fits: `needed` new addresses, `inUse` of `quota` taken. */
  | { needed: number; inUse: number; quota: number }
  /** Nothing to check (no new EIPs needed). */
  | { needed: 0 }
  /** The check could not run for lack of permission; why, for a warning. */
  | { skipped: string };

async function call<T extends object>(action: string, send: () => Promise<T>): Promise<T | { skipped: string }> {
  try {
    return await send();
  } catch (err) {
    if (isAccessDenied(err)) return { skipped: `AWS denied ${action} (${err instanceof Error ? err.message : String(err)})` };
    awsFailure(err, action);
  }
}

function tag(a: Address, key: string): string | undefined {
  return a.Tags?.find((t) => t.Key === key)?.Value;
}

/** The stack an address belongs to, by hanat's tag or CloudFormation's. */
function stackOf(a: Address): string | undefined {
  return tag(a, TAG.stack) ?? tag(a, CFN_STACK_TAG);
}

function describe(a: Address): string {
  const owner = stackOf(a);
  const where = a.InstanceId ? `on ${a.InstanceId}` : a.NetworkInterfaceId ? `on ${a.NetworkInterfaceId}` : 'not associated';
  return `${a.PublicIp ?? a.AllocationId ?? '?'} (${owner ? `stack ${owner}, ` : ''}${where})`;
}

function plural(n: number, one: string, many: string = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Checks that the region has room for the Elastic IPs a deploy of stack
 * `name` adds: one per AZ when `eip`, minus those the stack already holds
 * (an update keeps them). Throws a UsageError saying what is in use, what is
 * needed and the ways out; returns `{ skipped }` when the caller may not make
 * these calls, so the deploy goes on with a warning.
 */
export async function checkEipQuota(ec2: Ec2, want: { name: string; azs: number; eip: boolean; region: string }): Promise<EipQuotaCheck> {
  const { name, azs, eip, region } = want;
  if (!eip) return { needed: 0 };
  const attributes = await call('DescribeAccountAttributes', () => ec2.send(new DescribeAccountAttributesCommand({})));
  if ('skipped' in attributes) return attributes;
  const listing = await call('DescribeAddresses', () => ec2.send(new DescribeAddressesCommand({})));
  if ('skipped' in listing) return listing;
  const addresses = listing.Addresses ?? [];
  const value = attributes.AccountAttributes?.find((a) => a.AttributeName === EIP_QUOTA_ATTRIBUTE)?.AttributeValues?.[0]?.AttributeValue;
  const quota = Number(value);
  if (value === undefined || !Number.isInteger(quota) || quota < 0) {
    return { skipped: `DescribeAccountAttributes gave no ${EIP_QUOTA_ATTRIBUTE}` };
  }
  const own = addresses.filter((a) => stackOf(a) === name).length;
  const needed = Math.max(0, azs - own);
  if (needed === 0) return { needed: 0 };
  const inUse = addresses.length;
  if (inUse + needed <= quota) return { needed, inUse, quota };

  const left = Math.max(0, quota - inUse);
  const others = addresses.filter((a) => stackOf(a) !== name);
  const listed = others.slice(0, LISTED).map(describe).join(', ');
  const more = others.length > LISTED ? `, and ${others.length - LISTED} more` : '';
  throw new UsageError(
    `Not enough Elastic IPs in ${region}: the stack needs one per AZ, ${plural(needed, 'new address', 'new addresses')} for ${name}` +
      `${own ? ` (it holds ${own} already)` : ''}, but the account has ${inUse} of its quota of ${quota} in use` +
      `${left ? `, so only ${left} ${left === 1 ? 'is' : 'are'} left` : ''}` +
      `${inUse ? `: ${listed}${more}` : ''}. ` +
      `Ask for a higher quota (Service Quotas: ${EIP_QUOTA_NAME}, in ${region}), release addresses you no longer use (aws ec2 release-address --region ${region}), ` +
      `or pass --no-eip (each NAT then leaves through its own public IP, which changes when the NAT is replaced).`,
  );
}
