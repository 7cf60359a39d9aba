/**
 * The lab: the emulator (the AWS control plane) and the data plane (namespaces) wired
 * together, plus probers and faults. `hanat-lab up`, the e2e tests and the benchmarks
 * all run this. The emulator is reached through `LabEmulator`, a narrow adapter over
 * the emulator's own API (see emulator-adapter.ts), so this file depends on what the
 * lab needs, not on the emulator's internals.
 */
import { join } from 'node:path';
import type { InstanceLauncher, NetworkSnapshot, NetworkView } from '../contract.js';
import { TAG } from '@hanat/core';
import type { AdminServer } from './admin.js';
import { AdminUsageError, startAdminServer } from './admin.js';
import type { DataPlaneLogger, DataPlaneOptions, SyncStats } from './dataplane.js';
import { DataPlane } from './dataplane.js';
import type { AnswerChange, Outage, ProtoStatus } from './probes.js';

/** What the lab needs from the emulator. */
export interface LabEmulator {
  readonly region: string;
  readonly network: NetworkView;
  /** Serves the AWS API and IMDS on a unix socket (for the namespaces' proxy). */
  listenUnix(path: string): Promise<void>;
  /** Serves the AWS API on loopback; resolves with the port. */
  listenLoopback(port: number): Promise<number>;
  close(): Promise<void>;
  /** EC2 reports the instance terminated (after a hardware failure: nothing runs any more). */
  terminateInstance(instanceId: string): Promise<void>;
  /**
   * The instance crashed in place: EC2 keeps it `running` (and its routes `active`); only
   * its status checks notice, after their delay.
   */
  crashInstance(instanceId: string): void;
  setLaunchBlocked(az: string, blocked: boolean): void;
  /** Injects API throttling; returns an id. */
  addThrottling(spec: { action?: string; rate?: number; count?: number }): string;
  clearThrottling(): void;
  routeTableTags(routeTableId: string): Record<string, string>;
  instanceTags(instanceId: string): Record<string, string>;
}

export interface LabOptions {
  /** Builds the emulator around the lab's launcher. */
  emulator: (launcher: InstanceLauncher) => LabEmulator;
  /** Where logs, agent logs and the emulator's socket go. */
  runDir: string;
  /** The AWS API on loopback for the CLI (0: any free port). */
  apiPort?: number;
  dataplane: Omit<DataPlaneOptions, 'apiSocketPath' | 'runDir' | 'stateExtra' | 'logger'>;
  /** Serve the admin endpoint (for `hanat-lab status/fault/probe/down`). */
  admin?: boolean;
  logger?: DataPlaneLogger;
  /** Called when an admin client asks the lab to stop. */
  onDownRequested?: () => void;
}

export type FaultRequest =
  | { kind: 'kill'; target: string }
  | { kind: 'crash'; target: string }
  | { kind: 'stop-agent'; target: string; off?: boolean }
  | { kind: 'kill-agent'; target: string }
  | { kind: 'gray'; target: string; off?: boolean }
  | { kind: 'cut-upstream'; target: string; off?: boolean }
  | { kind: 'partition'; target: string; other: string; off?: boolean }
  | { kind: 'az-launch'; az: string; off?: boolean }
  | { kind: 'throttle'; action?: string; rate?: number; count?: number; off?: boolean };

export interface FaultResult {
  fault: FaultRequest['kind'];
  /** The instance(s) the fault hit, resolved from an instance id or an AZ name. */
  instances: string[];
  at: number;
  /** Private hosts whose route went through the hit instance at that moment. */
  affectedHosts: string[];
  detail: string;
}

export interface RouteTableStatus {
  routeTableId: string;
  vpcId: string;
  network?: string;
  az?: string;
  owner?: string;
  ownerSince?: string;
  override?: string;
  /** The default route's target: `igw-…`, `eni-… (i-…)`, `blackhole`, or absent. */
  defaultRoute?: string;
  /** The instance the default route leads to, if any. */
  via?: string;
}

export interface InstanceStatus {
  instanceId: string;
  state: string;
  az: string;
  privateIp: string;
  publicIp?: string;
  sourceDestCheck: boolean;
  namespace?: string;
  agentPid?: number;
  agentLog?: string;
}

export interface HostStatus {
  id: string;
  az: string;
  subnetId: string;
  ip: string;
  /** Whether it runs a prober (`hanat-lab up --probe-azs`); one that does not has no tcp, udp or outages. */
  probed: boolean;
  tcp?: ProtoStatus;
  udp?: ProtoStatus;
  outages: Outage[];
  answers: AnswerChange[];
}

