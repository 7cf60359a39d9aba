import { describe, expect, it } from 'vitest';
import { successorAz } from '@hanat/core';
import {
  decideTable,
  initialSelf,
  stepPeer,
  stepSelf,
  takeoverAzs,
  takeoverCause,
  type AzView,
  type PeerAction,
  type PeerEvent,
  type PeerMachine,
  type SelfAction,
  type SelfEvent,
  type SelfMachine,
  type SelfState,
  type TableDecision,
  type TargetKind,
} from '../../src/ha/takeover.js';

const DAMPING = { baseMs: 30_000, maxMs: 600_000 };
const T = 1_000_000;
const self = (state: SelfState, failures = 0, holdUntil = 0): SelfMachine => ({ state, failures, holdUntil });

describe('self machine: (state, event) → (next state, actions)', () => {
  const rows: [string, SelfMachine, SelfEvent, SelfMachine, SelfAction[]][] = [
    ['starting rises: serves, announces it, takes its tables back', self('starting'), { type: 'health', level: 'up', successor: true, now: T }, self('serving'), ['heartbeat', 'reconcile-routes']],
    ['starting falls with a successor: steps aside at once', self('starting'), { type: 'health', level: 'down', successor: true, now: T }, self('stepped-aside', 1, T + 30_000), ['heartbeat', 'hand-over', 'mark-self-unhealthy']],
    ['starting falls without a successor: keeps what it has, warns', self('starting'), { type: 'health', level: 'down', successor: false, now: T }, self('starting'), ['warn-no-successor']],
    ['serving falls with a successor: steps aside, hands over, marks itself unhealthy', self('serving'), { type: 'health', level: 'down', successor: true, now: T }, self('stepped-aside', 1, T + 30_000), ['heartbeat', 'hand-over', 'mark-self-unhealthy']],
    ['serving falls without a successor: keeps serving (a failing NAT beats none)', self('serving'), { type: 'health', level: 'down', successor: false, now: T }, self('serving'), ['warn-no-successor']],
    ['serving rises again: nothing to do', self('serving'), { type: 'health', level: 'up', successor: true, now: T }, self('serving'), []],
    ['second step-aside doubles the hold-down', self('serving', 1), { type: 'health', level: 'down', successor: true, now: T }, self('stepped-aside', 2, T + 60_000), ['heartbeat', 'hand-over', 'mark-self-unhealthy']],
    ['hold-down is capped', self('serving', 9), { type: 'health', level: 'down', successor: true, now: T }, self('stepped-aside', 10, T + 600_000), ['heartbeat', 'hand-over', 'mark-self-unhealthy']],
    ['stepped aside and risen, but inside the hold-down: waits', self('stepped-aside', 1, T + 30_000), { type: 'health', level: 'up', successor: true, now: T + 5_000 }, self('stepped-aside', 1, T + 30_000), []],
    ['stepped aside, risen, hold-down over: fails back', self('stepped-aside', 1, T + 30_000), { type: 'tick', level: 'up', now: T + 30_000 }, self('serving', 1, T + 30_000), ['heartbeat', 'reconcile-routes']],
    ['stepped aside, hold-down over but still down: stays aside', self('stepped-aside', 1, T + 30_000), { type: 'tick', level: 'down', now: T + 40_000 }, self('stepped-aside', 1, T + 30_000), []],
    ['stepped aside falls again: no second hand-over', self('stepped-aside', 1, T), { type: 'health', level: 'down', successor: true, now: T }, self('stepped-aside', 1, T), []],
    ['SIGTERM while serving with a successor: hand over, then exit', self('serving'), { type: 'sigterm', successor: true }, self('draining'), ['heartbeat', 'hand-over', 'exit']],
    ['SIGTERM without a successor: exit, routes stay', self('serving'), { type: 'sigterm', successor: false }, self('draining'), ['heartbeat', 'exit']],
    ['SIGTERM while stepped aside: hand over again (idempotent), exit', self('stepped-aside', 1, T), { type: 'sigterm', successor: true }, self('draining', 1, T), ['heartbeat', 'hand-over', 'exit']],
    ['draining is final', self('draining'), { type: 'health', level: 'up', successor: true, now: T }, self('draining'), []],
  ];
  it.each(rows)('%s', (_name, from, event, next, actions) => {
    expect(stepSelf(from, event, DAMPING)).toEqual({ next, actions });
  });

  it('starts in starting', () => {
    expect(initialSelf()).toEqual(self('starting'));
  });
});

