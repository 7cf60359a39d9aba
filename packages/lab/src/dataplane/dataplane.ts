/**
 * The lab's data plane: network namespaces that carry packets the way the emulator's
 * world says they should. It implements the emulator's `InstanceLauncher` (an instance
 * becomes a namespace running the real agent) and follows its `NetworkView` (the router's
 * policy routes, source/dest checks and the internet gateway's 1:1 NAT are re-synced on
 * every change). Private subnets get a host each, running a prober.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { InstanceLauncher, LaunchSpec, NetSubnet, NetworkSnapshot, NetworkView } from '../contract.js';
import { cidrContains, lastUsableIp } from './cidr.js';
import type { Exec } from './exec.js';
import { execCommand } from './exec.js';
import { Names, newPrefix } from './names.js';
import type { Endpoint, Faults } from './plan.js';
import { TABLE_BASE, planRouter } from './plan.js';
import { ProbeTracker } from './probes.js';
import type { ProbeResult } from './probes.js';
import { baseEnv, destroyNamespaces, namespacePids, signalPid, spawnIn } from './processes.js';
import { RouterApplier } from './router.js';
import { imageStopTimeoutMs } from './stop-timeout.js';
import { DEFAULT_STATE_DIR, cleanupRunSync, removeRunState, runNamespaces, writeRunState } from './state.js';
import { API_ADDRESS, ECHO_PORT, IMDS_ADDRESS, INTERNET_HOSTS, createCore, createEndpoint } from './topology.js';

export class DataPlaneError extends Error {
  override readonly name = 'DataPlaneError';
}

export interface DataPlaneLogger {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
}

const silentLogger: DataPlaneLogger = { info() {}, warn() {} };

export interface ProbeSettings {
  intervalMs: number;
  timeoutMs: number;
  /** Only private hosts in these AZs run a prober (default: every host). Each prober costs ~2 % of a core. */
  azs?: readonly string[];
}

export interface DataPlaneOptions {
  /** argv that runs a lab worker, e.g. `[node, hanat-lab.mjs, '_worker']`. */
  workerCommand: readonly string[];
  /** The emulator's unix socket: IMDS and API requests from the namespaces are forwarded to it. */
  apiSocketPath: string;
  /** Logs and per-instance directories go here. */
  runDir: string;
  /** argv that starts an instance's agent; without it an instance runs no process. */
  agentCommand?: readonly string[];
  /** Extra environment for agents, beyond PATH, HOME and AWS_ENDPOINT_URL (tests only), fixed or per instance. */
  agentEnv?: Record<string, string> | ((spec: LaunchSpec) => Record<string, string>);
  /**
   * SIGTERM grace before SIGKILL when an instance is terminated (EC2 shutdown). Default: the
   * stop timeout of the agent's systemd unit in the image (TimeoutStopSec, 30 s), read from
   * scripts/systemd/hanat-agent.service; tests shorten it.
   */
  terminateGraceMs?: number;
  /** Which subnets get a private host with a prober. Default: subnets tagged `network=private`. */
  hostSubnets?: (subnet: NetSubnet) => boolean;
  /** Probe cadence; `false` runs no probers. Default every 100 ms, 1 s timeout. */
  probe?: ProbeSettings | false;
  prefix?: string;
  exec?: Exec;
  stateDir?: string;
  /** Extra fields for the run's state file (e.g. where commands reach the lab). */
  stateExtra?: Record<string, unknown>;
  logger?: DataPlaneLogger;
}

interface EndpointRecord extends Endpoint {
  ns: string;
  agent?: ChildProcess;
  workers: ChildProcess[];
}

export interface SyncStats {
  /** Snapshot version last applied. */
  version: number;
  syncs: number;
  /** From a change notification to the end of the sync that applied it, ms. */
  lastLatencyMs: number;
  maxLatencyMs: number;
  latenciesMs: number[];
  errors: number;
}

export interface HostInfo {
  id: string;
  ns: string;
  subnetId: string;
  az: string;
  ip: string;
  /** Whether it runs a prober (`ProbeSettings.azs`). */
  probed: boolean;
}

export interface InstanceInfo {
  instanceId: string;
  ns: string;
  ip: string;
  link: string;
  agentPid?: number;
  logFile: string;
}

