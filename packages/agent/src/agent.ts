/**
 * `hanat-agent run`: start-up and the level-triggered loop (STYLE.md 8).
 *
 * Five reconcilers run in this order, each on its own period:
 *   kernel  - forwarding, redirects, conntrack, hanat's NAT table   (every --interval)
 *   srcdst  - source/dest check off                                 (every --recheck-interval)
 *   eip     - the AZ's Elastic IP on our primary interface          (every --recheck-interval)
 *   routes  - the default route of every table we serve points at us (every --route-interval)
 *   ingress - the stack's security group admits every VPC CIDR block    (every --recheck-interval,
 *             and at once when the VPC's CIDR blocks change)
 * Each observes, compares with what it wants, applies only the difference.
 * Routes are only claimed once the kernel is a verified NAT and source/dest check
 * is off, so a claim never blackholes traffic.
 *
 * Start-up: for STARTUP_WINDOW_MS after it starts, the agent takes NotFound on its
 * own instance or interface, and permission denied, for EC2's eventual consistency
 * (a new instance and its instance profile take a few seconds to be known
 * everywhere) and retries them within seconds. Routes wait for the AZ's Elastic IP:
 * associating it replaces the public address, which would cut every flow already
 * NATed. Only when the window is over and the EIP still cannot be had does the agent
 * say so at error level (eip.unavailable) and claim the routes on the instance's own
 * public IP, as an AZ without the internet is worse than one leaving from another address.
 *
 * Failures: throttling, 5xx and network errors back off with jitter and never
 * count. Every other error AWS answers (permission denied, a resource not found, a
 * parameter it calls invalid) is logged with action and resource and retried
 * slowly, forever: AWS would answer a restarted agent the same way, and the NAT
 * keeps working meanwhile. A local failure (nft, sysctl) that repeats identically
 * `maxFailures` times in a row makes the agent exit 1 so that systemd restarts it fresh.
 */
import type { Logger } from 'pino';
import type { RouteTable } from '@aws-sdk/client-ec2';
import { DEFAULT_ROUTE_CIDR, TAG, defaultRoute, ownerTags, routeOwner, routeTarget, servingAz, tagValue, type Ec2, type OwnerReason, type RouteLike } from '@hanat/core';
import { backoff, type Clock } from './clock.js';
import type { Config } from './config.js';
import { AwsCallError, Ec2Api, classify, mayBeEventualConsistency } from './ec2.js';
import { EXIT_FAILED, EXIT_OK, errorMessage } from './errors.js';
import { cidrCovers, isIpv4Cidr, type Identity } from './identity.js';
import type { Imds } from './imds.js';
import type { Kernel } from './kernel.js';
import { Ha, type HaSettings } from './ha/runtime.js';
import type { SocketFactory } from './ha/socket.js';

/** What HA needs from outside the agent (docs/ha.md). */
export interface HaWiring {
  settings: HaSettings;
  socket: SocketFactory;
  /** SetInstanceHealth Unhealthy, ShouldRespectGracePeriod false. */
  setUnhealthy: (instanceId: string) => Promise<void>;
  upstreamProbe?: (target: { host: string; port: number }, timeoutMs: number) => Promise<boolean>;
  /** The longest a SIGTERM hand-over may take before the agent exits anyway. */
  drainMs: number;
  /**
   * How long the agent stays after the hand-over before it exits: the route change reaches
   * the VPC's data plane, and connections already in flight through this NAT finish.
   */
  lingerMs: number;
}

export interface AgentDeps {
  ec2: Ec2;
  kernel: Kernel;
  log: Logger;
  clock: Clock;
  /** Re-reads the VPC CIDRs every recheck period when given. */
  imds?: Imds | undefined;
  random?: () => number;
  /** Epoch ms at which the process started, for `agent.ready`'s duration. */
  startedAt?: number;
  /** Peer heartbeats, self-watchdog and takeover; off when absent. */
  ha?: HaWiring | undefined;
  /**
   * Drops the EC2 client's open connections. Called once the Elastic IP is associated:
   * that releases the public address they were opened from, and a call on one of them
   * would hang until its timeout.
   */
  freshConnections?: () => void;
}

type TaskName = 'kernel' | 'srcdst' | 'eip' | 'routes' | 'peers' | 'status' | 'ingress';

/** The soonest an event (an unknown heartbeat source, a silent peer) may refresh the peer list again. */
const PEER_REFRESH_MIN_MS = 5_000;
/**
 * How often the suspect peers' EC2 status checks are read while any peer stays suspect
 * (one DescribeInstanceStatus): at most 6 calls a minute, and none while every peer is heard.
 * EC2 runs its checks every minute, so reading them more often would find nothing sooner.
 */
export const STATUS_POLL_MS = 10_000;
/** The soonest a failed forward probe may re-check source/dest check again. */
const SRCDST_RECHECK_MIN_MS = 15_000;
/** After a write from the tables last observed, the next route check comes this soon. */
const FAST_PATH_VERIFY_MS = 2_000;

/**
 * How long after start-up NotFound on the agent's own ids and permission denied are
 * taken for EC2's eventual consistency and retried fast; EC2 usually settles within
 * seconds, an instance profile's permissions within tens of seconds.
 */