describe('peer machine: (state, event) → (next state, actions)', () => {
  const alive: PeerMachine = { status: 'alive', state: 'serving', healthy: true };
  const suspect: PeerMachine = { ...alive, status: 'suspect' };
  const rows: [string, PeerMachine, PeerEvent, PeerMachine, PeerAction[]][] = [
    ['first heartbeat: alive', { status: 'unknown' }, { type: 'heartbeat', state: 'starting', healthy: false }, { status: 'alive', state: 'starting', healthy: false }, ['reconcile-routes']],
    ['same heartbeat again: nothing', alive, { type: 'heartbeat', state: 'serving', healthy: true }, alive, []],
    ['says it stepped aside: re-evaluate at once (no timeout to wait for)', alive, { type: 'heartbeat', state: 'stepped-aside', healthy: false }, { status: 'alive', state: 'stepped-aside', healthy: false }, ['reconcile-routes']],
    ['silence: suspect, tell the others, ask EC2 whether it runs and how its status checks read', alive, { type: 'silence' }, suspect, ['heartbeat', 'describe', 'check-status']],
    ['silence again while suspect: nothing new (the status poll goes on while it is suspect)', suspect, { type: 'silence' }, suspect, []],
    ['silence of a peer never heard: nothing (no evidence either way)', { status: 'unknown' }, { type: 'silence' }, { status: 'unknown' }, []],
    ['suspect, a witness also misses it: failed, take over, fence', suspect, { type: 'corroborated', by: 'peer' }, { ...suspect, status: 'failed', failedBy: 'peer' }, ['reconcile-routes', 'fence']],
    ['suspect, EC2 shows it impaired: failed, fence', suspect, { type: 'corroborated', by: 'ec2' }, { ...suspect, status: 'failed', failedBy: 'ec2' }, ['reconcile-routes', 'fence']],
    ['alive peer: a witness report does not fail it', alive, { type: 'corroborated', by: 'peer' }, alive, []],
    ['alive peer whose status checks read impaired (EC2 lags behind): heard, so not failed', alive, { type: 'corroborated', by: 'ec2' }, alive, []],
    ['failed by a witness, then EC2 impaired too: nothing more (fenced once)', { ...suspect, status: 'failed', failedBy: 'peer' }, { type: 'corroborated', by: 'ec2' }, { ...suspect, status: 'failed', failedBy: 'peer' }, []],
    ['suspect heard again (partition healed): alive', suspect, { type: 'heartbeat', state: 'serving', healthy: true }, alive, ['reconcile-routes']],
    ['failed heard again: alive', { ...suspect, status: 'failed', failedBy: 'peer' }, { type: 'heartbeat', state: 'serving', healthy: true }, alive, ['reconcile-routes']],
    ['suspect, EC2 says gone: failed, no fence', suspect, { type: 'ec2-gone' }, { ...suspect, status: 'failed', failedBy: 'gone' }, ['reconcile-routes']],
    ['draining peer gone from EC2: failed', { status: 'alive', state: 'draining', healthy: true }, { type: 'ec2-gone' }, { status: 'failed', state: 'draining', healthy: true, failedBy: 'gone' }, ['reconcile-routes']],
    ['serving peer that EC2 shows shutting down: failed, whatever it still sends', alive, { type: 'ec2-gone' }, { ...alive, status: 'failed', failedBy: 'gone' }, ['reconcile-routes']],
    ['gone twice: nothing more', { status: 'failed', failedBy: 'gone' }, { type: 'ec2-gone' }, { status: 'failed', failedBy: 'gone' }, []],
  ];
  it.each(rows)('%s', (_name, from, event, next, actions) => {
    expect(stepPeer(from, event)).toEqual({ next, actions });
  });
});

describe('takeoverAzs: which other AZs this NAT serves', () => {
  const A = 'eu-west-1a', B = 'eu-west-1b', C = 'eu-west-1c';
  const serving: PeerMachine = { status: 'alive', state: 'serving', healthy: true };
  const failed: PeerMachine = { status: 'failed', failedBy: 'peer' };
  const view = (meAz: string, peers: [string, PeerMachine][], azs = [A, B, C], me: Partial<AzView['me']> = {}): AzView => ({
    azs,
    me: { az: meAz, state: 'serving', healthy: true, ...me },
    peers: peers.map(([az, machine]) => ({ az, machine })),
  });

  it("the successor (next AZ alphabetically) takes a failed AZ; the other survivor does not", () => {
    expect(takeoverAzs(view(B, [[A, failed], [C, serving]]), successorAz)).toEqual([A]);
    expect(takeoverAzs(view(C, [[A, failed], [B, serving]]), successorAz)).toEqual([]);
  });

  it('a suspect peer (no witness yet) is not taken over', () => {
    expect(takeoverAzs(view(B, [[A, { ...serving, status: 'suspect' }], [C, serving]]), successorAz)).toEqual([]);
  });

  it('skips a successor that cannot serve: the next one takes over', () => {
    expect(takeoverAzs(view(C, [[A, failed], [B, { status: 'alive', state: 'serving', healthy: false }]]), successorAz)).toEqual([A]);
    expect(takeoverAzs(view(C, [[A, failed], [B, { status: 'alive', state: 'stepped-aside', healthy: false }]]), successorAz)).toEqual([A, B]);
  });

  it('an AZ whose replacement serves again is no longer taken over; one still rising is', () => {
    expect(takeoverAzs(view(B, [[A, failed], [A, serving], [C, serving]]), successorAz)).toEqual([]);
    expect(takeoverAzs(view(B, [[A, failed], [A, { status: 'alive', state: 'starting', healthy: false }], [C, serving]]), successorAz)).toEqual([A]);
  });

  it('a NAT that cannot serve itself takes nothing over', () => {
    expect(takeoverAzs(view(B, [[A, failed], [C, serving]], [A, B, C], { healthy: false }), successorAz)).toEqual([]);
  });

  it('two AZs: the survivor takes the one that stepped aside', () => {
    expect(takeoverAzs(view(B, [[A, { status: 'alive', state: 'stepped-aside', healthy: false }]], [A, B]), successorAz)).toEqual([A]);
  });
});

