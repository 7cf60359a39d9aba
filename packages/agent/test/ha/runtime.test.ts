/**
 * The HA runtime of three NATs over an in-memory UDP network and one fake clock, and
 * once over real UDP sockets on loopback: what each NAT concludes about the others,
 * and what it asks the agent to do (take tables over, fence, mark itself unhealthy).
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { probeAddress, type PeerInfo } from '../../src/ha/peers.js';
import { Ha, type HaDeps, type HaSettings } from '../../src/ha/runtime.js';
import { udpSocket } from '../../src/ha/socket.js';
import { FakeClock, FakeUdpNetwork, logCapture } from '../support/harness.js';
import { HA_SETTINGS } from '../support/fixtures.js';

const SETTINGS: HaSettings = { ...HA_SETTINGS, forwardProbe: true };

const NATS: PeerInfo[] = ['a', 'b', 'c'].map((z, i) => ({
  instanceId: `i-00000000000000${i}${i}${z}`.slice(0, 19),
  az: `us-east-1${z}`,
  privateIp: `10.0.${i}.10`,
  eniId: `eni-000000000000000${i}`,
  state: 'running',
}));

interface Node {
  info: PeerInfo;
  ha: Ha;
  routes: number;
  describes: number;
  statusChecks: number;
  unhealthy: string[];
  logs: ReturnType<typeof logCapture>;
}

const stops: AbortController[] = [];
afterEach(() => {
  for (const s of stops.splice(0)) s.abort();
});

async function cluster(net: FakeUdpNetwork, clock: FakeClock, settings: HaSettings = SETTINGS, nats: PeerInfo[] = NATS, extra: (info: PeerInfo) => Partial<HaDeps> = () => ({})): Promise<Node[]> {
  const nodes: Node[] = [];
  for (const info of nats) {
    const logs = logCapture();
    const node = { info, routes: 0, describes: 0, statusChecks: 0, unhealthy: [] as string[], logs } as Node;
    const more = extra(info);
    node.ha = new Ha({ instanceId: info.instanceId, stack: 'prod', az: info.az, privateIp: info.privateIp, eniId: info.eniId! }, settings, {
      clock,
      log: pino(logs.stream),
      socket: net.factory,
      kernelOk: () => true,
      onRoutes: () => node.routes++,
      onDescribe: () => node.describes++,
      onStatusCheck: () => node.statusChecks++,
      ...more,
      // Every SetInstanceHealth call, answered by `extra`'s when it has one.
      setUnhealthy: (id) => {
        node.unhealthy.push(id);
        return more.setUnhealthy ? more.setUnhealthy(id) : Promise.resolve();
      },
    });
    node.ha.updatePeers(nats);
    node.ha.setAzs(nats.map((n) => n.az));
    const stop = new AbortController();
    stops.push(stop);
    await node.ha.start(stop.signal);
    nodes.push(node);
  }
  return nodes;
}

/** Moves the fake clock in 50 ms steps, letting datagrams and timers run between. */
async function run(clock: FakeClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    clock.tick(50);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }
}

const events = (n: Node, event: string) => n.logs.lines.filter((l) => l.event === event);

