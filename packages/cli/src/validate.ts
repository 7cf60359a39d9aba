/**
 * Local validation of `hanat deploy` / `hanat template` input. Runs before any
 * AWS call; every failure is a UsageError naming the bad value and the fix.
 * The README's "Bad input of `hanat deploy`" table lists every message, and
 * test/bad-input.test.ts runs each of its rows; test/validate.test.ts covers
 * these functions one by one.
 */
import { UsageError } from './errors.js';
import { MAX_AZS, MIN_AZS } from './template/render.js';

export type Arch = 'arm64' | 'x86_64';

const STACK_NAME_MAX = 128;

/** A CloudFormation stack name: starts with a letter, then letters, digits and hyphens, at most 128 characters. */
export function checkStackName(name: string): string {
  if (name === '') throw new UsageError('--name is empty: give the CloudFormation stack name, e.g. --name prod-vpc.');
  if (name.length > STACK_NAME_MAX) {
    throw new UsageError(`--name "${name.slice(0, 20)}…" is ${name.length} characters long; a stack name has at most ${STACK_NAME_MAX}. Choose a shorter name.`);
  }
  if (!/^[A-Za-z]/.test(name)) {
    throw new UsageError(`--name "${name}": a stack name must start with a letter (A-Z or a-z), e.g. --name vpc-${name.replace(/[^A-Za-z0-9-]/g, '-')}.`);
  }
  const bad = name.match(/[^A-Za-z0-9-]/);
  if (bad) {
    throw new UsageError(
      `--name "${name}": a stack name may contain only letters, digits and hyphens, not "${bad[0]}". Try --name ${name.replace(/[^A-Za-z0-9-]/g, '-')}.`,
    );
  }
  return name;
}

