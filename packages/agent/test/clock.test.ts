import { describe, expect, it } from 'vitest';
import { backoff } from '../src/clock.js';

describe('retry backoff', () => {
  it('spreads even the first retry, so agents throttled together do not retry together', () => {
    const first = [0, 0.5, 1].map((r) => backoff(0, 200, 30_000, () => r));
    expect(new Set(first).size).toBe(3);
    expect(Math.min(...first)).toBe(200);
  });

  it('grows with the attempt and never exceeds the cap', () => {
    expect(backoff(3, 200, 30_000, () => 1)).toBe(3_200);
    expect(backoff(30, 200, 30_000, () => 1)).toBe(30_000);
    expect(backoff(30, 200, 30_000, () => 0)).toBe(200);
  });
});
