/**
 * The emulated AWS account: regions (created on first use, named by the
 * request's signing scope), the shared id generator and public address pool,
 * IAM, faults, counters, latency, the clock and the instance launcher. It is
 * also the NetworkView the data plane watches.
 */
import type { InstanceLauncher, NetworkSnapshot, NetworkView } from '../contract.js';
import { systemClock, type Clock } from './clock.js';
import { Counters } from './counters.js';
import { ACCOUNT_ID, azsOf, PublicIpPool, type Env } from './env.js';
import { Faults } from './faults.js';
import { Iam } from './iam.js';
import { latencyProfile, withOpLatency, type LatencyName, type LatencyProfile, type OpLatency } from './latency.js';
import { buildSnapshot } from './network-view.js';
import { resolveOperation } from './operations.js';
import { IdGenerator, seededRandom } from './random.js';
import { RateLimiter } from './ratelimit.js';
import { Region } from './region.js';

export interface AccountOptions {
  /** Default region, for callers that do not sign (and for `world`). Default us-east-1. */
  region?: string | undefined;
  /** `zero` (default), `aws`, or a custom profile. */
  latency?: LatencyName | LatencyProfile | undefined;
  /**
   * API latency of single operations, on top of `latency`: `{ 'ec2:CreateRoute': 250,
   * 'ec2:DescribeRouteTables': [20, 60] }` (ms, or a range drawn per call).
   */
  opLatency?: OpLatency | undefined;
  /** Milliseconds between an Auto Scaling launch (instance `pending`) and `launcher.launch`. Default 0. */
  bootDelayMs?: number | undefined;
  /**
   * EC2 status checks: from a crash in place to `impaired`, and from `running` to the
   * first passed check. Default 60 000 (checks run every minute; EMULATOR.md).
   */
  statusCheckDelayMs?: number | undefined;
  /**
   * Replaces every Auto Scaling group's HealthCheckGracePeriod in the emulated health check
   * (groups still report their own value). For tests and the demo; default: the group's own.
   */
  healthCheckGracePeriodMs?: number | undefined;
  /**
   * How long Auto Scaling takes to notice an instance that died or whose status checks
   * failed; replaces the latency profile's health-check delay (none with `zero`, 3–6 s with `aws`).
   */
  healthCheckDelayMs?: number | undefined;
  /**
   * Throttle the API with AWS's token buckets (ratelimit.ts). Default: on with the `aws`
   * latency profile, off otherwise (unit tests run at full speed unless they ask).
   */
  rateLimits?: boolean | undefined;
  /** Default: a launcher that does nothing (instances just become `running`). */
  launcher?: InstanceLauncher | undefined;
  clock?: Clock | undefined;
  /** Seed for ids, latencies and fault rates (reproducible runs). */
  seed?: number | undefined;
  /** Diagnostics sink; silent by default. */
  log?: ((message: string) => void) | undefined;
}

/** Instances boot and die without side effects: unit tests and `serve` without namespaces. */
export const noopLauncher: InstanceLauncher = {
  launch: () => Promise.resolve(),
  terminate: () => Promise.resolve(),
};

/**
 * EC2 runs its status checks every minute (EC2 User Guide, "Status checks for Amazon EC2
 * instances"), so a crash shows as `impaired` at the next check: up to a minute later.
 * The lab takes that minute, the worst case of one check, as the default.
 */
export const DEFAULT_STATUS_CHECK_DELAY_MS = 60_000;

const REGION_NAME = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/;

export class Account implements NetworkView {
  readonly id = ACCOUNT_ID;
  readonly defaultRegion: string;
  readonly clock: Clock;
  readonly latency: LatencyProfile;
  /** The per-operation overrides inside `latency` (for /_lab/health). */
  readonly opLatency: OpLatency;
  readonly faults: Faults;
  readonly counters = new Counters();
  /** AWS's API rate limits, when on. */
  readonly rateLimits: RateLimiter | undefined;
  readonly ids: IdGenerator;
  readonly publicIps = new PublicIpPool();
  readonly iam: Iam;
  readonly launcher: InstanceLauncher;
  readonly bootDelayMs: number;
  readonly statusCheckDelayMs: number;
  readonly healthCheckGracePeriodMs: number | undefined;
  readonly log: (message: string) => void;
  private readonly regions = new Map<string, Region>();
  private version = 0;
  private listeners = new Set<(snapshot: NetworkSnapshot) => void>();