export const STARTUP_WINDOW_MS = 120_000;
/** Backoff for those errors inside the window: first retry after 250-500 ms, at most 4 s apart. */
const SETTLING_BASE_MS = 250;
const SETTLING_CAP_MS = 4_000;

interface Task {
  name: TaskName;
  intervalMs: number;
  /** Runs once per due time; throws on failure. */
  run(boot: boolean): Promise<unknown>;
  /** Whether prerequisites hold. */
  gate(): boolean;
  due: number;
  ok: boolean;
  succeeded: boolean;
  attempts: number;
  lastFailure?: string | undefined;
  identical: number;
  /** The last failure was AWS refusing the request (denied or rejected): retrying soon will not change it. */
  refused: boolean;
  /** The last failure's message, for eip.unavailable. */
  lastError?: string | undefined;
  /** Set by a run that wants the next one sooner than its interval. */
  nextDue?: number | undefined;
}

/** What the routes reconciler decided for one table. */
export type RouteDecision =
  | { kind: 'keep'; fixOwnerTag: boolean }
  | { kind: 'claim'; reason: 'missing' | 'blackhole' | 'elsewhere' | 'boot' | 'unpinned' | 'owner-elsewhere' | 'takeover' | 'failback'; route?: RouteLike | undefined }
  | { kind: 'yield'; owner: string };

/**
 * The route rule for a table this NAT serves. Without a claim of its own to go by
 * (at boot, or when a `hanat:override` pin elsewhere was just removed) it takes the
 * table over. Later, a route someone else points elsewhere is reclaimed, unless
 * another NAT of ours claimed it (its `hanat:owner`) after our own last claim: then
 * the newer NAT wins and this one yields, so two NATs sharing an AZ (a replacement)
 * never flap.
 */
export function decideRoute(
  table: RouteTable,
  me: { instanceId: string; eniId: string },
  lastClaimAt: number | undefined,
  takeoverReason: 'boot' | 'unpinned' = 'boot',
): RouteDecision {
  const route = defaultRoute(table);
  const owner = routeOwner(table.Tags);
  if (!route) return { kind: 'claim', reason: 'missing' };
  if (route.State !== 'blackhole' && route.NetworkInterfaceId === me.eniId) {
    return { kind: 'keep', fixOwnerTag: owner?.instanceId !== me.instanceId };
  }
  if (route.State === 'blackhole') return { kind: 'claim', reason: 'blackhole', route };
  if (lastClaimAt === undefined) return { kind: 'claim', reason: takeoverReason, route };
  if (owner && owner.instanceId !== me.instanceId && owner.since !== undefined && owner.since > lastClaimAt) {
    return { kind: 'yield', owner: owner.instanceId };
  }
  return { kind: 'claim', reason: 'elsewhere', route };
}

function describeTarget(r: RouteLike | undefined): string | undefined {
  return r ? routeTarget(r) : undefined;
}

export class Agent {
  private readonly api: Ec2Api;
  private readonly log: Logger;
  private readonly logs: Record<TaskName, Logger>;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly tasks: Task[];
  private vpcCidrs: string[];
  private cidrsDue: number;
  /** Per table: when we last claimed it or first saw it pointing at us. */
  private readonly lastClaimAt = new Map<string, number>();
  /** Per table: the AZ of the newer owner last looked up, valid for that claim until `until`. */
  private readonly ownerAzCache = new Map<string, { owner: string; since: number | undefined; az: string | undefined; until: number }>();
  /** Tables of our AZ that a `hanat:override` currently pins to another AZ, with that AZ. */
  private readonly pinnedAway = new Map<string, string>();
  /** Once-only notices, keyed by what they are about. */
  private readonly noticed = new Set<string>();
  private readyLogged = false;
  /** End of the start-up window (epoch ms). */
  private readonly settledBy: number;
  private readonly ha: Ha | undefined;
  /** Aborted to cut the loop's sleep short (HA wants the routes reconciled now). */
  private wakeup: AbortController | undefined;
  /** When each task last started, for the rate limit of `runSoon`. */
  private readonly ranAt = new Map<TaskName, number>();
  /** The private route tables as last observed, for HA's fast path. */
  private lastTables: RouteTable[] | undefined;
  /** HA asked for the routes: act on the tables last observed instead of describing them first. */
  private fastRoutes = false;
  /** The last route check ended with every table this NAT serves pointing at it (the self-watchdog's "my routes point at me"). */
  private routesOk: boolean | undefined;
  /** Whether the last route check ended with every table of this AZ pointing here. */
  private ownAzServed = false;
  /** Leaving siblings (HA) for which the Elastic IP check was already run early. */
  private readonly eipChecked = new Set<string>();

