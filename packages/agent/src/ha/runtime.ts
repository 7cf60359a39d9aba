/**
 * The HA runtime: heartbeats, the self-watchdog and the takeover machines (takeover.ts)
 * wired to a UDP socket and a clock, both injected. It runs two loops of its own,
 * apart from the agent's reconcilers, so that a slow AWS call never delays a heartbeat:
 *
 *   heartbeat loop (every heartbeat interval): judge each peer's silence, look for
 *     witnesses, send a heartbeat to every live peer.
 *   health loop (every health interval): the self-checks (kernel as last verified, the
 *     upstream probe, the forward probe via peers), through the hysteresis.
 *
 * It never calls AWS itself. It says what it needs through `HaDeps`: run the route
 * reconciler now, refresh the peers from EC2 now, fence a peer, mark itself unhealthy.
 * The route reconciler asks it, per table, what HA wants (`decide`).
 */
import type { Logger } from 'pino';
import { successorAz, type OwnerReason } from '@hanat/core';
import { backoff, type Clock } from '../clock.js';
import type { Options } from '../config.js';
import { classify } from '../ec2.js';
import { errorMessage } from '../errors.js';
import { encode, type Heartbeat } from './heartbeat.js';
import { CONNTRACK_HEADROOM, Hysteresis, judge, type SelfChecks } from './health.js';
import { PeerTable, probeAddress, type PeerInfo, type PeerRecord } from './peers.js';
import type { HaSocket, SocketFactory } from './socket.js';
import {
  azCanServe,
  canServe,
  decideTable,
  handsOver,
  initialSelf,
  stepPeer,
  stepSelf,
  takeoverAzs,
  takeoverCause,
  type AzView,
  type PeerAction,
  type PeerEvent,
  type SelfAction,
  type SelfEvent,
  type SelfMachine,
  type SelfState,
  type TableDecision,
  type TargetKind,
} from './takeover.js';

/** How long a peer must stay failed before its successor fences it. */
export const FENCE_AFTER_MS = 3_000;

/**
 * SetInstanceHealth calls per mark, first included, and the jittered backoff between
 * them (on top of the SDK's own 3 attempts): about a minute of throttling at most.
 */
export const SET_HEALTH_ATTEMPTS = 6;
const SET_HEALTH_RETRY_BASE_MS = 1_000;
const SET_HEALTH_RETRY_CAP_MS = 20_000;

/**
 * HA's settings: the HA fields of the agent's configuration as they are, and what the CLI
 * derives from them (the port, the hold-down cap, the resolved probe target, the forward probe).
 */
export type HaSettings = Pick<Options, 'heartbeatIntervalMs' | 'peerTimeoutMs' | 'healthIntervalMs' | 'healthTimeoutMs' | 'rise' | 'fall' | 'failbackDelayMs'> & {
  /** UDP port of heartbeats and probes (`haPort`). */
  port: Options['haPort'];
  /** Longest failback hold-down, ms. */
  failbackMaxMs: number;
  /** Upstream probe target (`host:port`, TCP connect); undefined: no upstream probe. */
  probeTarget?: { host: string; port: number } | undefined;
  /** Send forward probes (needs the probe address on the loopback interface). */
  forwardProbe: boolean;
};

export interface HaMe {
  instanceId: string;
  stack: string;
  az: string;
  privateIp: string;
  eniId: string;
}

export interface HaDeps {
  clock: Clock;
  log: Logger;
  socket: SocketFactory;
  /** Whether the kernel reconciler last verified (or repaired) the NAT; undefined before its first run. */
  kernelOk: () => boolean | undefined;
  /** Conntrack's use and size (net.netfilter.nf_conntrack_count and _max); undefined when not measurable here. */
  conntrack?: (() => Promise<{ count: number; max: number } | undefined>) | undefined;
  /** Whether the route reconciler's last check ended with every table this NAT serves pointing at it; undefined before its first. */
  routesOk?: (() => boolean | undefined) | undefined;
  /**
   * The forward probe failed: re-check source/dest check now (rate-limited by the agent). A
   * check turned back on stops forwarded traffic; repaired within a round or two, it never
   * reaches `fall`, so the NAT does not step aside for it.
   */
  onForwardFailed?: (() => void) | undefined;
  /** TCP connect to the probe target within the timeout. */
  upstreamProbe?: ((target: { host: string; port: number }, timeoutMs: number) => Promise<boolean>) | undefined;
  /** Run the route reconciler now. */
  onRoutes: () => void;
  /** Refresh the peers from EC2 soon (the agent rate-limits it). */
  onDescribe: () => void;
  /**
   * Read the suspect peers' EC2 status checks soon, and every status poll while any peer
   * stays suspect (the agent rate-limits it and feeds the answer to `statusChecks`).
   */
  onStatusCheck?: (() => void) | undefined;
  /** SetInstanceHealth Unhealthy (ShouldRespectGracePeriod false) on `instanceId`. */
  setUnhealthy: (instanceId: string) => Promise<void>;
}

