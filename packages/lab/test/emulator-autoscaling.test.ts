/**
 * Auto Scaling through the real SDK, with the emulator on a manual clock so
 * boot delays and retries are driven by the test, not slept through.
 */
import {
  CreateAutoScalingGroupCommand,
  DeleteAutoScalingGroupCommand,
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeScalingActivitiesCommand,
  SetDesiredCapacityCommand,
  SetInstanceHealthCommand,
  TerminateInstanceInAutoScalingGroupCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, CreateSubnetCommand, CreateVpcCommand, DescribeInstancesCommand, DescribeInstanceStatusCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InstanceLauncher, LaunchSpec } from '../src/contract.js';
import { ManualClock } from '../src/emulator/index.js';
import { eventually, rejection, startLab, type Harness } from './emulator/helpers.js';

const BOOT_DELAY = 30_000;

class RecordingLauncher implements InstanceLauncher {
  launched: LaunchSpec[] = [];
  terminated: string[] = [];
  failNext = 0;
  /** While set, terminate() waits for it (an instance stays shutting-down). */
  hold: Promise<void> | undefined;
  launch(spec: LaunchSpec): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new Error('namespace could not be created'));
    }
    this.launched.push(spec);
    return Promise.resolve();
  }
  terminate(instanceId: string): Promise<void> {
    this.terminated.push(instanceId);
    return this.hold ?? Promise.resolve();
  }
}

let h: Harness;
let clock: ManualClock;
let launcher: RecordingLauncher;
let subnetA: string;
let subnetB: string;

beforeEach(async () => {
  clock = new ManualClock();
  launcher = new RecordingLauncher();
  h = await startLab({ clock, launcher, bootDelayMs: BOOT_DELAY });
  const vpc = (await h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!;
  subnetA = (await h.ec2.send(new CreateSubnetCommand({ VpcId: vpc.VpcId, CidrBlock: '10.0.0.0/24', AvailabilityZone: 'us-east-1a' }))).Subnet!.SubnetId!;
  subnetB = (await h.ec2.send(new CreateSubnetCommand({ VpcId: vpc.VpcId, CidrBlock: '10.0.1.0/24', AvailabilityZone: 'us-east-1b' }))).Subnet!.SubnetId!;
  await h.ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: 'nat',
      LaunchTemplateData: {
        ImageId: 'resolve:ssm:/hanat/ami/arm64',
        InstanceType: 't4g.nano',
        UserData: Buffer.from('#!/bin/sh\nexec hanat-agent\n').toString('base64'),
        NetworkInterfaces: [{ DeviceIndex: 0, AssociatePublicIpAddress: true }],
        MetadataOptions: { HttpTokens: 'required', InstanceMetadataTags: 'enabled' },
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'hanat:stack', Value: 'lab' }] }],
      },
    }),
  );
});
afterEach(async () => {
  await h.close();
});

async function createGroup(name: string, subnets: string[], extra: { min?: number; max?: number; desired?: number; grace?: number } = {}) {
  await h.asg.send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: name,
      LaunchTemplate: { LaunchTemplateName: 'nat', Version: '$Latest' },
      MinSize: extra.min ?? 1,
      MaxSize: extra.max ?? 1,
      DesiredCapacity: extra.desired ?? 1,
      VPCZoneIdentifier: subnets.join(','),
      HealthCheckGracePeriod: extra.grace ?? 0,
      Tags: [
        { Key: 'hanat:az', Value: 'us-east-1a', PropagateAtLaunch: true },
        { Key: 'group-only', Value: 'x', PropagateAtLaunch: false },
      ],
    }),
  );
}

