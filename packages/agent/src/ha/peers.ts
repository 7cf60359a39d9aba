/**
 * The peer table: the stack's other NATs as EC2 lists them (instance, AZ, private
 * address, primary interface), what each last said, and the packet counters.
 *
 * A heartbeat is accepted only when its source address is a current peer's private
 * address and it claims that peer's identity (instance, AZ, stack). Every instance in a
 * VPC except a NAT has source/dest check on, so AWS drops packets whose source is not
 * the sender's own address; a NAT's heartbeat from its own address is therefore who it
 * says it is. A forward probe must come from that peer's probe address (`probeAddress`).
 * Each sender's (boot, seq) must grow, so a replayed or reordered packet is dropped.
 * Every drop is counted by reason.
 */
import { decode, type Heartbeat, type Message, type PeerView } from './heartbeat.js';
import { initialPeer, type PeerMachine } from './takeover.js';

export interface PeerInfo {
  instanceId: string;
  az: string;
  privateIp: string;
  /** Primary network interface (the route target). */
  eniId?: string | undefined;
  /** EC2's instance state. */
  state: string;
}

export interface PeerRecord {
  info: PeerInfo;
  machine: PeerMachine;
  /** Epoch ms of the last accepted heartbeat. */
  heardAt?: number | undefined;
  hb?: { boot: number; seq: number } | undefined;
  fp?: { boot: number; seq: number } | undefined;
  /** The peer's last heartbeat. */
  last?: Heartbeat | undefined;
  /** Epoch ms at which EC2 stopped listing it pending or running. */
  goneAt?: number | undefined;
}

export type DropReason = 'malformed' | 'wrong-stack' | 'unknown-source' | 'identity-mismatch' | 'replayed' | 'self';

export type Received = { ok: true; peer: PeerRecord; message: Message } | { ok: false; reason: DropReason; detail?: string | undefined };

export type Counters = Record<'accepted' | 'probes' | DropReason, number>;

const LIVE = new Set(['pending', 'running']);

/**
 * The address a NAT sends its forward probes from: 100.64.0.0/10 (shared address space,
 * never a VPC's primary range) plus the low 16 bits of its private address, unique
 * within a /16 VPC. Like a forwarded packet, it is not the NAT's own address.
 */
export function probeAddress(privateIp: string): string {
  const o = privateIp.split('.');
  return `100.64.${o[2]}.${o[3]}`;
}

export class PeerTable {
  private readonly records = new Map<string, PeerRecord>();
  readonly counters: Counters = { accepted: 0, probes: 0, malformed: 0, 'wrong-stack': 0, 'unknown-source': 0, 'identity-mismatch': 0, replayed: 0, self: 0 };

  constructor(private readonly me: { instanceId: string; stack: string }) {}

  /** Every other NAT EC2 lists, live or not. */
  all(): PeerRecord[] {
    return [...this.records.values()];
  }

  get(id: string): PeerRecord | undefined {
    return this.records.get(id);
  }

  /**
   * Updates the peer list with what EC2 says. Returns the peers that EC2 no longer shows
   * pending or running, newly. They stay in the table (their AZ still needs a successor
   * until a NAT there serves again) for `keepGoneMs`, and no packet from them is accepted.
   */
  update(instances: readonly PeerInfo[], now = 0, keepGoneMs = 900_000): string[] {
    const live = new Set<string>();
    for (const info of instances) {
      if (info.instanceId === this.me.instanceId || !LIVE.has(info.state)) continue;
      live.add(info.instanceId);
      const r = this.records.get(info.instanceId);
      if (r) {
        r.info = info;
        r.goneAt = undefined;
      } else this.records.set(info.instanceId, { info, machine: initialPeer() });
    }
    const gone: string[] = [];
    for (const [id, r] of this.records) {
      if (live.has(id)) continue;
      if (r.goneAt === undefined) {
        r.goneAt = now;
        gone.push(id);
      } else if (now - r.goneAt > keepGoneMs) this.records.delete(id);
    }
    return gone;
  }

  receive(buf: Buffer, from: string, now: number): Received {
    const d = decode(buf);
    if (!d.ok) return this.drop('malformed', d.reason);
    const m = d.message;
    if (m.stack !== this.me.stack) return this.drop('wrong-stack', m.stack);
    if (m.id === this.me.instanceId) return this.drop('self');
    const peer = this.records.get(m.id);
    if (!peer || peer.goneAt !== undefined) return this.drop('unknown-source', `${m.id} from ${from}`);
    const expected = m.kind === 'hb' ? peer.info.privateIp : probeAddress(peer.info.privateIp);
    if (from !== expected) return this.drop(this.isPeerAddress(from) ? 'identity-mismatch' : 'unknown-source', `${m.id} from ${from}`);
    if (m.kind === 'hb' && m.az !== peer.info.az) return this.drop('identity-mismatch', `${m.id} claims ${m.az}, EC2 says ${peer.info.az}`);
    const last = m.kind === 'hb' ? peer.hb : peer.fp;
    if (last && (m.boot < last.boot || (m.boot === last.boot && m.seq <= last.seq))) return this.drop('replayed', `${m.id} ${m.boot}/${m.seq}`);
    if (m.kind === 'hb') {
      peer.hb = { boot: m.boot, seq: m.seq };
      peer.heardAt = now;
      peer.last = m;
      this.counters.accepted++;
    } else {
      peer.fp = { boot: m.boot, seq: m.seq };
      this.counters.probes++;
    }
    return { ok: true, peer, message: m };
  }

  /** This NAT's view of its peers, for its heartbeat. */
  view(now: number): PeerView[] {
    return this.all()
      .filter((p) => p.hb !== undefined && p.heardAt !== undefined)
      .map((p) => ({ id: p.info.instanceId, hb: p.hb!.seq, fp: p.fp?.seq ?? -1, age: Math.max(0, now - p.heardAt!) }));
  }

  /** Peers heard within `timeoutMs`. */
  heard(now: number, timeoutMs: number): PeerRecord[] {
    return this.all().filter((p) => p.heardAt !== undefined && now - p.heardAt <= timeoutMs);
  }

  /**
   * A second witness for `id`'s silence: another peer, itself heard within `timeoutMs`,
   * whose last heartbeat says it has not heard `id` for `timeoutMs` either.
   */
  witness(id: string, now: number, timeoutMs: number): string | undefined {
    for (const q of this.heard(now, timeoutMs)) {
      if (q.info.instanceId === id) continue;
      const seen = q.last?.peers.find((v) => v.id === id);
      if (seen && seen.age >= timeoutMs) return q.info.instanceId;
    }
    return undefined;
  }

  private isPeerAddress(address: string): boolean {
    return this.all().some((p) => p.goneAt === undefined && p.info.privateIp === address);
  }

  private drop(reason: DropReason, detail?: string): Received {
    this.counters[reason]++;
    return { ok: false, reason, detail };
  }
}