export class DataPlane implements InstanceLauncher {
  readonly names: Names;
  readonly probes = new ProbeTracker();
  private readonly exec: Exec;
  private readonly logger: DataPlaneLogger;
  private readonly stateDir: string;
  private readonly endpoints = new Map<string, EndpointRecord>();
  private readonly hostAz = new Map<string, string>();
  private readonly tables = new Map<string, number>();
  private readonly applier: RouterApplier;
  private readonly coreWorkers: ChildProcess[] = [];
  /** Workers stopped on purpose (their endpoint was removed): their exit is no news. */
  private readonly retired = new WeakSet<ChildProcess>();
  private faults = { gray: new Set<string>(), upstreamCut: new Set<string>(), partitions: [] as [string, string][], crashed: new Set<string>() };
  private nextIndex = 1;
  private view: NetworkView | undefined;
  private unsubscribe: (() => void) | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private hostTask: Promise<void> | undefined;
  private hostsDirty = false;
  /** The next sync reads the kernel's rules and routes instead of trusting what it applied. */
  private observeNext = true;
  private dirty = false;
  private pendingSince: number | undefined;
  private waiters: { version: number; passesAfter: number; resolve: () => void }[] = [];
  private passes = 0;
  private destroyed = false;
  private exitHandler: (() => void) | undefined;
  private stateExtra: Record<string, unknown>;
  private readonly startedAt = new Date().toISOString();
  readonly stats: SyncStats = { version: -1, syncs: 0, lastLatencyMs: 0, maxLatencyMs: 0, latenciesMs: [], errors: 0 };

  private constructor(private readonly options: DataPlaneOptions) {
    this.names = new Names(options.prefix ?? newPrefix());
    this.exec = options.exec ?? execCommand;
    this.logger = options.logger ?? silentLogger;
    this.stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
    this.applier = new RouterApplier(this.exec, this.names.router, this.names.igw);
    this.stateExtra = { ...options.stateExtra };
  }

  /**
   * Builds the router, internet gateway and internet namespaces, the internet's echo
   * service and the IMDS/API proxy. On failure, removes whatever it created.
   */
  static async create(options: DataPlaneOptions): Promise<DataPlane> {
    const dp = new DataPlane(options);
    mkdirSync(join(options.runDir, 'instances'), { recursive: true });
    dp.updateState({});
    try {
      await createCore(dp.exec, dp.names);
      await dp.startWorker(dp.names.internet, ['echo', ...INTERNET_HOSTS.flatMap((h) => ['--address', h]), '--port', String(ECHO_PORT)], 'internet-echo');
      await dp.startWorker(
        dp.names.router,
        ['proxy', '--listen', `${IMDS_ADDRESS}:80`, '--listen', `${API_ADDRESS}:80`, '--socket', options.apiSocketPath],
        'imds-api-proxy',
      );
    } catch (err) {
      await dp.destroy().catch(() => {});
      throw new DataPlaneError(`could not build the lab network (prefix ${dp.prefix})`, { cause: err });
    }
    dp.logger.info('dataplane.up', { prefix: dp.prefix });
    return dp;
  }

  get prefix(): string {
    return this.names.prefix;
  }

  /**
   * How long after a probe's send time its result may still be missing: results come in
   * send order, so one may wait for an earlier probe's timeout; the rest is slack for a
   * loaded machine. A host quiet for longer has a stopped or stuck prober.
   */
  get probeQuietLimitMs(): number {
    const probe = this.probeSettings;
    return probe ? probe.timeoutMs + 2 * probe.intervalMs + 2_000 : Infinity;
  }

  private get probeSettings(): ProbeSettings | false {
    return this.options.probe ?? { intervalMs: 100, timeoutMs: 1_000 };
  }

  /** Whether the private hosts of `az` run a prober. */
  private probesIn(az: string): boolean {
    const probe = this.probeSettings;
    return probe !== false && (probe.azs === undefined || probe.azs.includes(az));
  }

  /** Adds fields to the run's state file (where commands find the lab). */
  updateState(extra: Record<string, unknown>): void {
    this.stateExtra = { ...this.stateExtra, ...extra };
    writeRunState(this.stateDir, { prefix: this.prefix, pid: process.pid, startedAt: this.startedAt, runDir: this.options.runDir, ...this.stateExtra });
  }

