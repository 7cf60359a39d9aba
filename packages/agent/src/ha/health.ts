/**
 * Self-check hysteresis (keepalived's `vrrp_script`: interval, timeout, rise, fall).
 * It starts failed: a NAT is not healthy until `rise` checks in a row pass. Once it has
 * a level, it changes only after `rise` passes or `fall` failures in a row. An
 * inconclusive check (nobody could confirm or deny) changes nothing.
 */
import type { HealthLevel } from './takeover.js';

export type CheckResult = 'ok' | 'fail' | 'inconclusive';

export class Hysteresis {
  /** undefined until the first `rise` or `fall` run: started, not yet healthy. */
  level: HealthLevel | undefined;
  private oks = 0;
  private fails = 0;

  constructor(
    readonly rise: number,
    readonly fall: number,
  ) {}

  get healthy(): boolean {
    return this.level === 'up';
  }

  /** Records one check; returns the new level when it changed. */
  record(result: CheckResult): HealthLevel | undefined {
    if (result === 'inconclusive') return undefined;
    if (result === 'ok') {
      this.oks++;
      this.fails = 0;
      if (this.level !== 'up' && this.oks >= this.rise) return (this.level = 'up');
    } else {
      this.fails++;
      this.oks = 0;
      if (this.level !== 'down' && this.fails >= this.fall) return (this.level = 'down');
    }
    return undefined;
  }
}

export interface SelfChecks {
  /** Forwarding on and hanat's NAT rule present, as the kernel reconciler last verified (or repaired); undefined before its first run. */
  kernel: boolean | undefined;
  /** Upstream probe: the NAT's own path to the internet (undefined: no probe target). */
  upstream?: boolean | undefined;
  /** Forward probe via the peers: `undefined` when no peer could say. */
  forward?: boolean | undefined;
  /**
   * Conntrack has headroom: below CONNTRACK_HEADROOM of its table (undefined: not measurable
   * here). Not part of the verdict: a full table is a load, and moving the routes moves the
   * load to the successor. When it is full, new flows are dropped, the probes with them (each
   * is a new flow), and those fail the verdict.
   */
  conntrack?: boolean | undefined;
  /**
   * "My routes point at me": the route reconciler's last check ended with every table this
   * NAT serves pointing at it (undefined before its first check). Not part of the verdict:
   * the route reconciler repairs it, and a NAT whose route writes fail would fail the same
   * writes to hand its tables over.
   */
  routes?: boolean | undefined;
}

/** Conntrack use at or above this fraction of the table is a warning (hanat-agent check calls it unhealthy). */
export const CONNTRACK_HEADROOM = 0.9;

/** One check round's verdict, what failed (the verdict's checks) and what to warn about (the others). */
export function judge(c: SelfChecks): { result: CheckResult; failed: string[]; warnings: string[] } {
  const failed: string[] = [];
  if (c.kernel === false) failed.push('kernel');
  if (c.upstream === false) failed.push('upstream');
  if (c.forward === false) failed.push('forward');
  const warnings: string[] = [];
  if (c.conntrack === false) warnings.push('conntrack');
  if (c.routes === false) warnings.push('routes');
  return { result: failed.length > 0 ? 'fail' : c.kernel === undefined ? 'inconclusive' : 'ok', failed, warnings };
}
