import { describe, expect, it } from 'vitest';
import { successorAz } from '../src/index.js';

describe('successorAz', () => {
  const all = ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'];

  it('picks the next AZ in alphabetical order', () => {
    expect(successorAz('eu-west-1a', all)).toBe('eu-west-1b');
    expect(successorAz('eu-west-1b', all)).toBe('eu-west-1c');
  });

  it('wraps around from the last AZ to the first', () => {
    expect(successorAz('eu-west-1c', all)).toBe('eu-west-1a');
  });

  it('skips AZs that are not candidates (no running NAT)', () => {
    expect(successorAz('eu-west-1a', ['eu-west-1a', 'eu-west-1c'])).toBe('eu-west-1c');
    expect(successorAz('eu-west-1b', ['eu-west-1a'])).toBe('eu-west-1a');
  });

  it('does not depend on the order the candidates come in, or on the AZ itself being one', () => {
    expect(successorAz('eu-west-1b', ['eu-west-1a', 'eu-west-1c'].reverse())).toBe('eu-west-1c');
    expect(successorAz('eu-west-1c', ['eu-west-1b', 'eu-west-1a', 'eu-west-1b'])).toBe('eu-west-1a');
  });

  it('has no successor when no other AZ qualifies', () => {
    expect(successorAz('eu-west-1a', ['eu-west-1a'])).toBeUndefined();
    expect(successorAz('eu-west-1a', [])).toBeUndefined();
  });

  it('skips the AZs the predicate rejects, still in alphabetical order and wrapping', () => {
    const pinnedAway = new Set(['eu-west-1b']);
    expect(successorAz('eu-west-1a', all, (z) => !pinnedAway.has(z))).toBe('eu-west-1c');
    expect(successorAz('eu-west-1c', all, (z) => z !== 'eu-west-1a')).toBe('eu-west-1b');
    expect(successorAz('eu-west-1a', all, () => false)).toBeUndefined();
  });
});
