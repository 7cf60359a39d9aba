/**
 * The Availability Zones of a stack, and whether the instance type is offered
 * in each.
 *
 * The template takes its AZs as the `AvailabilityZones` parameter (a list, in
 * order: AZ i is its element i), not from `Fn::GetAZs`: that function's answer
 * depends on the account's default subnets and its order "can change when new
 * Availability Zones are added" (CloudFormation Template Reference,
 * "Fn::GetAZs"), so an update that re-evaluated it could move subnets to another
 * AZ. A parameter keeps its value across updates (console and CLI offer "use
 * existing value"), so the AZs are fixed once the stack exists.
 *
 * `hanat deploy` picks them: for a new stack the first N of the region's AZs in
 * alphabetical order (DescribeAvailabilityZones; no default subnet needed); for an
 * existing stack the AZs it has, in its order, plus the next ones when --azs asks
 * for more. Then it checks that each offers the instance type: `--azs 6` in
 * us-east-1 takes us-east-1a..f, and in many accounts (AZ names map to
 * different physical zones per account) us-east-1e offers no Graviton type, so a
 * t4g NAT could not launch there and the stack would roll back minutes later.
 */
import { DescribeAvailabilityZonesCommand, DescribeInstanceTypeOfferingsCommand, type Filter, type InstanceTypeOffering } from '@aws-sdk/client-ec2';
import type { Ec2 } from '@hanat/core';
import { amiParameter } from './ami.js';
import { awsFailure, isAccessDenied } from './aws.js';
import { OperationError, UsageError } from './errors.js';
import { MIN_AZS } from './template/render.js';
import { archOfFamily, type Arch, type InstanceType } from './validate.js';

/** The EC2 calls of this check: what the caller's IAM policy must allow for it to run. */
export const ZONE_CHECK_ACTIONS = ['ec2:DescribeAvailabilityZones', 'ec2:DescribeInstanceTypeOfferings'] as const;

/** How many alternative instance types a refusal suggests. */
const SUGGESTIONS = 4;
/** A bound on pages of one listing, so a misbehaving NextToken cannot loop forever. */
const MAX_PAGES = 50;

export type ZoneCheck =
  /** The stack's AZs, in order, each offering the instance type (`unchecked` when offerings could not be listed: why). */
  { azs: string[]; kept: number; unchecked?: string | undefined };

