/**
 * What every per-region service needs from the account around it. Built once
 * per region by the Account; passed to constructors (no globals).
 */
import type { InstanceLauncher } from '../contract.js';
import type { Clock } from './clock.js';
import type { Faults } from './faults.js';
import type { Iam } from './iam.js';
import type { LatencyProfile } from './latency.js';
import type { IdGenerator } from './random.js';

export const ACCOUNT_ID = '123456789012';

/** A VPC range already in use: which VPC, where, and the stack that made it (if any). */
export interface VpcRangeUse {
  vpcId: string;
  cidr: string;
  region: string;
  stackName?: string;
}

export interface Env {
  readonly accountId: string;
  readonly region: string;
  /** `<region>a` .. `<region>f`. */
  readonly azs: readonly string[];
  readonly ids: IdGenerator;
  readonly clock: Clock;
  readonly latency: LatencyProfile;
  readonly faults: Faults;
  readonly launcher: InstanceLauncher;
  readonly publicIps: PublicIpPool;
  /** Account-wide IAM (roles and instance profiles), recorded only. */
  readonly iam: Iam;
  /** Account settings that tests may change while the emulator runs (quotas, delays). */
  readonly settings: AccountSettings;
  /** Time between an Auto Scaling launch decision and `launcher.launch` (the instance is `pending` meanwhile). */
  readonly bootDelayMs: number;
  /**
   * From a crash in place to the instance's status checks reporting it `impaired`, and
   * from `running` to its first passed check (`initializing` meanwhile).
   */
  readonly statusCheckDelayMs: number;
  /** When set, Auto Scaling's health check uses this grace period for every group instead of the group's own (tests, the demo). */
  readonly healthCheckGraceOverrideMs?: number | undefined;
  /** Tell the data plane that something it mirrors changed. */
  changed(): void;
  /**
   * Set when one router carries every VPC (the lab's data plane, AccountOptions.distinctVpcCidrs):
   * the VPC, in any region, whose range overlaps `cidr`. CreateVpc refuses such a range.
   */
  readonly vpcRangeInUse?: ((cidr: string) => VpcRangeUse | undefined) | undefined;
  /** Diagnostics (stderr in `serve`, silent in tests). */
  log(message: string): void;
}

/** Account settings a test may change while the emulator runs; shared by every region. */
export interface AccountSettings {
  /**
   * Elastic IPs an account may allocate per region (`vpc-max-elastic-ips`; 5 by
   * default, Amazon VPC User Guide, "Elastic IP address quotas").
   */
  eipQuota: number;
  /**
   * EC2's eventual consistency for new instances: for this long after an instance
   * boots, calls that name it or its network interface answer
   * InvalidInstanceID.NotFound / InvalidNetworkInterfaceID.NotFound. 0 (the
   * default) turns it off.
   */
  propagationDelayMs: number;
  /**
   * Scales every API rate-limit bucket (when rate limits are on): capacity and refill rate
   * are multiplied by it, a capacity never below 1 token. 1 (the default) is AWS's figures;
   * tests shrink the buckets with it so that a handful of calls meets them.
   */
  rateLimitScale: number;
}

/** AWS's defaults for a new account; the propagation delay is off unless a test asks for it. */
export const DEFAULT_ACCOUNT_SETTINGS: Readonly<AccountSettings> = { eipQuota: 5, propagationDelayMs: 0, rateLimitScale: 1 };

/**
 * Public addresses from 198.18.0.0/15 (RFC 2544 benchmarking space): Elastic IPs
 * from 198.18.0.0/16, auto-assigned public IPs from 198.19.0.0/16. Never from the
 * documentation ranges the lab's internet hosts use.
 */
export class PublicIpPool {
  private nextEip = 0;
  private nextAuto = 0;

  private static at(base: number, n: number): string {
    // 250 usable hosts per /24 (.1 .. .250), skipping .0 and the top of each block.
    const third = Math.floor(n / 250) + 1;
    const fourth = (n % 250) + 1;
    if (third > 255) throw new Error('public address pool exhausted');
    return `198.${base}.${third}.${fourth}`;
  }

  elastic(): string {
    return PublicIpPool.at(18, this.nextEip++);
  }

  auto(): string {
    return PublicIpPool.at(19, this.nextAuto++);
  }
}

/** `us-east-1` → `use1`, for AZ ids (`use1-az1`). */
export function regionCode(region: string): string {
  const parts = region.split('-');
  return parts.map((p, i) => (i === 0 ? p : /^\d+$/.test(p) ? p : p.charAt(0))).join('');
}

export function azsOf(region: string): string[] {
  return ['a', 'b', 'c', 'd', 'e', 'f'].map((l) => `${region}${l}`);
}

/** EC2's private DNS name: `ip-10-0-0-10.ec2.internal` in us-east-1, `ip-10-0-0-10.<region>.compute.internal` elsewhere. */
export function privateDnsName(region: string, ip: string): string {
  const host = `ip-${ip.replace(/\./g, '-')}`;
  return region === 'us-east-1' ? `${host}.ec2.internal` : `${host}.${region}.compute.internal`;
}

/** EC2's public DNS name: `ec2-198-19-0-1.compute-1.amazonaws.com` in us-east-1, `ec2-198-19-0-1.<region>.compute.amazonaws.com` elsewhere. */
export function publicDnsName(region: string, ip: string): string {
  const host = `ec2-${ip.replace(/\./g, '-')}`;
  return region === 'us-east-1' ? `${host}.compute-1.amazonaws.com` : `${host}.${region}.compute.amazonaws.com`;
}

export function azId(region: string, az: string): string {
  const i = az.charCodeAt(az.length - 1) - 'a'.charCodeAt(0) + 1;
  return `${regionCode(region)}-az${i}`;
}