  /** The AWS API endpoint as instances see it. */
  get apiEndpoint(): string {
    return `http://${API_ADDRESS}`;
  }

  /**
   * Removes the run's namespaces, links and processes if this process exits without
   * `destroy()` (a crash, an unhandled error). Synchronous, because nothing else runs at exit.
   */
  installExitCleanup(): void {
    if (this.exitHandler) return;
    this.exitHandler = () => cleanupRunSync(this.stateDir, this.prefix);
    process.on('exit', this.exitHandler);
  }

  /** Follows the emulator's world: syncs now, on every change, and every `resyncMs` (drift repair). */
  attach(view: NetworkView, resyncMs = 5_000): void {
    if (this.view) throw new DataPlaneError('the data plane is already attached to a network view');
    this.view = view;
    this.unsubscribe = view.onChange(() => this.requestSync());
    this.resyncTimer = setInterval(() => {
      this.observeNext = true;
      this.requestSync(false);
    }, resyncMs);
    this.resyncTimer.unref();
    this.requestSync();
  }

  /**
   * Resolves once a router sync that started after this call has succeeded (and applied
   * `version`, if given), and private hosts follow the subnets; rejects after `timeoutMs`
   * (a sync that keeps failing is retried meanwhile).
   */
  async synced(options: { version?: number; timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    await this.routerSynced(options.version ?? -1, deadline);
    while (this.hostTask && !this.destroyed) {
      await this.hostTask;
      await this.routerSynced(-1, deadline);
    }
  }

  private async routerSynced(version: number, deadline: number): Promise<void> {
    const done = new Promise<void>((resolve) => this.waiters.push({ version, passesAfter: this.passes + (this.running ? 1 : 0), resolve }));
    this.requestSync(false);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DataPlaneError('the data plane did not sync in time')), Math.max(0, deadline - Date.now()));
    });
    try {
      await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private requestSync(isChange = true): void {
    if (this.destroyed || !this.view) return;
    if (isChange && this.pendingSince === undefined) this.pendingSince = performance.now();
    if (this.running) {
      this.dirty = true;
      return;
    }
    this.running = this.syncLoop().finally(() => (this.running = undefined));
  }

  private async syncLoop(): Promise<void> {
    do {
      this.dirty = false;
      const since = this.pendingSince;
      this.pendingSince = undefined;
      const snapshot = this.view!.snapshot();
      try {
        await this.syncOnce(snapshot);
        this.kickHosts(snapshot);
        this.stats.version = snapshot.version;
        this.stats.syncs++;
        this.passes++;
        if (since !== undefined) this.recordLatency(performance.now() - since);
      } catch (err) {
        this.stats.errors++;
        this.applier.invalidate();
        if (since !== undefined && this.pendingSince === undefined) this.pendingSince = since;
        this.logger.warn('dataplane.sync_failed', { err: err instanceof Error ? err.message : String(err) });
        if (!this.destroyed) {
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => this.requestSync(false), 200);
        }
      }
      this.waiters = this.waiters.filter((w) => {
        const ok = this.passes >= w.passesAfter + 1 && this.stats.version >= w.version;
        if (ok) w.resolve();
        return !ok;
      });
    } while (this.dirty && !this.destroyed);
  }

  private recordLatency(ms: number): void {
    const rounded = Math.round(ms * 10) / 10;
    this.stats.lastLatencyMs = rounded;
    this.stats.maxLatencyMs = Math.max(this.stats.maxLatencyMs, rounded);
    this.stats.latenciesMs.push(rounded);
    if (this.stats.latenciesMs.length > 1000) this.stats.latenciesMs.shift();
  }

  private tableOf = (routeTableId: string): number => {
    let n = this.tables.get(routeTableId);
    if (n === undefined) {
      n = TABLE_BASE + this.tables.size + 1;
      this.tables.set(routeTableId, n);
    }
    return n;
  };

  /** One pass over the router and the internet gateway. */
  private async syncOnce(snapshot: NetworkSnapshot): Promise<void> {
    const plan = planRouter({ snapshot, endpoints: this.endpoints.values(), faults: this.faults, tableOf: this.tableOf, igwLink: this.names.routerToIgw });
    const observe = this.observeNext;
    this.observeNext = false;
    const { changes } = await this.applier.apply(plan, { observe });
    if (changes > 0) this.logger.info('dataplane.synced', { version: snapshot.version, changes });
  }

  /**
   * Private hosts follow the private subnets, in their own task: creating namespaces and
   * starting probers takes far longer than a router sync, which must not wait for it.
   * When hosts change, the router syncs again (their links need rules).
   */
  private kickHosts(snapshot: NetworkSnapshot): void {
    if (this.destroyed) return;
    if (this.hostTask) {
      this.hostsDirty = true;
      return;
    }
    this.hostTask = (async () => {
      let snap = snapshot;
      do {
        this.hostsDirty = false;
        try {
          if (await this.syncHosts(snap)) this.requestSync(false);
        } catch (err) {
          this.logger.warn('dataplane.hosts_failed', { err: err instanceof Error ? err.message : String(err) });
          if (!this.destroyed) setTimeout(() => this.requestSync(false), 1_000).unref();
        }
        if (this.view) snap = this.view.snapshot();
      } while (this.hostsDirty && !this.destroyed);
    })().finally(() => (this.hostTask = undefined));
  }

  private async syncHosts(snapshot: NetworkSnapshot): Promise<boolean> {
    const want = new Map<string, NetSubnet>();
    const filter = this.options.hostSubnets ?? ((s: NetSubnet) => s.network === 'private');
    for (const s of snapshot.subnets) if (filter(s)) want.set(`host-${s.subnetId}`, s);
    let changed = false;
    for (const [id, ep] of this.endpoints) {
      if (ep.kind === 'host' && !want.has(id)) {
        await this.removeEndpoint(id);
        this.probes.forget(id);
        changed = true;
      }
    }
    for (const [id, subnet] of want) {
      if (this.endpoints.has(id)) continue;
      await this.addHost(id, subnet);
      changed = true;
    }
    return changed;
  }

  private async addHost(id: string, subnet: NetSubnet): Promise<void> {
    const ns = this.names.host(subnet.subnetId);
    const ip = lastUsableIp(subnet.cidr);
    const ep = await this.addEndpoint({ id, kind: 'host', ns, ip, subnetId: subnet.subnetId, subnetCidr: subnet.cidr });
    this.hostAz.set(id, subnet.az);
    const probe = this.probeSettings;
    if (probe && this.probesIn(subnet.az)) {
      const [tcpHost, udpHost] = INTERNET_HOSTS;
      const worker = await this.startWorker(
        ns,
        ['prober', '--tcp', `${tcpHost}:${ECHO_PORT}`, '--udp', `${udpHost}:${ECHO_PORT}`, '--interval', String(probe.intervalMs), '--timeout', String(probe.timeoutMs)],
        `prober ${id}`,
        (line) => this.probes.record(id, JSON.parse(line) as ProbeResult),
      );
      ep.workers.push(worker);
    }
    this.logger.info('dataplane.host_added', { id, ns, ip, subnetId: subnet.subnetId, az: subnet.az });
  }

  private async addEndpoint(spec: { id: string; kind: Endpoint['kind']; ns: string; ip: string; subnetId: string; subnetCidr: string; mac?: string }): Promise<EndpointRecord> {
    if (!cidrContains(spec.subnetCidr, spec.ip)) throw new DataPlaneError(`${spec.id}: address ${spec.ip} is not in its subnet ${spec.subnetCidr}`);
    const index = this.nextIndex++;
    const link = this.names.endpointLink(index);
    const record: EndpointRecord = { id: spec.id, kind: spec.kind, index, link, ip: spec.ip, subnetId: spec.subnetId, ns: spec.ns, workers: [] };
    try {
      await createEndpoint(this.exec, this.names, { ns: spec.ns, link, ip: spec.ip, subnetCidr: spec.subnetCidr, ...(spec.mac ? { mac: spec.mac } : {}) });
    } catch (err) {
      await destroyNamespaces(this.exec, [spec.ns]).catch(() => {});
      throw new DataPlaneError(`could not create the namespace of ${spec.id}`, { cause: err });
    }
    this.endpoints.set(spec.id, record);
    return record;
  }

  private async removeEndpoint(id: string): Promise<void> {
    const ep = this.endpoints.get(id);
    if (!ep) return;
    this.endpoints.delete(id);
    for (const w of ep.workers) {
      this.retired.add(w);
      w.stdin?.end();
    }
    await destroyNamespaces(this.exec, [ep.ns]);
  }

  private instanceDir(instanceId: string): string {
    return join(this.options.runDir, 'instances', instanceId);
  }

  // ---- InstanceLauncher ----

  async launch(spec: LaunchSpec): Promise<void> {
    if (this.destroyed) throw new DataPlaneError(`cannot launch ${spec.instanceId}: the data plane is shut down`);
    if (this.endpoints.has(spec.instanceId)) return;
    const dir = this.instanceDir(spec.instanceId);
    mkdirSync(join(dir, 'home'), { recursive: true });
    writeFileSync(join(dir, 'launch.json'), JSON.stringify(spec, null, 2) + '\n');
    if (spec.userData !== undefined) writeFileSync(join(dir, 'user-data'), spec.userData);
    const ep = await this.addEndpoint({
      id: spec.instanceId,
      kind: 'instance',
      ns: this.names.instance(spec.instanceId),
      ip: spec.privateIp,
      subnetId: spec.subnetId,
      subnetCidr: spec.subnetCidr,
      mac: spec.mac,
    });
    // Its source/dest check and public address are in place before anything runs inside it.
    if (this.view) await this.synced();
    if (this.options.agentCommand) {
      const logFile = join(dir, 'agent.log');
      const extra = typeof this.options.agentEnv === 'function' ? this.options.agentEnv(spec) : this.options.agentEnv;
      // The agent's upstream probe defaults to the regional EC2 endpoint on the internet;
      // in the lab it probes the lab's internet host instead (TCP echo), never a real address.
      const env = { ...baseEnv(join(dir, 'home')), HANAT_PROBE_TARGET: `${INTERNET_HOSTS[0]}:${ECHO_PORT}`, ...extra, AWS_ENDPOINT_URL: this.apiEndpoint };
      const agent = spawnIn(ep.ns, this.options.agentCommand, { env, logFile, cwd: join(dir, 'home') });
      ep.agent = agent;
      agent.on('error', (err) => this.logger.warn('instance.agent_error', { instanceId: spec.instanceId, err: err.message }));
      agent.on('exit', (code, signal) => this.logger.info('instance.agent_exit', { instanceId: spec.instanceId, code, signal }));
      this.logger.info('instance.launched', { instanceId: spec.instanceId, ns: ep.ns, ip: ep.ip, agentPid: agent.pid, logFile });
    } else {
      this.logger.info('instance.launched', { instanceId: spec.instanceId, ns: ep.ns, ip: ep.ip });
    }
  }

  /**
   * Terminates an instance as EC2 shuts one down, and as the image's systemd stops the agent
   * (KillMode=mixed): SIGTERM to the agent alone (time to hand its routes over), then, once
   * it has exited or the unit's stop timeout has passed, SIGKILL to everything left in the
   * namespace, and the namespace and its link are deleted. EC2 shows the instance
   * `shutting-down` meanwhile. Idempotent.
   */
  async terminate(instanceId: string): Promise<void> {
    const ep = this.endpoints.get(instanceId);
    // A crashed instance is hung: it cannot run a shutdown, so EC2's stop ends up forced.
    if (ep?.agent && !this.faults.crashed.has(instanceId) && ep.agent.exitCode === null && ep.agent.signalCode === null) {
      const agent = ep.agent;
      const exited = new Promise<boolean>((resolve) => agent.once('exit', () => resolve(true)));
      const grace = this.options.terminateGraceMs ?? imageStopTimeoutMs();
      const t0 = Date.now();
      signalPid(agent.pid!, 'SIGCONT'); // a stopped agent could not handle SIGTERM
      signalPid(agent.pid!, 'SIGTERM');
      this.logger.info('instance.stopping', { instanceId, agentPid: agent.pid, stopTimeoutMs: grace });
      let timer: NodeJS.Timeout | undefined;
      const inTime = await Promise.race([exited, new Promise<boolean>((r) => (timer = setTimeout(() => r(false), grace)))]);
      clearTimeout(timer);
      if (inTime) this.logger.info('instance.agent_stopped', { instanceId, ms: Date.now() - t0 });
      else this.logger.warn('instance.stop_timeout', { instanceId, stopTimeoutMs: grace, detail: 'the agent did not exit after SIGTERM; killing it (SIGKILL)' });
    }
    await this.removeInstance(instanceId);
  }

  /**
   * Kills an instance abruptly (a hardware failure): its link stops carrying packets at once,
   * then every process dies and the namespace goes. The link is cut first so that the
   * kernel stops forwarding when the fault strikes, not when the teardown ends: waiting for
   * the processes once took ~2 s (see `destroyNamespaces`), the NAT forwarded meanwhile
   * though its agent was dead, and bench:failover measured kills shorter than the peer
   * timeout (0.1 s) or no failed probe at all. Idempotent.
   */
  async killInstance(instanceId: string): Promise<void> {
    if (this.endpoints.get(instanceId)?.kind === 'instance') {
      this.faults.crashed.add(instanceId);
      await this.synced();
    }
    await this.removeInstance(instanceId);
  }

  /** Every process of the instance at once, then its namespace and its link. Idempotent. */
  private async removeInstance(instanceId: string): Promise<void> {
    const ns = this.names.instance(instanceId);
    // A crashed instance's kernel still forwards: its namespace goes while the router still
    // drops its link, or a sync in between would let packets through for a moment.
    if (this.faults.crashed.has(instanceId)) await destroyNamespaces(this.exec, [ns]);
    const existed = this.endpoints.delete(instanceId);
    await destroyNamespaces(this.exec, [ns]);
    this.faults.gray.delete(instanceId);
    this.faults.upstreamCut.delete(instanceId);
    this.faults.crashed.delete(instanceId);
    this.faults.partitions = this.faults.partitions.filter(([a, b]) => a !== instanceId && b !== instanceId);
    if (existed) this.logger.info('instance.gone', { instanceId });
    this.requestSync(false);
  }

  // ---- faults ----

  /** Sends a signal to an instance's agent only (SIGKILL, SIGSTOP, SIGCONT...). */
  signalAgent(instanceId: string, signal: NodeJS.Signals): void {
    const agent = this.endpoints.get(instanceId)?.agent;
    if (!agent?.pid || agent.exitCode !== null || agent.signalCode !== null) throw new DataPlaneError(`${instanceId} has no running agent`);
    signalPid(agent.pid, signal);
    this.logger.info('fault.agent_signal', { instanceId, signal });
  }

  /**
   * Crash in place (hardware fault, kernel panic, hung instance): the router drops every
   * packet to or from the instance's link, then every process in its namespace is frozen
   * (SIGSTOP). The namespace stays, so EC2 (which this does not tell) keeps reporting the
   * instance `running` and routes to it stay `active`. `terminate` and `killInstance` end it.
   */
  async crashInstance(instanceId: string): Promise<void> {
    this.requireInstance(instanceId);
    this.faults.crashed.add(instanceId);
    await this.synced();
    const pids = await namespacePids(this.exec, this.names.instance(instanceId));
    for (const pid of pids) signalPid(pid, 'SIGSTOP');
    this.logger.info('fault.crash', { instanceId, frozen: pids.length });
  }

  /** Whether an instance is crashed in place. */
  isCrashed(instanceId: string): boolean {
    return this.faults.crashed.has(instanceId);
  }

  /** Gray failure: the instance and its agent stay up, but the router drops what it forwards. */
  async setGrayFailure(instanceId: string, on: boolean): Promise<void> {
    this.requireInstance(instanceId);
    toggle(this.faults.gray, instanceId, on);
    this.logger.info('fault.gray', { instanceId, on });
    await this.synced();
  }

  /** Cuts (or restores) an instance's path to the internet gateway; VPC traffic still flows. */
  async setUpstreamCut(instanceId: string, on: boolean): Promise<void> {
    this.requireInstance(instanceId);
    toggle(this.faults.upstreamCut, instanceId, on);
    this.logger.info('fault.upstream_cut', { instanceId, on });
    await this.synced();
  }

  /** Partitions (or heals) two instances from each other. */
  async setPartition(a: string, b: string, on: boolean): Promise<void> {
    this.requireInstance(a);
    this.requireInstance(b);
    this.faults.partitions = this.faults.partitions.filter(([x, y]) => !((x === a && y === b) || (x === b && y === a)));
    if (on) this.faults.partitions.push([a, b]);
    this.logger.info('fault.partition', { a, b, on });
    await this.synced();
  }

  activeFaults(): Faults {
    return {
      gray: new Set(this.faults.gray),
      upstreamCut: new Set(this.faults.upstreamCut),
      partitions: this.faults.partitions.map(([a, b]) => [a, b] as const),
      crashed: new Set(this.faults.crashed),
    };
  }

  private requireInstance(instanceId: string): void {
    if (this.endpoints.get(instanceId)?.kind !== 'instance') throw new DataPlaneError(`no running instance ${instanceId} in this lab`);
  }

  // ---- inspection ----

  hosts(): HostInfo[] {
    return [...this.endpoints.values()]
      .filter((e) => e.kind === 'host')
      .map((e) => {
        const az = this.hostAz.get(e.id) ?? '';
        return { id: e.id, ns: e.ns, subnetId: e.subnetId, az, ip: e.ip, probed: this.probesIn(az) };
      });
  }

  instances(): InstanceInfo[] {
    return [...this.endpoints.values()]
      .filter((e) => e.kind === 'instance')
      .map((e) => ({
        instanceId: e.id,
        ns: e.ns,
        ip: e.ip,
        link: e.link,
        logFile: join(this.instanceDir(e.id), 'agent.log'),
        ...(e.agent?.pid !== undefined && e.agent.exitCode === null && e.agent.signalCode === null ? { agentPid: e.agent.pid } : {}),
      }));
  }

  /** Namespaces of this run that exist right now (for checks that teardown left nothing). */
  async namespaces(): Promise<string[]> {
    return runNamespaces(this.exec, this.prefix);
  }

  /** Pids of processes in this run's namespaces right now. */
  async processes(): Promise<number[]> {
    const all = await Promise.all((await this.namespaces()).map((ns) => namespacePids(this.exec, ns)));
    return all.flat();
  }

  // ---- workers ----

  private async startWorker(ns: string, args: string[], label: string, onLine?: (line: string) => void): Promise<ChildProcess> {
    const child = spawnIn(ns, [...this.options.workerCommand, ...args], { env: baseEnv('/') });
    this.coreWorkers.push(child);
    const lines = createInterface({ input: child.stdout! });
    // Whatever a worker (or `ip netns exec`) says on stderr becomes a log line: the lab's log holds JSON lines only.
    createInterface({ input: child.stderr! }).on('line', (line) => this.logger.warn('dataplane.worker_stderr', { label, line }));
    let ready = false;
    const readyOrExit = new Promise<void>((resolve, reject) => {
      child.once('exit', (code, signal) => {
        if (!ready) reject(new DataPlaneError(`lab worker ${label} exited before it was ready (code ${code}, signal ${signal})`));
        else if (!this.destroyed && !this.retired.has(child)) this.logger.warn('dataplane.worker_exit', { label, code, signal });
      });
      child.once('error', reject);
      lines.on('line', (line) => {
        if (!ready) {
          ready = true;
          resolve();
          return;
        }
        try {
          onLine?.(line);
        } catch (err) {
          this.logger.warn('dataplane.worker_bad_line', { label, line, err: String(err) });
        }
      });
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        readyOrExit,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new DataPlaneError(`lab worker ${label} was not ready within 10 s`)), 10_000))),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return child;
  }

  // ---- teardown ----

  /** Removes every namespace, link and process of this run, and its state file. Idempotent. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    this.unsubscribe?.();
    clearInterval(this.resyncTimer);
    clearTimeout(this.retryTimer);
    await this.running?.catch(() => {});
    await this.hostTask?.catch(() => {});
    for (const w of this.coreWorkers) w.stdin?.end();
    this.endpoints.clear();
    await destroyNamespaces(this.exec, await runNamespaces(this.exec, this.prefix));
    removeRunState(this.stateDir, this.prefix);
    if (this.exitHandler) process.off('exit', this.exitHandler);
    this.exitHandler = undefined;
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
    this.logger.info('dataplane.down', { prefix: this.prefix });
  }
}

function toggle(set: Set<string>, id: string, on: boolean): void {
  if (on) set.add(id);
  else set.delete(id);
}
