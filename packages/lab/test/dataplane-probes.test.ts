import { describe, expect, it } from 'vitest';
import { ProbeTracker } from '../src/dataplane/probes.js';
import type { ProbeResult } from '../src/dataplane/probes.js';
import { hostRoutes } from '../src/cli/probe.js';
import type { LabStatus } from '../src/dataplane/lab.js';

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

describe('own-AZ egress (probe --check)', () => {
  const ok = (answer: string) => ({ ok: true, since: 0, answer, sent: 1, failed: 0 });
  const host = (az: string, ip: string, tcp: string, udp: string | undefined) => ({
    id: `host-${ip}`,
    ns: `ns-${ip}`,
    az,
    subnetId: `subnet-${ip}`,
    ip,
    tcp: ok(tcp),
    udp: udp === undefined ? { ok: false, since: 0, sent: 1, failed: 1, lastError: 'timeout' } : ok(udp),
    outages: [],
    answers: [],
  });
  const status = (hosts: ReturnType<typeof host>[]) =>
    ({
      instances: [
        { instanceId: 'i-a', state: 'running', az: 'az-a', privateIp: '10.0.0.10', publicIp: '198.18.1.1', sourceDestCheck: false },
        { instanceId: 'i-b', state: 'running', az: 'az-b', privateIp: '10.0.1.10', publicIp: '198.18.1.2', sourceDestCheck: false },
      ],
      hosts,
    }) as unknown as LabStatus;

  it('names the NAT that answered and says whether it is in the host’s own AZ', () => {
    const routes = hostRoutes(status([host('az-a', '10.0.10.254', '198.18.1.1', '198.18.1.1'), host('az-b', '10.0.11.254', '198.18.1.1', '198.18.1.1')]));
    expect(routes.map((r) => [r.az, r.nat?.instanceId, r.ownAz])).toEqual([
      ['az-a', 'i-a', true],
      ['az-b', 'i-a', false],
    ]);
  });

  it('does not count a host whose UDP probes fail, or answered by an unknown address', () => {
    const routes = hostRoutes(status([host('az-a', '10.0.10.254', '198.18.1.1', undefined), host('az-b', '10.0.11.254', '203.0.113.99', '203.0.113.99')]));
    expect(routes.map((r) => r.ownAz)).toEqual([false, false]);
    expect(routes[1]!.nat).toBeUndefined();
  });
});
