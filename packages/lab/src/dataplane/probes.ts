/**
 * What the probers saw, per private host and protocol: the current state, the outage
 * windows (from the first failed probe to the first successful one, by send time), and
 * which public address answered when, so a test or the demo can tell which NAT carried
 * the traffic. Pure bookkeeping over the probers' result lines; no I/O.
 */
import { EventEmitter } from 'node:events';
import type { ProbeResult } from './workers/prober.js';

export type { ProbeResult };
export type Proto = 'tcp' | 'udp';

export interface Outage {
  hostId: string;
  proto: Proto;
  /** Send time of the first failed probe (epoch ms). */
  start: number;
  /** Send time of the first successful probe after it; absent while the outage lasts. */
  end?: number;
  durationMs?: number;
  /** Failed probes in the window. */
  failed: number;
}

export interface ProtoStatus {
  ok: boolean;
  /** Send time of the probe that started the current state. */
  since: number;
  /** Send time of the last probe result. */
  last: number;
  /**
   * Set in the lab's status (not here) when no result has come for longer than a probe can
   * take: the prober is stopped or stuck, so `ok` is false whatever the last result said.
   */
  stale?: boolean;
  /** The address the internet host saw on the last successful probe. */
  answer?: string;
  sent: number;
  failed: number;
  lastError?: string;
}

export interface AnswerChange {
  t: number;
  proto: Proto;
  answer: string;
}

interface HostRecord {
  status: Partial<Record<Proto, ProtoStatus>>;
  outages: Outage[];
  answers: AnswerChange[];
}

export class ProbeTracker extends EventEmitter<{ result: [hostId: string, result: ProbeResult] }> {
  private readonly hosts = new Map<string, HostRecord>();

  record(hostId: string, r: ProbeResult): void {
    const host = this.hosts.get(hostId) ?? { status: {}, outages: [], answers: [] };
    this.hosts.set(hostId, host);
    const prev = host.status[r.proto];
    const next: ProtoStatus = prev ? { ...prev } : { ok: r.ok, since: r.t, last: r.t, sent: 0, failed: 0 };
    next.sent++;
    next.last = r.t;
    if (!r.ok) {
      next.failed++;
      next.lastError = r.error;
      // An outage starts at the first failure; a host whose very first probe fails is in one too.
      if (!prev || prev.ok) host.outages.push({ hostId, proto: r.proto, start: r.t, failed: 0 });
      const open = this.openOutage(host, r.proto);
      if (open) open.failed++;
    } else {
      const open = this.openOutage(host, r.proto);
      if (open) {
        open.end = r.t;
        open.durationMs = r.t - open.start;
      }
      if (r.answer !== undefined && r.answer !== next.answer) host.answers.push({ t: r.t, proto: r.proto, answer: r.answer });
      next.answer = r.answer;
    }
    if (!prev || prev.ok !== r.ok) next.since = r.t;
    next.ok = r.ok;
    host.status[r.proto] = next;
    this.emit('result', hostId, r);
  }

  private openOutage(host: HostRecord, proto: Proto): Outage | undefined {
    for (let i = host.outages.length - 1; i >= 0; i--) {
      const o = host.outages[i]!;
      if (o.proto === proto) return o.end === undefined ? o : undefined;
    }
    return undefined;
  }

  hostIds(): string[] {
    return [...this.hosts.keys()];
  }

  status(hostId: string): Partial<Record<Proto, ProtoStatus>> {
    return { ...this.hosts.get(hostId)?.status };
  }

  /** Outage windows, oldest first; of one host, or of every host. */
  outages(hostId?: string): Outage[] {
    const hosts = hostId === undefined ? [...this.hosts.values()] : [this.hosts.get(hostId)].filter((h) => h !== undefined);
    return hosts.flatMap((h) => h.outages.map((o) => ({ ...o }))).sort((a, b) => a.start - b.start);
  }

  answers(hostId: string): AnswerChange[] {
    return [...(this.hosts.get(hostId)?.answers ?? [])];
  }

  forget(hostId: string): void {
    this.hosts.delete(hostId);
  }

  /**
   * Resolves with the first result (of any host) for which `predicate` holds, checked as
   * results arrive; rejects after `timeoutMs`.
   */
  waitFor(predicate: (hostId: string, r: ProbeResult) => boolean, timeoutMs: number, what = 'a probe result'): Promise<{ hostId: string; result: ProbeResult }> {
    return new Promise((resolve, reject) => {
      const onResult = (hostId: string, result: ProbeResult): void => {
        if (!predicate(hostId, result)) return;
        cleanup();
        resolve({ hostId, result });
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('result', onResult);
      };
      this.on('result', onResult);
    });
  }
}