  constructor(
    private readonly config: Config,
    private readonly id: Identity,
    private readonly deps: AgentDeps,
  ) {
    this.api = new Ec2Api(deps.ec2);
    this.log = deps.log.child({ component: 'agent' });
    this.logs = {
      kernel: deps.log.child({ component: 'kernel' }),
      srcdst: deps.log.child({ component: 'srcdst' }),
      eip: deps.log.child({ component: 'eip' }),
      routes: deps.log.child({ component: 'routes' }),
      peers: deps.log.child({ component: 'peers' }),
      ingress: deps.log.child({ component: 'ingress' }),
      status: deps.log.child({ component: 'peers' }),
    };
    this.clock = deps.clock;
    this.random = deps.random ?? Math.random;
    this.settledBy = this.clock.now() + STARTUP_WINDOW_MS;
    this.vpcCidrs = [...id.vpcCidrs];
    this.cidrsDue = this.clock.now() + config.recheckIntervalMs;
    const task = (name: TaskName, intervalMs: number, run: Task['run'], gate: () => boolean = () => true): Task => ({
      name,
      intervalMs,
      run,
      gate,
      due: 0,
      ok: false,
      succeeded: false,
      attempts: 0,
      identical: 0,
      refused: false,
    });
    this.tasks = [
      task('kernel', config.intervalMs, (boot) => this.reconcileKernel(boot)),
      task('srcdst', config.recheckIntervalMs, (boot) => this.reconcileSourceDest(boot)),
      task('eip', config.recheckIntervalMs, (boot) => this.reconcileEip(boot)),
      task('routes', config.routeIntervalMs, (boot) => this.reconcileRoutes(boot), () => this.routesMayBeClaimed()),
    ];
    if (deps.ha) {
      this.ha = new Ha(
        { instanceId: id.instanceId, stack: config.stack, az: config.az, privateIp: id.privateIp, eniId: id.eniId },
        deps.ha.settings,
        {
          clock: deps.clock,
          log: deps.log,
          socket: deps.ha.socket,
          // Unknown until the kernel reconciler has verified the NAT once (a slow boot is no failure).
          kernelOk: () => (this.task('kernel').succeeded ? this.task('kernel').ok : undefined),
          upstreamProbe: deps.ha.upstreamProbe,
          onRoutes: () => {
            this.fastRoutes = true;
            this.runSoon('routes', 0);
          },
          onDescribe: () => this.runSoon('peers', PEER_REFRESH_MIN_MS),
          onStatusCheck: () => this.runSoon('status', STATUS_POLL_MS),
          conntrack: () => deps.kernel.conntrackUse(),
          routesOk: () => this.routesOk,
          // Source/dest check turned back on stops forwarded traffic: re-check it now, not in 5 minutes.
          onForwardFailed: () => {
            if (!config.skipSourceDest) this.runSoon('srcdst', SRCDST_RECHECK_MIN_MS);
          },
          setUnhealthy: deps.ha.setUnhealthy,
        },
      );
      const ha = this.ha;
      this.tasks.splice(
        3,
        0,
        task('peers', config.peerIntervalMs, () => this.refreshPeers()),
        // Only while a peer is suspect: EC2's status checks as the witness no peer can be (two AZs).
        task('status', STATUS_POLL_MS, () => this.readPeerStatus(), () => ha.suspects().length > 0),
      );
    }
    // Last: it never holds up the routes. Without the interface's groups (IMDS did not list them) there is nothing to check.
    if (id.securityGroupIds?.length) this.tasks.push(task('ingress', config.recheckIntervalMs, () => this.reconcileIngress()));
  }

  /** The HA runtime, when on (for tests and status). */
  get haRuntime(): Ha | undefined {
    return this.ha;
  }

  /** Makes `name` due now (at most once per `minGapMs` since it last ran) and wakes the loop. */
  private runSoon(name: TaskName, minGapMs: number): void {
    const t = this.tasks.find((x) => x.name === name);
    if (!t) return;
    const earliest = (this.ranAt.get(name) ?? -Infinity) + minGapMs;
    t.due = Math.min(t.due, Math.max(this.clock.now(), earliest));
    this.wakeup?.abort();
  }

  /** Runs until `signal` aborts (exit 0) or a failure repeats `maxFailures` times (exit 1). */
  async run(signal: AbortSignal): Promise<number> {
    const haStop = new AbortController();
    if (this.ha) await this.ha.start(haStop.signal);
    try {
      const exit = await this.loop(signal);
      if (exit !== undefined) return exit;
      const handover = this.ha ? await this.drain() : false;
      this.log.info(
        { event: 'agent.stopped', handover },
        handover ? 'stopped on signal after handing the routes to the successor' : 'stopped on signal; routes keep pointing here until another NAT claims them',
      );
      return EXIT_OK;
    } finally {
      haStop.abort();
      this.ha?.stop();
    }
  }

  /**
   * SIGTERM with HA: make before break. Heartbeat "draining", point every table that
   * points here at the successor's NAT, then let the process exit (the kernel forwards
   * until the instance stops). Bounded by the drain time.
   */
  private async drain(): Promise<boolean> {
    const ha = this.ha!;
    const t0 = this.clock.now();
    if (!ha.sigterm()) {
      this.log.warn({ event: 'agent.no_successor' }, 'no other healthy NAT, in this AZ or another: the routes stay here');
      return false;
    }
    const routes = this.task('routes');
    for (let attempt = 0; this.clock.now() - t0 < this.deps.ha!.drainMs; attempt++) {
      try {
        const left = await this.reconcileRoutes(false);
        if (left === 0) {
          this.log.info({ event: 'agent.handed_over', durationMs: this.clock.now() - t0, lingerMs: this.deps.ha!.lingerMs }, 'every route table handed to the successor');
          await this.clock.sleep(this.deps.ha!.lingerMs);
          return true;
        }
      } catch (err) {
        this.logs.routes.warn({ event: 'aws.retry', task: 'drain', err }, `hand-over failed: ${errorMessage(err)}; retrying`);
      }
      routes.attempts = attempt;
      await this.clock.sleep(backoff(attempt, 100, 1_000, this.random));
    }
    this.log.error({ event: 'agent.handover_timeout', drainMs: this.deps.ha!.drainMs }, 'the hand-over did not finish in time; exiting anyway');
    return false;
  }