export interface HaTableDecision {
  decision: TableDecision | { kind: 'hand-over'; to: PeerInfo };
  target: TargetKind;
}

export class Ha {
  readonly peers: PeerTable;
  readonly health: Hysteresis;
  private self: SelfMachine = initialSelf();
  private azs: string[] = [];
  private seq = 0;
  private fpSeq = 0;
  /** The forward probe last sent: its sequence number and our heartbeat sequence number then. */
  private lastProbe: { fp: number; hb: number } | undefined;
  private lastChecks: SelfChecks | undefined;
  private readonly boot: number;
  private socket: HaSocket | undefined;
  private probeSocket: HaSocket | undefined;
  private readonly fenced = new Set<string>();
  private readonly noticed = new Set<string>();
  private readonly log: Logger;

  constructor(
    private readonly me: HaMe,
    readonly settings: HaSettings,
    private readonly deps: HaDeps,
  ) {
    this.peers = new PeerTable({ instanceId: me.instanceId, stack: me.stack });
    this.health = new Hysteresis(settings.rise, settings.fall);
    this.boot = deps.clock.now();
    this.log = deps.log.child({ component: 'ha' });
  }

  get state(): SelfState {
    return this.self.state;
  }

  /** Binds the sockets and starts both loops; they end when `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    this.socket = await this.deps.socket({ address: this.me.privateIp, port: this.settings.port }, (buf, from) => this.onPacket(buf, from));
    if (this.settings.forwardProbe) {
      try {
        this.probeSocket = await this.deps.socket({ address: probeAddress(this.me.privateIp), port: this.settings.port }, () => {});
      } catch (err) {
        this.log.warn({ event: 'ha.forward_probe_off', err }, `forward probe disabled: cannot send from ${probeAddress(this.me.privateIp)}: ${errorMessage(err)}`);
      }
    }
    this.log.info(
      { event: 'ha.started', port: this.settings.port, heartbeatIntervalMs: this.settings.heartbeatIntervalMs, peerTimeoutMs: this.settings.peerTimeoutMs, forwardProbe: this.probeSocket !== undefined },
      'heartbeats started',
    );
    void this.loop(signal, this.settings.heartbeatIntervalMs, () => this.heartbeatTick());
    // Silence is checked four times per heartbeat interval, so a dead peer is suspected within
    // a quarter interval of the timeout rather than a whole one.
    void this.loop(signal, Math.max(10, Math.round(this.settings.heartbeatIntervalMs / 4)), () => this.watch());
    void this.loop(signal, this.settings.healthIntervalMs, () => this.healthRound());
  }

  stop(): void {
    this.socket?.close();
    this.probeSocket?.close();
  }

  /** Runs `body` every `intervalMs` at a fixed rate: a slow round (a probe timing out) does not stretch the period. */
  private async loop(signal: AbortSignal, intervalMs: number, body: () => void | Promise<void>): Promise<void> {
    while (!signal.aborted) {
      const t0 = this.deps.clock.now();
      try {
        await body();
      } catch (err) {
        this.log.error({ event: 'ha.internal_error', err }, `HA loop failed: ${errorMessage(err)}`);
      }
      await this.deps.clock.sleep(Math.max(0, intervalMs - (this.deps.clock.now() - t0)), signal);
    }
  }

  // ---- inputs from the agent ----

  /** The stack's NATs as EC2 lists them (DescribeInstances), this one included or not. */
  updatePeers(instances: readonly PeerInfo[]): void {
    const now = this.deps.clock.now();
    for (const id of this.peers.update(instances, now)) this.peerEvent(this.peers.get(id), { type: 'ec2-gone' });
  }