async function group(name: string) {
  return (await h.asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups![0]!;
}

async function instanceStates(): Promise<Record<string, string>> {
  const out = await h.ec2.send(new DescribeInstancesCommand({}));
  return Object.fromEntries(out.Reservations!.flatMap((r) => r.Instances!).map((i) => [i.InstanceId!, i.State!.Name!]));
}

/** Advances the clock past the boot delay and waits for the group to be in service. */
async function boot(name: string, count = 1) {
  await clock.advance(BOOT_DELAY);
  return eventually(async () => {
    const g = await group(name);
    const inService = g.Instances!.filter((i) => i.LifecycleState === 'InService');
    return inService.length === count ? g : undefined;
  }, 3000, `${name} in service`);
}

describe('launching', () => {
  it('holds a new instance pending for the boot delay, then launches it through the launcher', async () => {
    await createGroup('nat-a', [subnetA]);
    const pending = await group('nat-a');
    expect(pending.Instances).toHaveLength(1);
    expect(pending.Instances![0]!.LifecycleState).toBe('Pending');
    const id = pending.Instances![0]!.InstanceId!;
    expect((await instanceStates())[id]).toBe('pending');
    expect(launcher.launched).toEqual([]);

    await clock.advance(BOOT_DELAY - 1);
    expect(launcher.launched).toEqual([]);
    const g = await boot('nat-a');
    expect(g.Instances![0]).toMatchObject({ InstanceId: id, LifecycleState: 'InService', HealthStatus: 'Healthy', AvailabilityZone: 'us-east-1a' });
    expect((await instanceStates())[id]).toBe('running');

    expect(launcher.launched).toHaveLength(1);
    const spec = launcher.launched[0]!;
    expect(spec).toMatchObject({ instanceId: id, az: 'us-east-1a', subnetId: subnetA, subnetCidr: '10.0.0.0/24', privateIp: '10.0.0.10', vpcCidrs: ['10.0.0.0/16'], userData: '#!/bin/sh\nexec hanat-agent\n' });
    expect(spec.tags).toMatchObject({ 'hanat:stack': 'lab', 'hanat:az': 'us-east-1a', 'aws:autoscaling:groupName': 'nat-a' });
    expect(spec.tags['group-only']).toBeUndefined();

    const inst = (await h.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
    expect(inst.SourceDestCheck).toBe(true);
    expect(inst.PublicIpAddress).toMatch(/^198\.19\./);
    expect(inst.ImageId).toBe('ami-0a1b2c3d4e5f60001');
    expect(inst.NetworkInterfaces![0]!.MacAddress).toBe(spec.mac);
  });

  it('spreads instances over the group\'s subnets and follows desired capacity', async () => {
    await createGroup('nat', [subnetA, subnetB], { min: 1, max: 3, desired: 2 });
    const g = await boot('nat', 2);
    expect(g.Instances!.map((i) => i.AvailabilityZone).sort()).toEqual(['us-east-1a', 'us-east-1b']);
    await h.asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: 'nat', DesiredCapacity: 1 }));
    await eventually(async () => ((await group('nat')).Instances!.length === 1 ? true : undefined), 3000, 'scale in');
    const bad = await rejection(h.asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: 'nat', DesiredCapacity: 5 })));
    expect(bad.name).toBe('ValidationError');
    expect(bad.message).toBe('Desired capacity:5 must be between the specified min size:1 and max size:3');
    const missing = await rejection(h.asg.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: 'nope', DesiredCapacity: 1 })));
    expect(missing.name).toBe('ValidationError');
  });

  it('retries a launch that failed because the zone had no capacity, once the zone recovers', async () => {
    h.emu.blockLaunches('us-east-1a');
    await createGroup('nat-a', [subnetA]);
    const failed = await eventually(async () => {
      const acts = (await h.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: 'nat-a' }))).Activities!;
      return acts.find((a) => a.StatusCode === 'Failed');
    }, 3000, 'failed activity');
    expect(failed.StatusMessage).toContain('We currently do not have sufficient t4g.nano capacity in the Availability Zone you requested (us-east-1a)');
    expect((await group('nat-a')).Instances).toEqual([]);
    h.emu.blockLaunches('us-east-1a', false);
    await clock.advance(1000);
    await eventually(async () => ((await group('nat-a')).Instances!.length === 1 ? true : undefined), 3000, 'retried launch');
    await boot('nat-a');
  });

  it('fails the launch with AWS\'s error when a propagated tag key cannot be shown in instance metadata, as EC2 does', async () => {
    await h.asg.send(
      new CreateAutoScalingGroupCommand({
        AutoScalingGroupName: 'nat-a',
        LaunchTemplate: { LaunchTemplateName: 'nat', Version: '$Latest' },
        MinSize: 1,
        MaxSize: 1,
        DesiredCapacity: 1,
        VPCZoneIdentifier: subnetA,
        Tags: [{ Key: 'Cost Center', Value: '42', PropagateAtLaunch: true }],
      }),
    );
    const failed = await eventually(async () => {
      const acts = (await h.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: 'nat-a' }))).Activities!;
      return acts.find((a) => a.StatusCode === 'Failed');
    }, 3000, 'failed activity');
    expect(failed.StatusMessage).toContain(
      "'Cost Center' is not a valid tag key. Tag keys must match pattern ([0-9a-zA-Z\\-_+=,.@:]{1,255}), and must not be a reserved name ('.', '..', '_index')",
    );
    expect((await group('nat-a')).Instances).toEqual([]);
    expect(Object.keys(await instanceStates())).toEqual([]);
  });

  it('terminates an instance the launcher could not start, and launches another', async () => {
    launcher.failNext = 1;
    await createGroup('nat-a', [subnetA]);
    const first = (await group('nat-a')).Instances![0]!.InstanceId!;
    await clock.advance(BOOT_DELAY);
    await eventually(async () => ((await instanceStates())[first] === 'terminated' ? true : undefined), 3000, 'failed instance terminated');
    await clock.advance(1000);
    const g = await boot('nat-a');
    expect(g.Instances![0]!.InstanceId).not.toBe(first);
  });
});

