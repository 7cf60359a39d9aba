/**
 * The lab stops an instance's agent as the image does: its SIGTERM-to-SIGKILL grace is the
 * stop timeout of the agent's systemd unit (scripts/systemd/hanat-agent.service), read from
 * that file rather than written down a second time.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { agentUnitPath, imageStopTimeoutMs, parseTimeSpanMs, unitStopTimeoutMs } from '../src/dataplane/stop-timeout.js';

describe("the image's stop timeout", () => {
  it("is the agent unit's TimeoutStopSec, from the unit file that provision-nat.sh installs", () => {
    const unit = readFileSync(agentUnitPath(), 'utf8');
    const line = /^TimeoutStopSec=(.+)$/m.exec(unit);
    expect(line, 'the unit sets TimeoutStopSec').not.toBeNull();
    expect(imageStopTimeoutMs()).toBe(parseTimeSpanMs(line![1]!));
    // The figure LAB.md and EMULATOR.md quote: a change to the unit must update them too.
    expect(imageStopTimeoutMs()).toBe(30_000);
    expect(readFileSync(new URL('../../../scripts/provision-nat.sh', import.meta.url), 'utf8')).toContain('hanat-agent.service');
  });

  it('reads systemd time spans as systemd does', () => {
    expect(parseTimeSpanMs('30s')).toBe(30_000);
    expect(parseTimeSpanMs('90')).toBe(90_000);
    expect(parseTimeSpanMs('1min 30s')).toBe(90_000);
    expect(parseTimeSpanMs('2m')).toBe(120_000);
    expect(parseTimeSpanMs('500ms')).toBe(500);
    expect(parseTimeSpanMs('1h')).toBe(3_600_000);
    expect(parseTimeSpanMs('infinity')).toBe(Infinity);
    expect(() => parseTimeSpanMs('soon')).toThrow(/not a systemd time span/);
  });

  it('takes TimeoutStopSec from [Service], else TimeoutSec, else systemd\'s default of 90 s; the last assignment wins', () => {
    expect(unitStopTimeoutMs('[Unit]\nTimeoutStopSec=5s\n[Service]\nExecStart=/x\n')).toBe(90_000);
    expect(unitStopTimeoutMs('[Service]\nTimeoutSec=45\n')).toBe(45_000);
    expect(unitStopTimeoutMs('[Service]\nTimeoutSec=45\nTimeoutStopSec=10s\n')).toBe(10_000);
    expect(unitStopTimeoutMs('[Service]\n# TimeoutStopSec=1s\nTimeoutStopSec=20s\nTimeoutStopSec=25s\n')).toBe(25_000);
  });
});