  /** The peers silent for the timeout that no witness has corroborated yet: whose EC2 status checks to read. */
  suspects(): string[] {
    return this.peers
      .all()
      .filter((p) => p.goneAt === undefined && p.machine.status === 'suspect')
      .map((p) => p.info.instanceId)
      .sort();
  }

  /**
   * EC2's status checks of suspect peers (DescribeInstanceStatus), instance id → impaired.
   * A suspect whose checks are impaired has its second witness: EC2 saw it fail from
   * outside, as its peers did. Checks that read ok change nothing: a crash in place takes
   * EC2 a minute or more to notice, so ok is no evidence that the peer is alive.
   */
  statusChecks(impaired: ReadonlyMap<string, boolean>): void {
    for (const [id, bad] of impaired) {
      const p = this.peers.get(id);
      if (!bad || !p || p.goneAt !== undefined || p.machine.status !== 'suspect') continue;
      this.peerEvent(p, { type: 'corroborated', by: 'ec2' }, { statusChecks: 'impaired' });
    }
  }

  /** The stack's AZs (from its private route tables). */
  setAzs(azs: Iterable<string>): void {
    this.azs = [...new Set([...azs, this.me.az])].sort();
  }

  /** SIGTERM: drain. Returns whether a successor takes the routes. */
  sigterm(): boolean {
    const successor = this.successor() !== undefined;
    this.selfEvent({ type: 'sigterm', successor });
    return successor;
  }

  // ---- what HA wants ----

  view(): AzView {
    const azs = new Set([...this.azs, ...this.peers.all().map((p) => p.info.az)]);
    return {
      azs: [...azs].sort(),
      me: { az: this.me.az, state: this.self.state, healthy: this.health.healthy },
      peers: this.peers.all().map((p) => ({ az: p.info.az, machine: p.machine })),
    };
  }

  /**
   * The other NATs of our AZ that are leaving it: failed, stepped aside, draining, or gone
   * from EC2. Once we serve the AZ's tables, we take the AZ's Elastic IP from them.
   */
  leavingSiblings(): string[] {
    return this.peers
      .all()
      .filter((p) => p.info.az === this.me.az && (p.goneAt !== undefined || handsOver(p.machine)))
      .map((p) => p.info.instanceId)
      .sort();
  }

  /** The AZs other than ours whose tables we must serve now. */
  takeoverAzs(): string[] {
    return takeoverAzs(this.view(), successorAz);
  }

  /** Why we serve AZ `az`'s tables (`hanat:owner-reason`): one of ours, or why its NAT failed. */
  ownerReason(az: string): OwnerReason {
    return az === this.me.az ? 'own-az' : takeoverCause(this.view(), az);
  }

  /**
   * Why a table of AZ `az` that we hand to `to` is served there (`hanat:owner-reason`):
   * handed to a sibling of our AZ, as it was (its own AZ's, or the reason its AZ was taken
   * over); handed to another AZ, because we drain or stepped aside.
   */
  handOverReason(to: PeerInfo, az: string): OwnerReason {
    if (to.az === this.me.az) return this.ownerReason(az);
    return this.self.state === 'draining' ? 'shutdown' : 'stepped-aside';
  }

  /**
   * Who takes our tables when we step aside or drain: a sibling of our AZ that serves (a
   * replacement launched before we terminate, or a second NAT of the group), so that the
   * AZ's traffic stays in the AZ and moves once; else the serving NAT of our AZ's successor.
   */
  successor(): PeerInfo | undefined {
    const sibling = this.peers
      .all()
      .filter((p) => p.goneAt === undefined && p.info.az === this.me.az && canServe(p.machine) && p.info.eniId !== undefined)
      .sort((a, b) => a.info.instanceId.localeCompare(b.info.instanceId))[0];
    if (sibling) return sibling.info;
    const view = this.view();
    const az = successorAz(this.me.az, view.azs, (c) => c !== this.me.az && azCanServe(view, c));
    if (!az) return undefined;
    return this.peers.all().find((p) => p.info.az === az && canServe(p.machine) && p.info.eniId !== undefined)?.info;
  }

