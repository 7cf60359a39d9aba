/**
 * Auto Scaling groups of one region. A group keeps its desired capacity: it
 * launches instances from its launch template (pending, then `running` after
 * the boot delay through the InstanceLauncher), replaces instances marked
 * Unhealthy or terminated behind its back, and retries failed launches.
 * Work is level-triggered: every change calls reconcile(), which compares the
 * group with its desired capacity and starts only what is missing.
 *
 * Behaviour follows the Amazon EC2 Auto Scaling API Reference and User Guide
 * ("Health checks", "Replace unhealthy instances"); see EMULATOR.md.
 */
import type { Ec2, Instance, LaunchTemplateData } from '../ec2/state.js';
import type { Env } from '../env.js';
import { AwsError, isAwsError, validationError } from '../errors.js';
import { tagsFromList, type Tags } from '../tags.js';
import { scalar } from '../text.js';

export type LifecycleState = 'Pending' | 'InService' | 'Terminating' | 'Terminated';

export interface GroupInstance {
  instanceId: string;
  az: string;
  instanceType: string;
  lifecycle: LifecycleState;
  health: 'Healthy' | 'Unhealthy';
  launchTemplate: { id: string; name: string; version: string };
  protectedFromScaleIn: boolean;
  launchedAt: number;
  /** When it entered InService: the health check grace period starts then. */
  inServiceAt?: number | undefined;
}

export interface GroupTag {
  key: string;
  value: string;
  propagateAtLaunch: boolean;
}

export interface Activity {
  id: string;
  groupName: string;
  description: string;
  cause: string;
  start: Date;
  end?: Date | undefined;
  status: 'InProgress' | 'Successful' | 'Failed' | 'Cancelled';
  statusMessage?: string | undefined;
  progress: number;
  details: string;
}

export interface Group {
  name: string;
  arn: string;
  launchTemplate: { id?: string | undefined; name?: string | undefined; version?: string | undefined };
  min: number;
  max: number;
  desired: number;
  subnets: string[];
  healthCheckType: string;
  healthCheckGracePeriod: number;
  defaultCooldown: number;
  tags: GroupTag[];
  instances: Map<string, GroupInstance>;
  created: Date;
  deleting: boolean;
  terminationPolicies: string[];
  newInstancesProtectedFromScaleIn: boolean;
  capacityRebalance: boolean;
  /** No launch before this time (after a failed launch). */
  retryAt: number;
  retryCancel?: (() => void) | undefined;
  /** Launch attempts in flight (instance not yet created). */
  launching: number;
  /** The subnet each in-flight launch will try first, for AZ balance. */
  launchingIn: string[];
}

export interface GroupSpec {
  name: string;
  launchTemplate: Group['launchTemplate'];
  min: number;
  max: number;
  desired?: number | undefined;
  subnets: string[];
  healthCheckType?: string | undefined;
  healthCheckGracePeriod?: number | undefined;
  defaultCooldown?: number | undefined;
  tags?: GroupTag[] | undefined;
  terminationPolicies?: string[] | undefined;
  newInstancesProtectedFromScaleIn?: boolean | undefined;
  capacityRebalance?: boolean | undefined;
}

export type GroupUpdate = Partial<Omit<GroupSpec, 'name' | 'tags'>>;

type ImageResolver = (imageId: string) => Promise<string>;

export class AutoScaling {
  readonly groups = new Map<string, Group>();
  readonly activities: Activity[] = [];
  private listeners: (() => void)[] = [];

  constructor(
    readonly env: Env,
    private readonly ec2: Ec2,
    private readonly resolveImage: ImageResolver,
  ) {
    ec2.onShuttingDown((inst) => this.instanceTerminated(inst));
    ec2.onImpaired((inst) => this.instanceImpaired(inst));
  }

  group(name: string): Group {
    const g = this.groups.get(name);
    if (!g) throw validationError(`AutoScalingGroup name not found - AutoScalingGroup '${name}' not found`);
    return g;
  }