export interface LabStatus {
  prefix: string;
  region: string;
  apiEndpoint: string;
  sync: SyncStats;
  routeTables: RouteTableStatus[];
  instances: InstanceStatus[];
  hosts: HostStatus[];
  faults: { crashed: string[]; gray: string[]; upstreamCut: string[]; partitions: [string, string][]; blockedAzs: string[]; throttling: string[] };
}

export interface OutageReport {
  hostId: string;
  az: string;
  proto: 'tcp' | 'udp';
  /** Outage from the first failed to the first successful probe, ms. */
  outageMs: number;
  start: number;
  end: number;
  answerBefore?: string;
  answerAfter?: string;
  /**
   * The window's first failed probe was sent before the fault (it was in flight when the
   * fault struck, or the host was already failing); `start` and `outageMs` count from the fault.
   */
  startedBeforeFault?: boolean;
}

/** How far a probe's send time may precede the fault's own clock reading and still be the fault's. */
const SEND_SKEW_MS = 150;

export class Lab {
  readonly dataplane: DataPlane;
  readonly emulator: LabEmulator;
  readonly apiEndpoint: string;
  readonly socketPath: string;
  private admin: AdminServer | undefined;
  private readonly blockedAzs = new Set<string>();
  private readonly throttling: string[] = [];

  private constructor(dataplane: DataPlane, emulator: LabEmulator, apiEndpoint: string, socketPath: string) {
    this.dataplane = dataplane;
    this.emulator = emulator;
    this.apiEndpoint = apiEndpoint;
    this.socketPath = socketPath;
  }

  /** Starts the data plane, then the emulator with the data plane as its launcher. */
  static async start(options: LabOptions): Promise<Lab> {
    const socketPath = join(options.runDir, 'emulator.sock');
    const dataplane = await DataPlane.create({ ...options.dataplane, apiSocketPath: socketPath, runDir: options.runDir, ...(options.logger ? { logger: options.logger } : {}) });
    let emulator: LabEmulator | undefined;
    try {
      emulator = options.emulator(dataplane);
      await emulator.listenUnix(socketPath);
      const port = await emulator.listenLoopback(options.apiPort ?? 0);
      const lab = new Lab(dataplane, emulator, `http://127.0.0.1:${port}`, socketPath);
      dataplane.attach(emulator.network);
      await dataplane.synced();
      if (options.admin) await lab.startAdmin(options.onDownRequested);
      dataplane.updateState({ ready: true, region: emulator.region, apiEndpoint: lab.apiEndpoint, ...(lab.admin ? { admin: lab.adminEndpoint } : {}) });
      return lab;
    } catch (err) {
      await emulator?.close().catch(() => {});
      await dataplane.destroy().catch(() => {});
      throw err;
    }
  }

  get prefix(): string {
    return this.dataplane.prefix;
  }

  get adminEndpoint(): { url: string; token: string } | undefined {
    return this.admin ? { url: this.admin.url, token: this.admin.token } : undefined;
  }

  private async startAdmin(onDown?: () => void): Promise<void> {
    this.admin = await startAdminServer({
      'GET /status': () => Promise.resolve(this.status()),
      'POST /fault': (body) => this.fault(parseFaultRequest(body)),
      'POST /outage': (body) => {
        const b = body as { hosts?: unknown; since?: unknown; timeoutMs?: unknown };
        if (!Array.isArray(b.hosts) || typeof b.since !== 'number') throw new AdminUsageError('outage needs hosts (array) and since (epoch ms)');
        return this.waitForRecovery(b.hosts as string[], b.since, typeof b.timeoutMs === 'number' ? b.timeoutMs : 600_000);
      },
      'POST /down': () => {
        setImmediate(() => onDown?.());
        return Promise.resolve({ stopping: true });
      },
    });
  }

  // ---- status ----