  /**
   * HA's rule for one table: `own` when our AZ serves it, else one we took over. A NAT
   * that steps aside or drains hands every table that points at it to its successor.
   */
  decide(own: boolean, route: { NetworkInterfaceId?: string | undefined; State?: string | undefined } | undefined, takenAt?: number): HaTableDecision {
    const target = this.targetKind(route);
    if (target === 'me' && (this.self.state === 'stepped-aside' || this.self.state === 'draining')) {
      const to = this.successor();
      return { target, decision: to ? { kind: 'hand-over', to } : { kind: 'keep' } };
    }
    return { target, decision: decideTable(own, target, this.self.state, { now: this.deps.clock.now(), takenAt, delayMs: this.settings.failbackDelayMs }) };
  }

  private targetKind(route: { NetworkInterfaceId?: string | undefined; State?: string | undefined } | undefined): TargetKind {
    if (!route) return 'missing';
    if (route.State === 'blackhole') return 'blackhole';
    if (route.NetworkInterfaceId === this.me.eniId) return 'me';
    const peer = route.NetworkInterfaceId ? this.peers.all().find((p) => p.info.eniId === route.NetworkInterfaceId && p.goneAt === undefined) : undefined;
    if (!peer) return 'not-serving';
    // A sibling of our AZ that failed serves no more. One that drains or stepped aside hands
    // its tables over itself (to us, when we serve): claiming them too would write them twice.
    if (peer.info.az === this.me.az) return peer.machine.status === 'failed' ? 'not-serving' : 'same-az';
    if (peer.machine.status === 'unknown') return 'unheard-peer';
    return canServe(peer.machine) ? 'serving-peer' : 'not-serving';
  }

  // ---- packets ----

  private onPacket(buf: Buffer, from: string): void {
    const now = this.deps.clock.now();
    const r = this.peers.receive(buf, from, now);
    if (!r.ok) {
      if (r.reason === 'unknown-source') this.deps.onDescribe(); // perhaps a replacement EC2 has not shown us yet
      this.once(`drop:${r.reason}:${from}`, () =>
        this.log.warn({ event: 'peer.dropped', reason: r.reason, from, detail: r.detail, counters: this.peers.counters }, `heartbeat from ${from} dropped: ${r.reason}`),
      );
      return;
    }
    if (r.message.kind === 'hb') {
      this.peerEvent(r.peer, { type: 'heartbeat', state: r.message.state, healthy: r.message.healthy });
      this.corroborate(now); // this heartbeat may be the witness a suspect peer waits for
    }
  }

  /** Fails every suspect peer that another live peer also misses. */
  private corroborate(now: number): void {
    for (const p of this.peers.all()) {
      if (p.goneAt !== undefined || p.machine.status !== 'suspect') continue;
      const witness = this.peers.witness(p.info.instanceId, now, this.settings.peerTimeoutMs);
      if (witness) this.peerEvent(p, { type: 'corroborated', by: 'peer' }, { witness });
    }
  }

  private sendHeartbeat(): void {
    if (!this.socket) return;
    const now = this.deps.clock.now();
    const hb: Heartbeat = {
      kind: 'hb',
      stack: this.me.stack,
      id: this.me.instanceId,
      az: this.me.az,
      boot: this.boot,
      seq: ++this.seq,
      state: this.self.state,
      healthy: this.health.healthy,
      upstream: this.lastChecks?.upstream ?? null,
      peers: this.peers.view(now),
    };
    const buf = encode(hb);
    for (const p of this.peers.all()) if (p.goneAt === undefined) this.socket.send(buf, this.settings.port, p.info.privateIp);
  }

  private async heartbeatTick(): Promise<void> {
    await this.watch();
    this.selfEvent({ type: 'tick', level: this.health.level, now: this.deps.clock.now() });
    this.sendHeartbeat();
  }

  /**
   * Peers silent for the timeout become suspect; suspects with a witness fail. It first
   * lets every datagram already received be read (setImmediate runs after the poll phase):
   * after this process was stalled (a starved CPU), the timers fire before the queued
   * heartbeats are read, and the peers would look silent when this NAT was.
   */
  private async watch(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
    const now = this.deps.clock.now();
    for (const p of this.peers.all()) {
      if (p.goneAt !== undefined) continue;
      if (p.machine.status === 'alive' && p.heardAt !== undefined && now - p.heardAt > this.settings.peerTimeoutMs) this.peerEvent(p, { type: 'silence' });
    }
    this.corroborate(now);
  }

  // ---- self-checks ----

