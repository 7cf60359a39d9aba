/**
 * The emulator as the lab sees it (`LabEmulator`), built on the emulator's programmatic
 * API (src/emulator/index.ts). The only file of the data plane that imports the emulator.
 */
import type { InstanceLauncher } from '../contract.js';
import { createEmulator, FaultSpecError, type OpLatency } from '../emulator/index.js';
import { AdminUsageError } from './admin.js';
import type { LabEmulator } from './lab.js';

export interface EmulatorSettings {
  latency: 'aws' | 'zero';
  /** API latency of single operations (`ec2:CreateRoute` → ms), on top of `latency`. */
  opLatency?: OpLatency;
  bootDelayMs: number;
  /** From a crash in place to `impaired` status checks (default: the emulator's 60 s). */
  statusCheckDelayMs?: number;
  /** Replaces every group's health check grace period in Auto Scaling's health check (tests, the demo). */
  healthCheckGracePeriodMs?: number;
  /** How long Auto Scaling takes to notice a dead or impaired instance (default: the latency profile's). */
  healthCheckDelayMs?: number;
  /** AWS's API rate limits (token buckets); default: on with `aws` latency, off with `zero`. */
  rateLimits?: boolean;
  region: string;
  log?: (message: string) => void;
}

export function labEmulator(launcher: InstanceLauncher, settings: EmulatorSettings): LabEmulator {
  const emulator = createEmulator({
    launcher,
    latency: settings.latency,
    opLatency: settings.opLatency,
    bootDelayMs: settings.bootDelayMs,
    statusCheckDelayMs: settings.statusCheckDelayMs,
    healthCheckGracePeriodMs: settings.healthCheckGracePeriodMs,
    healthCheckDelayMs: settings.healthCheckDelayMs,
    rateLimits: settings.rateLimits,
    region: settings.region,
    ...(settings.log ? { log: settings.log } : {}),
  });
  const throttles: string[] = [];
  const tagsOf = (id: string): Record<string, string> => {
    for (const r of emulator.account.allRegions()) {
      const t = r.ec2.tags.get(id);
      if (t) return Object.fromEntries(t);
    }
    return {};
  };
  return {
    region: settings.region,
    network: emulator.network,
    async listenUnix(path) {
      await emulator.listen({ path });
    },
    async listenLoopback(port) {
      const l = await emulator.listen({ host: '127.0.0.1', port });
      if (l.port === undefined) throw new Error('the emulator did not report its port');
      return l.port;
    },
    close: () => emulator.close(),
    terminateInstance: (instanceId) => emulator.terminateInstance(instanceId),
    crashInstance: (instanceId) => emulator.crashInstance(instanceId),
    setLaunchBlocked: (az, blocked) => emulator.blockLaunches(az, blocked),
    addThrottling(spec) {
      let id: string;
      try {
        id = emulator.faults.add({ kind: 'throttle', ...spec });
      } catch (err) {
        // A misspelt action would otherwise throttle nothing; it is the caller's mistake, not the lab's.
        if (err instanceof FaultSpecError) throw new AdminUsageError(`throttle: ${err.message}`, { cause: err });
        throw err;
      }
      throttles.push(id);
      return id;
    },
    clearThrottling() {
      for (const id of throttles.splice(0)) emulator.faults.remove(id);
    },
    routeTableTags: tagsOf,
    instanceTags: tagsOf,
  };
}