  status(): LabStatus {
    const snap = this.emulator.network.snapshot();
    const running = new Map(this.dataplane.instances().map((i) => [i.instanceId, i]));
    const eniOwner = new Map(snap.instances.map((i) => [i.networkInterfaceId, i.instanceId]));
    const routeTables = snap.routeTables.map((t): RouteTableStatus => {
      const tags = this.emulator.routeTableTags(t.routeTableId);
      const def = t.routes.find((r) => r.destinationCidr === '0.0.0.0/0');
      let defaultRoute: string | undefined;
      let via: string | undefined;
      if (def) {
        const tg = def.target;
        if (tg.kind === 'igw') defaultRoute = tg.gatewayId;
        else if (tg.kind === 'eni') {
          via = tg.instanceId ?? eniOwner.get(tg.networkInterfaceId);
          defaultRoute = via ? `${tg.networkInterfaceId} (${via})` : `${tg.networkInterfaceId} (blackhole)`;
        } else defaultRoute = tg.kind;
      }
      return {
        routeTableId: t.routeTableId,
        vpcId: t.vpcId,
        ...optional('network', tags[TAG.network]),
        ...optional('az', tags[TAG.az]),
        ...optional('owner', tags[TAG.owner]),
        ...optional('ownerSince', tags[TAG.ownerSince]),
        ...optional('override', tags[TAG.override]),
        ...optional('defaultRoute', defaultRoute),
        ...optional('via', via),
      };
    });
    const instances = snap.instances.map((i): InstanceStatus => {
      const r = running.get(i.instanceId);
      return {
        instanceId: i.instanceId,
        state: i.state,
        az: i.az,
        privateIp: i.privateIp,
        ...optional('publicIp', i.publicIp),
        sourceDestCheck: i.sourceDestCheck,
        ...optional('namespace', r?.ns),
        ...optional('agentPid', r?.agentPid),
        ...optional('agentLog', r?.logFile),
      };
    });
    const faults = this.dataplane.activeFaults();
    return {
      prefix: this.prefix,
      region: this.emulator.region,
      apiEndpoint: this.apiEndpoint,
      sync: { ...this.dataplane.stats, latenciesMs: this.dataplane.stats.latenciesMs.slice(-20) },
      routeTables,
      instances,
      hosts: this.hostStatus(),
      faults: {
        crashed: [...faults.crashed],
        gray: [...faults.gray],
        upstreamCut: [...faults.upstreamCut],
        partitions: faults.partitions.map(([a, b]) => [a, b]),
        blockedAzs: [...this.blockedAzs],
        throttling: [...this.throttling],
      },
    };
  }

  /**
   * Each private host's probe state. A protocol whose prober has gone quiet is reported
   * failing (`stale`), never as the success its last result may have been.
   */
  hostStatus(now = Date.now()): HostStatus[] {
    const limit = this.dataplane.probeQuietLimitMs;
    const fresh = (p: ProtoStatus | undefined): ProtoStatus | undefined => {
      if (!p || now - p.last <= limit) return p;
      const quietS = Math.round((now - p.last) / 1000);
      return { ...p, ok: false, stale: true, since: p.last, lastError: `no probe result for ${quietS} s: the prober is stopped or stuck` };
    };
    return this.dataplane.hosts().map((h) => {
      const s = this.dataplane.probes.status(h.id);
      return {
        ...h,
        ...optional('tcp', fresh(s.tcp)),
        ...optional('udp', fresh(s.udp)),
        outages: this.dataplane.probes.outages(h.id),
        answers: this.dataplane.probes.answers(h.id),
      };
    });
  }

  // ---- faults ----

  /**
   * An instance id, or an AZ name meaning "the running NAT that serves this AZ" (the
   * instance tagged with `hanat:az` = that AZ, else any running instance in it). An
   * instance crashed in place still runs for EC2, but an AZ name picks it only when the
   * AZ has no other.
   */
  resolveInstance(ref: string): string {
    const snap = this.emulator.network.snapshot();
    const live = snap.instances.filter((i) => i.state === 'running' || i.state === 'pending');
    if (live.some((i) => i.instanceId === ref)) return ref;
    const inAzAll = live.filter((i) => i.az === ref);
    const healthy = inAzAll.filter((i) => !this.dataplane.isCrashed(i.instanceId));
    const inAz = healthy.length > 0 ? healthy : inAzAll;
    const tagged = inAz.filter((i) => this.emulator.instanceTags(i.instanceId)[TAG.az] === ref);
    const pick = (tagged.length > 0 ? tagged : inAz).sort((a, b) => a.instanceId.localeCompare(b.instanceId))[0];
    if (pick) return pick.instanceId;
    throw new AdminUsageError(`no running instance ${JSON.stringify(ref)} (and no running instance in an AZ of that name); see hanat-lab status`);
  }