  /**
   * One self-check round: send a forward probe, run the upstream probe meanwhile, and
   * judge the forward probe once the peers have had time to report it (three heartbeat
   * intervals, within the health timeout).
   */
  private async healthRound(): Promise<void> {
    this.sendForwardProbe();
    const target = this.settings.probeTarget;
    const wait = Math.min(this.settings.healthTimeoutMs, 3 * this.settings.heartbeatIntervalMs);
    const [upstream, ct] = await Promise.all([
      target && this.deps.upstreamProbe ? this.deps.upstreamProbe(target, this.settings.healthTimeoutMs) : Promise.resolve(undefined),
      this.readConntrack(),
      this.probeSocket ? this.deps.clock.sleep(wait) : Promise.resolve(),
    ]);
    const forward = this.judgeForwardProbe();
    if (forward === false) this.deps.onForwardFailed?.();
    const conntrack = ct === undefined ? undefined : ct.count < ct.max * CONNTRACK_HEADROOM;
    const checks: SelfChecks = { kernel: this.deps.kernelOk(), upstream, forward, conntrack, routes: this.deps.routesOk?.() };
    this.lastChecks = checks;
    const { result, failed, warnings } = judge(checks);
    this.warn(warnings, ct);
    const level = this.health.record(result);
    if (level) {
      const now = this.deps.clock.now();
      if (level === 'down') this.log.warn({ event: 'self.unhealthy', failed, checks }, `this NAT failed its checks ${this.settings.fall} times in a row: ${failed.join(', ')}`);
      else this.log.info({ event: 'self.healthy', checks }, `this NAT passed its checks ${this.settings.rise} times in a row`);
      this.selfEvent({ type: 'health', level, successor: this.successor() !== undefined, now });
    }
  }

  private async readConntrack(): Promise<{ count: number; max: number } | undefined> {
    if (!this.deps.conntrack) return undefined;
    try {
      return await this.deps.conntrack();
    } catch (err) {
      this.once('conntrack.unreadable', () => this.log.warn({ event: 'self.conntrack_unreadable', err }, `conntrack use could not be read: ${errorMessage(err)}`));
      return undefined;
    }
  }

  private warnings = new Set<string>();

  /** Logs each warning of the self-checks when it appears and when it clears. */
  private warn(now: string[], ct: { count: number; max: number } | undefined): void {
    for (const w of now) {
      if (this.warnings.has(w)) continue;
      if (w === 'conntrack') {
        const usedPct = ct ? Math.round((ct.count / ct.max) * 1000) / 10 : undefined;
        this.log.warn(
          { event: 'self.conntrack_high', count: ct?.count, max: ct?.max, usedPct },
          `conntrack is ${usedPct} % full: new flows will be dropped when it is full (then the probes fail and this NAT steps aside); raise --conntrack-max or the instance size`,
        );
      } else this.log.warn({ event: 'self.routes_not_mine' }, 'a route table this NAT serves does not point at it after the last route check; the route reconciler retries');
    }
    for (const w of this.warnings) if (!now.includes(w)) this.log.info({ event: w === 'conntrack' ? 'self.conntrack_ok' : 'self.routes_ok' }, `${w} check passes again`);
    this.warnings = new Set(now);
  }

  /**
   * The last forward probe: ok when a peer reported receiving it; failed when a peer
   * reported a heartbeat we sent after it but not the probe; else nobody can say.
   */
  private judgeForwardProbe(): boolean | undefined {
    if (!this.probeSocket || !this.lastProbe) return undefined;
    const { fp, hb } = this.lastProbe;
    let heard = false;
    for (const p of this.peers.heard(this.deps.clock.now(), this.settings.peerTimeoutMs)) {
      const mine = p.last?.peers.find((v) => v.id === this.me.instanceId);
      if (!mine || p.last?.boot === undefined) continue;
      if (mine.fp >= fp) return true;
      if (mine.hb > hb) heard = true;
    }
    return heard ? false : undefined;
  }

  private sendForwardProbe(): void {
    if (!this.probeSocket) return;
    const buf = encode({ kind: 'fp', stack: this.me.stack, id: this.me.instanceId, boot: this.boot, seq: ++this.fpSeq });
    this.lastProbe = { fp: this.fpSeq, hb: this.seq };
    for (const p of this.peers.all()) if (p.goneAt === undefined) this.probeSocket.send(buf, this.settings.port, p.info.privateIp);
  }