  private async loop(signal: AbortSignal): Promise<number | undefined> {
    while (!signal.aborted) {
      for (const task of this.tasks) {
        if (signal.aborted) break;
        if (this.clock.now() < task.due || !task.gate()) continue;
        const exit = await this.runTask(task);
        if (exit !== undefined) return exit;
        // Ready once the routes are claimed: the ingress check after them does not delay it.
        if (task.name === 'routes') this.logReadyOnce();
      }
      this.logReadyOnce();
      if (signal.aborted) break;
      const open = this.tasks.filter((t) => t.gate());
      // A closed gate can open when the start-up window ends (routes without the EIP).
      const settling = open.length < this.tasks.length && this.clock.now() < this.settledBy ? [this.settledBy] : [];
      const next = Math.min(...open.map((t) => t.due), ...settling);
      const wake = new AbortController();
      this.wakeup = wake;
      const onStop = () => wake.abort();
      signal.addEventListener('abort', onStop, { once: true });
      await this.clock.sleep(Math.max(0, next - this.clock.now()), wake.signal);
      signal.removeEventListener('abort', onStop);
      this.wakeup = undefined;
    }
    return undefined;
  }

  private routesMayBeClaimed(): boolean {
    const [kernel, srcdst, eip] = [this.task('kernel'), this.task('srcdst'), this.task('eip')];
    if (!kernel.ok || !srcdst.ok) return false;
    // The EIP comes first (associated, or the stack has none for this AZ), so that no flow
    // is NATed from the instance's temporary public IP and cut when the EIP arrives.
    if (eip.succeeded) return true;
    if (this.clock.now() < this.settledBy) return false;
    this.once('eip.unavailable', () =>
      this.logs.eip.error(
        { event: 'eip.unavailable', az: this.config.az, lastError: eip.lastError, waitedMs: STARTUP_WINDOW_MS },
        `the AZ's Elastic IP could not be associated within ${STARTUP_WINDOW_MS / 1000} s of start-up (${eip.lastError ?? 'no answer'}); ` +
          "claiming the routes anyway: this AZ's traffic leaves from the instance's own public IP, not the Elastic IP, " +
          'and the flows NATed meanwhile will be cut when the Elastic IP is associated. Fix the cause (docs/agent.md lists the permissions)',
      ),
    );
    return true;
  }

  private task(name: TaskName): Task {
    return this.tasks.find((t) => t.name === name)!;
  }

  private async runTask(task: Task): Promise<number | undefined> {
    const boot = !task.succeeded;
    this.ranAt.set(task.name, this.clock.now());
    try {
      await task.run(boot);
      task.ok = true;
      task.succeeded = true;
      task.attempts = 0;
      task.identical = 0;
      task.lastFailure = undefined;
      task.refused = false;
      task.lastError = undefined;
      task.due = Math.min(this.clock.now() + task.intervalMs, task.nextDue ?? Infinity);
      task.nextDue = undefined;
      return undefined;
    } catch (err) {
      task.ok = false;
      task.lastError = errorMessage(err);
      const kind = classify(err);
      const aws = err instanceof AwsCallError ? { action: err.action, resource: err.resource, code: err.code } : {};
      let delay: number;
      if (this.clock.now() < this.settledBy && mayBeEventualConsistency(err)) {
        delay = backoff(task.attempts, SETTLING_BASE_MS, SETTLING_CAP_MS, this.random);
        this.logs[task.name].warn(
          { event: 'aws.not_yet', task: task.name, ...aws, err, retryInMs: delay },
          `${errorMessage(err)}; EC2 may not know this new instance or its role everywhere yet (eventual consistency); retrying soon`,
        );
      } else if (kind === 'retryable') {
        delay = backoff(task.attempts, 200, 30_000, this.random);
        this.logs[task.name].warn({ event: err instanceof AwsCallError ? 'aws.retry' : `${task.name}.retry`, task: task.name, ...aws, err, retryInMs: delay }, `${errorMessage(err)}; retrying`);
      } else if (kind === 'denied' || kind === 'rejected') {
        task.refused = true;
        delay = backoff(task.attempts, 30_000, 300_000, this.random);
        const hint =
          kind === 'denied'
            ? "check the instance role's IAM policy (docs/agent.md lists what it needs)"
            : 'EC2 rejected the request and would again after a restart; check the resource named (deleted, or changed outside hanat?)';
        this.logs[task.name].error({ event: `aws.${kind}`, task: task.name, ...aws, err, retryInMs: delay }, `${errorMessage(err)}; ${hint}; retrying slowly`);
      } else {
        const key = `${task.name}|${err instanceof Error ? err.name : typeof err}|${errorMessage(err)}`;
        task.identical = key === task.lastFailure ? task.identical + 1 : 1;
        task.lastFailure = key;
        delay = backoff(task.attempts, 1_000, 60_000, this.random);
        this.logs[task.name].error({ event: `${task.name}.failed`, task: task.name, ...aws, err, identical: task.identical, retryInMs: delay }, errorMessage(err));
        if (task.identical >= this.config.maxFailures) {
          this.log.fatal(
            { event: 'agent.giving_up', task: task.name, identical: task.identical },
            `the same failure ${task.identical} times in a row; exiting so that systemd restarts the agent`,
          );
          return EXIT_FAILED;
        }
      }
      task.attempts++;
      task.due = this.clock.now() + delay;
      return undefined;
    }
  }

