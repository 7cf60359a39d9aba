/**
 * Names of everything the data plane creates. Every namespace and link carries the
 * run's prefix, `hl` + 4 hex digits, so that a cleanup can find all of a run's objects
 * (and `cleanup --all` every run's) even after a crash.
 *
 * Links never exist in the root namespace: each veth pair is created with both ends
 * already inside lab namespaces, so deleting the namespaces deletes the links.
 */
import { randomBytes } from 'node:crypto';

export const PREFIX_PATTERN = /^hl[0-9a-f]{4}$/;
/** Matches the namespace names of any run. */
export const RUN_NAMESPACE_PATTERN = /^(hl[0-9a-f]{4})-/;

export function newPrefix(): string {
  return `hl${randomBytes(2).toString('hex')}`;
}

export function assertPrefix(prefix: string): string {
  if (!PREFIX_PATTERN.test(prefix)) throw new RangeError(`bad lab prefix ${JSON.stringify(prefix)}: expected hl + 4 hex digits`);
  return prefix;
}

/** Namespace and link names of one run. Interface names stay within Linux's 15 characters. */
export class Names {
  constructor(readonly prefix: string) {
    assertPrefix(prefix);
  }

  get router(): string {
    return `${this.prefix}-router`;
  }
  get igw(): string {
    return `${this.prefix}-igw`;
  }
  get internet(): string {
    return `${this.prefix}-internet`;
  }
  instance(instanceId: string): string {
    return `${this.prefix}-${instanceId}`;
  }
  host(subnetId: string): string {
    return `${this.prefix}-host-${subnetId}`;
  }

  /** The router's end of endpoint link number n (an instance or a private host). */
  endpointLink(n: number): string {
    return `${this.prefix}e${n}`;
  }
  /** Router ↔ internet gateway: the router's end, and the gateway's end. */
  get routerToIgw(): string {
    return `${this.prefix}gw`;
  }
  get igwToRouter(): string {
    return `${this.prefix}rt`;
  }
  /** Internet gateway ↔ internet: the gateway's end, and the internet's end. */
  get igwToInternet(): string {
    return `${this.prefix}up`;
  }
  get internetToIgw(): string {
    return `${this.prefix}dn`;
  }
}

/** The interface name inside an instance or host namespace, as on an EC2 instance. */
export const ENDPOINT_IFNAME = 'eth0';
