import { describe, expect, it } from 'vitest';
import { MAX_DATAGRAM, decode, encode, type Heartbeat } from '../../src/ha/heartbeat.js';
import { Hysteresis, judge } from '../../src/ha/health.js';
import { PeerTable, probeAddress, type PeerInfo } from '../../src/ha/peers.js';

const ME = { instanceId: 'i-0000000000000000a', stack: 'prod' };
const B: PeerInfo = { instanceId: 'i-0000000000000000b', az: 'us-east-1b', privateIp: '10.0.1.10', eniId: 'eni-0000000000000000b', state: 'running' };
const C: PeerInfo = { instanceId: 'i-0000000000000000c', az: 'us-east-1c', privateIp: '10.0.2.10', eniId: 'eni-0000000000000000c', state: 'running' };

const hb = (from: PeerInfo, seq: number, over: Partial<Heartbeat> = {}): Heartbeat => ({
  kind: 'hb',
  stack: 'prod',
  id: from.instanceId,
  az: from.az,
  boot: 1000,
  seq,
  state: 'serving',
  healthy: true,
  upstream: true,
  peers: [],
  ...over,
});

describe('heartbeat codec', () => {
  it('round-trips a heartbeat and a forward probe', () => {
    const m = hb(B, 7, { peers: [{ id: C.instanceId, hb: 3, fp: -1, age: 250 }] });
    expect(decode(encode(m))).toEqual({ ok: true, message: m });
    const p = { kind: 'fp' as const, stack: 'prod', id: B.instanceId, boot: 1000, seq: 2 };
    expect(decode(encode(p))).toEqual({ ok: true, message: p });
  });

  const bad: [string, string | Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['too large', Buffer.alloc(MAX_DATAGRAM + 1, 0x20)],
    ['not JSON', 'hello'],
    ['an array', '[1]'],
    ['another version', JSON.stringify({ v: 2, k: 'hb' })],
    ['a bad instance id', JSON.stringify({ v: 1, k: 'fp', stack: 'prod', id: 'i-XYZ', boot: 1, seq: 1 })],
    ['a negative sequence', JSON.stringify({ v: 1, k: 'fp', stack: 'prod', id: B.instanceId, boot: 1, seq: -1 })],
    ['an unknown state', JSON.stringify({ ...JSON.parse(encode(hb(B, 1)).toString()), state: 'boss' })],
    ['a non-boolean verdict', JSON.stringify({ ...JSON.parse(encode(hb(B, 1)).toString()), healthy: 'yes' })],
    ['a bad peer entry', JSON.stringify({ ...JSON.parse(encode(hb(B, 1)).toString()), peers: [{ id: 'x' }] })],
    ['an unknown kind', JSON.stringify({ v: 1, k: 'xx', stack: 'prod', id: B.instanceId, boot: 1, seq: 1 })],
  ];
  it.each(bad)('rejects %s without throwing', (_name, raw) => {
    expect(decode(Buffer.isBuffer(raw) ? raw : Buffer.from(raw)).ok).toBe(false);
  });
});

