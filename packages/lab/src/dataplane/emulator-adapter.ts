/**
 * The emulator as the lab sees it (`LabEmulator`), built on the emulator's programmatic
 * API (src/emulator/index.ts). The only file of the data plane that imports the emulator.
 */
import type { InstanceLauncher } from '../contract.js';
import { createEmulator } from '../emulator/index.js';
import type { LabEmulator } from './lab.js';

export interface EmulatorSettings {
  latency: 'aws' | 'zero';
  bootDelayMs: number;
  region: string;
  log?: (message: string) => void;
}

export function labEmulator(launcher: InstanceLauncher, settings: EmulatorSettings): LabEmulator {
  const emulator = createEmulator({ launcher, latency: settings.latency, bootDelayMs: settings.bootDelayMs, region: settings.region, ...(settings.log ? { log: settings.log } : {}) });
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
    setLaunchBlocked: (az, blocked) => emulator.blockLaunches(az, blocked),
    addThrottling(spec) {
      const id = emulator.faults.add({ kind: 'throttle', ...spec });
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
