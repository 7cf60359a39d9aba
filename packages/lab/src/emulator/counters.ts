/**
 * Per-operation call counters, so tests and benchmarks can assert "how many API
 * calls did this take". Keys are `<service>:<Action>` (`ec2:ReplaceRoute`,
 * `imds:token`). A call is counted when it arrives, whether it then succeeds,
 * fails or is throttled; calls failed by an injected fault are counted again
 * under `injected`, calls throttled by the rate limits under `throttled`.
 */
export interface CounterSnapshot {
  calls: Record<string, number>;
  /** Calls per caller (instance id, or `external` for callers outside the lab's instances). */
  byCaller: Record<string, Record<string, number>>;
  /** Calls answered with an injected fault. */
  injected: Record<string, number>;
  /** Calls throttled by AWS's rate limits (token buckets), per operation. */
  throttled: Record<string, number>;
  /** The same per caller. */
  throttledByCaller: Record<string, Record<string, number>>;
}

export class Counters {
  private calls = new Map<string, number>();
  private callers = new Map<string, Map<string, number>>();
  private injectedCalls = new Map<string, number>();
  private throttledCalls = new Map<string, number>();
  private throttledCallers = new Map<string, Map<string, number>>();

  record(key: string, caller = 'external'): void {
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
    let per = this.callers.get(caller);
    if (!per) this.callers.set(caller, (per = new Map<string, number>()));
    per.set(key, (per.get(key) ?? 0) + 1);
  }

  recordThrottled(key: string, caller = 'external'): void {
    this.throttledCalls.set(key, (this.throttledCalls.get(key) ?? 0) + 1);
    let per = this.throttledCallers.get(caller);
    if (!per) this.throttledCallers.set(caller, (per = new Map<string, number>()));
    per.set(key, (per.get(key) ?? 0) + 1);
  }

  /** Calls of one operation that the rate limits throttled. */
  throttled(key: string): number {
    return this.throttledCalls.get(key) ?? 0;
  }

  recordInjected(key: string): void {
    this.injectedCalls.set(key, (this.injectedCalls.get(key) ?? 0) + 1);
  }

  /** Calls of one operation (`ec2:ReplaceRoute`), or of every operation matching a prefix ending in `*` (`ec2:*`). */
  get(key: string): number {
    if (key.endsWith('*')) {
      const prefix = key.slice(0, -1);
      let n = 0;
      for (const [k, v] of this.calls) if (k.startsWith(prefix)) n += v;
      return n;
    }
    return this.calls.get(key) ?? 0;
  }

  injected(key: string): number {
    return this.injectedCalls.get(key) ?? 0;
  }

  snapshot(): CounterSnapshot {
    return {
      calls: Object.fromEntries(this.calls),
      byCaller: Object.fromEntries([...this.callers].map(([c, m]) => [c, Object.fromEntries(m)])),
      injected: Object.fromEntries(this.injectedCalls),
      throttled: Object.fromEntries(this.throttledCalls),
      throttledByCaller: Object.fromEntries([...this.throttledCallers].map(([c, m]) => [c, Object.fromEntries(m)])),
    };
  }

  reset(): void {
    this.calls.clear();
    this.callers.clear();
    this.injectedCalls.clear();
    this.throttledCalls.clear();
    this.throttledCallers.clear();
  }
}
