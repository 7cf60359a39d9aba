import { createHash } from 'node:crypto';

/** A small seeded PRNG (mulberry32) so fault rates and latencies are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * AWS-looking resource ids (`vpc-0` + 16 hex digits), unique within one emulator
 * and deterministic for a given seed, so test failures are reproducible.
 */
export class IdGenerator {
  private n = 0;
  constructor(private readonly seed = 'hanat-lab') {}

  hex(len: number): string {
    const h = createHash('sha256').update(`${this.seed}:${this.n++}`).digest('hex');
    return h.slice(0, len);
  }

  /** `vpc-0a1b...` (17 hex characters after the prefix, as EC2 uses). */
  next(prefix: string): string {
    return `${prefix}-0${this.hex(16)}`;
  }

  /** Upper-case alphanumeric suffix as CloudFormation appends to generated names. */
  suffix(len = 12): string {
    return BigInt(`0x${this.hex(24)}`).toString(36).toUpperCase().slice(0, len).padStart(len, '0');
  }

  uuid(): string {
    const h = this.hex(32);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  }

  /** A locally administered unicast MAC, like EC2's `0a:...`/`02:...` addresses. */
  mac(): string {
    const h = this.hex(10);
    return ['02', ...(h.match(/../g) ?? [])].join(':');
  }
}
