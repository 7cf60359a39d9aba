/**
 * The HA state machines, every state and transition in this one file (docs/ha.md
 * "State machine"). Pure: no I/O, no clock. The agent feeds events in and carries out
 * the actions that come back; tests are tables of (state, event) → (next state, actions).
 *
 * Two machines:
 *
 * 1. SELF, this NAT's role:
 *      starting ──risen──▶ serving ──fallen, successor──▶ stepped-aside ──risen, hold-down over──▶ serving
 *      starting ──fallen, successor──▶ stepped-aside          (any) ──sigterm──▶ draining (final)
 *    `starting` claims only tables nobody serves (missing, blackholed, or on a NAT that is
 *    not alive); `serving` also takes its own AZ's tables back from a successor (failback).
 *    A fall without a qualifying successor keeps serving: a failing NAT beats none.
 *    Each step-aside doubles the hold-down before the next failback (damping), so a NAT
 *    that fails again and again moves its routes at most twice per failure, and ever
 *    more rarely.
 *
 * 2. PEER, per peer instance, as this NAT sees it:
 *      unknown ──heartbeat──▶ alive ──silence──▶ suspect ──corroborated──▶ failed
 *      (any) ──heartbeat──▶ alive                 (any) ──ec2 gone──▶ failed (final)
 *    Silence alone never fails a peer: a second witness must agree (another peer that
 *    also misses it, or EC2 showing it not running, or its status checks impaired: with two
 *    AZs the only witness of a NAT that crashed in place). A peer that says it stepped
 *    aside or is draining is alive, and asks to be taken over.
 */

export type SelfState = 'starting' | 'serving' | 'stepped-aside' | 'draining';

/** Hysteresis output: `up` after `rise` good checks, `down` after `fall` bad ones. */
export type HealthLevel = 'up' | 'down';

export type SelfEvent =
  | { type: 'health'; level: HealthLevel; successor: boolean; now: number }
  | { type: 'tick'; level: HealthLevel | undefined; now: number }
  | { type: 'sigterm'; successor: boolean };

export type SelfAction =
  /** Send a heartbeat now, so that peers learn the new state without waiting an interval. */
  | 'heartbeat'
  /** Point this AZ's tables at the successor's NAT (make before break). */
  | 'hand-over'
  /** SetInstanceHealth Unhealthy on this instance, so that Auto Scaling replaces it. */
  | 'mark-self-unhealthy'
  /** Run the route reconciler now (to take this AZ's tables back). */
  | 'reconcile-routes'
  /** Log that this NAT fails its checks but nobody can take over. */
  | 'warn-no-successor'
  /** Stop the agent (after the hand-over). */
  | 'exit';

export interface SelfMachine {
  state: SelfState;
  /** Step-asides so far; each doubles the next hold-down. */
  failures: number;
  /** Epoch ms before which a stepped-aside NAT does not fail back. */
  holdUntil: number;
}

export interface Damping {
  /** Hold-down after the first step-aside, ms. */
  baseMs: number;
  /** Longest hold-down, ms. */
  maxMs: number;
}

export const initialSelf = (): SelfMachine => ({ state: 'starting', failures: 0, holdUntil: 0 });

export function holdDown(failures: number, damping: Damping): number {
  return Math.min(damping.maxMs, damping.baseMs * 2 ** Math.max(0, failures - 1));
}

export function stepSelf(m: SelfMachine, e: SelfEvent, damping: Damping): { next: SelfMachine; actions: SelfAction[] } {
  if (m.state === 'draining') return { next: m, actions: [] };
  if (e.type === 'sigterm') return { next: { ...m, state: 'draining' }, actions: e.successor ? ['heartbeat', 'hand-over', 'exit'] : ['heartbeat', 'exit'] };
  switch (m.state) {
    case 'starting':
    case 'serving':
      if (e.type === 'health' && e.level === 'down') {
        if (!e.successor) return { next: m, actions: ['warn-no-successor'] };
        const failures = m.failures + 1;
        return { next: { state: 'stepped-aside', failures, holdUntil: e.now + holdDown(failures, damping) }, actions: ['heartbeat', 'hand-over', 'mark-self-unhealthy'] };
      }
      if (m.state === 'starting' && e.type === 'health' && e.level === 'up') return { next: { ...m, state: 'serving' }, actions: ['heartbeat', 'reconcile-routes'] };
      return { next: m, actions: [] };
    case 'stepped-aside': {
      if (e.level === 'up' && e.now >= m.holdUntil) return { next: { ...m, state: 'serving' }, actions: ['heartbeat', 'reconcile-routes'] };
      return { next: m, actions: [] };
    }
  }
}