describe('decideTable: (own?, route target, self state) → decision', () => {
  const rows: [boolean, TargetKind, SelfState, TableDecision][] = [
    [true, 'me', 'serving', { kind: 'keep' }],
    [true, 'missing', 'starting', { kind: 'claim', reason: 'missing' }],
    [true, 'blackhole', 'starting', { kind: 'claim', reason: 'blackhole' }],
    [true, 'serving-peer', 'starting', { kind: 'leave', why: 'failback waits for rise' }],
    [true, 'serving-peer', 'serving', { kind: 'claim', reason: 'failback' }],
    [true, 'not-serving', 'starting', { kind: 'default' }],
    [true, 'not-serving', 'serving', { kind: 'claim', reason: 'elsewhere' }],
    [true, 'same-az', 'serving', { kind: 'default' }],
    [true, 'unheard-peer', 'starting', { kind: 'leave', why: 'failback waits for rise' }],
    [true, 'unheard-peer', 'serving', { kind: 'claim', reason: 'failback' }],
    [false, 'unheard-peer', 'serving', { kind: 'leave', why: 'a serving NAT holds it' }],
    [true, 'serving-peer', 'stepped-aside', { kind: 'leave', why: 'this NAT is stepped-aside' }],
    [true, 'missing', 'draining', { kind: 'leave', why: 'this NAT is draining' }],
    [false, 'not-serving', 'serving', { kind: 'claim', reason: 'takeover' }],
    [false, 'blackhole', 'serving', { kind: 'claim', reason: 'blackhole' }],
    [false, 'serving-peer', 'serving', { kind: 'leave', why: 'a serving NAT holds it' }],
    [false, 'me', 'serving', { kind: 'keep' }],
  ];
  it.each(rows)('own=%s target=%s self=%s', (own, target, state, decision) => {
    expect(decideTable(own, target, state)).toEqual(decision);
  });

  it('failback waits out the hold-down counted from the takeover (hanat:owner-since), then claims', () => {
    const hold = { takenAt: 1_000_000, delayMs: 30_000 };
    expect(decideTable(true, 'serving-peer', 'serving', { ...hold, now: 1_010_000 })).toEqual({ kind: 'leave', why: 'failback hold-down', until: 1_030_000 });
    expect(decideTable(true, 'serving-peer', 'serving', { ...hold, now: 1_030_000 })).toEqual({ kind: 'claim', reason: 'failback' });
    expect(decideTable(true, 'missing', 'serving', { ...hold, now: 1_010_000 })).toEqual({ kind: 'claim', reason: 'missing' });
  });
});

describe('takeoverCause: why an AZ is taken over (hanat:owner-reason, shown by hanat status)', () => {
  const A = 'eu-west-1a', B = 'eu-west-1b';
  const serving: PeerMachine = { status: 'alive', state: 'serving', healthy: true };
  const rows: [string, PeerMachine[], ReturnType<typeof takeoverCause>][] = [
    ['silent, and a witness misses it too', [{ status: 'failed', failedBy: 'peer', state: 'serving', healthy: true }], 'peer-down'],
    ['it said it stepped aside', [{ status: 'alive', state: 'stepped-aside', healthy: false }], 'stepped-aside'],
    ['EC2 lists it terminated or stopped', [{ status: 'failed', failedBy: 'gone' }], 'ec2-not-running'],
    ['EC2 shows it impaired while silent', [{ status: 'failed', failedBy: 'ec2' }], 'ec2-impaired'],
    ['it drains on SIGTERM', [{ status: 'alive', state: 'draining', healthy: true }], 'shutdown'],
    ['a replacement still starting beside the failed NAT: the failed one says why', [{ status: 'alive', state: 'starting', healthy: false }, { status: 'failed', failedBy: 'gone' }], 'ec2-not-running'],
  ];
  it.each(rows)('%s', (_what, machines, cause) => {
    const view: AzView = { azs: [A, B], me: { az: B, state: 'serving', healthy: true }, peers: [...machines.map((machine) => ({ az: A, machine })), { az: B, machine: serving }] };
    expect(takeoverCause(view, A)).toBe(cause);
  });
});
