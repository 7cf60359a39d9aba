/**
 * `hanat status --watch` at the send() boundary, with the fake clock: what each look
 * calls (the budget of a redraw), how a look is drawn on a terminal and off one, how it
 * shows a takeover that happens while it watches, a look that fails, and that Ctrl-C
 * ends it with exit 0. The real terminal and the real Ctrl-C are in
 * packages/lab/test/status-watch.pty.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { names } from './support/calls.js';
import { FakeNatWorld, ec2Error } from './support/fake-nat.js';
import { asgMock, cfnMock, ec2Mock, harness, zonesOf, type Harness } from './support/harness.js';

const AZS = zonesOf('eu-west-1', 3);
const [A, B] = AZS as [string, string, string];
const WATCH = ['status', '--name', 'prod', '--region', 'eu-west-1', '--watch'];
/** What one look at a healthy stack asks EC2 and Auto Scaling (observeStack). */
const LOOK_EC2 = ['DescribeRouteTables', 'DescribeInstances', 'DescribeInstanceStatus', 'DescribeAddresses'];
const LOOK_ASG = ['DescribeAutoScalingInstances'];

let h: Harness;
let w: FakeNatWorld;

function setUp(opts: Parameters<typeof harness>[0] = {}, tty = false): void {
  h = harness(opts);
  h.deps.stdoutIsTTY = tty;
  h.cfn.seedStack({ name: 'prod', status: 'UPDATE_COMPLETE', tags: [{ Key: 'hanat:stack', Value: 'prod' }] });
  w = FakeNatWorld.healthy('prod', AZS);
  w.install(ec2Mock, asgMock);
}

/**
 * Lets the watch take `looks` looks, then presses Ctrl-C during the wait after the last;
 * `between(n)` runs in the wait after look n (1-based), before the next look.
 */
function ctrlCAfter(looks: number, between: (n: number) => void = () => {}): number[] {
  const waits: number[] = [];
  h.clock.onSleep = () => {
    const ms = h.clock.sleeps.at(-1)!;
    if (ms % 1000 !== 0 || ms < 2000) return; // a retry's jittered pause, not a wait between looks
    waits.push(ms);
    if (waits.length >= looks) h.interrupt.abort();
    else between(waits.length);
  };
  return waits;
}

/** The screens a watch printed, split at the header of each look. */
const screens = (stdout: string) => stdout.split(/(?=hanat status --watch: )/).filter((s) => s.startsWith('hanat status --watch'));