/** Marks a call refused for lack of permission, so the check can be skipped rather than fail. */
class Denied extends Error {
  constructor(
    readonly action: string,
    cause: unknown,
  ) {
    super(`AWS denied ${action} (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
}

async function call<T>(action: string, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (err) {
    if (isAccessDenied(err)) throw new Denied(action, err);
    awsFailure(err, action);
  }
}

/** The region's Availability Zones that can take a stack (not Local or Wavelength Zones), alphabetically. */
export async function regionAzs(ec2: Ec2): Promise<string[]> {
  const zones = await call('DescribeAvailabilityZones', () =>
    ec2.send(new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'zone-type', Values: ['availability-zone'] }] })),
  );
  return (zones.AvailabilityZones ?? [])
    .filter((z) => (z.ZoneType === undefined || z.ZoneType === 'availability-zone') && (z.State === undefined || z.State === 'available'))
    .map((z) => z.ZoneName)
    .filter((name): name is string => !!name)
    .sort();
}

/** Every offering in `azs` that matches `filters`, following NextToken. */
async function offerings(ec2: Ec2, azs: readonly string[], filters: Filter[] = []): Promise<InstanceTypeOffering[]> {
  const rows: InstanceTypeOffering[] = [];
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const out = await call('DescribeInstanceTypeOfferings', () =>
      ec2.send(
        new DescribeInstanceTypeOfferingsCommand({
          LocationType: 'availability-zone',
          Filters: [{ Name: 'location', Values: [...azs] }, ...filters],
          MaxResults: 1000,
          ...(token ? { NextToken: token } : {}),
        }),
      ),
    );
    rows.push(...(out.InstanceTypeOfferings ?? []));
    token = out.NextToken || undefined;
    if (!token) break;
  }
  return rows;
}

const SIZES = ['nano', 'micro', 'small', 'medium', 'large', 'xlarge'];

/** Smaller sizes first: nano < micro < ... < xlarge < 2xlarge < ... < metal. */
function sizeRank(size: string): number {
  const i = SIZES.indexOf(size);
  if (i >= 0) return i;
  const n = /^(\d+)xlarge$/.exec(size)?.[1];
  return n ? SIZES.length + Number(n) : 10_000;
}

function generation(family: string): number {
  return Number(/[0-9]+/.exec(family)?.[0] ?? 0);
}

/**
 * Instance types that look cheapest first: by size, burstable (t*) families
 * before others, newer generations before older, then by name.
 */
export function cheapestFirst(a: string, b: string): number {
  const [fa = '', sa = ''] = a.split('.');
  const [fb = '', sb = ''] = b.split('.');
  const burstable = (f: string) => (/^t[0-9]/.test(f) ? 0 : 1);
  return sizeRank(sa) - sizeRank(sb) || burstable(fa) - burstable(fb) || generation(fb) - generation(fa) || a.localeCompare(b);
}

/** Instance types offered in every one of `azs`, by architecture, cheapest-looking first. */
async function offeredEverywhere(ec2: Ec2, azs: readonly string[]): Promise<Record<Arch, string[]>> {
  const where = new Map<string, Set<string>>();
  for (const o of await offerings(ec2, azs)) {
    if (!o.InstanceType || !o.Location) continue;
    const set = where.get(o.InstanceType) ?? new Set<string>();
    set.add(o.Location);
    where.set(o.InstanceType, set);
  }
  const everywhere = [...where].filter(([type, set]) => azs.every((az) => set.has(az)) && !type.startsWith('mac')).map(([type]) => type);
  everywhere.sort(cheapestFirst);
  const archOf = (type: string) => archOfFamily(type.split('.')[0] ?? '');
  return { arm64: everywhere.filter((t) => archOf(t) === 'arm64'), x86_64: everywhere.filter((t) => archOf(t) === 'x86_64') };
}

function listAnd(items: readonly string[]): string {
  return items.length <= 1 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]!}`;
}

function tooFewMessage(n: number, region: string, all: readonly string[], kept: readonly string[]): string {
  let msg = `--azs ${n}: ${region} has ${all.length === 0 ? 'no Availability Zone this account can use' : `only ${all.length} Availability Zone${all.length === 1 ? '' : 's'} (${all.join(', ')})`}`;
  if (kept.length) msg += `, and the stack already uses ${kept.join(', ')}`;
  msg += '.';
  if (all.length < MIN_AZS) return `${msg} hanat needs at least ${MIN_AZS}. Deploy to another region.`;
  return `${msg} Pass --azs ${all.length} or fewer.`;
}

function notOfferedMessage(n: number, region: string, chosen: readonly string[], missing: readonly string[], type: InstanceType, alternatives: Record<Arch, string[]>): string {
  const other: Arch = type.arch === 'arm64' ? 'x86_64' : 'arm64';
  const one = missing.length === 1;
  const msg =
    `--instance-type ${type.type} is not offered in ${listAnd(missing)}, among the ${n} Availability Zones of ${region} ` +
    `(${chosen.join(', ')}) that --azs ${n} puts NATs in; ${one ? 'the NAT there' : 'the NATs there'} could not launch and the stack would roll back.`;
  const pass: string[] = [];
  const usable = chosen.findIndex((az) => missing.includes(az));
  if (usable >= MIN_AZS) pass.push(`--azs ${usable} or fewer`);
  const same = alternatives[type.arch].filter((t) => t !== type.type).slice(0, SUGGESTIONS);
  const others = alternatives[other].slice(0, SUGGESTIONS);
  if (same.length) {
    pass.push(`an instance type offered in all ${n}, e.g. ${same.join(', ')}`);
  } else if (others.length) {
    pass.push(
      `an ${other} instance type offered in all ${n}, e.g. ${others.join(', ')} ` +
        `(no ${type.arch} type is; an ${other} type needs an ${other} image, and leaving out --ami picks ${amiParameter(other)})`,
    );
  }
  return `${msg} ${pass.length ? `Pass ${pass.join(', or ')}.` : 'Deploy to another region.'}`;
}

/**
 * The AZs the stack gets, in order: those of an existing stack (`keep`, its
 * AvailabilityZones), cut to `n` or followed by the region's next ones; for a
 * new stack the region's first `n`. Throws a UsageError when the region has
 * too few, or one does not offer the instance type (naming the AZs and how to
 * go on). Without permission to list the AZs it can still keep an existing
 * stack's; without permission to list offerings the type is not checked.
 */
export async function checkZones(ec2: Ec2, want: { azs: number; instanceType: InstanceType; region: string; keep?: readonly string[] | undefined }): Promise<ZoneCheck> {
  const { azs: n, instanceType: type, region } = want;
  const keep = (want.keep ?? []).slice(0, n);
  let chosen: string[];
  try {
    if (keep.length === n) {
      chosen = [...keep];
    } else {
      const all = await regionAzs(ec2);
      const more = all.filter((az) => !keep.includes(az));
      if (keep.length + more.length < n) throw new UsageError(tooFewMessage(n, region, all, keep));
      chosen = [...keep, ...more.slice(0, n - keep.length)];
    }
  } catch (err) {
    if (!(err instanceof Denied)) throw err;
    throw new OperationError(
      `${err.message}. hanat deploy lists the region's Availability Zones to choose the stack's; allow ec2:DescribeAvailabilityZones.`,
      { cause: err },
    );
  }
  const kept = keep.length;
  try {
    const offered = new Set(
      (await offerings(ec2, chosen, [{ Name: 'instance-type', Values: [type.type] }])).filter((o) => o.InstanceType === type.type).map((o) => o.Location),
    );
    const missing = chosen.filter((az) => !offered.has(az));
    if (missing.length === 0) return { azs: chosen, kept };
    // The suggestions are a courtesy: the refusal stands even if they cannot be listed.
    const alternatives = await offeredEverywhere(ec2, chosen).catch((err: unknown) => {
      if (err instanceof Denied) return { arm64: [], x86_64: [] };
      throw err;
    });
    throw new UsageError(notOfferedMessage(n, region, chosen, missing, type, alternatives));
  } catch (err) {
    if (err instanceof Denied) return { azs: chosen, kept, unchecked: err.message };
    throw err;
  }
}
