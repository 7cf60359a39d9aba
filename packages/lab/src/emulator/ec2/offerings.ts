/**
 * Which instance types the lab offers, and in which Availability Zones: the
 * model behind DescribeInstanceTypeOfferings and the launch check that goes
 * with it.
 *
 * Real regions do not offer every type in every AZ. The case hanat cares about
 * is us-east-1e, which offers no Graviton (arm64) types at all, so a t4g NAT
 * cannot launch there. The lab makes every region's `<region>e` like that:
 * the fifth AZ offers the x86_64 types of the catalogue and no arm64 type;
 * every other AZ offers the whole catalogue. Three-AZ stacks (a-c, the demo
 * and the e2e test) never meet it; `--azs 5` or `6` with a Graviton type does.
 */
import { AwsError } from '../errors.js';

/** Graviton families (`t4g`, `c7gn`, `a1`) are arm64; everything else here is x86_64. */
export function instanceTypeArchitecture(type: string): 'arm64' | 'x86_64' | undefined {
  const m = /^([a-z]+)(\d+)([a-z-]*)\.[a-z0-9]+$/.exec(type);
  if (!m) return undefined;
  if (m[1] === 'a' && m[2] === '1') return 'arm64';
  return m[3]!.includes('g') ? 'arm64' : 'x86_64';
}

const SIZES_T = ['nano', 'micro', 'small', 'medium', 'large', 'xlarge', '2xlarge'];
const SIZES_M = ['medium', 'large', 'xlarge', '2xlarge', '4xlarge'];
const SIZES_L = ['large', 'xlarge', '2xlarge', '4xlarge'];

/**
 * The catalogue DescribeInstanceTypeOfferings lists: common burstable and
 * general-purpose, compute and memory families of both architectures. A small
 * sample of EC2's hundreds of types; launches still accept any well-formed
 * type name (EMULATOR.md, "Known differences").
 */
export const LAB_INSTANCE_TYPES: readonly string[] = [
  ...['t4g', 't3', 't3a', 't2'].flatMap((f) => SIZES_T.map((s) => `${f}.${s}`)),
  ...['medium', 'large', 'xlarge', '2xlarge'].map((s) => `a1.${s}`),
  ...['m6g', 'm7g', 'c6g', 'c7g', 'r6g', 'r7g'].flatMap((f) => SIZES_M.map((s) => `${f}.${s}`)),
  ...['m8g', 'c6gn', 'c7gn'].flatMap((f) => SIZES_L.map((s) => `${f}.${s}`)),
  ...['m5', 'm6i', 'm7i', 'm7a', 'c5', 'c6i', 'c7i', 'r5', 'r6i', 'r7i', 'c5n'].flatMap((f) => SIZES_L.map((s) => `${f}.${s}`)),
];

/** The lab's AZ without Graviton types: `<region>e`, as us-east-1e is on AWS. */
export function isGravitonFree(az: string): boolean {
  return az.endsWith('e');
}

/** True when `az` offers `type`; any well-formed type name counts, not only the catalogue's. */
export function isOffered(type: string, az: string): boolean {
  const arch = instanceTypeArchitecture(type);
  if (arch === undefined) return false;
  return !(arch === 'arm64' && isGravitonFree(az));
}

/**
 * What EC2 answers a launch of an instance type the AZ does not offer:
 * `Unsupported`, naming the type, the AZ, and the region's AZs that do offer
 * it (the wording of EC2's message, as operators see it in launch errors).
 */
export function unsupportedInAz(type: string, az: string, regionAzs: readonly string[]): AwsError {
  const others = regionAzs.filter((a) => a !== az && isOffered(type, a));
  return new AwsError(
    'Unsupported',
    `Your requested instance type (${type}) is not supported in your requested Availability Zone (${az}). ` +
      `Please retry your request by not specifying an Availability Zone or choosing ${others.join(', ')}.`,
  );
}