describe('replacement', () => {
  it('replaces an instance marked Unhealthy: terminate, then a new one after the boot delay', async () => {
    await createGroup('nat-a', [subnetA]);
    const old = (await boot('nat-a')).Instances![0]!.InstanceId!;
    await h.asg.send(new SetInstanceHealthCommand({ InstanceId: old, HealthStatus: 'Unhealthy', ShouldRespectGracePeriod: false }));
    await eventually(async () => ((await instanceStates())[old] === 'terminated' ? true : undefined), 3000, 'unhealthy instance terminated');
    expect(launcher.terminated).toContain(old);

    const replacing = await eventually(async () => {
      const g = await group('nat-a');
      return g.Instances!.length === 1 && g.Instances![0]!.InstanceId !== old ? g : undefined;
    });
    const fresh = replacing.Instances![0]!.InstanceId!;
    expect(replacing.Instances![0]!.LifecycleState).toBe('Pending');
    expect(launcher.launched.map((s) => s.instanceId)).toEqual([old]);

    await boot('nat-a');
    expect(launcher.launched.map((s) => s.instanceId)).toEqual([old, fresh]);
    const asgInstances = await h.asg.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [fresh] }));
    expect(asgInstances.AutoScalingInstances![0]).toMatchObject({ AutoScalingGroupName: 'nat-a', LifecycleState: 'InService', HealthStatus: 'HEALTHY' });
  });

  it('ignores Unhealthy during the grace period when asked to respect it', async () => {
    await createGroup('nat-a', [subnetA], { grace: 300 });
    const id = (await boot('nat-a')).Instances![0]!.InstanceId!;
    await h.asg.send(new SetInstanceHealthCommand({ InstanceId: id, HealthStatus: 'Unhealthy', ShouldRespectGracePeriod: true }));
    expect((await group('nat-a')).Instances![0]).toMatchObject({ InstanceId: id, HealthStatus: 'Healthy' });
    const missing = await rejection(h.asg.send(new SetInstanceHealthCommand({ InstanceId: 'i-0123456789abcdef0', HealthStatus: 'Unhealthy' })));
    expect(missing.name).toBe('ValidationError');
  });

  it('replaces an instance that died outside its control', async () => {
    await createGroup('nat-a', [subnetA]);
    const old = (await boot('nat-a')).Instances![0]!.InstanceId!;
    await h.emu.terminateInstance(old);
    const g = await eventually(async () => {
      const x = await group('nat-a');
      return x.Instances!.length === 1 && x.Instances![0]!.InstanceId !== old ? x : undefined;
    }, 3000, 'replacement');
    expect(g.Instances![0]!.LifecycleState).toBe('Pending');
    await boot('nat-a');
  });

  it('terminates in the group with and without decrementing desired capacity', async () => {
    await createGroup('nat-a', [subnetA], { min: 0, max: 2, desired: 1 });
    const old = (await boot('nat-a')).Instances![0]!.InstanceId!;
    const replaced = await h.asg.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: old, ShouldDecrementDesiredCapacity: false }));
    expect(replaced.Activity).toMatchObject({ AutoScalingGroupName: 'nat-a', StatusCode: 'InProgress', Description: `Terminating EC2 instance: ${old}` });
    const g = await boot('nat-a');
    const second = g.Instances![0]!.InstanceId!;
    expect(second).not.toBe(old);
    await h.asg.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: second, ShouldDecrementDesiredCapacity: true }));
    await eventually(async () => ((await group('nat-a')).Instances!.length === 0 ? true : undefined), 3000, 'group empty');
    expect((await group('nat-a')).DesiredCapacity).toBe(0);
  });

  it('refuses to shrink below the minimum size', async () => {
    await createGroup('nat-a', [subnetA]);
    const id = (await boot('nat-a')).Instances![0]!.InstanceId!;
    const err = await rejection(h.asg.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: id, ShouldDecrementDesiredCapacity: true })));
    expect(err.name).toBe('ValidationError');
    expect(err.message).toContain("Currently, desiredSize equals minSize (1). Terminating instance without replacement will violate group's min size constraint.");
  });
});

