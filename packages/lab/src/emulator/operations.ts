/**
 * The catalogue of emulated operations, per service: what the server routes,
 * and what fault specs and per-operation latencies may name, so a misspelt
 * service or action is refused instead of silently never matching.
 */
import { autoScalingOperations } from './autoscaling/handlers.js';
import { cloudFormationOperations } from './cloudformation/handlers.js';
import { ec2Operations } from './ec2/handlers.js';
import type { Service } from './latency.js';
import type { OpDef } from './protocol/ops.js';
import { ssmOperations } from './ssm/handlers.js';

export const OPERATIONS: Readonly<Record<Service, ReadonlyMap<string, OpDef>>> = {
  ec2: ec2Operations,
  autoscaling: autoScalingOperations,
  cloudformation: cloudFormationOperations,
  ssm: ssmOperations,
};

export const SERVICE_NAMES = Object.keys(OPERATIONS) as readonly Service[];

export function isService(name: unknown): name is Service {
  return typeof name === 'string' && (SERVICE_NAMES as readonly string[]).includes(name);
}

export function isOperation(service: Service, action: string): boolean {
  return OPERATIONS[service].has(action);
}

/** The services that emulate `action` (usually one). */
export function servicesWith(action: string): Service[] {
  return SERVICE_NAMES.filter((s) => OPERATIONS[s].has(action));
}

/**
 * `ec2:CreateRoute` or `CreateRoute` (when exactly one service has it) →
 * `{ service, action }`; otherwise a sentence saying what is wrong.
 */
export function resolveOperation(name: string): { service: Service; action: string } | { error: string } {
  const colon = name.indexOf(':');
  if (colon >= 0) {
    const service = name.slice(0, colon);
    const action = name.slice(colon + 1);
    if (!isService(service)) return { error: `unknown service ${JSON.stringify(service)}; the emulator has ${SERVICE_NAMES.join(', ')}` };
    if (!isOperation(service, action)) return { error: `${service} has no operation ${JSON.stringify(action)} in the emulator (see EMULATOR.md)` };
    return { service, action };
  }
  const services = servicesWith(name);
  if (services.length === 1) return { service: services[0]!, action: name };
  if (services.length > 1) return { error: `${name} is an operation of ${services.join(' and ')}; name one, e.g. ${services[0]}:${name}` };
  return { error: `no emulated service has an operation ${JSON.stringify(name)} (see EMULATOR.md)` };
}