  // ---- machines ----

  private selfEvent(e: SelfEvent): void {
    const before = this.self.state;
    const { next, actions } = stepSelf(this.self, e, { baseMs: this.settings.failbackDelayMs, maxMs: this.settings.failbackMaxMs });
    this.self = next;
    if (next.state !== before) {
      const successor = this.successor();
      const fields = { event: 'self.state', from: before, to: next.state, failures: next.failures, holdUntil: next.holdUntil ? new Date(next.holdUntil).toISOString() : undefined, successor: successor?.instanceId };
      if (next.state === 'stepped-aside') this.log.warn({ ...fields, event: 'self.step_aside' }, `stepping aside: ${successor?.az ?? 'no AZ'}'s NAT ${successor?.instanceId ?? ''} takes over`);
      else this.log.info(fields, `${before} → ${next.state}`);
    }
    this.selfActions(actions);
  }

  private selfActions(actions: SelfAction[]): void {
    for (const a of actions) {
      switch (a) {
        case 'heartbeat':
          this.sendHeartbeat();
          break;
        case 'hand-over':
        case 'reconcile-routes':
          this.deps.onRoutes();
          break;
        case 'mark-self-unhealthy':
          this.setUnhealthy(this.me.instanceId, 'self');
          break;
        case 'warn-no-successor':
          this.log.warn({ event: 'self.no_successor' }, 'this NAT fails its checks, but no other AZ has a healthy NAT to take over: it keeps serving');
          break;
        case 'exit':
          break; // the agent exits once the route reconciler has handed over
      }
    }
  }

  private peerEvent(p: PeerRecord | undefined, e: PeerEvent, extra: Record<string, unknown> = {}): void {
    if (!p) return;
    const before = p.machine;
    const { next, actions } = stepPeer(before, e);
    p.machine = next;
    const id = p.info.instanceId;
    if (next.status !== before.status) {
      const fields = { peer: id, az: p.info.az, from: before.status, to: next.status, ...extra };
      if (next.status === 'suspect') this.log.warn({ event: 'peer.suspect', ...fields, silentMs: this.deps.clock.now() - (p.heardAt ?? 0) }, `no heartbeat from ${id} (${p.info.az}) for ${this.settings.peerTimeoutMs} ms`);
      else if (next.status === 'failed') this.log.warn({ event: 'peer.down', ...fields, by: next.failedBy }, `${id} (${p.info.az}) is down (${next.failedBy})`);
      else if (next.status === 'alive') this.log.info({ event: 'peer.up', ...fields, state: next.state, healthy: next.healthy }, `${id} (${p.info.az}) is alive`);
    } else if (next.state !== before.state && next.status === 'alive') {
      this.log.info({ event: 'peer.state', peer: id, az: p.info.az, state: next.state, healthy: next.healthy }, `${id} (${p.info.az}) is ${next.state}`);
    }
    this.peerActions(p, actions);
  }

  private peerActions(p: PeerRecord, actions: PeerAction[]): void {
    for (const a of actions) {
      switch (a) {
        case 'heartbeat':
          this.sendHeartbeat();
          break;
        case 'describe':
          this.deps.onDescribe();
          break;
        case 'check-status':
          this.deps.onStatusCheck?.();
          break;
        case 'reconcile-routes':
          this.routesIfChanged();
          break;
        case 'fence':
          // Only the AZ's successor fences, only a NAT EC2 still has running, and not one that
          // last said it stepped aside (it marks itself) or drains (it is being terminated).
          if (
            p.info.state === 'running' &&
            p.machine.failedBy !== 'gone' &&
            p.machine.state !== 'draining' &&
            p.machine.state !== 'stepped-aside' &&
            this.replaces(p)
          ) {
            this.fenceLater(p);
          }
          break;
      }
    }
  }

