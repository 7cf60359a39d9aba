import { describe, expect, it } from 'vitest';
import { ProbeTracker } from '../src/dataplane/probes.js';
import type { ProbeResult } from '../src/dataplane/probes.js';

let seq = 0;
const r = (t: number, ok: boolean, answer?: string, proto: 'tcp' | 'udp' = 'tcp'): ProbeResult => ({
  seq: seq++,
  t,
  proto,
  target: '198.51.100.10:7',
  ok,
  ...(ok ? { answer } : { error: 'timeout' }),
});

describe('probe tracker', () => {
  it('records an outage from the first failed probe to the first successful one', () => {
    const p = new ProbeTracker();
    for (const [t, ok] of [[0, true], [100, true], [200, false], [300, false], [400, false], [500, true], [600, true]] as const) p.record('h', r(t, ok, '198.18.0.1'));
    expect(p.outages('h')).toEqual([{ hostId: 'h', proto: 'tcp', start: 200, end: 500, durationMs: 300, failed: 3 }]);
    expect(p.status('h').tcp).toMatchObject({ ok: true, since: 500, sent: 7, failed: 3, answer: '198.18.0.1' });
  });

  it('keeps an outage open while it lasts, and counts protocols separately', () => {
    const p = new ProbeTracker();
    p.record('h', r(0, true, 'a', 'udp'));
    p.record('h', r(0, false));
    p.record('h', r(100, false));
    expect(p.outages('h')).toEqual([{ hostId: 'h', proto: 'tcp', start: 0, failed: 2 }]);
    expect(p.status('h').udp?.ok).toBe(true);
  });

  it('records which public address answered, and when it changed', () => {
    const p = new ProbeTracker();
    p.record('h', r(0, true, '198.18.0.1'));
    p.record('h', r(100, true, '198.18.0.1'));
    p.record('h', r(200, false));
    p.record('h', r(300, true, '198.18.0.2'));
    expect(p.answers('h')).toEqual([
      { t: 0, proto: 'tcp', answer: '198.18.0.1' },
      { t: 300, proto: 'tcp', answer: '198.18.0.2' },
    ]);
  });

  it('waitFor resolves on the first matching result and rejects on timeout', async () => {
    const p = new ProbeTracker();
    const waiting = p.waitFor((_h, res) => res.answer === 'b', 1_000);
    p.record('h', r(0, true, 'a'));
    p.record('h2', r(1, true, 'b'));
    await expect(waiting).resolves.toMatchObject({ hostId: 'h2' });
    await expect(p.waitFor(() => false, 10, 'nothing')).rejects.toThrow(/nothing/);
  });
});