// ---- peers ----

export type PeerStatus = 'unknown' | 'alive' | 'suspect' | 'failed';

export interface PeerMachine {
  status: PeerStatus;
  /** What the peer last said about itself. */
  state?: SelfState | undefined;
  healthy?: boolean | undefined;
  /** Why it failed: `peer` (a witness also misses it), `ec2` (not running or impaired), `gone` (terminated). */
  failedBy?: 'peer' | 'ec2' | 'gone' | undefined;
}

export type PeerEvent =
  | { type: 'heartbeat'; state: SelfState; healthy: boolean }
  /** No heartbeat for the peer timeout. */
  | { type: 'silence' }
  /** A second witness: another live peer also misses it, or EC2 shows it not running or impaired while it is silent. */
  | { type: 'corroborated'; by: 'peer' | 'ec2' }
  /** EC2 no longer lists it as pending or running. */
  | { type: 'ec2-gone' };

export type PeerAction =
  /** Heartbeat now: tell the other peers at once that this one is missed (they corroborate faster). */
  | 'heartbeat'
  /** Ask EC2 about this peer now (a second witness): is it still pending or running? */
  | 'describe'
  /**
   * Ask EC2 for its status checks now, and again every status poll while it stays suspect
   * (DescribeInstanceStatus): `impaired` is the second witness where no peer can be one
   * (two AZs, or every other peer cut off too). Costs nothing while every peer is heard.
   */
  | 'check-status'
  /** Recompute which AZs this NAT serves, and run the route reconciler now. */
  | 'reconcile-routes'
  /** Mark the peer Unhealthy in its group, if this NAT serves in its place (its AZ's successor, or a sibling of its AZ) and EC2 still has it running. */
  | 'fence';

export const initialPeer = (): PeerMachine => ({ status: 'unknown' });

export function stepPeer(m: PeerMachine, e: PeerEvent): { next: PeerMachine; actions: PeerAction[] } {
  switch (e.type) {
    case 'heartbeat': {
      const next: PeerMachine = { status: 'alive', state: e.state, healthy: e.healthy };
      const changed = m.status !== 'alive' || m.state !== e.state || m.healthy !== e.healthy;
      return { next, actions: changed ? ['reconcile-routes'] : [] };
    }
    case 'silence':
      if (m.status === 'alive') return { next: { ...m, status: 'suspect' }, actions: ['heartbeat', 'describe', 'check-status'] };
      return { next: m, actions: [] };
    case 'corroborated':
      if (m.status === 'suspect') return { next: { ...m, status: 'failed', failedBy: e.by }, actions: ['reconcile-routes', 'fence'] };
      return { next: m, actions: [] };
    case 'ec2-gone':
      // EC2 saying shutting-down, terminated or stopped is final: whatever it still sends, it will not serve.
      if (m.status === 'failed' && m.failedBy === 'gone') return { next: m, actions: [] };
      return { next: { ...m, status: 'failed', failedBy: 'gone' }, actions: ['reconcile-routes'] };
  }
}

/** The peer wants its AZ taken over: it failed, stepped aside, or drains. */
export function handsOver(p: PeerMachine): boolean {
  return p.status === 'failed' || (p.status === 'alive' && (p.state === 'stepped-aside' || p.state === 'draining'));
}

/**
 * The peer can serve: serving and healthy when last heard, and not failed. A suspect
 * peer still counts: suspicion alone is no evidence, so it neither loses the tables it
 * holds nor its place as a successor.
 */
export function canServe(p: PeerMachine): boolean {
  return (p.status === 'alive' || p.status === 'suspect') && p.state === 'serving' && p.healthy === true;
}

// ---- who serves which AZ ----

export interface AzView {
  /** Every AZ of the stack (its private route tables' and NATs' AZs). */
  azs: readonly string[];
  /** This NAT's AZ and role. */
  me: { az: string; state: SelfState; healthy: boolean };
  /** The peers known from EC2, with their AZ. */
  peers: readonly { az: string; machine: PeerMachine }[];
}

/** Whether AZ `az` has a NAT that can serve (for `successorAz`'s predicate). */
export function azCanServe(view: AzView, az: string): boolean {
  if (az === view.me.az && view.me.state === 'serving' && view.me.healthy) return true;
  return view.peers.some((p) => p.az === az && canServe(p.machine));
}

/**
 * The AZs other than its own whose tables this NAT must serve now: those whose NAT
 * hands over (failed, stepped aside, draining) and has no other NAT there that can
 * serve, and whose successor (core's `successorAz`, among the AZs that can serve) is
 * this NAT's AZ.
 */