  /**
   * Fences a failed peer only if it is still failed `FENCE_AFTER_MS` later: the routes move at
   * once, but a peer that was only stalled (a starved CPU) and heartbeats again is not replaced.
   */
  private fenceLater(p: PeerRecord): void {
    const id = p.info.instanceId;
    void this.deps.clock.sleep(FENCE_AFTER_MS).then(() => {
      const r = this.peers.get(id);
      const now = this.deps.clock.now();
      // Still failed, and still corroborated now: a witness misses it at this moment too.
      if (!r || r.machine.status !== 'failed' || r.machine.failedBy === 'gone' || !this.replaces(r)) return;
      if (r.machine.failedBy === 'peer' && !this.peers.witness(id, now, this.settings.peerTimeoutMs)) return;
      this.setUnhealthy(id, 'fence');
    });
  }

  private lastWanted = '';

  /**
   * Runs the route reconciler when what HA wants changed: the AZs taken over, this NAT's
   * state, its successor, the peers that can serve. A peer merely heard again changes none of them, and must not cost
   * a DescribeRouteTables (peers that flap between alive and suspect on a starved CPU would).
   */
  private routesIfChanged(): void {
    const serving = this.peers.all().filter((p) => p.goneAt === undefined && canServe(p.machine)).map((p) => p.info.instanceId);
    const wanted = JSON.stringify([this.takeoverAzs(), this.self.state, this.successor()?.instanceId, serving]);
    if (wanted === this.lastWanted) return;
    this.lastWanted = wanted;
    this.deps.onRoutes();
  }

  /**
   * Marks an instance Unhealthy in its Auto Scaling group, once. A throttled or failed call
   * (5xx, network) is retried with jittered backoff, up to `SET_HEALTH_ATTEMPTS` calls in
   * all, one at a time per instance, and only while the reason holds: this NAT still stepped
   * aside, or the peer still failed and still this NAT's to take over. Anything else AWS
   * answers (denied, not in a group) is logged and not retried.
   */
  private setUnhealthy(instanceId: string, why: 'self' | 'fence', attempt = 0): void {
    if (attempt === 0) {
      if (this.fenced.has(instanceId)) return;
      this.fenced.add(instanceId);
    }
    this.deps.setUnhealthy(instanceId).then(
      () => this.log.warn({ event: why === 'self' ? 'self.marked_unhealthy' : 'peer.fenced', instanceId, attempts: attempt + 1 }, `${instanceId} marked Unhealthy in its Auto Scaling group`),
      (err: unknown) => {
        const retry = classify(err) === 'retryable' && attempt + 1 < SET_HEALTH_ATTEMPTS;
        if (!retry) {
          this.fenced.delete(instanceId);
          this.log.error({ event: 'ha.set_unhealthy_failed', instanceId, attempts: attempt + 1, err }, `could not mark ${instanceId} Unhealthy: ${errorMessage(err)}`);
          return;
        }
        const delay = backoff(attempt, SET_HEALTH_RETRY_BASE_MS, SET_HEALTH_RETRY_CAP_MS);
        this.log.warn({ event: 'ha.set_unhealthy_retry', instanceId, attempt: attempt + 1, retryInMs: delay, err }, `marking ${instanceId} Unhealthy failed: ${errorMessage(err)}; retrying`);
        void this.deps.clock.sleep(delay).then(() => {
          if (this.stillUnhealthy(instanceId, why)) this.setUnhealthy(instanceId, why, attempt + 1);
          else {
            this.fenced.delete(instanceId);
            this.log.info({ event: 'ha.set_unhealthy_dropped', instanceId }, `no longer marking ${instanceId} Unhealthy: ${why === 'self' ? 'this NAT serves again' : 'it is no longer failed, or no longer ours to take over'}`);
          }
        });
      },
    );
  }

  /** Whether the reason to mark `instanceId` Unhealthy still holds (for a retry). */
  private stillUnhealthy(instanceId: string, why: 'self' | 'fence'): boolean {
    if (why === 'self') return this.self.state === 'stepped-aside';
    const r = this.peers.get(instanceId);
    return r !== undefined && r.goneAt === undefined && r.machine.status === 'failed' && this.replaces(r);
  }

  /**
   * Whether this NAT serves in place of `p`, so that fencing it is ours to do: we are its
   * AZ's successor, or a serving sibling of its own AZ (which takes its tables).
   */
  private replaces(p: PeerRecord): boolean {
    if (p.info.az === this.me.az) return this.self.state === 'serving' && this.health.healthy;
    return this.takeoverAzs().includes(p.info.az);
  }

  private once(key: string, fn: () => void): void {
    if (this.noticed.has(key)) return;
    this.noticed.add(key);
    fn();
  }
}
