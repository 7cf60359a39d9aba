/**
 * Injected failures: API throttling and server errors (at a rate, for a number
 * of calls, for one operation or caller), Availability Zones that cannot launch
 * instances, and CloudFormation resources that fail on purpose.
 */
import { AwsError } from './errors.js';
import type { Service } from './latency.js';

export type ApiFaultKind = 'throttle' | 'internal' | 'unavailable';

export interface ApiFaultSpec {
  kind: ApiFaultKind;
  /** Only this service; all when absent. */
  service?: Service | undefined;
  /** Only this action (`ReplaceRoute`); all when absent. */
  action?: string | undefined;
  /** Only calls from this instance id. */
  caller?: string | undefined;
  /** Probability a matching call fails, 0..1 (default 1). */
  rate?: number | undefined;
  /** Fail at most this many calls, then the fault removes itself. */
  count?: number | undefined;
}

export interface ApiFault extends ApiFaultSpec {
  id: string;
  /** Calls failed so far. */
  hits: number;
}

export interface ResourceFaultSpec {
  /** Logical id in the template; any when absent. */
  logicalId?: string | undefined;
  /** Resource type; any when absent. */
  type?: string | undefined;
  stackName?: string | undefined;
  phase?: 'create' | 'update' | 'delete' | undefined;
  /** The ResourceStatusReason to report. */
  message?: string | undefined;
  /** Fail this many times, then stop (default: until removed). */
  count?: number | undefined;
}

export interface ResourceFault extends ResourceFaultSpec {
  id: string;
  hits: number;
}

/** The error AWS returns for each fault kind, per service. */
export function faultError(service: Service, kind: ApiFaultKind): AwsError {
  switch (kind) {
    case 'throttle':
      if (service === 'ec2') return new AwsError('RequestLimitExceeded', 'Request limit exceeded.', 503);
      if (service === 'ssm') return new AwsError('ThrottlingException', 'Rate exceeded', 400);
      return new AwsError('Throttling', 'Rate exceeded', 400);
    case 'internal':
      if (service === 'ec2') return new AwsError('InternalError', 'An internal error has occurred', 500);
      if (service === 'ssm') return new AwsError('InternalServerError', 'An internal error occurred', 500);
      return new AwsError('InternalFailure', 'An internal error occurred', 500);
    case 'unavailable':
      if (service === 'ec2') return new AwsError('Unavailable', "The server is overloaded and can't handle the request.", 503);
      return new AwsError('ServiceUnavailable', 'Service is unavailable', 503);
  }
}

export class Faults {
  private api: ApiFault[] = [];
  private resources: ResourceFault[] = [];
  private blockedAzs = new Set<string>();
  private seq = 0;

  constructor(private readonly random: () => number) {}

  /** Adds an API fault; returns its id (for `remove`). */
  add(spec: ApiFaultSpec): string {
    const id = `fault-${++this.seq}`;
    this.api.push({ ...spec, id, hits: 0 });
    return id;
  }

  /** Adds a CloudFormation resource fault; returns its id. */
  failResource(spec: ResourceFaultSpec): string {
    const id = `fault-${++this.seq}`;
    this.resources.push({ ...spec, id, hits: 0 });
    return id;
  }

  remove(id: string): boolean {
    const before = this.api.length + this.resources.length;
    this.api = this.api.filter((f) => f.id !== id);
    this.resources = this.resources.filter((f) => f.id !== id);
    return this.api.length + this.resources.length < before;
  }

  /** Removes every fault, and unblocks every AZ. */
  clear(): void {
    this.api = [];
    this.resources = [];
    this.blockedAzs.clear();
  }

  /** Makes an AZ unable to launch instances (InsufficientInstanceCapacity), or able again. */
  blockLaunches(az: string, blocked = true): void {
    if (blocked) this.blockedAzs.add(az);
    else this.blockedAzs.delete(az);
  }

  isLaunchBlocked(az: string): boolean {
    return this.blockedAzs.has(az);
  }

  list(): { api: ApiFault[]; resources: ResourceFault[]; blockedAzs: string[] } {
    return { api: this.api.map((f) => ({ ...f })), resources: this.resources.map((f) => ({ ...f })), blockedAzs: [...this.blockedAzs] };
  }

  /** The error to answer this call with, if a fault fires. */
  check(service: Service, action: string, caller: string | undefined): AwsError | undefined {
    for (const f of this.api) {
      if (f.service && f.service !== service) continue;
      if (f.action && f.action !== action) continue;
      if (f.caller && f.caller !== caller) continue;
      if (f.rate !== undefined && this.random() >= f.rate) continue;
      f.hits++;
      if (f.count !== undefined && f.hits >= f.count) this.api = this.api.filter((x) => x !== f);
      return faultError(service, f.kind);
    }
    return undefined;
  }

  /** The failure message for this resource operation, if a fault fires. */
  checkResource(stackName: string, logicalId: string, type: string, phase: 'create' | 'update' | 'delete'): string | undefined {
    for (const f of this.resources) {
      if (f.logicalId && f.logicalId !== logicalId) continue;
      if (f.type && f.type !== type) continue;
      if (f.stackName && f.stackName !== stackName) continue;
      if ((f.phase ?? 'create') !== phase) continue;
      f.hits++;
      if (f.count !== undefined && f.hits >= f.count) this.resources = this.resources.filter((x) => x !== f);
      return f.message ?? `Injected failure for ${logicalId} (hanat-lab fault ${f.id})`;
    }
    return undefined;
  }
}