  constructor(opts: AccountOptions = {}) {
    const seed = opts.seed ?? 1;
    const random = seededRandom(seed);
    this.defaultRegion = opts.region ?? 'us-east-1';
    this.clock = opts.clock ?? systemClock;
    this.opLatency = { ...(opts.opLatency ?? {}) };
    for (const key of Object.keys(this.opLatency)) {
      const op = resolveOperation(key);
      if ('error' in op || key !== `${op.service}:${op.action}`) throw new RangeError(`opLatency key ${JSON.stringify(key)}: ${'error' in op ? op.error : `write it as ${op.service}:${op.action}`}`);
    }
    const profile = withOpLatency(latencyProfile(opts.latency, random), this.opLatency, random);
    const healthCheckDelayMs = opts.healthCheckDelayMs;
    this.latency = healthCheckDelayMs === undefined ? profile : { ...profile, healthCheck: () => healthCheckDelayMs };
    this.faults = new Faults(random);
    this.rateLimits = (opts.rateLimits ?? opts.latency === 'aws') ? new RateLimiter(this.clock) : undefined;
    this.ids = new IdGenerator(`hanat-lab-${seed}`);
    this.iam = new Iam(ACCOUNT_ID, this.ids, () => this.clock.now());
    this.launcher = opts.launcher ?? noopLauncher;
    this.bootDelayMs = opts.bootDelayMs ?? 0;
    this.statusCheckDelayMs = opts.statusCheckDelayMs ?? DEFAULT_STATUS_CHECK_DELAY_MS;
    this.healthCheckGracePeriodMs = opts.healthCheckGracePeriodMs;
    this.log = opts.log ?? (() => {});
    this.region(this.defaultRegion);
  }

  static isRegionName(name: string): boolean {
    return REGION_NAME.test(name);
  }

  region(name: string = this.defaultRegion): Region {
    let r = this.regions.get(name);
    if (!r) {
      const env: Env = {
        accountId: ACCOUNT_ID,
        region: name,
        azs: azsOf(name),
        ids: this.ids,
        clock: this.clock,
        latency: this.latency,
        faults: this.faults,
        launcher: this.launcher,
        publicIps: this.publicIps,
        iam: this.iam,
        bootDelayMs: this.bootDelayMs,
        statusCheckDelayMs: this.statusCheckDelayMs,
        healthCheckGraceOverrideMs: this.healthCheckGracePeriodMs,
        changed: () => this.changed(),
        log: this.log,
      };
      r = new Region(env);
      this.regions.set(name, r);
    }
    return r;
  }

  allRegions(): Region[] {
    return [...this.regions.values()];
  }

  snapshot(): NetworkSnapshot {
    return buildSnapshot(this.version, this.allRegions());
  }

  onChange(listener: (snapshot: NetworkSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    this.version++;
    if (this.listeners.size === 0) return;
    const snap = this.snapshot();
    for (const l of [...this.listeners]) {
      try {
        l(snap);
      } catch (err) {
        this.log(`network listener failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  /** The instance (in any region) with this private address, for IMDS. */
  instanceByIp(ip: string) {
    for (const r of this.regions.values()) {
      const inst = r.ec2.instanceByPrivateIp(ip);
      if (inst) return { region: r, instance: inst };
    }
    return undefined;
  }

  instanceById(id: string) {
    for (const r of this.regions.values()) {
      const inst = r.ec2.instances.get(id);
      if (inst) return { region: r, instance: inst };
    }
    return undefined;
  }
}
