/**
 * Remote check of `--azs` and `--instance-type` together: the Availability
 * Zones the template will get, and whether the instance type is offered in
 * each of them.
 *
 * The template picks AZ i with `Fn::Select [i, Fn::GetAZs '']`. CloudFormation
 * documents Fn::GetAZs as the region's AZs available to the account, in
 * alphabetical order, and only those with a default subnet unless no AZ has
 * one. So `--azs 6` in us-east-1 takes us-east-1a..f, and us-east-1e offers no
 * Graviton type: a t4g NAT cannot launch there and the stack rolls back minutes
 * later. This check says so before the stack is touched.
 */
import {
  DescribeAvailabilityZonesCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeSubnetsCommand,
  type Filter,
  type InstanceTypeOffering,
} from '@aws-sdk/client-ec2';
import type { Ec2 } from '@hanat/core';
import { amiParameter } from './ami.js';
import { awsFailure, isAccessDenied } from './aws.js';
import { UsageError } from './errors.js';
import { MIN_AZS } from './template/render.js';
import { archOfFamily, type Arch, type InstanceType } from './validate.js';

/** The EC2 calls of this check: what the caller's IAM policy must allow for it to run. */
export const ZONE_CHECK_ACTIONS = ['ec2:DescribeAvailabilityZones', 'ec2:DescribeSubnets', 'ec2:DescribeInstanceTypeOfferings'] as const;

/** How many alternative instance types a refusal suggests. */
const SUGGESTIONS = 4;
/** A bound on pages of one listing, so a misbehaving NextToken cannot loop forever. */
const MAX_PAGES = 50;

export interface GetAzs {
  /** What Fn::GetAZs '' gives: the AZs in alphabetical order. */
  azs: string[];
  /** AZs left out because other AZs have a default subnet and these do not. */
  withoutDefaultSubnet: string[];
}

export type ZoneCheck =
  /** The first N AZs, each offering the instance type. */
  | { azs: string[] }
  /** The check could not run for lack of permission; why, for a warning. */
  | { skipped: string };

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

/**
 * The AZs Fn::GetAZs gives a template in this region and account: the
 * account's Availability Zones (not Local or Wavelength Zones), alphabetically,
 * and of those only the ones with a default subnet if any has one.
 */
export async function getAzs(ec2: Ec2): Promise<GetAzs> {
  const zones = await call('DescribeAvailabilityZones', () =>
    ec2.send(new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'zone-type', Values: ['availability-zone'] }] })),
  );
  const all = (zones.AvailabilityZones ?? [])
    .filter((z) => z.ZoneType === undefined || z.ZoneType === 'availability-zone')
    .map((z) => z.ZoneName)
    .filter((name): name is string => !!name)
    .sort();
  const subnets = await call('DescribeSubnets', () => ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] })));
  const withDefault = new Set((subnets.Subnets ?? []).filter((s) => s.DefaultForAz !== false).map((s) => s.AvailabilityZone));
  if (withDefault.size === 0) return { azs: all, withoutDefaultSubnet: [] };
  return { azs: all.filter((az) => withDefault.has(az)), withoutDefaultSubnet: all.filter((az) => !withDefault.has(az)) };
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

function sentence(parts: readonly string[]): string {
  const text = parts.join(', or ');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

function tooFewMessage(n: number, region: string, got: GetAzs): string {
  const { azs, withoutDefaultSubnet: missing } = got;
  let msg =
    `--azs ${n}: the template puts its NATs in the first ${n} Availability Zones that Fn::GetAZs lists, ` +
    `but in ${region} it lists ${azs.length === 0 ? 'none' : `only ${azs.length} (${azs.join(', ')})`}.`;
  if (missing.length) {
    msg += ` While a region has default subnets, Fn::GetAZs lists only the AZs that have one, and ${listAnd(missing)} ${missing.length === 1 ? 'has' : 'have'} none.`;
  }
  if (azs.length < MIN_AZS) msg += ` hanat needs at least ${MIN_AZS}.`;
  const fixes: string[] = [];
  if (azs.length >= MIN_AZS) fixes.push(`pass --azs ${azs.length} or fewer`);
  if (missing.length) {
    fixes.push(
      `create the missing default subnet${missing.length === 1 ? '' : 's'} first (aws ec2 create-default-subnet --availability-zone ${missing[0]!} --region ${region}` +
        `${missing.length === 1 ? '' : ', and the same for the others'})`,
    );
  }
  if (fixes.length === 0) fixes.push('deploy to another region');
  return `${msg} ${sentence(fixes)}`;
}

function notOfferedMessage(n: number, region: string, chosen: readonly string[], missing: readonly string[], type: InstanceType, alternatives: Record<Arch, string[]>): string {
  const other: Arch = type.arch === 'arm64' ? 'x86_64' : 'arm64';
  const one = missing.length === 1;
  const msg =
    `--instance-type ${type.type} is not offered in ${listAnd(missing)}, among the first ${n} Availability Zones that Fn::GetAZs lists in ${region} ` +
    `(${chosen.join(', ')}), which --azs ${n} puts NATs in; ${one ? 'the NAT there' : 'the NATs there'} could not launch and the stack would roll back.`;
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
 * Works out the first `n` AZs Fn::GetAZs will give the template and checks that
 * each offers the instance type. Throws a UsageError naming the AZs and how to
 * go on when there are fewer than `n`, or one does not offer the type; returns
 * `{ skipped }` when the caller may not make these calls, so the deploy goes on.
 */
export async function checkZones(ec2: Ec2, want: { azs: number; instanceType: InstanceType; region: string }): Promise<ZoneCheck> {
  const { azs: n, instanceType: type, region } = want;
  try {
    const got = await getAzs(ec2);
    if (got.azs.length < n) throw new UsageError(tooFewMessage(n, region, got));
    const chosen = got.azs.slice(0, n);
    const offered = new Set(
      (await offerings(ec2, chosen, [{ Name: 'instance-type', Values: [type.type] }])).filter((o) => o.InstanceType === type.type).map((o) => o.Location),
    );
    const missing = chosen.filter((az) => !offered.has(az));
    if (missing.length === 0) return { azs: chosen };
    // The suggestions are a courtesy: the refusal stands even if they cannot be listed.
    const alternatives = await offeredEverywhere(ec2, chosen).catch((err: unknown) => {
      if (err instanceof Denied) return { arm64: [], x86_64: [] };
      throw err;
    });
    throw new UsageError(notOfferedMessage(n, region, chosen, missing, type, alternatives));
  } catch (err) {
    if (err instanceof Denied) return { skipped: err.message };
    throw err;
  }
}