describe('peer table', () => {
  const table = () => {
    const t = new PeerTable(ME);
    t.update([B, C, { ...B, instanceId: ME.instanceId }]);
    return t;
  };

  it('accepts a heartbeat from the peer address EC2 lists, under the identity it claims', () => {
    const t = table();
    const r = t.receive(encode(hb(B, 1)), B.privateIp, 5_000);
    expect(r.ok).toBe(true);
    expect(t.get(B.instanceId)).toMatchObject({ heardAt: 5_000, hb: { boot: 1000, seq: 1 } });
    expect(t.counters.accepted).toBe(1);
  });

  const drops: [string, Buffer, string, string][] = [
    ['malformed', Buffer.from('{'), B.privateIp, 'malformed'],
    ['another stack', encode(hb(B, 1, { stack: 'other' })), B.privateIp, 'wrong-stack'],
    ['an instance EC2 does not list', encode(hb({ ...B, instanceId: 'i-0000000000000000f' }, 1)), '10.0.9.9', 'unknown-source'],
    ['a known identity from an unknown address (spoofed)', encode(hb(B, 1)), '10.0.9.9', 'unknown-source'],
    ["one peer claiming another's identity", encode(hb(B, 1)), C.privateIp, 'identity-mismatch'],
    ['the right address but another AZ', encode(hb(B, 1, { az: 'us-east-1c' })), B.privateIp, 'identity-mismatch'],
    ['our own heartbeat', encode(hb({ ...B, instanceId: ME.instanceId }, 1)), '10.0.0.10', 'self'],
  ];
  it.each(drops)('drops and counts %s', (_name, buf, from, reason) => {
    const t = table();
    expect(t.receive(buf, from, 1)).toMatchObject({ ok: false, reason });
    expect(t.counters[reason as keyof typeof t.counters]).toBe(1);
    expect(t.counters.accepted).toBe(0);
    expect(t.get(B.instanceId)?.heardAt).toBeUndefined();
  });

  it('drops a replayed or reordered heartbeat, and accepts a restarted agent (newer boot)', () => {
    const t = table();
    expect(t.receive(encode(hb(B, 5)), B.privateIp, 1).ok).toBe(true);
    expect(t.receive(encode(hb(B, 5)), B.privateIp, 2)).toMatchObject({ ok: false, reason: 'replayed' });
    expect(t.receive(encode(hb(B, 4)), B.privateIp, 3)).toMatchObject({ ok: false, reason: 'replayed' });
    expect(t.receive(encode(hb(B, 9, { boot: 999 })), B.privateIp, 4)).toMatchObject({ ok: false, reason: 'replayed' });
    expect(t.receive(encode(hb(B, 1, { boot: 2000 })), B.privateIp, 5).ok).toBe(true);
    expect(t.counters).toMatchObject({ accepted: 2, replayed: 3 });
  });

  it("accepts a forward probe only from the peer's probe address, and reports it in the view", () => {
    const t = table();
    const probe = encode({ kind: 'fp', stack: 'prod', id: B.instanceId, boot: 1000, seq: 3 });
    expect(t.receive(probe, B.privateIp, 1)).toMatchObject({ ok: false, reason: 'identity-mismatch' });
    expect(t.receive(probe, probeAddress(B.privateIp), 1).ok).toBe(true);
    t.receive(encode(hb(B, 1)), B.privateIp, 10);
    expect(t.view(60)).toEqual([{ id: B.instanceId, hb: 1, fp: 3, age: 50 }]);
    expect(probeAddress('10.0.1.10')).toBe('100.64.1.10');
  });

  it('says once which peers EC2 no longer shows running, accepts nothing from them, and forgets them later', () => {
    const t = table();
    expect(t.update([{ ...B, state: 'shutting-down' }], 1_000)).toEqual([B.instanceId, C.instanceId]);
    expect(t.update([], 2_000)).toEqual([]);
    expect(t.all().map((p) => p.goneAt)).toEqual([1_000, 1_000]);
    expect(t.receive(encode(hb(B, 1)), B.privateIp, 2_000)).toMatchObject({ ok: false, reason: 'unknown-source' });
    t.update([], 1_000 + 900_001);
    expect(t.all()).toEqual([]);
  });

  it('a witness is another live peer that also has not heard the silent one for the timeout', () => {
    const t = table();
    t.receive(encode(hb(B, 1)), B.privateIp, 0);
    t.receive(encode(hb(C, 1, { peers: [{ id: B.instanceId, hb: 1, fp: -1, age: 500 }] })), C.privateIp, 2_000);
    expect(t.witness(B.instanceId, 2_100, 1_000)).toBeUndefined(); // C heard B 500 ms before
    t.receive(encode(hb(C, 2, { peers: [{ id: B.instanceId, hb: 1, fp: -1, age: 1_200 }] })), C.privateIp, 2_200);
    expect(t.witness(B.instanceId, 2_300, 1_000)).toBe(C.instanceId);
    // A witness that is itself silent does not count.
    expect(t.witness(B.instanceId, 3_500, 1_000)).toBeUndefined();
  });
});

describe('health hysteresis', () => {
  it('starts failed, rises after `rise` passes, falls after `fall` failures, ignores inconclusive checks', () => {
    const h = new Hysteresis(3, 2);
    expect(h.healthy).toBe(false);
    expect(['ok', 'ok'].map((r) => h.record(r as 'ok'))).toEqual([undefined, undefined]);
    expect(h.record('inconclusive')).toBeUndefined();
    expect(h.record('ok')).toBe('up');
    expect(h.record('fail')).toBeUndefined();
    expect(h.record('ok')).toBeUndefined(); // a single failure resets nothing once up
    expect(h.record('fail')).toBeUndefined();
    expect(h.record('fail')).toBe('down');
    expect(h.healthy).toBe(false);
    expect(h.record('ok')).toBeUndefined();
    expect(h.record('ok')).toBeUndefined();
    expect(h.record('ok')).toBe('up');
  });

  it('a round fails when any check of the verdict fails, and says which', () => {
    expect(judge({ kernel: true, upstream: true, forward: undefined })).toEqual({ result: 'ok', failed: [], warnings: [] });
    expect(judge({ kernel: true, upstream: false, forward: false })).toEqual({ result: 'fail', failed: ['upstream', 'forward'], warnings: [] });
    expect(judge({ kernel: false, upstream: true, forward: true })).toEqual({ result: 'fail', failed: ['kernel'], warnings: [] });
    expect(judge({ kernel: undefined, upstream: true })).toEqual({ result: 'inconclusive', failed: [], warnings: [] });
  });

  it('conntrack without headroom and routes not pointing here warn, and never fail the round (no step-aside for them)', () => {
    expect(judge({ kernel: true, upstream: true, forward: true, conntrack: false, routes: false })).toEqual({ result: 'ok', failed: [], warnings: ['conntrack', 'routes'] });
    expect(judge({ kernel: true, upstream: false, conntrack: false })).toEqual({ result: 'fail', failed: ['upstream'], warnings: ['conntrack'] });
  });
});