describe('HA runtime over an in-memory network', () => {
  it('three healthy NATs: all rise to serving, nobody is taken over', async () => {
    const clock = new FakeClock();
    const nodes = await cluster(new FakeUdpNetwork(), clock);
    await run(clock, 4_000);
    for (const n of nodes) {
      expect(n.ha.state).toBe('serving');
      expect(n.ha.takeoverAzs()).toEqual([]);
      expect(n.ha.peers.all().map((p) => p.machine.status)).toEqual(['alive', 'alive']);
    }
  });

  it("a NAT that goes silent is corroborated by the third and taken over by its successor only, which fences it", async () => {
    const clock = new FakeClock();
    const net = new FakeUdpNetwork();
    const [a, b, c] = await cluster(net, clock);
    await run(clock, 4_000);
    net.drop = (from) => from === c!.info.privateIp || from === probeAddress(c!.info.privateIp);
    await run(clock, 1_200);
    // c's successor wraps around to a; b sees it down too, but does not act.
    expect(a!.ha.takeoverAzs()).toEqual(['us-east-1c']);
    expect(b!.ha.takeoverAzs()).toEqual([]);
    expect(events(a!, 'peer.down')[0]).toMatchObject({ peer: c!.info.instanceId, by: 'peer' });
    expect(a!.ha.ownerReason('us-east-1c')).toBe('peer-down'); // hanat:owner-reason of c's table
    expect(a!.unhealthy).toEqual([]); // routes first; fencing only if it stays failed
    await run(clock, 3_000);
    expect(a!.unhealthy).toEqual([c!.info.instanceId]);
    expect(b!.unhealthy).toEqual([]);
    expect(a!.describes).toBeGreaterThan(0); // it asked EC2 too
  });

  it('a NAT that stalls and heartbeats again within the fence delay is taken over but not fenced', async () => {
    const clock = new FakeClock();
    const net = new FakeUdpNetwork();
    const [a, , c] = await cluster(net, clock);
    await run(clock, 4_000);
    net.drop = (from) => from === c!.info.privateIp || from === probeAddress(c!.info.privateIp);
    await run(clock, 1_200);
    expect(a!.ha.takeoverAzs()).toEqual(['us-east-1c']);
    net.drop = () => false;
    await run(clock, 4_000);
    expect(a!.ha.takeoverAzs()).toEqual([]);
    expect(a!.unhealthy).toEqual([]);
  });

  it('a throttled fence is retried with jittered backoff until Auto Scaling takes it, one call at a time', async () => {
    const clock = new FakeClock();
    const net = new FakeUdpNetwork();
    let answered = 0;
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'Throttling' });
    const [a, , c] = await cluster(net, clock, SETTINGS, NATS, () => ({ setUnhealthy: () => (++answered <= 3 ? Promise.reject(throttled) : Promise.resolve()) }));
    await run(clock, 4_000);
    net.drop = (from) => from === c!.info.privateIp || from === probeAddress(c!.info.privateIp);
    await run(clock, 4_500);
    expect(a!.unhealthy).toEqual([c!.info.instanceId]); // the first call, throttled
    await run(clock, 30_000);
    expect(a!.unhealthy).toEqual(Array(4).fill(c!.info.instanceId)); // three throttled, then taken, then no more
    const retries = events(a!, 'ha.set_unhealthy_retry');
    expect(retries.map((r) => r.attempt)).toEqual([1, 2, 3]);
    // Jittered and growing: the n-th wait lies in [1 s, 1 s * 2^n].
    for (const [i, r] of retries.entries()) {
      expect(r.retryInMs).toBeGreaterThanOrEqual(1_000);
      expect(r.retryInMs).toBeLessThanOrEqual(1_000 * 2 ** (i + 1));
    }
    expect(events(a!, 'peer.fenced')).toEqual([expect.objectContaining({ instanceId: c!.info.instanceId, attempts: 4 })]);
  });

  it('a fence AWS refuses is not retried, and a retry is dropped once the peer is heard again', async () => {
    const clock = new FakeClock();
    const net = new FakeUdpNetwork();
    const denied = Object.assign(new Error('not authorized'), { name: 'AccessDenied' });
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'Throttling' });
    let answer: Error = denied;
    const [a, , c] = await cluster(net, clock, SETTINGS, NATS, () => ({ setUnhealthy: () => Promise.reject(answer) }));
    await run(clock, 4_000);
    net.drop = (from) => from === c!.info.privateIp || from === probeAddress(c!.info.privateIp);
    await run(clock, 30_000);
    expect(a!.unhealthy).toEqual([c!.info.instanceId]);
    expect(events(a!, 'ha.set_unhealthy_failed')[0]).toMatchObject({ instanceId: c!.info.instanceId, attempts: 1 });

    // Heard again, then silent again: throttled this time, and c comes back during the backoff.
    net.drop = () => false;
    await run(clock, 2_000);
    answer = throttled;
    net.drop = (from) => from === c!.info.privateIp || from === probeAddress(c!.info.privateIp);
    await run(clock, 4_500);
    expect(a!.unhealthy).toHaveLength(2);
    net.drop = () => false;
    await run(clock, 30_000);
    expect(a!.unhealthy).toHaveLength(2);
    expect(events(a!, 'ha.set_unhealthy_dropped')).toEqual([expect.objectContaining({ instanceId: c!.info.instanceId })]);
  });

  it('a partition between two healthy NATs: both suspect the other, nobody fails it, nothing is taken over or fenced', async () => {
    const clock = new FakeClock();
    const net = new FakeUdpNetwork();
    const [a, b, c] = await cluster(net, clock);
    await run(clock, 4_000);
    const ab = new Set([a!.info.privateIp, probeAddress(a!.info.privateIp), b!.info.privateIp, probeAddress(b!.info.privateIp)]);
    net.drop = (from, to) => ab.has(from) && ab.has(to) && from.split('.')[2] !== to.split('.')[2];
    await run(clock, 20_000);
    expect(a!.ha.peers.get(b!.info.instanceId)!.machine.status).toBe('suspect');
    expect(b!.ha.peers.get(a!.info.instanceId)!.machine.status).toBe('suspect');
    for (const n of [a!, b!, c!]) {
      expect(n.ha.takeoverAzs()).toEqual([]);
      expect(n.unhealthy).toEqual([]);
      expect(n.ha.state).toBe('serving');
    }
  });

  it('two AZs, a NAT crashes in place: silence alone moves nothing; once EC2 shows its status checks impaired, the survivor takes over and fences it', async () => {
    const clock = new FakeClock();
    const net = new FakeUdpNetwork();
    const [a, b] = await cluster(net, clock, SETTINGS, NATS.slice(0, 2));
    await run(clock, 4_000);
    expect(a!.statusChecks).toBe(0); // nothing to ask while every peer is heard
    net.drop = (from) => from === a!.info.privateIp || from === probeAddress(a!.info.privateIp);
    await run(clock, 1_200);
    const peerA = a!.info.instanceId;
    expect(b!.ha.suspects()).toEqual([peerA]);
    expect(b!.statusChecks).toBe(1); // asked at once
    // EC2 has not noticed yet (a crash takes it a minute or more): ok is no evidence either way.
    b!.ha.statusChecks(new Map([[peerA, false]]));
    await run(clock, 5_000);
    expect(b!.ha.takeoverAzs()).toEqual([]);
    expect(b!.unhealthy).toEqual([]);
    b!.ha.statusChecks(new Map([[peerA, true]]));
    await run(clock, 100);
    expect(events(b!, 'peer.down')[0]).toMatchObject({ peer: peerA, by: 'ec2', statusChecks: 'impaired' });
    expect(b!.ha.takeoverAzs()).toEqual(['us-east-1a']);
    expect(b!.ha.suspects()).toEqual([]); // no more status reads
    await run(clock, 3_100);
    expect(b!.unhealthy).toEqual([peerA]);
  });

  it("two AZs, partitioned: each reads the other's status checks, they read ok, nothing moves; a heartbeat ends the reads", async () => {
    const clock = new FakeClock();
    const net = new FakeUdpNetwork();
    const [a, b] = await cluster(net, clock, SETTINGS, NATS.slice(0, 2));
    await run(clock, 4_000);
    const ab = new Set([a!.info.privateIp, probeAddress(a!.info.privateIp), b!.info.privateIp, probeAddress(b!.info.privateIp)]);
    net.drop = (from, to) => ab.has(from) && ab.has(to);
    await run(clock, 2_000);
    for (const [n, other] of [[a!, b!], [b!, a!]] as const) {
      expect(n.statusChecks).toBe(1);
      n.ha.statusChecks(new Map([[other.info.instanceId, false]]));
    }
    await run(clock, 10_000);
    for (const n of [a!, b!]) {
      expect(n.ha.takeoverAzs()).toEqual([]);
      expect(n.unhealthy).toEqual([]);
    }
    net.drop = () => false;
    await run(clock, 1_000);
    expect([a!.ha.suspects(), b!.ha.suspects()]).toEqual([[], []]);
    // A stale impaired answer for a peer heard again fails nothing.
    a!.ha.statusChecks(new Map([[b!.info.instanceId, true]]));
    expect(a!.ha.peers.get(b!.info.instanceId)!.machine.status).toBe('alive');
  });

  it('conntrack without headroom and routes not pointing here: warned once each, and cleared; the NAT keeps serving (they are not part of the verdict)', async () => {
    const clock = new FakeClock();
    let ct = { count: 100, max: 1_000 };
    let routes: boolean | undefined = true;
    const [a] = await cluster(new FakeUdpNetwork(), clock, SETTINGS, NATS, (info) => (info === NATS[0] ? { conntrack: () => Promise.resolve(ct), routesOk: () => routes } : {}));
    await run(clock, 4_000);
    ct = { count: 950, max: 1_000 };
    routes = false;
    await run(clock, 5_000);
    expect(events(a!, 'self.conntrack_high')).toEqual([expect.objectContaining({ count: 950, max: 1_000, usedPct: 95 })]);
    expect(events(a!, 'self.routes_not_mine')).toHaveLength(1);
    expect(events(a!, 'self.unhealthy')).toEqual([]);
    expect(a!.ha.state).toBe('serving');
    ct = { count: 10, max: 1_000 };
    routes = true;
    await run(clock, 2_000);
    expect(events(a!, 'self.conntrack_ok')).toHaveLength(1);
    expect(events(a!, 'self.routes_ok')).toHaveLength(1);
  });

  it('gray failure: forward probes lost, heartbeats fine → the NAT steps aside, marks itself unhealthy, its successor takes over', async () => {
    const clock = new FakeClock();
    const net = new FakeUdpNetwork();
    let forwardFailed = 0;
    const [a, b] = await cluster(net, clock, SETTINGS, NATS, (info) => (info === NATS[0] ? { onForwardFailed: () => forwardFailed++ } : {}));
    await run(clock, 4_000);
    forwardFailed = 0;
    net.drop = (from) => from === probeAddress(a!.info.privateIp);
    await run(clock, 4_500);
    expect(forwardFailed).toBeGreaterThanOrEqual(3); // each failed round asks the agent to re-check source/dest check
    expect(events(a!, 'self.unhealthy')[0]).toMatchObject({ failed: ['forward'] });
    expect(a!.ha.state).toBe('stepped-aside');
    expect(a!.unhealthy).toEqual([a!.info.instanceId]);
    expect(b!.ha.takeoverAzs()).toEqual(['us-east-1a']);
    expect([a!.ha.handOverReason(b!.info, 'us-east-1a'), b!.ha.ownerReason('us-east-1a')]).toEqual(['stepped-aside', 'stepped-aside']);
    // It hands its own table to b's NAT.
    expect(a!.ha.decide(true, { NetworkInterfaceId: a!.info.eniId, State: 'active' }).decision).toMatchObject({ kind: 'hand-over', to: { instanceId: b!.info.instanceId } });
  });

  it('a lost peer cannot blind the forward probe: with nobody to confirm, the probe is inconclusive and the NAT stays healthy', async () => {
    const clock = new FakeClock();
    const net = new FakeUdpNetwork();
    const [a] = await cluster(net, clock);
    await run(clock, 4_000);
    net.drop = (_from, to) => to === a!.info.privateIp; // a hears nobody: nobody confirms or denies its probes
    await run(clock, 5_000);
    expect(events(a!, 'self.unhealthy')).toEqual([]);
    expect(a!.ha.state).toBe('serving');
  });

  it('SIGTERM: a serving NAT drains and hands its table to its successor', async () => {
    const clock = new FakeClock();
    const [a, b] = await cluster(new FakeUdpNetwork(), clock);
    await run(clock, 4_000);
    expect(a!.ha.sigterm()).toBe(true);
    expect(a!.ha.state).toBe('draining');
    expect(a!.ha.decide(true, { NetworkInterfaceId: a!.info.eniId, State: 'active' }).decision).toMatchObject({ kind: 'hand-over', to: { instanceId: b!.info.instanceId } });
    await run(clock, 400);
    expect(b!.ha.takeoverAzs()).toEqual(['us-east-1a']);
    expect([a!.ha.handOverReason(b!.info, 'us-east-1a'), b!.ha.ownerReason('us-east-1a'), b!.ha.ownerReason('us-east-1b')]).toEqual(['shutdown', 'shutdown', 'own-az']);
  });

  // A fourth NAT in us-east-1a: a replacement launched before the old one leaves, or a group of 2.
  const SIBLING: PeerInfo = { instanceId: 'i-0000000000000003a', az: 'us-east-1a', privateIp: '10.0.0.20', eniId: 'eni-0000000000000003', state: 'running' };

  it('SIGTERM with a serving sibling in the same AZ: the tables go to the sibling, not to the next AZ, and stay "own-az"; nobody takes the AZ over', async () => {
    const clock = new FakeClock();
    const [a, b, , s] = await cluster(new FakeUdpNetwork(), clock, SETTINGS, [...NATS, SIBLING]);
    await run(clock, 4_000);
    expect(a!.ha.sigterm()).toBe(true);
    expect(a!.ha.decide(true, { NetworkInterfaceId: a!.info.eniId, State: 'active' }).decision).toMatchObject({ kind: 'hand-over', to: { instanceId: SIBLING.instanceId } });
    expect(a!.ha.handOverReason(SIBLING, 'us-east-1a')).toBe('own-az');
    await run(clock, 400);
    expect(b!.ha.takeoverAzs()).toEqual([]);
    // The sibling keeps what points at it, and takes the AZ's Elastic IP from the draining NAT.
    expect(s!.ha.decide(true, { NetworkInterfaceId: SIBLING.eniId, State: 'active' }).decision).toEqual({ kind: 'keep' });
    expect(s!.ha.leavingSiblings()).toEqual([a!.info.instanceId]);
    expect(b!.ha.leavingSiblings()).toEqual([]);
  });

  it('the NAT that owns its AZ crashes in place while a sibling serves there: the sibling takes the tables at once (no yielding to a dead NAT), and no other AZ takes over', async () => {
    const clock = new FakeClock();
    const net = new FakeUdpNetwork();
    const [a, b, c, s] = await cluster(net, clock, SETTINGS, [...NATS, SIBLING]);
    await run(clock, 4_000);
    // Before: the owner is a serving sibling, so the two-NATs rule decides (newest claim wins).
    expect(s!.ha.decide(true, { NetworkInterfaceId: a!.info.eniId, State: 'active' }).target).toBe('same-az');
    net.drop = (from) => from === a!.info.privateIp || from === probeAddress(a!.info.privateIp);
    await run(clock, 1_200);
    expect(s!.ha.decide(true, { NetworkInterfaceId: a!.info.eniId, State: 'active' })).toEqual({ target: 'not-serving', decision: { kind: 'claim', reason: 'elsewhere' } });
    expect(s!.ha.leavingSiblings()).toEqual([a!.info.instanceId]);
    for (const n of [b!, c!]) expect(n.ha.takeoverAzs()).toEqual([]);
    // The sibling serves in its place, so the sibling fences it; nobody else does.
    await run(clock, 3_000);
    expect(s!.unhealthy).toEqual([a!.info.instanceId]);
    for (const n of [b!, c!]) expect(n.unhealthy).toEqual([]);
  });
});

