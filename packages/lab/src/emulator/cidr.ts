/** IPv4 and CIDR arithmetic for the emulator (validation, containment, allocation, Fn::Cidr). */

export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  base: number;
  prefix: number;
}

export function parseIp(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return (((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!) >>> 0;
}

export function formatIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** Parses `a.b.c.d/n`; `strict` also requires host bits to be zero (EC2 does for VPCs and subnets). */
export function parseCidr(s: string, strict = false): Cidr | undefined {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(s);
  if (!m) return undefined;
  const ip = parseIp(m[1]!);
  const prefix = Number(m[2]);
  if (ip === undefined || prefix > 32) return undefined;
  const base = (ip & mask(prefix)) >>> 0;
  if (strict && base !== ip) return undefined;
  return { base, prefix };
}

export function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

export function containsIp(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.prefix)) >>> 0) === c.base;
}

/** True when `inner` lies within `outer`. */
export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && containsIp(outer, inner.base);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return containsCidr(a, b) || containsCidr(b, a);
}

/** Fn::Cidr: `count` consecutive blocks with `hostBits` host bits each, carved from `block`. */
export function subdivide(block: Cidr, count: number, hostBits: number): string[] {
  const prefix = 32 - hostBits;
  if (prefix < block.prefix || prefix > 32) throw new Error(`cannot carve /${prefix} blocks out of ${formatCidr(block)}`);
  const step = 2 ** hostBits;
  if (count * step > size(block)) throw new Error(`${formatCidr(block)} has room for only ${size(block) / step} /${prefix} blocks`);
  return Array.from({ length: count }, (_, i) => formatCidr({ base: (block.base + i * step) >>> 0, prefix }));
}