describe('graceful termination goes through EC2 shutdown', () => {
  // On AWS every one of these shuts the instance's OS down: `shutting-down` while systemd stops
  // the agent (SIGTERM, its unit's stop timeout, SIGKILL), then `terminated`. Here the launcher's
  // terminate() is that shutdown: the instance must be shutting-down while it runs, and become
  // terminated (its interface gone, routes blackholed) only once it has finished.
  // [how, the call, how Auto Scaling shows the instance while it shuts down, instances left after]
  const ways: [string, (id: string) => Promise<unknown>, 'Terminating' | 'taken out', number][] = [
    // Outside the group: its EC2 health check finds the instance no longer running and replaces it at once.
    ['TerminateInstances', (id) => h.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] })), 'taken out', 1],
    ['TerminateInstanceInAutoScalingGroup', (id) => h.asg.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: id, ShouldDecrementDesiredCapacity: false })), 'Terminating', 1],
    ['SetInstanceHealth Unhealthy', (id) => h.asg.send(new SetInstanceHealthCommand({ InstanceId: id, HealthStatus: 'Unhealthy', ShouldRespectGracePeriod: false })), 'Terminating', 1],
    ['scale-in (SetDesiredCapacity)', () => h.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'nat-a', DesiredCapacity: 0 })), 'Terminating', 0],
  ];

  it.each(ways)('%s: shutting-down while the instance shuts down, terminated only after', async (_name, terminate, inGroup, remaining) => {
    await createGroup('nat-a', [subnetA], { min: 0 });
    const id = (await boot('nat-a')).Instances![0]!.InstanceId!;
    let release!: () => void;
    launcher.hold = new Promise<void>((r) => (release = r));

    await terminate(id);
    await eventually(() => (launcher.terminated.includes(id) ? true : undefined), 3000, 'the launcher asked to shut the instance down');
    // However long the shutdown takes, EC2 shows it shutting-down.
    await clock.advance(60_000);
    const during = (await h.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
    expect(during.State).toEqual({ Code: 32, Name: 'shutting-down' });
    expect(during.NetworkInterfaces).toHaveLength(1);
    const member = (await group('nat-a')).Instances!.find((i) => i.InstanceId === id);
    expect(member?.LifecycleState ?? 'taken out').toBe(inGroup);

    release();
    launcher.hold = undefined;
    await eventually(async () => ((await instanceStates())[id] === 'terminated' ? true : undefined), 3000, 'terminated after the shutdown');
    expect(launcher.terminated.filter((x) => x === id)).toHaveLength(1);
    await clock.advance(BOOT_DELAY);
    await eventually(async () => {
      const g = await group('nat-a');
      return g.Instances!.filter((i) => i.InstanceId !== id).length === remaining && g.Instances!.every((i) => i.InstanceId !== id) ? true : undefined;
    }, 3000, remaining ? 'a replacement' : 'the group scaled in');
  });
});