describe('HA runtime over real UDP sockets on loopback', () => {
  it('two NATs on 127.0.0.1 and 127.0.0.2 hear each other', async () => {
    const infos: PeerInfo[] = [
      { instanceId: 'i-0000000000000001a', az: 'us-east-1a', privateIp: '127.0.0.1', eniId: 'eni-01', state: 'running' },
      { instanceId: 'i-0000000000000002b', az: 'us-east-1b', privateIp: '127.0.0.2', eniId: 'eni-02', state: 'running' },
    ];
    const port = 40_000 + Math.floor(Math.random() * 20_000);
    const has = infos.map((info) => {
      const ha = new Ha({ instanceId: info.instanceId, stack: 'prod', az: info.az, privateIp: info.privateIp, eniId: info.eniId! }, { ...SETTINGS, port, heartbeatIntervalMs: 50, forwardProbe: false }, {
        clock: systemClock,
        log: pino({ level: 'silent' }),
        socket: udpSocket,
        kernelOk: () => true,
        onRoutes: () => {},
        onDescribe: () => {},
        setUnhealthy: () => Promise.resolve(),
      });
      ha.updatePeers(infos);
      return ha;
    });
    const stop = new AbortController();
    stops.push(stop);
    for (const ha of has) await ha.start(stop.signal);
    try {
      const deadline = Date.now() + 3_000;
      while (Date.now() < deadline && !has.every((h) => h.peers.all()[0]?.machine.status === 'alive')) await new Promise((r) => setTimeout(r, 20));
      expect(has.map((h) => h.peers.all()[0]!.machine.status)).toEqual(['alive', 'alive']);
      expect(has.map((h) => h.peers.counters.accepted > 0)).toEqual([true, true]);
    } finally {
      stop.abort();
      for (const h of has) h.stop();
    }
  });
});