export interface CidrPrefix {
  prefix: string;
  /** Set when the range is usable but not private: the warning to show. */
  warning?: string;
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/**
 * The first two octets of the VPC's /16. RFC 1918 ranges and the shared
 * address space 100.64.0.0/10 (RFC 6598, not routed on the internet) pass
 * silently; other unicast ranges pass with a warning; ranges AWS or IP reserve
 * (0/8, loopback, link-local, multicast and above) are refused.
 */
export function checkCidrPrefix(value: string): CidrPrefix {
  const parts = value.split('.');
  const [a, b] = parts;
  if (parts.length !== 2 || a === undefined || b === undefined || !OCTET.test(a) || !OCTET.test(b)) {
    throw new UsageError(
      `--cidr-prefix "${value}": give the first two octets of the VPC range, e.g. --cidr-prefix 10.0 for 10.0.0.0/16 (no leading zeros, no mask).`,
    );
  }
  const x = Number(a);
  const y = Number(b);
  if (x > 255 || y > 255) {
    throw new UsageError(`--cidr-prefix "${value}": each octet must be from 0 to 255, e.g. --cidr-prefix 10.0.`);
  }
  const range = `${x}.${y}.0.0/16`;
  const reserved =
    x === 0 ? 'is "this network" (0.0.0.0/8)' :
    x === 127 ? 'is loopback (127.0.0.0/8)' :
    x === 169 && y === 254 ? 'is link-local (169.254.0.0/16), where the instance metadata service lives' :
    x >= 224 ? 'is multicast or reserved (224.0.0.0/3)' :
    undefined;
  if (reserved) {
    throw new UsageError(`--cidr-prefix "${value}": ${range} ${reserved} and cannot be a VPC range. Use a private range such as 10.0, 172.16 or 192.168.`);
  }
  const isPrivate = x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || (x === 100 && y >= 64 && y <= 127);
  if (isPrivate) return { prefix: `${x}.${y}` };
  return {
    prefix: `${x}.${y}`,
    warning: `${range} is a public range: hosts in this VPC will not reach the internet's real ${range} through the NAT. Prefer a private range (10.x, 172.16-31.x, 192.168).`,
  };
}

/** An EC2 key pair name: 1-255 printable ASCII characters, no leading or trailing space. */
export function checkKeyName(value: string): string {
  if (value === '') throw new UsageError('--key is empty: give an EC2 key pair name, or leave out --key to launch the NATs without a key.');
  if (value.length > 255) throw new UsageError(`--key "${value.slice(0, 20)}…" is ${value.length} characters long; a key pair name has at most 255.`);
  const bad = value.match(/[^\x20-\x7e]/);
  if (bad) {
    throw new UsageError(`--key "${value}": a key pair name may contain only printable ASCII characters, not ${JSON.stringify(bad[0])}.`);
  }
  if (value.trim() !== value) throw new UsageError(`--key "${value}": a key pair name cannot start or end with a space.`);
  return value;
}

export type AmiRef = { kind: 'id'; id: string } | { kind: 'ssm'; parameter: string };

const AMI_ID = /^ami-([0-9a-f]{8}|[0-9a-f]{17})$/;
const SSM_NAME = /^\/?[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/;
/** A parameter selector after the name: a version (`:3`) or a label (`:stable`), as GetParameter takes it. */
const SSM_SELECTOR = /^([1-9][0-9]{0,9}|[A-Za-z][A-Za-z0-9_.-]{0,99})$/;

export function isAmiId(value: string): boolean {
  return AMI_ID.test(value);
}

/** `--ami`: an AMI id, an SSM parameter path (`/hanat/ami/arm64`, pinned as `/hanat/ami/arm64:3`), or `resolve:ssm:<name>[:version|label]`. */
export function checkAmi(value: string): AmiRef {
  if (/^ami-/i.test(value)) {
    if (AMI_ID.test(value)) return { kind: 'id', id: value };
    throw new UsageError(`--ami "${value}": an AMI id is "ami-" followed by 8 or 17 lowercase hex digits, e.g. ami-0123456789abcdef0.`);
  }
  const ssm = value.startsWith('resolve:ssm:') ? value.slice('resolve:ssm:'.length) : value.startsWith('/') ? value : undefined;
  if (ssm === undefined) {
    throw new UsageError(
      `--ami "${value}": give an AMI id (ami-0123456789abcdef0) or an SSM parameter holding one (/hanat/ami/arm64 or resolve:ssm:/hanat/ami/arm64). Leave out --ami to use /hanat/ami/<arch>.`,
    );
  }
  const colon = ssm.indexOf(':');
  const name = colon < 0 ? ssm : ssm.slice(0, colon);
  if (name.length === 0 || name.length > 1011 || !SSM_NAME.test(name)) {
    throw new UsageError(`--ami "${value}": "${name}" is not an SSM parameter name; it may contain only letters, digits, "." "-" "_" and "/" separators, e.g. /hanat/ami/arm64.`);
  }
  if (colon >= 0 && !SSM_SELECTOR.test(ssm.slice(colon + 1))) {
    throw new UsageError(
      `--ami "${value}": "${ssm.slice(colon + 1)}" after the parameter name is neither a version nor a label; pin a version with ${name}:3 or a label with ${name}:stable, or leave it out for the latest.`,
    );
  }
  return { kind: 'ssm', parameter: ssm };
}

/** `--azs`: a whole number of Availability Zones from MIN_AZS to MAX_AZS. */
export function parseAzs(value: string): number {
  const n = /^[0-9]+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isInteger(n) || n < MIN_AZS || n > MAX_AZS) {
    throw new UsageError(`--azs "${value}": hanat spreads NATs over ${MIN_AZS} to ${MAX_AZS} Availability Zones; pass a whole number from ${MIN_AZS} to ${MAX_AZS}, e.g. --azs 3.`);
  }
  return n;
}

export interface InstanceType {
  type: string;
  family: string;
  arch: Arch;
}

const INSTANCE_TYPE = /^([a-z][a-z0-9-]*)\.([a-z0-9][a-z0-9-]*)$/;

/**
 * The architecture an instance type runs, from its name alone.
 * Rule: Graviton families carry a "g" as the first letter after the generation
 * digits (t4g, m7g, c6gn, r8g, x2gd, im4gn, is4gen, g5g, hpc7g), plus the first
 * Graviton family, a1. Everything else (t3, m7i-flex, g4dn, c5n, u-6tb1) is x86_64.
 */
export function archOfFamily(family: string): Arch {
  if (family === 'a1') return 'arm64';
  const afterDigits = /[0-9]+([a-z]*)/.exec(family)?.[1] ?? '';
  return afterDigits.startsWith('g') ? 'arm64' : 'x86_64';
}

export function checkInstanceType(value: string): InstanceType {
  const m = INSTANCE_TYPE.exec(value);
  const family = m?.[1];
  if (!m || family === undefined || !/[0-9]/.test(family)) {
    throw new UsageError(`--instance-type "${value}": an instance type is <family>.<size> in lowercase, e.g. t4g.nano (arm64) or t3.micro (x86_64).`);
  }
  if (family.startsWith('mac')) {
    throw new UsageError(`--instance-type "${value}": Mac instances cannot run the hanat NAT image; use e.g. t4g.nano (arm64) or t3.micro (x86_64).`);
  }
  return { type: value, family, arch: archOfFamily(family) };
}

const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;

/**
 * Where a region came from, so that a bad one is blamed on the right place:
 * the flag, an environment variable (when no --region was given), or the
 * `region` of the profile in the config file (when neither was).
 */
export type RegionSource =
  | { kind: 'flag' }
  | { kind: 'env'; name: 'AWS_REGION' | 'AWS_DEFAULT_REGION' }
  | { kind: 'profile'; profile: string; configFile: string };

export function checkRegion(value: string, source: RegionSource = { kind: 'flag' }): string {
  if (REGION.test(value)) return value;
  const az = /^([a-z]{2}(-[a-z]+)+-[0-9]+)[a-z]$/.exec(value)?.[1];
  if (source.kind === 'flag') {
    if (az) throw new UsageError(`--region "${value}" is an Availability Zone; pass its region, --region ${az}.`);
    throw new UsageError(`--region "${value}": a region looks like eu-west-1 or us-east-1.`);
  }
  if (source.kind === 'env') {
    const unset = source.name === 'AWS_REGION' ? 'no --region was given' : 'no --region or AWS_REGION was given';
    const what = `${source.name} "${value}" (from the environment; ${unset})`;
    if (az) throw new UsageError(`${what} is an Availability Zone; set ${source.name} to its region (export ${source.name}=${az}), or pass --region ${az}.`);
    throw new UsageError(`${what}: a region looks like eu-west-1 or us-east-1. Correct ${source.name} (e.g. export ${source.name}=eu-west-1), or pass --region.`);
  }
  const what = `region "${value}" of profile "${source.profile}" in ${source.configFile} (no --region, AWS_REGION or AWS_DEFAULT_REGION was given)`;
  const configure = (region: string) => `aws configure set region ${region} --profile ${source.profile}`;
  if (az) throw new UsageError(`${what} is an Availability Zone; set its region instead (${configure(az)}), or pass --region ${az}.`);
  throw new UsageError(`${what}: a region looks like eu-west-1 or us-east-1. Correct it (e.g. ${configure('eu-west-1')}), or pass --region.`);
}

/** The instance type families that run a given architecture, for error messages. */
export function familiesFor(arch: Arch): string {
  return arch === 'arm64'
    ? 'Graviton families, with a "g" after the generation digit: t4g, m7g, c7g, r7g, m8g, c6gn, x2gd, im4gn, and a1'
    : 'Intel and AMD families: t3, t3a, m7i, m7a, c7i, r7i, m6i, c5n, and others without a "g" after the generation digit';
}

/** A stack tag given with `--tag key=value`. */
export interface StackTag {
  Key: string;
  Value: string;
}

/** CloudFormation's limits on stack tags (AWS CloudFormation API Reference, "Tag"). */
const TAG_KEY_MAX = 128;
const TAG_VALUE_MAX = 256;
/** A stack has at most 50 tags; hanat adds hanat:stack. */
export const MAX_USER_TAGS = 49;

/** The keys instance metadata can show (EC2 User Guide, "View tags for your EC2 instances using instance metadata"). */
const IMDS_TAG_KEY = /^[A-Za-z0-9+\-=.,_:@]+$/;
const IMDS_RESERVED_KEYS = ['.', '..', '_index'];

/**
 * Why instance metadata cannot show a tag key, or undefined when it can. The
 * hanat launch template enables tags in instance metadata (the agent reads its
 * own tags there), and then EC2 refuses to launch an instance carrying such a
 * key. Stack tags reach the NATs (CloudFormation passes them to the Auto
 * Scaling groups, which propagate them at launch).
 */
export function imdsTagKeyProblem(key: string): string | undefined {
  if (IMDS_RESERVED_KEYS.includes(key)) return `"${key}" is a name instance metadata reserves`;
  const bad = key.match(/[^A-Za-z0-9+\-=.,_:@]/);
  if (!bad) return undefined;
  const what = bad[0] === ' ' ? 'a space' : bad[0] === '/' ? 'a "/"' : `"${bad[0]}"`;
  return `the key "${key}" has ${what}`;
}

/** The rule behind imdsTagKeyProblem, and why it matters, for messages. */
export const IMDS_TAG_RULE =
  'the NATs read their tags from instance metadata, which shows only keys made of letters, digits and + - = . , _ : @ (no spaces, no "/", not ".", ".." or "_index"), ' +
  'and EC2 refuses to launch an instance with a tag it cannot show; stack tags reach every NAT';

function tagKeySuggestion(key: string): string {
  const fixed = key.replace(/[^A-Za-z0-9+\-=.,_:@]+/g, '-').replace(/^[-._]+|-+$/g, '');
  return IMDS_TAG_KEY.test(fixed) && !IMDS_RESERVED_KEYS.includes(fixed) ? fixed : 'team';
}

/**
 * `--tag key=value` (repeatable): the stack's own tags. Refuses what
 * CloudFormation would refuse (empty or reserved keys, lengths, more than 50
 * tags, a key twice) and keys instance metadata cannot show.
 */
export function checkTags(values: readonly string[]): StackTag[] {
  const tags: StackTag[] = [];
  for (const raw of values) {
    const eq = raw.indexOf('=');
    if (eq < 0) throw new UsageError(`--tag "${raw}": give key=value, e.g. --tag team=network (the value may be empty: --tag ${raw || 'team'}=).`);
    const key = raw.slice(0, eq);
    const value = raw.slice(eq + 1);
    if (key === '') throw new UsageError(`--tag "${raw}": the key is empty; give key=value, e.g. --tag team=network.`);
    if (key.length > TAG_KEY_MAX) throw new UsageError(`--tag "${key.slice(0, 20)}…": the key is ${key.length} characters long; a tag key has at most ${TAG_KEY_MAX}.`);
    if (value.length > TAG_VALUE_MAX) throw new UsageError(`--tag "${key}=…": the value is ${value.length} characters long; a tag value has at most ${TAG_VALUE_MAX}.`);
    if (/^aws:/i.test(key)) throw new UsageError(`--tag "${raw}": keys starting with "aws:" are reserved for AWS. Choose another key.`);
    if (key.startsWith('hanat:')) throw new UsageError(`--tag "${raw}": keys starting with "hanat:" are hanat's own (the tag contract); choose another key.`);
    const problem = imdsTagKeyProblem(key);
    if (problem) throw new UsageError(`--tag "${raw}": ${problem}; ${IMDS_TAG_RULE}. Use e.g. --tag ${tagKeySuggestion(key)}=${value}.`);
    if (tags.some((t) => t.Key === key)) throw new UsageError(`--tag "${key}" is given twice; a stack has one value per tag key.`);
    tags.push({ Key: key, Value: value });
  }
  if (tags.length > MAX_USER_TAGS) throw new UsageError(`--tag is given ${tags.length} times; a stack has at most 50 tags, and hanat adds hanat:stack, so pass at most ${MAX_USER_TAGS}.`);
  return tags;
}