describe('describing and deleting groups', () => {
  it('filters groups by tag and ignores unknown names', async () => {
    await createGroup('nat-a', [subnetA]);
    const byTag = await h.asg.send(new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: 'tag:hanat:az', Values: ['us-east-1a'] }] }));
    expect(byTag.AutoScalingGroups!.map((g) => g.AutoScalingGroupName)).toEqual(['nat-a']);
    const g = byTag.AutoScalingGroups![0]!;
    expect(g).toMatchObject({ MinSize: 1, MaxSize: 1, DesiredCapacity: 1, VPCZoneIdentifier: subnetA, AvailabilityZones: ['us-east-1a'], HealthCheckType: 'EC2', LaunchTemplate: { LaunchTemplateName: 'nat', Version: '$Latest' } });
    expect(g.Tags).toEqual(expect.arrayContaining([{ ResourceId: 'nat-a', ResourceType: 'auto-scaling-group', Key: 'hanat:az', Value: 'us-east-1a', PropagateAtLaunch: true }]));
    const none = await h.asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['nope'] }));
    expect(none.AutoScalingGroups).toEqual([]);
    const dup = await rejection(createGroup('nat-a', [subnetA]));
    expect(dup.name).toBe('AlreadyExistsFault');
  });

  it('pages groups and scaling activities, refusing a NextToken it did not hand out, and unknown filters', async () => {
    await createGroup('nat-a', [subnetA]);
    await createGroup('nat-b', [subnetB]);
    const first = await h.asg.send(new DescribeAutoScalingGroupsCommand({ MaxRecords: 1 }));
    expect(first.AutoScalingGroups!.map((g) => g.AutoScalingGroupName)).toEqual(['nat-a']);
    const second = await h.asg.send(new DescribeAutoScalingGroupsCommand({ MaxRecords: 1, NextToken: first.NextToken }));
    expect(second.AutoScalingGroups!.map((g) => g.AutoScalingGroupName)).toEqual(['nat-b']);
    expect(second.NextToken).toBeUndefined();
    const invalidToken = { name: 'InvalidNextToken', message: 'The NextToken value is not valid.' };
    expect(await rejection(h.asg.send(new DescribeAutoScalingGroupsCommand({ NextToken: 'forged' })))).toMatchObject(invalidToken);
    expect(await rejection(h.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: 'nat-a', NextToken: 'forged' })))).toMatchObject(invalidToken);
    expect(await rejection(h.asg.send(new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: 'group-name', Values: ['nat-a'] }] })))).toMatchObject({ name: 'ValidationError' });
  });

  it('deletes a group only with ForceDelete while it has instances', async () => {
    await createGroup('nat-a', [subnetA]);
    const id = (await boot('nat-a')).Instances![0]!.InstanceId!;
    const busy = await rejection(h.asg.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: 'nat-a' })));
    expect(busy.name).toBe('ResourceInUseFault');
    await h.asg.send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: 'nat-a', ForceDelete: true }));
    await eventually(async () => ((await h.asg.send(new DescribeAutoScalingGroupsCommand({}))).AutoScalingGroups!.length === 0 ? true : undefined), 3000, 'group deleted');
    expect((await instanceStates())[id]).toBe('terminated');
  });
});

