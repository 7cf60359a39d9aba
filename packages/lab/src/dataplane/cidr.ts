/** IPv4 address arithmetic for the data plane. Only IPv4: the lab's VPCs are IPv4-only. */

export interface Cidr {
  /** The network address as a 32-bit unsigned integer. */
  network: number;
  prefixLength: number;
}

export function parseIp(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new RangeError(`not an IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new RangeError(`not an IPv4 address: ${ip}`);
    n = n * 256 + Number(p);
  }
  return n;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIpv4Cidr(cidr: string): boolean {
  try {
    parseCidr(cidr);
    return true;
  } catch {
    return false;
  }
}

export function parseCidr(cidr: string): Cidr {
  const [ip, len] = cidr.split('/');
  const prefixLength = Number(len);
  if (ip === undefined || len === undefined || !/^\d{1,2}$/.test(len) || prefixLength > 32) {
    throw new RangeError(`not an IPv4 CIDR: ${cidr}`);
  }
  return { network: (parseIp(ip) & mask(prefixLength)) >>> 0, prefixLength };
}

function mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

/** The canonical text of a CIDR (host bits cleared): `10.0.1.7/24` → `10.0.1.0/24`. */
export function canonicalCidr(cidr: string): string {
  const c = parseCidr(cidr);
  return `${formatIp(c.network)}/${c.prefixLength}`;
}

export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  return ((parseIp(ip) & mask(c.prefixLength)) >>> 0) === c.network;
}

/** The VPC router's address in a subnet, as AWS reserves it: the network address + 1. */
export function gatewayIp(subnetCidr: string): string {
  return formatIp(parseCidr(subnetCidr).network + 1);
}

/** The last address of a subnet that AWS lets an instance use (the broadcast address - 1). */
export function lastUsableIp(subnetCidr: string): string {
  const c = parseCidr(subnetCidr);
  const size = 2 ** (32 - c.prefixLength);
  return formatIp(c.network + size - 2);
}

export function cidrsOverlap(a: string, b: string): boolean {
  const ca = parseCidr(a);
  const cb = parseCidr(b);
  const len = Math.min(ca.prefixLength, cb.prefixLength);
  return ((ca.network & mask(len)) >>> 0) === ((cb.network & mask(len)) >>> 0);
}