  private logReadyOnce(): void {
    if (this.readyLogged || !this.task('routes').succeeded) return;
    this.readyLogged = true;
    const startedAt = this.deps.startedAt;
    this.log.info(
      { event: 'agent.ready', ...(startedAt !== undefined ? { durationMs: this.clock.now() - startedAt } : {}) },
      'NAT configured and routes claimed; watching',
    );
  }

  private async reconcileKernel(boot: boolean): Promise<void> {
    const t0 = this.clock.now();
    if (this.deps.imds && t0 >= this.cidrsDue) await this.refreshCidrs();
    const report = await this.deps.kernel.reconcile({ vpcCidrs: this.vpcCidrs, mac: this.id.mac, conntrackMax: this.config.conntrackMax });
    const durationMs = this.clock.now() - t0;
    if (boot) {
      this.logs.kernel.info({ event: 'kernel.configured', changes: report.changes, vpcCidrs: this.vpcCidrs, durationMs }, 'kernel is a NAT');
    } else if (report.changes.length > 0) {
      this.logs.kernel.warn({ event: 'kernel.drift_repaired', changes: report.changes, durationMs }, `kernel drift repaired: ${report.changes.join('; ')}`);
    }
  }

  private async refreshCidrs(): Promise<void> {
    this.cidrsDue = this.clock.now() + this.config.recheckIntervalMs;
    let text: string;
    try {
      text = await this.deps.imds!.get(`network/interfaces/macs/${this.id.mac}/vpc-ipv4-cidr-blocks`);
    } catch (err) {
      // An IMDS hiccup must not fail the kernel check: keep the CIDRs we have and try again next period.
      this.logs.kernel.warn({ event: 'imds.unavailable', err }, `could not re-read the VPC CIDRs: ${errorMessage(err)}`);
      return;
    }
    const cidrs = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
    if (cidrs.length === 0 || !cidrs.every(isIpv4Cidr)) {
      this.logs.kernel.warn({ event: 'imds.invalid', cidrs: text.slice(0, 200) }, 'IMDS returned unusable VPC CIDRs; keeping the previous ones');
      return;
    }
    if (cidrs.join() !== this.vpcCidrs.join()) {
      this.logs.kernel.info({ event: 'vpc.cidrs_changed', from: this.vpcCidrs, to: cidrs }, 'VPC CIDR blocks changed');
      this.vpcCidrs = cidrs;
      // A new block's hosts are dropped by the security group until it admits them.
      this.runSoon('ingress', 0);
    }
  }

  private async reconcileSourceDest(boot: boolean): Promise<void> {
    const t0 = this.clock.now();
    if (this.config.skipSourceDest) {
      if (boot) {
        this.logs.srcdst.warn(
          { event: 'srcdst.skipped', instanceId: this.id.instanceId, durationMs: this.clock.now() - t0 },
          'source/dest check left as it is (--skip-srcdst): this NAT cannot forward while the check is on',
        );
      }
      return;
    }
    const on = await this.api.sourceDestCheck(this.id.instanceId);
    if (on === false) {
      if (boot) this.logs.srcdst.info({ event: 'srcdst.already_disabled', instanceId: this.id.instanceId, durationMs: this.clock.now() - t0 }, 'source/dest check already off');
      return;
    }
    await this.api.disableSourceDestCheck(this.id.instanceId);
    this.logs.srcdst.info(
      { event: 'srcdst.disabled', instanceId: this.id.instanceId, drift: !boot, durationMs: this.clock.now() - t0 },
      boot ? 'source/dest check disabled' : 'source/dest check was back on; disabled it again',
    );
  }

  /**
   * The template's security group admits the VPC's first CIDR block; one associated later
   * would be dropped before this NAT saw its packets. Each block not yet admitted by an
   * all-traffic rule of the stack's group on our interface is added (docs/agent.md "VPC
   * CIDR blocks added later"). One DescribeSecurityGroups per run; a write only for a new block.
   */
  private async reconcileIngress(): Promise<void> {
    const t0 = this.clock.now();
    const groups = await this.api.stackSecurityGroups(this.config.stack, this.id.securityGroupIds!);
    if (groups.length === 0) {
      this.once('ingress.no_group', () =>
        this.logs.ingress.warn(
          { event: 'ingress.no_group', groupIds: this.id.securityGroupIds, stack: this.config.stack },
          `none of this interface's security groups carries ${TAG.stack}=${this.config.stack}; VPC CIDR blocks added later are not admitted by hanat`,
        ),
      );
      return;
    }
    for (const g of groups) {
      const admitted = (g.IpPermissions ?? []).filter((p) => p.IpProtocol === '-1').flatMap((p) => (p.IpRanges ?? []).map((r) => r.CidrIp ?? ''));
      for (const cidr of this.vpcCidrs) {
        if (admitted.some((a) => isIpv4Cidr(a) && cidrCovers(a, cidr))) continue;
        const result = await this.api.admitCidr(g.GroupId!, cidr);
        this.logs.ingress.info(
          { event: 'ingress.admitted', groupId: g.GroupId, cidr, already: result === 'present', durationMs: this.clock.now() - t0 },
          result === 'added' ? `security group ${g.GroupId} now admits VPC CIDR block ${cidr}` : `security group ${g.GroupId} already admits ${cidr} (another NAT added it)`,
        );
      }
    }
  }

