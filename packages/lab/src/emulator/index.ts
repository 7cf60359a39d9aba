/**
 * hanat-lab's AWS control-plane emulator: the programmatic API.
 *
 *   const emu = createEmulator({ latency: 'zero', bootDelayMs: 0 });
 *   // or { latency: 'aws', opLatency: { 'ec2:CreateRoute': 250 } }
 *   const { url } = await emu.listen({ host: '127.0.0.1', port: 0 });
 *   // point the SDK at it: AWS_ENDPOINT_URL=url, any fake credentials
 *   emu.network.onChange((snap) => ...);   // contract.ts NetworkView
 *   emu.faults.add({ kind: 'throttle', service: 'ec2', action: 'ReplaceRoute', count: 3 });
 *   emu.counters.get('ec2:ReplaceRoute');
 *   await emu.close();
 *
 * See packages/lab/EMULATOR.md for the emulated operations and their behaviour.
 */
import type { InstanceLauncher, NetworkView } from '../contract.js';
import { Account, noopLauncher, type AccountOptions } from './account.js';
import type { Clock } from './clock.js';
import type { Counters } from './counters.js';
import type { Faults } from './faults.js';
import type { Region } from './region.js';
import { EmulatorServer, type Listener, type ListenOptions } from './server.js';

export type { AccountOptions as EmulatorOptions } from './account.js';
export type { Listener, ListenOptions } from './server.js';
export type { ApiFaultSpec, ApiFaultKind, ResourceFaultSpec } from './faults.js';
export { FaultSpecError } from './faults.js';
export type { CounterSnapshot } from './counters.js';
export type { LatencyName, LatencyProfile, OpLatency, OpLatencyMs } from './latency.js';
export { resolveOperation } from './operations.js';
export { ManualClock, systemClock, type Clock } from './clock.js';
export { LAB_IMAGES } from './ec2/state.js';
export { LAB_CREDENTIALS } from './imds.js';
export { ACCOUNT_ID } from './env.js';
export { isLoopbackHost } from './server.js';
export { noopLauncher };

export interface Emulator {
  /** The emulated account (all regions). */
  readonly account: Account;
  /** The default region's world, for assertions and direct manipulation in tests. */
  readonly world: Region;
  /** What the data plane mirrors (contract.ts). */
  readonly network: NetworkView;
  readonly faults: Faults;
  readonly counters: Counters;
  readonly clock: Clock;
  readonly launcher: InstanceLauncher;
  /** Listens on loopback TCP or a unix socket; callable more than once. */
  listen(opts?: ListenOptions): Promise<Listener>;
  /**
   * Terminates an instance as if it died (the data plane calls this when a
   * namespace or its agent is gone). Auto Scaling notices and replaces it.
   */
  terminateInstance(instanceId: string): Promise<void>;
  /**
   * The instance crashed in place (the data plane froze it): EC2 keeps it `running`
   * and its routes `active`; its status checks fail after the status-check delay.
   */
  crashInstance(instanceId: string): void;
  /** Makes an Availability Zone unable to launch instances (InsufficientInstanceCapacity), or able again. */
  blockLaunches(az: string, blocked?: boolean): void;
  /** Resolves when no CloudFormation operation is in flight in any region. */
  stacksSettled(): Promise<void>;
  close(): Promise<void>;
}

export function createEmulator(opts: AccountOptions = {}): Emulator {
  const account = new Account(opts);
  const server = new EmulatorServer(account);
  return {
    account,
    world: account.region(),
    network: account,
    faults: account.faults,
    counters: account.counters,
    clock: account.clock,
    launcher: account.launcher,
    listen: (o) => server.listen(o),
    terminateInstance(instanceId) {
      const found = account.instanceById(instanceId);
      if (!found) return Promise.reject(new Error(`no instance ${instanceId}`));
      return found.region.ec2.terminate(instanceId, 'hanat-lab: instance killed');
    },
    crashInstance(instanceId) {
      const found = account.instanceById(instanceId);
      if (!found) throw new Error(`no instance ${instanceId}`);
      found.region.ec2.crash(instanceId);
    },
    blockLaunches: (az, blocked = true) => account.faults.blockLaunches(az, blocked),
    async stacksSettled() {
      await Promise.all(account.allRegions().map((r) => r.cloudformation.settled()));
    },
    close: () => server.close(),
  };
}
