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
  /** Conntrack below 90 % (undefined: not measurable here). */
  conntrack?: boolean | undefined;
  /** Upstream probe: the NAT's own path to the internet (undefined: no probe target). */
  upstream?: boolean | undefined;
  /** Forward probe via the peers: `undefined` when no peer could say. */
  forward?: boolean | undefined;
}

/** One check round's verdict and what failed. */
export function judge(c: SelfChecks): { result: CheckResult; failed: string[] } {
  const failed: string[] = [];
  if (c.kernel === false) failed.push('kernel');
  if (c.conntrack === false) failed.push('conntrack');
  if (c.upstream === false) failed.push('upstream');
  if (c.forward === false) failed.push('forward');
  return { result: failed.length > 0 ? 'fail' : c.kernel === undefined ? 'inconclusive' : 'ok', failed };
}