export function takeoverAzs(view: AzView, successorAz: (az: string, candidates: Iterable<string>, qualifies: (c: string) => boolean) => string | undefined): string[] {
  const out: string[] = [];
  for (const az of view.azs) {
    if (az === view.me.az) continue;
    const nats = view.peers.filter((p) => p.az === az);
    if (!nats.some((p) => handsOver(p.machine)) || nats.some((p) => canServe(p.machine))) continue;
    if (successorAz(az, view.azs, (c) => azCanServe(view, c)) === view.me.az) out.push(az);
  }
  return out.sort();
}

/**
 * Why AZ `az` is taken over, as `hanat:owner-reason` records it: what its NATs last told
 * (stepped aside, draining) or what failed them (a witness to their silence, EC2).
 * Among several NATs of the AZ, the first that hands over, in that order of precedence.
 */
export function takeoverCause(view: AzView, az: string): 'peer-down' | 'stepped-aside' | 'ec2-not-running' | 'ec2-impaired' | 'shutdown' {
  const machines = view.peers.filter((p) => p.az === az && handsOver(p.machine)).map((p) => p.machine);
  const said = (state: SelfState) => machines.some((m) => m.status === 'alive' && m.state === state);
  if (said('draining')) return 'shutdown';
  if (said('stepped-aside')) return 'stepped-aside';
  if (machines.some((m) => m.failedBy === 'gone')) return 'ec2-not-running';
  if (machines.some((m) => m.failedBy === 'ec2')) return 'ec2-impaired';
  return 'peer-down';
}

/** What a route's current target is, as far as HA is concerned. */
export type TargetKind =
  | 'me'
  | 'missing'
  | 'blackhole'
  /** A NAT of another AZ that is alive and serving (another successor, or the AZ's own NAT back). */
  | 'serving-peer'
  /** Another NAT of this NAT's own AZ that can serve (a replacement): the agent's two-NATs-in-one-AZ rule decides. */
  | 'same-az'
  /** A NAT of another AZ that EC2 lists but this NAT has not heard yet (it just booted): maybe a serving successor. */
  | 'unheard-peer'
  /** Anything else: a failed, stepped-aside or draining NAT (of any AZ, this one's too), one never heard, an unknown interface. */
  | 'not-serving';

export type TableDecision =
  | { kind: 'keep' }
  | { kind: 'claim'; reason: 'takeover' | 'failback' | 'missing' | 'blackhole' | 'elsewhere' }
  /** Leave the table as it is; `until`: look again then (a failback hold-down). */
  | { kind: 'leave'; why: string; until?: number }
  | { kind: 'default' };

/**
 * The HA rule for one private table, before the agent's older rules (two NATs in one
 * AZ, pins). `own`: the table is served by this NAT's AZ; else it is one this NAT took over.
 * `default` means: HA has no say, apply the usual route rules.
 */
export function decideTable(own: boolean, target: TargetKind, self: SelfState, hold?: { now: number; takenAt: number | undefined; delayMs: number }): TableDecision {
  if (target === 'me') return { kind: 'keep' };
  if (own && target === 'same-az') return { kind: 'default' };
  if (self === 'stepped-aside' || self === 'draining') return { kind: 'leave', why: `this NAT is ${self}` };
  if (target === 'missing' || target === 'blackhole') return { kind: 'claim', reason: target };
  if (!own) return target === 'serving-peer' || target === 'same-az' || target === 'unheard-peer' ? { kind: 'leave', why: 'a serving NAT holds it' } : { kind: 'claim', reason: 'takeover' };
  if (target === 'serving-peer' || target === 'unheard-peer') {
    if (self !== 'serving') return { kind: 'leave', why: 'failback waits for rise' };
    // Damping: a table taken over goes back no sooner than the failback delay after it was
    // taken (its hanat:owner-since), however quickly its NAT looks healthy again.
    if (hold?.takenAt !== undefined && hold.now < hold.takenAt + hold.delayMs) return { kind: 'leave', why: 'failback hold-down', until: hold.takenAt + hold.delayMs };
    return { kind: 'claim', reason: 'failback' };
  }
  // Its own table on a NAT that does not serve: a sibling of this AZ that failed (the
  // two-NATs rule would yield to it, being the newer claim), another AZ's NAT that left, or
  // a NAT gone. A serving NAT takes it now; one still starting leaves it to the usual rules.
  if (target === 'not-serving' && self === 'serving') return { kind: 'claim', reason: 'elsewhere' };
  return { kind: 'default' };
}