  /** Private hosts whose default route currently goes through `instanceId`. */
  hostsRoutedVia(instanceId: string, snap: NetworkSnapshot = this.emulator.network.snapshot()): string[] {
    const tables = new Set(
      snap.routeTables
        .filter((t) => t.routes.some((r) => r.destinationCidr === '0.0.0.0/0' && r.target.kind === 'eni' && r.target.instanceId === instanceId))
        .map((t) => t.routeTableId),
    );
    const subnets = new Set(snap.subnets.filter((s) => tables.has(s.routeTableId)).map((s) => s.subnetId));
    return this.dataplane.hosts().filter((h) => subnets.has(h.subnetId)).map((h) => h.id);
  }

  async fault(req: FaultRequest): Promise<FaultResult> {
    const at = Date.now();
    switch (req.kind) {
      case 'kill': {
        const id = this.resolveInstance(req.target);
        const affectedHosts = this.hostsRoutedVia(id);
        // Hardware failure: everything in the instance dies at once, then EC2 notices.
        await this.dataplane.killInstance(id);
        await this.emulator.terminateInstance(id);
        return { fault: req.kind, instances: [id], at, affectedHosts, detail: `killed ${id}; EC2 reports it terminated` };
      }
      case 'crash': {
        const id = this.resolveInstance(req.target);
        if (this.dataplane.isCrashed(id)) throw new AdminUsageError(`${id} has already crashed`);
        const affectedHosts = this.hostsRoutedVia(id);
        // Dies in place: the data plane freezes it and drops its packets; EC2 keeps saying `running`.
        await this.dataplane.crashInstance(id);
        this.emulator.crashInstance(id);
        return { fault: req.kind, instances: [id], at, affectedHosts, detail: `crashed ${id} in place; EC2 still reports it running until its status checks fail` };
      }
      case 'stop-agent':
      case 'kill-agent': {
        const id = this.resolveInstance(req.target);
        const signal = req.kind === 'kill-agent' ? 'SIGKILL' : req.off ? 'SIGCONT' : 'SIGSTOP';
        this.dataplane.signalAgent(id, signal);
        return { fault: req.kind, instances: [id], at, affectedHosts: this.hostsRoutedVia(id), detail: `${signal} sent to the agent of ${id}` };
      }
      case 'gray': {
        const id = this.resolveInstance(req.target);
        await this.dataplane.setGrayFailure(id, !req.off);
        return { fault: req.kind, instances: [id], at, affectedHosts: this.hostsRoutedVia(id), detail: `${id} ${req.off ? 'forwards again' : 'stops forwarding (instance and agent alive)'}` };
      }
      case 'cut-upstream': {
        const id = this.resolveInstance(req.target);
        await this.dataplane.setUpstreamCut(id, !req.off);
        return { fault: req.kind, instances: [id], at, affectedHosts: this.hostsRoutedVia(id), detail: `${id} ${req.off ? 'reaches the internet gateway again' : 'is cut from the internet gateway'}` };
      }
      case 'partition': {
        const a = this.resolveInstance(req.target);
        const b = this.resolveInstance(req.other);
        await this.dataplane.setPartition(a, b, !req.off);
        return { fault: req.kind, instances: [a, b], at, affectedHosts: [], detail: `${a} and ${b} ${req.off ? 'reach each other again' : 'are partitioned'}` };
      }
      case 'az-launch': {
        this.emulator.setLaunchBlocked(req.az, !req.off);
        if (req.off) this.blockedAzs.delete(req.az);
        else this.blockedAzs.add(req.az);
        return { fault: req.kind, instances: [], at, affectedHosts: [], detail: `${req.az} ${req.off ? 'can launch instances again' : 'cannot launch instances'}` };
      }
      case 'throttle': {
        if (req.off) {
          this.emulator.clearThrottling();
          this.throttling.length = 0;
          return { fault: req.kind, instances: [], at, affectedHosts: [], detail: 'API throttling removed' };
        }
        const spec = { ...optional('action', req.action), ...optional('rate', req.rate), ...optional('count', req.count) };
        this.throttling.push(this.emulator.addThrottling(spec));
        return { fault: req.kind, instances: [], at, affectedHosts: [], detail: `API throttling: ${req.action ?? 'every action'} at rate ${req.rate ?? 1}${req.count ? ` for ${req.count} calls` : ''}` };
      }
    }
  }