  private async reconcileEip(boot: boolean): Promise<void> {
    const t0 = this.clock.now();
    const addresses = await this.api.addresses(this.config.stack, this.config.az);
    if (addresses.length === 0) {
      this.once('eip.none', () =>
        this.logs.eip.info(
          { event: 'eip.none', stack: this.config.stack, az: this.config.az, durationMs: this.clock.now() - t0 },
          'the stack has no Elastic IP for this AZ; egress uses the instance public IP',
        ),
      );
      return;
    }
    const sorted = [...addresses].sort((a, b) => a.AllocationId!.localeCompare(b.AllocationId!));
    const eip = sorted[0]!;
    if (sorted.length > 1) {
      this.once('eip.multiple', () =>
        this.logs.eip.warn({ event: 'eip.multiple', allocationIds: sorted.map((a) => a.AllocationId) }, `several Elastic IPs are tagged for ${this.config.az}; using ${eip.AllocationId}`),
      );
    }
    if (eip.NetworkInterfaceId === this.id.eniId) {
      this.once(`eip.kept:${eip.AllocationId}`, () =>
        this.logs.eip.info({ event: 'eip.kept', allocationId: eip.AllocationId, publicIp: eip.PublicIp, durationMs: this.clock.now() - t0 }, 'Elastic IP already on this instance'),
      );
      return;
    }
    const fromLeaving = eip.InstanceId !== undefined && this.ownAzServed && (this.ha?.leavingSiblings().includes(eip.InstanceId) ?? false);
    if (!boot && eip.AssociationId && !fromLeaving) {
      // Another NAT of this AZ took it after us (a replacement booting): the newest NAT wins, as with routes.
      this.once(`eip.elsewhere:${eip.AssociationId}`, () =>
        this.logs.eip.warn(
          { event: 'eip.elsewhere', allocationId: eip.AllocationId, networkInterfaceId: eip.NetworkInterfaceId, instanceId: eip.InstanceId },
          'the Elastic IP moved to another interface; not taking it back',
        ),
      );
      return;
    }
    if (fromLeaving) {
      this.logs.eip.warn(
        { event: 'eip.taken_from_sibling', allocationId: eip.AllocationId, instanceId: eip.InstanceId },
        `this NAT serves ${this.config.az}'s tables in place of ${eip.InstanceId}, which is leaving: taking the AZ's Elastic IP`,
      );
    }
    const associationId = await this.api.associateAddress(eip.AllocationId!, this.id.eniId, this.id.privateIp);
    // The auto-assigned public IP is gone, and with it every connection opened from it.
    this.deps.freshConnections?.();
    this.logs.eip.info(
      {
        event: 'eip.associated',
        allocationId: eip.AllocationId,
        publicIp: eip.PublicIp,
        associationId,
        previous: eip.NetworkInterfaceId ?? eip.InstanceId,
        durationMs: this.clock.now() - t0,
      },
      `Elastic IP ${eip.PublicIp ?? eip.AllocationId} associated`,
    );
  }