  /** The group an instance belongs to. */
  memberOf(instanceId: string): { group: Group; member: GroupInstance } | undefined {
    for (const group of this.groups.values()) {
      const member = group.instances.get(instanceId);
      if (member) return { group, member };
    }
    return undefined;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private checkBounds(min: number, max: number, desired: number): void {
    if (min > max) throw validationError(`Max bound, ${max}, must be greater than or equal to min bound, ${min}`);
    if (desired < min || desired > max) throw validationError(`Desired capacity:${desired} must be between the specified min size:${min} and max size:${max}`);
  }

  private checkLaunchTemplate(lt: Group['launchTemplate']): void {
    try {
      const t = this.ec2.launchTemplate({ id: lt.id, name: lt.name });
      this.ec2.launchTemplateVersion(t, lt.version);
    } catch (err) {
      if (isAwsError(err)) throw validationError(`You must use a valid fully-formed launch template. ${err.message}`);
      throw err;
    }
  }

  private checkSubnets(subnets: string[]): void {
    if (subnets.length === 0) throw validationError('At least one Availability Zone or VPC Subnet is required.');
    for (const s of subnets) {
      if (!this.ec2.subnets.has(s)) throw validationError(`The subnet ID '${s}' does not exist`);
    }
  }

  createGroup(spec: GroupSpec): Group {
    if (this.groups.has(spec.name)) throw new AwsError('AlreadyExists', `AutoScalingGroup by this name already exists - A group with the name ${spec.name} already exists`);
    const desired = spec.desired ?? spec.min;
    this.checkBounds(spec.min, spec.max, desired);
    this.checkLaunchTemplate(spec.launchTemplate);
    this.checkSubnets(spec.subnets);
    const { env } = this;
    const group: Group = {
      name: spec.name,
      arn: `arn:aws:autoscaling:${env.region}:${env.accountId}:autoScalingGroup:${env.ids.uuid()}:autoScalingGroupName/${spec.name}`,
      launchTemplate: { ...spec.launchTemplate },
      min: spec.min,
      max: spec.max,
      desired,
      subnets: [...spec.subnets],
      healthCheckType: spec.healthCheckType ?? 'EC2',
      healthCheckGracePeriod: spec.healthCheckGracePeriod ?? 0,
      defaultCooldown: spec.defaultCooldown ?? 300,
      tags: spec.tags ?? [],
      instances: new Map(),
      created: new Date(env.clock.now()),
      deleting: false,
      terminationPolicies: spec.terminationPolicies ?? ['Default'],
      newInstancesProtectedFromScaleIn: spec.newInstancesProtectedFromScaleIn ?? false,
      capacityRebalance: spec.capacityRebalance ?? false,
      retryAt: 0,
      launching: 0,
      launchingIn: [],
    };
    this.groups.set(group.name, group);
    this.reconcile(group);
    return group;
  }

  updateGroup(name: string, u: GroupUpdate): void {
    const g = this.group(name);
    if (g.deleting) throw new AwsError('ScalingActivityInProgress', `The group ${name} is being deleted.`);
    let min = u.min ?? g.min;
    let max = u.max ?? g.max;
    let desired = u.desired ?? g.desired;
    if (u.desired === undefined) {
      if (u.min !== undefined && desired < min) desired = min;
      if (u.max !== undefined && desired > max) desired = max;
    }
    if (u.min === undefined && u.max !== undefined && min > max) min = max;
    if (u.max === undefined && u.min !== undefined && max < min) max = min;
    this.checkBounds(min, max, desired);
    if (u.launchTemplate) this.checkLaunchTemplate(u.launchTemplate);
    if (u.subnets) this.checkSubnets(u.subnets);
    g.min = min;
    g.max = max;
    g.desired = desired;
    if (u.launchTemplate) g.launchTemplate = { ...u.launchTemplate };
    if (u.subnets) g.subnets = [...u.subnets];
    if (u.healthCheckType !== undefined) g.healthCheckType = u.healthCheckType;
    if (u.healthCheckGracePeriod !== undefined) g.healthCheckGracePeriod = u.healthCheckGracePeriod;
    if (u.defaultCooldown !== undefined) g.defaultCooldown = u.defaultCooldown;
    if (u.terminationPolicies !== undefined) g.terminationPolicies = u.terminationPolicies;
    if (u.newInstancesProtectedFromScaleIn !== undefined) g.newInstancesProtectedFromScaleIn = u.newInstancesProtectedFromScaleIn;
    if (u.capacityRebalance !== undefined) g.capacityRebalance = u.capacityRebalance;
    this.reconcile(g);
  }

  setTags(name: string, tags: GroupTag[]): void {
    this.group(name).tags = tags;
    this.notify();
  }

  /** Deletes a group; with `force`, terminates its instances first. Resolves when the group is gone. */
  async deleteGroup(name: string, force: boolean): Promise<void> {
    const g = this.group(name);
    if (!force && g.instances.size > 0) {
      throw new AwsError('ResourceInUse', 'You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.');
    }
    if (!g.deleting) {
      g.deleting = true;
      g.min = 0;
      g.max = 0;
      g.desired = 0;
      g.retryCancel?.();
    }
    await Promise.all([...g.instances.values()].map((m) => this.terminateMember(g, m, 'the group is being deleted')));
    await this.until(() => g.instances.size === 0 && g.launching === 0);
    this.groups.delete(name);
    this.notify();
  }

  setInstanceHealth(instanceId: string, health: 'Healthy' | 'Unhealthy', respectGracePeriod: boolean): void {
    const found = this.memberOf(instanceId);
    if (!found) throw validationError(`Instance Id not found - No managed instance found for instance ID: ${instanceId}`);
    const { group, member } = found;
    if (respectGracePeriod && health === 'Unhealthy' && this.env.clock.now() - member.launchedAt < group.healthCheckGracePeriod * 1000) return;
    member.health = health;
    this.reconcile(group);
  }

  terminateInGroup(instanceId: string, decrement: boolean): Activity {
    const found = this.memberOf(instanceId);
    if (!found) throw validationError(`Instance Id not found - No managed instance found for instance ID: ${instanceId}`);
    const { group, member } = found;
    if (decrement) {
      if (group.desired <= group.min) {
        throw validationError(
          `Currently, desiredSize equals minSize (${group.min}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.`,
        );
      }
      group.desired--;
    }
    const cause = decrement
      ? `At ${new Date(this.env.clock.now()).toISOString()} instance ${instanceId} was taken out of service in response to a user request, shrinking the capacity from ${group.desired + 1} to ${group.desired}.`
      : `At ${new Date(this.env.clock.now()).toISOString()} instance ${instanceId} was taken out of service in response to a user request.`;
    const activity = this.startActivity(group, `Terminating EC2 instance: ${instanceId}`, cause);
    void this.terminateMember(group, member, cause, activity);
    return activity;
  }

  /** Resolves once the group has its desired capacity in service; rejects when a launch fails meanwhile. */
  waitForCapacity(name: string): Promise<void> {
    const since = this.env.clock.now();
    return new Promise((resolve, reject) => {
      const check = () => {
        const g = this.groups.get(name);
        if (!g) return done(new Error(`group ${name} was deleted`));
        const inService = [...g.instances.values()].filter((m) => m.lifecycle === 'InService').length;
        if (inService >= g.desired) return done();
        const failed = this.activities.find((a) => a.groupName === name && a.status === 'Failed' && a.start.getTime() >= since);
        if (failed) return done(new Error(failed.statusMessage ?? failed.description));
      };
      const done = (err?: Error) => {
        this.listeners = this.listeners.filter((l) => l !== check);
        if (err) reject(err);
        else resolve();
      };
      this.listeners.push(check);
      check();
    });
  }

  private until(cond: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!cond()) return;
        this.listeners = this.listeners.filter((l) => l !== check);
        resolve();
      };
      this.listeners.push(check);
      check();
    });
  }

  // ------------------------------------------------------------------ the loop

  /** Level-triggered: compare the group with its desired capacity, start what is missing. */
  reconcile(g: Group): void {
    if (!this.groups.has(g.name)) return;
    for (const m of g.instances.values()) {
      if (m.health === 'Unhealthy' && (m.lifecycle === 'InService' || m.lifecycle === 'Pending')) {
        const cause = `At ${new Date(this.env.clock.now()).toISOString()} an instance was taken out of service in response to a user health-check.`;
        void this.terminateMember(g, m, cause);
      }
    }
    const live = [...g.instances.values()].filter((m) => m.lifecycle === 'Pending' || m.lifecycle === 'InService');
    const missing = g.desired - live.length - g.launching;
    if (missing > 0 && !g.deleting) {
      const now = this.env.clock.now();
      if (now >= g.retryAt) {
        for (let i = 0; i < missing; i++) this.launch(g);
      } else if (!g.retryCancel) {
        g.retryCancel = this.env.clock.schedule(g.retryAt - now, () => {
          g.retryCancel = undefined;
          this.reconcile(g);
        });
      }
    } else if (live.length > g.desired) {
      const extra = live
        .filter((m) => !m.protectedFromScaleIn || g.deleting)
        .sort((a, b) => a.launchedAt - b.launchedAt)
        .slice(0, live.length - g.desired);
      for (const m of extra) {
        const cause = `At ${new Date(this.env.clock.now()).toISOString()} a user request explicitly set group desired capacity changing the desired capacity from ${live.length} to ${g.desired}.`;
        void this.terminateMember(g, m, cause);
      }
    }
    this.notify();
  }

  private startActivity(g: Group, description: string, cause: string): Activity {
    const a: Activity = {
      id: this.env.ids.uuid(),
      groupName: g.name,
      description,
      cause,
      start: new Date(this.env.clock.now()),
      status: 'InProgress',
      progress: 0,
      details: JSON.stringify({ 'Subnet ID': g.subnets.join(','), 'Availability Zone': '' }),
    };
    this.activities.unshift(a);
    if (this.activities.length > 1000) this.activities.length = 1000;
    return a;
  }

  private finishActivity(a: Activity, status: Activity['status'], message?: string): void {
    a.status = status;
    a.progress = 100;
    a.end = new Date(this.env.clock.now());
    if (message) a.statusMessage = message;
  }

  /** Subnets ordered by how few live instances the group has in their AZ (AZ balance). */
  private subnetsByBalance(g: Group): string[] {
    const count = new Map<string, number>();
    for (const m of g.instances.values()) if (m.lifecycle === 'Pending' || m.lifecycle === 'InService') count.set(m.az, (count.get(m.az) ?? 0) + 1);
    for (const s of g.launchingIn) {
      const az = this.ec2.subnets.get(s)?.az ?? '';
      count.set(az, (count.get(az) ?? 0) + 1);
    }
    return [...g.subnets].sort((a, b) => (count.get(this.ec2.subnets.get(a)?.az ?? '') ?? 0) - (count.get(this.ec2.subnets.get(b)?.az ?? '') ?? 0));
  }

  private launch(g: Group): void {
    const cause = `At ${new Date(this.env.clock.now()).toISOString()} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from ${g.instances.size} to ${g.desired}.`;
    const activity = this.startActivity(g, 'Launching a new EC2 instance', cause);
    const subnets = this.subnetsByBalance(g);
    const first = subnets[0]!;
    g.launching++;
    g.launchingIn.push(first);
    const settled = () => {
      g.launching--;
      g.launchingIn.splice(g.launchingIn.indexOf(first), 1);
    };
    void (async () => {
      let instance: Instance | undefined;
      try {
        instance = await this.createInstance(g, subnets);
      } catch (err) {
        settled();
        const message = err instanceof Error ? err.message : String(err);
        activity.description = 'Launching a new EC2 instance.  Status Reason: ' + message;
        this.finishActivity(activity, 'Failed', `${message} Launching EC2 instance failed.`);
        this.env.log(`autoscaling ${g.name}: launch failed: ${message}`);
        this.backOff(g);
        return;
      }
      settled();
      activity.description = `Launching a new EC2 instance: ${instance.id}`;
      const member: GroupInstance = {
        instanceId: instance.id,
        az: instance.az,
        instanceType: instance.instanceType,
        lifecycle: 'Pending',
        health: 'Healthy',
        launchTemplate: instance.launchTemplate!,
        protectedFromScaleIn: g.newInstancesProtectedFromScaleIn,
        launchedAt: this.env.clock.now(),
      };
      g.instances.set(instance.id, member);
      this.notify();
      if (!g.deleting) await this.env.clock.sleep(this.env.bootDelayMs);
      if (member.lifecycle !== 'Pending') return;
      if (g.deleting) {
        this.finishActivity(activity, 'Cancelled', 'The group is being deleted.');
        await this.terminateMember(g, member, 'the group is being deleted');
        return;
      }
      try {
        await this.ec2.boot(instance.id);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.finishActivity(activity, 'Failed', `Instance failed to start: ${message}`);
        g.instances.delete(instance.id);
        this.backOff(g);
        return;
      }
      if (member.lifecycle !== 'Pending') return;
      const inst = this.ec2.instances.get(instance.id);
      if (inst?.state !== 'running') return;
      member.lifecycle = 'InService';
      member.inServiceAt = this.env.clock.now();
      this.finishActivity(activity, 'Successful');
      this.reconcile(g);
    })();
  }

  private backOff(g: Group): void {
    g.retryAt = this.env.clock.now() + this.env.latency.launchRetry();
    this.reconcile(g);
  }

  private async createInstance(g: Group, subnets: string[]): Promise<Instance> {
    const lt = this.ec2.launchTemplate({ id: g.launchTemplate.id, name: g.launchTemplate.name });
    const version = this.ec2.launchTemplateVersion(lt, g.launchTemplate.version);
    const data: LaunchTemplateData = version.data;
    const nic = (data.NetworkInterfaces as Record<string, unknown>[] | undefined)?.find((n) => Number(n.DeviceIndex ?? 0) === 0);
    const tags: Tags = new Map();
    const interfaceTags: Tags = new Map();
    for (const spec of (data.TagSpecifications as { ResourceType?: string; Tags?: { Key?: string; Value?: string }[] }[] | undefined) ?? []) {
      if (spec.ResourceType === 'instance') for (const [k, v] of tagsFromList(spec.Tags)) tags.set(k, v);
      if (spec.ResourceType === 'network-interface') for (const [k, v] of tagsFromList(spec.Tags)) interfaceTags.set(k, v);
    }
    for (const t of g.tags) if (t.propagateAtLaunch) tags.set(t.key, t.value);
    tags.set('aws:autoscaling:groupName', g.name);
    tags.set('aws:ec2launchtemplate:id', lt.id);
    tags.set('aws:ec2launchtemplate:version', String(version.number));
    const md = (data.MetadataOptions as Record<string, unknown> | undefined) ?? {};
    const profile = data.IamInstanceProfile as { Arn?: string; Name?: string } | undefined;
    const imageId = await this.resolveImage(scalar(data.ImageId));
    let lastError: unknown;
    for (const subnetId of subnets) {
      try {
        return this.ec2.launchInstance({
          subnetId,
          imageId,
          instanceType: scalar(data.InstanceType ?? 'm1.small'),
          keyName: data.KeyName as string | undefined,
          iamInstanceProfile: profile?.Arn ?? profile?.Name,
          metadata: {
            ...(md.HttpTokens ? { httpTokens: md.HttpTokens as 'optional' | 'required' } : {}),
            ...(md.HttpPutResponseHopLimit !== undefined ? { httpPutResponseHopLimit: Number(md.HttpPutResponseHopLimit) } : {}),
            ...(md.HttpEndpoint ? { httpEndpoint: md.HttpEndpoint as 'enabled' | 'disabled' } : {}),
            ...(md.InstanceMetadataTags ? { instanceMetadataTags: md.InstanceMetadataTags as 'enabled' | 'disabled' } : {}),
          },
          userData: data.UserData as string | undefined,
          securityGroupIds: (nic?.Groups as string[] | undefined) ?? (data.SecurityGroupIds as string[] | undefined),
          associatePublicIp: nic?.AssociatePublicIpAddress === undefined ? undefined : scalar(nic.AssociatePublicIpAddress) === 'true',
          tags,
          interfaceTags,
          launchTemplate: { id: lt.id, name: lt.name, version: String(version.number) },
        });
      } catch (err) {
        lastError = err;
        // Capacity, or a type this AZ does not offer: the group tries its other AZs.
        if (!(isAwsError(err) && (err.code === 'InsufficientInstanceCapacity' || err.code === 'Unsupported'))) throw err;
      }
    }
    throw lastError instanceof Error ? lastError : new Error('no subnet to launch in');
  }

  private async terminateMember(g: Group, m: GroupInstance, cause: string, activity?: Activity): Promise<void> {
    if (m.lifecycle === 'Terminating' || m.lifecycle === 'Terminated') return;
    m.lifecycle = 'Terminating';
    const a = activity ?? this.startActivity(g, `Terminating EC2 instance: ${m.instanceId}`, cause);
    this.notify();
    try {
      await this.ec2.terminate(m.instanceId, 'Service initiated');
    } catch (err) {
      this.env.log(`autoscaling ${g.name}: terminate ${m.instanceId}: ${String(err)}`);
    }
    m.lifecycle = 'Terminated';
    g.instances.delete(m.instanceId);
    this.finishActivity(a, 'Successful');
    this.reconcile(g);
  }

  /**
   * EC2 health check: an InService instance whose status checks are impaired is marked
   * Unhealthy, terminated and replaced, once the group's health check grace period (from
   * InService) is over. Auto Scaling notices after its health-check delay. Without an
   * instance maintenance policy a health check failure is replaced by "terminate and launch"
   * (User Guide, "Instance maintenance policy for Auto Scaling group": new instances are
   * provisioned at the same time the existing ones are terminated).
   */
  private instanceImpaired(inst: Instance): void {
    const found = this.memberOf(inst.id);
    if (!found || found.member.lifecycle !== 'InService') return;
    const { group, member } = found;
    const graceMs = this.env.healthCheckGraceOverrideMs ?? group.healthCheckGracePeriod * 1000;
    const graceLeft = Math.max(0, (member.inServiceAt ?? member.launchedAt) + graceMs - this.env.clock.now());
    this.env.clock.schedule(graceLeft + this.env.latency.healthCheck(), () => {
      if (group.instances.get(member.instanceId) !== member || member.lifecycle !== 'InService') return;
      const ec2Instance = this.ec2.instances.get(member.instanceId);
      if (!ec2Instance || this.ec2.instanceStatus(ec2Instance).instance !== 'impaired') return;
      member.health = 'Unhealthy';
      const cause = `At ${new Date(this.env.clock.now()).toISOString()} an instance was taken out of service in response to an EC2 instance status checks failure.`;
      this.env.log(`autoscaling ${group.name}: ${member.instanceId} is Unhealthy (EC2 status checks impaired)`);
      void this.terminateMember(group, member, cause);
      // A health check replacement is "terminate and launch" by default: the new instance is
      // launched while the old one is being terminated, not after.
      this.reconcile(group);
    });
  }

  /**
   * An instance was terminated outside the group's control (TerminateInstances, the lab killing
   * it): the EC2 health check finds it no longer running (shutting-down or terminated) and the
   * group replaces it, without waiting for its shutdown to finish.
   */
  private instanceTerminated(inst: Instance): void {
    const found = this.memberOf(inst.id);
    if (!found || found.member.lifecycle === 'Terminating' || found.member.lifecycle === 'Terminated') return;
    const { group, member } = found;
    this.env.clock.schedule(this.env.latency.healthCheck(), () => {
      if (group.instances.get(member.instanceId) !== member) return;
      const cause = `At ${new Date(this.env.clock.now()).toISOString()} an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped.`;
      const a = this.startActivity(group, `Terminating EC2 instance: ${member.instanceId}`, cause);
      member.lifecycle = 'Terminated';
      group.instances.delete(member.instanceId);
      this.finishActivity(a, 'Successful');
      this.reconcile(group);
    });
  }
}