  /**
   * Waits until every given host has had an outage caused at or after `since` that has
   * ended (TCP and UDP), and reports each window. A host that never failed after `since`
   * has no window yet, so this keeps waiting for it until `timeoutMs`.
   *
   * The window is the first that starts at `since` or after; failing that, the one still
   * open at `since`. A probe in flight when the fault struck fails too and opens its window
   * early, and a host may already be failing. Such a window is measured from `since` and
   * flagged `startedBeforeFault`, so that it neither stalls the wait (as it did when only
   * later windows counted) nor charges the fault with time that came before it.
   */
  async waitForRecovery(hostIds: string[], since: number, timeoutMs: number): Promise<OutageReport[]> {
    const hostAz = new Map(this.dataplane.hosts().map((h) => [h.id, h.az]));
    const closed = (): OutageReport[] | undefined => {
      const out: OutageReport[] = [];
      for (const hostId of hostIds) {
        for (const proto of ['tcp', 'udp'] as const) {
          const windows = this.dataplane.probes.outages(hostId).filter((x) => x.proto === proto && (x.end === undefined || x.end >= since));
          const o = windows.find((x) => x.start >= since - SEND_SKEW_MS) ?? windows.find((x) => x.start < since);
          if (!o || o.end === undefined) return undefined;
          const early = o.start < since - SEND_SKEW_MS;
          const start = early ? since : o.start;
          const answers = this.dataplane.probes.answers(hostId).filter((a) => a.proto === proto);
          const before = answers.filter((a) => a.t < o.start).at(-1)?.answer;
          const after = answers.filter((a) => a.t >= o.end!).at(0)?.answer ?? answers.filter((a) => a.t <= o.end!).at(-1)?.answer;
          out.push({
            hostId,
            az: hostAz.get(hostId) ?? '',
            proto,
            outageMs: Math.max(0, o.end - start),
            start,
            end: o.end,
            ...(early ? { startedBeforeFault: true } : {}),
            ...optional('answerBefore', before),
            ...optional('answerAfter', after),
          });
        }
      }
      return out;
    };
    const now = closed();
    if (now) return now;
    return new Promise((resolve, reject) => {
      const onResult = (): void => {
        const r = closed();
        if (!r) return;
        cleanup();
        resolve(r);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`traffic did not recover within ${Math.round(timeoutMs / 1000)} s for ${hostIds.join(', ')}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.dataplane.probes.off('result', onResult);
      };
      this.dataplane.probes.on('result', onResult);
    });
  }

  /** Stops everything: admin endpoint, emulator, namespaces and processes. Idempotent. */
  async stop(): Promise<void> {
    await this.admin?.close();
    this.admin = undefined;
    // Namespaces first: the agents must not see the API vanish and log errors meanwhile.
    await this.dataplane.destroy();
    await this.emulator.close();
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

const FAULT_KINDS = ['kill', 'crash', 'stop-agent', 'kill-agent', 'gray', 'cut-upstream', 'partition', 'az-launch', 'throttle'] as const;

/** Validates a fault request from the admin endpoint. */
export function parseFaultRequest(body: unknown): FaultRequest {
  const b = (body ?? {}) as Record<string, unknown>;
  const kind = b.kind as FaultRequest['kind'];
  if (!FAULT_KINDS.includes(kind)) throw new AdminUsageError(`unknown fault ${JSON.stringify(b.kind)}; expected one of ${FAULT_KINDS.join(', ')}`);
  const str = (k: string): string => {
    if (typeof b[k] !== 'string' || !b[k]) throw new AdminUsageError(`fault ${kind} needs ${k}`);
    return b[k];
  };
  const off = b.off === true;
  switch (kind) {
    case 'kill':
    case 'crash':
    case 'kill-agent':
      return { kind, target: str('target') };
    case 'stop-agent':
    case 'gray':
    case 'cut-upstream':
      return { kind, target: str('target'), off };
    case 'partition':
      return { kind, target: str('target'), other: str('other'), off };
    case 'az-launch':
      return { kind, az: str('az'), off };
    case 'throttle': {
      const rate = b.rate === undefined ? undefined : Number(b.rate);
      if (rate !== undefined && !(rate > 0 && rate <= 1)) throw new AdminUsageError(`throttle rate must be in (0, 1], got ${JSON.stringify(b.rate)}`);
      const count = b.count === undefined ? undefined : Number(b.count);
      if (count !== undefined && !(Number.isInteger(count) && count > 0)) throw new AdminUsageError(`throttle count must be a positive integer, got ${JSON.stringify(b.count)}`);
      return { kind, off, ...optional('action', typeof b.action === 'string' ? b.action : undefined), ...optional('rate', rate), ...optional('count', count) };
    }
  }
}