  /**
   * Returns how many tables still point here although HA wants them handed over
   * (0 when nothing is to hand over), for the SIGTERM drain.
   */
  private async reconcileRoutes(boot: boolean): Promise<number> {
    const t0 = this.clock.now();
    // HA's fast path (a takeover, a hand-over, a failback): write from the tables last
    // observed, saving a DescribeRouteTables on the outage's critical path, and observe
    // again shortly after to verify. Every other run observes first.
    const fast = this.fastRoutes && this.lastTables !== undefined && !boot;
    this.fastRoutes = false;
    const tables = fast ? this.lastTables! : await this.api.privateRouteTables(this.config.stack);
    if (fast) this.task('routes').nextDue = t0 + FAST_PATH_VERIFY_MS;
    else this.lastTables = tables;
    const mine: RouteTable[] = [];
    const taken: RouteTable[] = [];
    const unpinned = new Set<string>();
    const ha = this.ha;
    ha?.setAzs(tables.map((t) => tagValue(t.Tags, TAG.az)).filter((az): az is string => typeof az === 'string' && az !== ''));
    const takeover = new Set(ha?.takeoverAzs() ?? []);
    for (const t of tables) {
      const id = t.RouteTableId!;
      const serving = servingAz(t.Tags);
      if (serving === this.config.az) {
        mine.push(t);
        // A pin elsewhere was removed (hanat failover --restore): take the table back
        // from the NAT that served it meanwhile, however recent its claim.
        if (this.pinnedAway.delete(id)) unpinned.add(id);
      } else {
        this.lastClaimAt.delete(id);
        if (serving !== undefined && takeover.has(serving)) taken.push(t);
        if (serving !== undefined && tagValue(t.Tags, TAG.az) === this.config.az && this.pinnedAway.get(id) !== serving) {
          this.pinnedAway.set(id, serving);
          this.logs.routes.info({ event: 'route.skipped_override', routeTableId: id, override: serving }, `route table ${id} is pinned to ${serving}; leaving it`);
        }
      }
    }
    if (mine.length === 0 && taken.length === 0) {
      this.once('route.none', () =>
        this.logs.routes.warn({ event: 'route.none', stack: this.config.stack, az: this.config.az }, `no private route table of stack ${this.config.stack} is served by ${this.config.az}`),
      );
      return 0;
    }

    // Tables whose owner tags to write, by owner and hanat:owner-reason: one CreateTags per
    // group, and a run has one group but when it both claims its own and takes over a table.
    const toTag = new Map<string, { owner: string; reason: OwnerReason; ids: string[] }>();
    const tagLater = (owner: string, reason: OwnerReason, id: string) => {
      const key = `${owner} ${reason}`;
      const group = toTag.get(key) ?? { owner, reason, ids: [] };
      group.ids.push(id);
      toTag.set(key, group);
    };
    // Why this NAT serves table `t`, served by `az`: its own AZ's; another AZ's pinned here
    // (hanat failover); or one taken over, for why that AZ's NAT failed.
    const reasonFor = (t: RouteTable, az: string): OwnerReason => {
      if (tagValue(t.Tags, TAG.az) === this.config.az) return 'own-az';
      if (az === this.config.az) return 'manual-failover';
      return ha?.ownerReason(az) ?? 'own-az';
    };
    let toHandOver = 0;
    let ownServed = 0;
    const claim = async (t: RouteTable, reason: RouteDecision & { kind: 'claim' }, az: string): Promise<void> => {
      const id = t.RouteTableId!;
      const c0 = this.clock.now();
      const action = await this.api.pointDefaultRoute(id, this.id.eniId, reason.reason !== 'missing');
      this.lastClaimAt.set(id, this.clock.now());
      tagLater(this.id.instanceId, reasonFor(t, az), id);
      const fields = {
        routeTableId: id,
        destination: DEFAULT_ROUTE_CIDR,
        networkInterfaceId: this.id.eniId,
        action,
        reason: reason.reason,
        az,
        previous: describeTarget(reason.route),
        previousState: reason.route?.State,
        durationMs: this.clock.now() - c0,
      };
      this.logs.routes.info({ event: 'route.claimed', ...fields }, `route table ${id} now sends ${DEFAULT_ROUTE_CIDR} to ${this.id.eniId}`);
      if (az !== this.config.az) this.logs.routes.warn({ event: 'takeover', ...fields }, `took over ${az}'s route table ${id}: its NAT failed`);
      else if (reason.reason === 'failback') this.logs.routes.info({ event: 'failback', ...fields }, `took ${id} back from the successor`);
    };
    const results = await Promise.allSettled(
      [...mine.map((t) => ({ t, own: true })), ...taken.map((t) => ({ t, own: false }))].map(async ({ t, own }) => {
        const id = t.RouteTableId!;
        const route = defaultRoute(t);
        const az = servingAz(t.Tags)!;
        let decision: RouteDecision | undefined;
        if (ha) {
          // A pin just removed (hanat failover --restore) is the operator's word: no failback hold-down.
          const { decision: d } = ha.decide(own, route, unpinned.has(id) ? undefined : routeOwner(t.Tags)?.since);
          if (d.kind === 'leave' && d.until !== undefined) {
            const routes = this.task('routes');
            routes.nextDue = Math.min(routes.nextDue ?? Infinity, d.until);
          }
          if (d.kind === 'hand-over') {
            toHandOver++;
            const c0 = this.clock.now();
            const action = await this.api.pointDefaultRoute(id, d.to.eniId!, true);
            toHandOver--;
            tagLater(d.to.instanceId, ha.handOverReason(d.to, az), id);
            this.logs.routes.warn(
              { event: 'route.handed_over', routeTableId: id, az, to: d.to.instanceId, toAz: d.to.az, networkInterfaceId: d.to.eniId, action, state: ha.state, durationMs: this.clock.now() - c0 },
              `route table ${id} handed to ${d.to.az}'s NAT ${d.to.instanceId} (this NAT is ${ha.state})`,
            );
            return;
          }
          if (d.kind === 'leave') {
            this.once(`leave:${id}:${d.why}:${describeTarget(route) ?? ''}`, () =>
              this.logs.routes.info({ event: 'route.left', routeTableId: id, az, why: d.why, target: describeTarget(route) }, `route table ${id} left as it is: ${d.why}`),
            );
            return;
          }
          if (d.kind === 'claim') decision = { kind: 'claim', reason: d.reason, route };
          else if (d.kind === 'keep') decision = { kind: 'keep', fixOwnerTag: routeOwner(t.Tags)?.instanceId !== this.id.instanceId };
          else if (!own) return;
        }
        decision ??= decideRoute(t, this.id, this.lastClaimAt.get(id), unpinned.has(id) ? 'unpinned' : 'boot');
        if (decision.kind === 'yield') {
          // Yielding is for a newer NAT of this AZ (a replacement). A newer owner that is not
          // a live NAT here claimed the table from elsewhere: a manual failover pinned and
          // unpinned between two of our checks, or a NAT that is gone. The table is ours.
          const owner = await this.newerOwner(id, decision.owner, routeOwner(t.Tags)?.since);
          if (owner !== 'unknown' && owner.az !== this.config.az) decision = { kind: 'claim', reason: 'owner-elsewhere', route };
        }
        if (decision.kind === 'keep') {
          if (own) ownServed++;
          if (!this.lastClaimAt.has(id)) this.lastClaimAt.set(id, this.clock.now());
          if (decision.fixOwnerTag) tagLater(this.id.instanceId, reasonFor(t, az), id);
          const level = boot || decision.fixOwnerTag ? 'info' : 'debug';
          this.logs.routes[level]({ event: 'route.kept', routeTableId: id }, `route table ${id} already points at this instance`);
          return;
        }
        if (decision.kind === 'yield') {
          const owner = decision.owner;
          this.once(`yield:${id}:${owner}`, () =>
            this.logs.routes.warn(
              { event: 'route.yielded', routeTableId: id, owner },
              `route table ${id} was claimed by ${owner} after this instance did; leaving it to the newer NAT`,
            ),
          );
          return;
        }
        await claim(t, decision, az);
        if (own) ownServed++;
      }),
    );
    const at = new Date(this.clock.now());
    // This NAT's own claims first, then hand-overs, whatever order the route writes finished in.
    const groups = [...toTag.values()].sort((a, b) => Number(a.owner !== this.id.instanceId) - Number(b.owner !== this.id.instanceId) || a.owner.localeCompare(b.owner) || a.reason.localeCompare(b.reason));
    for (const { owner, reason, ids } of groups) {
      const c0 = this.clock.now();
      await this.api.tag(ids.sort(), ownerTags(owner, at, reason));
      this.logs.routes.info({ event: 'route.owner_tagged', routeTableIds: ids, owner, reason, durationMs: this.clock.now() - c0 }, `${TAG.owner} written`);
    }
    // What we wrote makes the tables last observed stale: the next fast path must observe first.
    if (toTag.size > 0 || results.some((r) => r.status === 'rejected')) this.lastTables = undefined;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    this.routesOk = failed === undefined;
    this.ownAzServed = failed === undefined && mine.length > 0 && ownServed === mine.length;
    this.eipFromLeavingSiblings();
    if (failed) throw failed.reason;
    this.logs.routes.debug({ event: 'routes.checked', tables: mine.length + taken.length, durationMs: this.clock.now() - t0 }, 'routes checked');
    return toHandOver;
  }