describe('EC2 status checks and the EC2 health check', () => {
  const CHECK_DELAY = 60_000; // the emulator's default: EC2 runs status checks every minute

  async function statusOf(id: string) {
    return (await h.ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [id], IncludeAllInstances: true }))).InstanceStatuses![0]!;
  }

  it('reports initializing, then ok, and impaired (reachability failed, with its time) the status-check delay after a crash in place', async () => {
    await createGroup('nat-a', [subnetA], { grace: 600 }); // Auto Scaling keeps out of this one
    const pendingId = (await group('nat-a')).Instances![0]!.InstanceId!;
    expect((await h.ec2.send(new DescribeInstanceStatusCommand({}))).InstanceStatuses).toEqual([]); // running instances only by default
    expect(await statusOf(pendingId)).toMatchObject({ InstanceState: { Name: 'pending' }, InstanceStatus: { Status: 'not-applicable' }, SystemStatus: { Status: 'not-applicable' } });
    const id = (await boot('nat-a')).Instances![0]!.InstanceId!;
    expect(await statusOf(id)).toMatchObject({
      InstanceId: id,
      AvailabilityZone: 'us-east-1a',
      InstanceState: { Code: 16, Name: 'running' },
      InstanceStatus: { Status: 'initializing', Details: [{ Name: 'reachability', Status: 'initializing' }] },
      SystemStatus: { Status: 'initializing' },
    });
    await clock.advance(CHECK_DELAY);
    expect((await statusOf(id)).InstanceStatus).toEqual({ Status: 'ok', Details: [{ Name: 'reachability', Status: 'passed' }] });

    const crashedAt = clock.now();
    h.emu.crashInstance(id);
    await clock.advance(CHECK_DELAY - 1);
    expect((await statusOf(id)).InstanceStatus!.Status).toBe('ok'); // EC2 has not noticed yet
    expect((await instanceStates())[id]).toBe('running');
    await clock.advance(1);
    const impaired = await statusOf(id);
    expect(impaired.InstanceStatus).toEqual({ Status: 'impaired', Details: [{ Name: 'reachability', Status: 'failed', ImpairedSince: new Date(crashedAt + CHECK_DELAY) }] });
    expect(impaired.SystemStatus).toEqual({ Status: 'ok', Details: [{ Name: 'reachability', Status: 'passed' }] });
    const filtered = await h.ec2.send(new DescribeInstanceStatusCommand({ Filters: [{ Name: 'instance-status.status', Values: ['impaired'] }] }));
    expect(filtered.InstanceStatuses!.map((s) => s.InstanceId)).toEqual([id]);
    const none = await h.ec2.send(new DescribeInstanceStatusCommand({ Filters: [{ Name: 'instance-status.reachability', Values: ['passed'] }] }));
    expect(none.InstanceStatuses).toEqual([]);
    const bad = await rejection(h.ec2.send(new DescribeInstanceStatusCommand({ Filters: [{ Name: 'instance-status', Values: ['x'] }] })));
    expect(bad.name).toBe('InvalidParameterValue');
  });

  it('marks an impaired instance Unhealthy once the grace period is over, terminates it and launches a replacement, in AWS\'s words', async () => {
    await createGroup('nat-a', [subnetA], { grace: 120 });
    const old = (await boot('nat-a')).Instances![0]!.InstanceId!;
    h.emu.crashInstance(old);
    await clock.advance(CHECK_DELAY);
    expect((await statusOf(old)).InstanceStatus!.Status).toBe('impaired');
    // Impaired inside the 120 s grace period: Auto Scaling does not act yet.
    await clock.advance(120_000 - CHECK_DELAY - 1);
    expect((await group('nat-a')).Instances![0]).toMatchObject({ InstanceId: old, LifecycleState: 'InService', HealthStatus: 'Healthy' });

    let release!: () => void;
    launcher.hold = new Promise<void>((r) => (release = r));
    await clock.advance(1);
    const g = await eventually(async () => {
      const x = await group('nat-a');
      return x.Instances![0]!.LifecycleState === 'Terminating' ? x : undefined;
    }, 3000, 'health check acting');
    expect(g.Instances![0]).toMatchObject({ InstanceId: old, HealthStatus: 'Unhealthy', LifecycleState: 'Terminating' });
    const asgInstance = (await h.asg.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [old] }))).AutoScalingInstances![0]!;
    expect(asgInstance).toMatchObject({ HealthStatus: 'UNHEALTHY', LifecycleState: 'Terminating' });
    expect((await instanceStates())[old]).toBe('shutting-down');
    // Terminate and launch (the default for a health check replacement): the replacement is
    // launched while the old instance is still shutting down.
    const [launching, terminating] = (await h.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: 'nat-a' }))).Activities!;
    expect(terminating).toMatchObject({ Description: `Terminating EC2 instance: ${old}`, StatusCode: 'InProgress' });
    expect(terminating!.Cause).toMatch(/^At \d{4}-\d\d-\d\dT[\d:.]+Z an instance was taken out of service in response to an EC2 instance status checks failure\.$/);
    const replacement = (await group('nat-a')).Instances!.find((i) => i.InstanceId !== old)!;
    expect(replacement.LifecycleState).toBe('Pending');
    expect(launching!.Description).toBe(`Launching a new EC2 instance: ${replacement.InstanceId}`);

    release();
    launcher.hold = undefined;
    const replacing = await eventually(async () => {
      const x = await group('nat-a');
      return x.Instances!.length === 1 && x.Instances![0]!.InstanceId !== old ? x : undefined;
    }, 3000, 'old instance gone');
    expect(replacing.Instances![0]!.InstanceId).toBe(replacement.InstanceId);
    expect((await instanceStates())[old]).toBe('terminated');
    const acts = (await h.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: 'nat-a' }))).Activities!;
    expect(acts.find((a) => a.Description === `Terminating EC2 instance: ${old}`)).toMatchObject({ StatusCode: 'Successful' });
    await boot('nat-a');
  });

  it('leaves an impaired instance alone when Auto Scaling is not its owner, and a healthy one in service', async () => {
    await createGroup('nat-a', [subnetA, subnetB], { min: 2, max: 2, desired: 2 });
    const [a, b] = (await boot('nat-a', 2)).Instances!.map((i) => i.InstanceId!);
    h.emu.crashInstance(a!);
    await clock.advance(CHECK_DELAY);
    await eventually(async () => ((await instanceStates())[a!] === 'terminated' ? true : undefined), 3000, 'impaired instance terminated');
    expect((await instanceStates())[b!]).toBe('running');
    expect((await group('nat-a')).Instances!.find((i) => i.InstanceId === b)).toMatchObject({ LifecycleState: 'InService', HealthStatus: 'Healthy' });
  });
});