beforeEach(() => setUp());
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('hanat status --watch', () => {
  it('looks every 5 s by default until Ctrl-C, which exits 0; off a terminal each look follows the last, without control sequences', async () => {
    const waits = ctrlCAfter(3);
    const r = await h.hanat(...WATCH);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(waits).toEqual([5000, 5000, 5000]);
    const shown = screens(r.stdout);
    expect(shown).toHaveLength(3);
    expect(shown[0]).toMatch(/^hanat status --watch: stack prod in eu-west-1, a look every 5 s; last look 12:00:00 UTC\. Ctrl-C stops\.\nevery AZ reaches the internet\n\nStack prod in eu-west-1 \(UPDATE_COMPLETE\)\n/);
    expect(shown[1]).toContain('last look 12:00:05 UTC');
    expect(shown[2]).toContain('last look 12:00:10 UTC');
    expect(r.stdout).not.toContain('\x1b');
  });

  it('looks up the stack once; each later look makes only the calls of one look (the budget of a redraw)', async () => {
    ctrlCAfter(3);
    const r = await h.hanat(...WATCH);
    expect(r.code).toBe(0);
    expect(names(cfnMock)).toEqual(['DescribeStacks']);
    expect(names(ec2Mock)).toEqual([...LOOK_EC2, ...LOOK_EC2, ...LOOK_EC2]);
    expect(names(asgMock)).toEqual([...LOOK_ASG, ...LOOK_ASG, ...LOOK_ASG]);
  });

  it('shows a takeover that happens while it watches: who serves the AZ now, since when and why', async () => {
    ctrlCAfter(2, () => {
      w.nat(A).state = 'stopped';
      w.table(A).route = { eni: w.nat(B).eni };
      w.table(A).tags.set('hanat:owner', w.nat(B).instanceId);
      w.table(A).tags.set('hanat:owner-since', '2026-01-15T12:00:03.000Z');
      w.table(A).tags.set('hanat:owner-reason', 'ec2-not-running');
    });
    const r = await h.hanat(...WATCH);
    const [before, after] = screens(r.stdout) as [string, string];
    expect(before).toMatch(new RegExp(`^${A} +ok +.*served by its own NAT ${w.nat(A).instanceId}`, 'm'));
    expect(after).toContain(`every AZ reaches the internet (${A} TAKEOVER)`);
    expect(after).toMatch(new RegExp(`^${A} +TAKEOVER +.*taken over by ${B}'s NAT ${w.nat(B).instanceId} since 2026-01-15T12:00:03\\.000Z because its NAT failed: EC2 says it is not running$`, 'm'));
  });

  it('keeps watching a degraded stack (no exit 1), and names the AZs that cannot reach the internet', async () => {
    ctrlCAfter(2, () => {
      w.nat(B).state = 'stopped';
    });
    const r = await h.hanat(...WATCH);
    expect(r.code).toBe(0);
    expect(screens(r.stdout)[1]).toContain(`1 AZ cannot reach the internet: ${B}\n`);
  });

  it('shows a look that failed above the last good one, and goes on looking', async () => {
    ctrlCAfter(3, (n) => {
      if (n === 1) w.fail('DescribeRouteTables', ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.'));
      else w.heal('DescribeRouteTables');
    });
    const r = await h.hanat(...WATCH);
    expect(r.code).toBe(0);
    const [, failed, again] = screens(r.stdout) as [string, string, string];
    expect(failed).toMatch(/^This look failed: .*DescribeRouteTables.*\nThe last good look follows\. The next look is in 5 s\.$/m);
    expect(failed).toContain(`${A}  ok`);
    expect(again).toContain('every AZ reaches the internet');
  });

  it('redraws in place on a terminal: the first screen clears it, each later one starts at the top-left corner, erases each line to its end and what is below', async () => {
    setUp({}, true);
    ctrlCAfter(2);
    const r = await h.hanat(...WATCH, '--interval', '2', '--color', 'never');
    expect(r.code).toBe(0);
    const HOME = '\x1b[H';
    const draws = r.stdout.split(HOME).slice(1).map((d) => HOME + d);
    expect(r.stdout.startsWith(HOME)).toBe(true);
    expect(draws).toHaveLength(2);
    expect(draws[0]!.startsWith(`${HOME}\x1b[2Jhanat status --watch: stack prod in eu-west-1, a look every 2 s; `)).toBe(true);
    expect(draws[1]!.startsWith(`${HOME}hanat status --watch: `)).toBe(true);
    for (const d of draws) {
      expect(d.endsWith('\n\x1b[J')).toBe(true);
      expect(d.split('\n').slice(0, -1).every((line) => line.endsWith('\x1b[K'))).toBe(true);
    }
  });

  it('colours the summary line on a terminal, and not with NO_COLOR', async () => {
    setUp({}, true);
    ctrlCAfter(1);
    expect((await h.hanat(...WATCH)).stdout).toContain('\x1b[32mevery AZ reaches the internet\x1b[0m');
    setUp({ env: { NO_COLOR: '1' } }, true);
    ctrlCAfter(1);
    const plain = await h.hanat(...WATCH);
    expect(plain.stdout).toContain('every AZ reaches the internet');
    expect(['\x1b[H', '\x1b[2J', '\x1b[K', '\x1b[J'].reduce((t, seq) => t.split(seq).join(''), plain.stdout)).not.toContain('\x1b');
  });

  it('with --json prints one JSON document per look, one per line, each with its time', async () => {
    ctrlCAfter(3, (n) => {
      if (n === 1) w.fail('DescribeInstances', ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.'));
      else w.heal('DescribeInstances');
    });
    const r = await h.hanat(...WATCH, '--json');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { time: string; healthy?: boolean; azs?: { az: string; reason: string }[]; error?: string });
    expect(lines.map((l) => l.time)).toEqual(['2026-01-15T12:00:00.000Z', '2026-01-15T12:00:05.000Z', '2026-01-15T12:00:10.000Z']);
    expect(lines[0]).toMatchObject({ healthy: true, azs: [{ az: A, reason: 'own-az' }, {}, {}] });
    expect(lines[1]!.error).toContain('DescribeInstances');
    expect(lines[2]).toMatchObject({ healthy: true });
  });

  it('ends with exit 0 on Ctrl-C during the first look too, having printed nothing', async () => {
    w.throttle('DescribeRouteTables', 1);
    h.clock.onSleep = () => h.interrupt.abort();
    const r = await h.hanat(...WATCH);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('refuses an unknown stack with exit 2 before watching', async () => {
    const r = await h.hanat('status', '--name', 'nosuch', '--region', 'eu-west-1', '--watch');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: Stack nosuch does not exist in eu-west-1.');
    expect(h.clock.sleeps).toEqual([]);
  });

  it.each([['1'], ['0'], ['-5'], ['soon'], ['3601']])('refuses --interval %s with exit 2 and names the range', async (value) => {
    const r = await h.hanat(...WATCH, '--interval', value);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--interval "${value}": pass the seconds between two looks, from 2 to 3600`);
    expect(names(cfnMock)).toEqual([]);
  });

  it('refuses --interval without --watch with exit 2', async () => {
    const r = await h.hanat('status', '--name', 'prod', '--region', 'eu-west-1', '--interval', '10');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: --interval 10 needs --watch');
  });
});
