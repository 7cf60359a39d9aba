/**
 * The heartbeat wire format (docs/ha.md "Protocol"). One UDP datagram, JSON, at most
 * MAX_DATAGRAM bytes, versioned. Two kinds:
 *
 * - `hb`, a heartbeat, sent from the NAT's primary private address to every peer's:
 *   who sends (instance, AZ, stack), when its agent started (`boot`) and a sequence
 *   number, its takeover state and health verdict, and its view of the peers (the last
 *   sequence numbers it accepted from each, and how long ago).
 * - `fp`, a forward probe, sent from the NAT's probe address (not its own: forwarded
 *   traffic never carries the NAT's own source either). A peer that receives it reports
 *   the sequence number in its next heartbeat; a NAT whose heartbeats arrive but whose
 *   probes do not cannot get forwarded traffic out (gray failure).
 *
 * Decoding validates every field and never throws: a bad packet is `malformed` with a
 * reason, which the peer table counts.
 */
import type { SelfState } from './takeover.js';

export const PROTOCOL_VERSION = 1;
/** Comfortably below a 1500-byte MTU with IP and UDP headers. */
export const MAX_DATAGRAM = 1400;
/** Peers listed in one heartbeat (a stack has at most 6 AZs, and briefly two NATs per AZ). */
export const MAX_PEERS = 16;

export interface PeerView {
  /** The peer's instance id. */
  id: string;
  /** The last heartbeat sequence number accepted from it. */
  hb: number;
  /** The last forward-probe sequence number received from it (-1: none yet). */
  fp: number;
  /** Milliseconds since its last heartbeat was accepted. */
  age: number;
}

export interface Heartbeat {
  kind: 'hb';
  stack: string;
  id: string;
  az: string;
  /** Epoch ms at which the sender's agent started; a restart starts a new sequence. */
  boot: number;
  seq: number;
  state: SelfState;
  /** The sender's health verdict after hysteresis. */
  healthy: boolean;
  /** The sender's last upstream probe: true ok, false failed, null not run. */
  upstream: boolean | null;
  peers: PeerView[];
}

export interface ForwardProbe {
  kind: 'fp';
  stack: string;
  id: string;
  boot: number;
  seq: number;
}

export type Message = Heartbeat | ForwardProbe;

export type Decoded = { ok: true; message: Message } | { ok: false; reason: string };

const SELF_STATES: readonly SelfState[] = ['starting', 'serving', 'stepped-aside', 'draining'];
const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
const AZ = /^[a-z]{2,}(-[a-z0-9]+)+$/;
const STACK = /^[A-Za-z][A-Za-z0-9-]{0,127}$/;

export function encode(message: Message): Buffer {
  const wire =
    message.kind === 'hb'
      ? { v: PROTOCOL_VERSION, k: 'hb', stack: message.stack, id: message.id, az: message.az, boot: message.boot, seq: message.seq, state: message.state, healthy: message.healthy, up: message.upstream, peers: message.peers.slice(0, MAX_PEERS) }
      : { v: PROTOCOL_VERSION, k: 'fp', stack: message.stack, id: message.id, boot: message.boot, seq: message.seq };
  const buf = Buffer.from(JSON.stringify(wire), 'utf8');
  if (buf.length > MAX_DATAGRAM) throw new Error(`heartbeat of ${buf.length} bytes exceeds ${MAX_DATAGRAM}`);
  return buf;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function decode(buf: Buffer): Decoded {
  if (buf.length === 0 || buf.length > MAX_DATAGRAM) return { ok: false, reason: `size ${buf.length}` };
  let raw: unknown;
  try {
    raw = JSON.parse(buf.toString('utf8'));
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, reason: 'not an object' };
  const o = raw as Record<string, unknown>;
  if (o.v !== PROTOCOL_VERSION) return { ok: false, reason: `version ${JSON.stringify(o.v)}` };
  if (typeof o.stack !== 'string' || !STACK.test(o.stack)) return { ok: false, reason: 'stack' };
  if (typeof o.id !== 'string' || !INSTANCE_ID.test(o.id)) return { ok: false, reason: 'id' };
  if (!isCount(o.boot) || !isCount(o.seq)) return { ok: false, reason: 'boot/seq' };
  if (o.k === 'fp') return { ok: true, message: { kind: 'fp', stack: o.stack, id: o.id, boot: o.boot, seq: o.seq } };
  if (o.k !== 'hb') return { ok: false, reason: `kind ${JSON.stringify(o.k)}` };
  if (typeof o.az !== 'string' || !AZ.test(o.az)) return { ok: false, reason: 'az' };
  if (typeof o.state !== 'string' || !SELF_STATES.includes(o.state as SelfState)) return { ok: false, reason: 'state' };
  if (typeof o.healthy !== 'boolean') return { ok: false, reason: 'healthy' };
  if (o.up !== null && typeof o.up !== 'boolean') return { ok: false, reason: 'up' };
  if (!Array.isArray(o.peers) || o.peers.length > MAX_PEERS) return { ok: false, reason: 'peers' };
  const peers: PeerView[] = [];
  for (const p of o.peers as unknown[]) {
    const q = p as Record<string, unknown> | null;
    if (typeof q !== 'object' || q === null || typeof q.id !== 'string' || !INSTANCE_ID.test(q.id)) return { ok: false, reason: 'peers[].id' };
    if (!isCount(q.hb) || !(q.fp === -1 || isCount(q.fp)) || !isCount(q.age)) return { ok: false, reason: 'peers[] counters' };
    peers.push({ id: q.id, hb: q.hb, fp: q.fp, age: q.age });
  }
  return {
    ok: true,
    message: { kind: 'hb', stack: o.stack, id: o.id, az: o.az, boot: o.boot, seq: o.seq, state: o.state as SelfState, healthy: o.healthy, upstream: o.up, peers },
  };
}