  /**
   * Once this NAT serves its AZ's tables in place of a sibling of the AZ that is leaving
   * (failed, stepped aside, draining: HA's `leavingSiblings`), the AZ's Elastic IP should
   * follow the traffic: check it now rather than at the next recheck. Routes first, then
   * the address: a draining sibling keeps its public address until its tables point here.
   */
  private eipFromLeavingSiblings(): void {
    const leaving = this.ha?.leavingSiblings() ?? [];
    for (const id of this.eipChecked) if (!leaving.includes(id)) this.eipChecked.delete(id);
    if (!this.ownAzServed) return;
    const fresh = leaving.filter((id) => !this.eipChecked.has(id));
    if (fresh.length === 0) return;
    for (const id of fresh) this.eipChecked.add(id);
    this.runSoon('eip', 0);
  }

  /** The stack's NATs from EC2, for the peer table: one DescribeInstances. */
  private async refreshPeers(): Promise<void> {
    const instances = await this.api.stackInstances(this.config.stack);
    this.ha!.updatePeers(instances);
    this.logs.peers.debug({ event: 'peers.refreshed', peers: instances.map((i) => `${i.instanceId} ${i.az} ${i.privateIp} ${i.state}`) }, 'peer list refreshed');
  }

  /** The suspect peers' EC2 status checks, for HA: one DescribeInstanceStatus. */
  private async readPeerStatus(): Promise<void> {
    const ids = this.ha!.suspects();
    if (ids.length === 0) return;
    const impaired = await this.api.statusImpaired(ids);
    this.logs.peers.debug({ event: 'peers.status_read', impaired: Object.fromEntries(impaired) }, 'suspect peers\' status checks read');
    this.ha!.statusChecks(impaired);
  }

  /**
   * Where the newer owner of a table serves, looked up once per owner claim and
   * recheck interval (a second NAT left in the AZ must not cost a call every route
   * check). 'unknown' when EC2 could not say: the route then stays with that owner
   * for this check, and the other tables are still served.
   */
  private async newerOwner(tableId: string, owner: string, since: number | undefined): Promise<{ az: string | undefined } | 'unknown'> {
    const now = this.clock.now();
    const cached = this.ownerAzCache.get(tableId);
    if (cached && cached.owner === owner && cached.since === since && now < cached.until) return { az: cached.az };
    try {
      const az = await this.api.liveInstanceAz(owner);
      this.ownerAzCache.set(tableId, { owner, since, az, until: now + this.config.recheckIntervalMs });
      return { az };
    } catch (err) {
      this.once(`owner-unknown:${tableId}:${owner}`, () =>
        this.logs.routes.warn(
          { event: 'route.owner_unknown', routeTableId: tableId, owner, err },
          `could not look up ${owner}, the newer owner of ${tableId} (${errorMessage(err)}); leaving the route with it for now`,
        ),
      );
      return 'unknown';
    }
  }

  private once(key: string, fn: () => void): void {
    if (this.noticed.has(key)) return;
    this.noticed.add(key);
    fn();
  }
}
