/**
 * Injected failures: API throttling and server errors (at a rate, for a number
 * of calls, for one operation or caller), Availability Zones that cannot launch
 * instances, and CloudFormation resources that fail on purpose.
 */
import { AwsError } from './errors.js';
import type { Service } from './latency.js';
import { isOperation, isService, SERVICE_NAMES, servicesWith } from './operations.js';

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

const API_FAULT_KINDS: readonly ApiFaultKind[] = ['throttle', 'internal', 'unavailable'];
const PHASES = ['create', 'update', 'delete'] as const;

/** A fault spec that names something that does not exist, or has a value out of range. */
export class FaultSpecError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'FaultSpecError';
  }
}

function fields(spec: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new FaultSpecError('', 'a fault must be a JSON object');
  const obj = spec as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new FaultSpecError(k, `unknown field ${JSON.stringify(k)}; a fault takes ${allowed.join(', ')}`);
  }
  return obj;
}

function optionalString(obj: Record<string, unknown>, field: string): string | undefined {
  const v = obj[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new FaultSpecError(field, `${field} must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function optionalCount(obj: Record<string, unknown>): number | undefined {
  const v = obj.count;
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new FaultSpecError('count', `count must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Checks an API fault spec (from code or the admin endpoint): `kind` one of the
 * three, `service` an emulated service, `action` one of its operations (of any
 * service when `service` is absent), `rate` a number in (0, 1], `count` a
 * positive integer. A typo would otherwise make a fault that never fires, or
 * one that fires on everything.
 */
export function checkApiFault(spec: unknown): ApiFaultSpec {
  const obj = fields(spec, ['kind', 'service', 'action', 'caller', 'rate', 'count']);
  const kind = obj.kind;
  if (!API_FAULT_KINDS.includes(kind as ApiFaultKind)) throw new FaultSpecError('kind', `kind must be ${API_FAULT_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  const service = obj.service;
  if (service !== undefined && !isService(service)) throw new FaultSpecError('service', `service must be one of ${SERVICE_NAMES.join(', ')}, got ${JSON.stringify(service)}`);
  const action = optionalString(obj, 'action');
  if (action !== undefined) {
    if (service !== undefined && !isOperation(service, action)) throw new FaultSpecError('action', `${service} has no emulated operation ${JSON.stringify(action)}`);
    if (service === undefined && servicesWith(action).length === 0) throw new FaultSpecError('action', `no emulated service has an operation ${JSON.stringify(action)}`);
  }
  const caller = optionalString(obj, 'caller');
  const rate = obj.rate;
  if (rate !== undefined && (typeof rate !== 'number' || !(rate > 0 && rate <= 1))) throw new FaultSpecError('rate', `rate must be a number greater than 0 and at most 1, got ${JSON.stringify(rate)}`);
  const count = optionalCount(obj);
  return { kind: kind as ApiFaultKind, service, action, caller, rate, count };
}

/** Checks a CloudFormation resource fault spec: strings where strings go, a known phase, a positive count. */
export function checkResourceFault(spec: unknown): ResourceFaultSpec {
  const obj = fields(spec, ['logicalId', 'type', 'stackName', 'phase', 'message', 'count']);
  const phase = obj.phase;
  if (phase !== undefined && !PHASES.includes(phase as (typeof PHASES)[number])) throw new FaultSpecError('phase', `phase must be ${PHASES.join(', ')}, got ${JSON.stringify(phase)}`);
  return {
    logicalId: optionalString(obj, 'logicalId'),
    type: optionalString(obj, 'type'),
    stackName: optionalString(obj, 'stackName'),
    phase: phase as ResourceFaultSpec['phase'],
    message: optionalString(obj, 'message'),
    count: optionalCount(obj),
  };
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

/** The object without its undefined fields (`{ action: undefined }` means no action). */
function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export class Faults {
  private api: ApiFault[] = [];
  private resources: ResourceFault[] = [];
  private blockedAzs = new Set<string>();
  private seq = 0;

  constructor(private readonly random: () => number) {}

  /** Adds an API fault; returns its id (for `remove`). Throws FaultSpecError for a spec `checkApiFault` refuses. */
  add(spec: ApiFaultSpec): string {
    const checked = withoutUndefined(checkApiFault(withoutUndefined(spec)));
    const id = `fault-${++this.seq}`;
    this.api.push({ ...checked, id, hits: 0 });
    return id;
  }

  /** Adds a CloudFormation resource fault; returns its id. Throws FaultSpecError for a spec `checkResourceFault` refuses. */
  failResource(spec: ResourceFaultSpec): string {
    const checked = withoutUndefined(checkResourceFault(withoutUndefined(spec)));
    const id = `fault-${++this.seq}`;
    this.resources.push({ ...checked, id, hits: 0 });
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
