/** Auto Scaling operations (awsQuery protocol, Version 2011-01-01). */
import * as asg from '@aws-sdk/client-auto-scaling';
import type * as T from '@aws-sdk/client-auto-scaling';
import { AwsError, validationError } from '../errors.js';
import { applyFilters } from '../filters.js';
import { op, opTable, paginate, type OpContext, type Out } from '../protocol/ops.js';
import type { Activity, Group, GroupTag } from './state.js';

/** What Auto Scaling's Describe calls answer for a NextToken they did not hand out. */
const invalidToken = () => new AwsError('InvalidNextToken', 'The NextToken value is not valid.');

function renderGroup(ctx: OpContext, g: Group): T.AutoScalingGroup {
  const ec2 = ctx.region.ec2;
  const azs = [...new Set(g.subnets.map((s) => ec2.subnets.get(s)?.az).filter((a): a is string => !!a))];
  return {
    AutoScalingGroupName: g.name,
    AutoScalingGroupARN: g.arn,
    LaunchTemplate: { LaunchTemplateId: g.launchTemplate.id, LaunchTemplateName: g.launchTemplate.name ?? (g.launchTemplate.id ? ec2.launchTemplates.get(g.launchTemplate.id)?.name : undefined), Version: g.launchTemplate.version ?? '$Default' },
    MinSize: g.min,
    MaxSize: g.max,
    DesiredCapacity: g.desired,
    DefaultCooldown: g.defaultCooldown,
    AvailabilityZones: azs,
    LoadBalancerNames: [],
    TargetGroupARNs: [],
    HealthCheckType: g.healthCheckType,
    HealthCheckGracePeriod: g.healthCheckGracePeriod,
    Instances: [...g.instances.values()].map((m) => ({
      InstanceId: m.instanceId,
      InstanceType: m.instanceType,
      AvailabilityZone: m.az,
      LifecycleState: m.lifecycle,
      HealthStatus: m.health,
      LaunchTemplate: { LaunchTemplateId: m.launchTemplate.id, LaunchTemplateName: m.launchTemplate.name, Version: m.launchTemplate.version },
      ProtectedFromScaleIn: m.protectedFromScaleIn,
    })),
    CreatedTime: g.created,
    SuspendedProcesses: [],
    VPCZoneIdentifier: g.subnets.join(','),
    EnabledMetrics: [],
    Tags: g.tags.map((t) => ({ ResourceId: g.name, ResourceType: 'auto-scaling-group', Key: t.key, Value: t.value, PropagateAtLaunch: t.propagateAtLaunch })),
    TerminationPolicies: g.terminationPolicies,
    NewInstancesProtectedFromScaleIn: g.newInstancesProtectedFromScaleIn,
    ServiceLinkedRoleARN: `arn:aws:iam::${ctx.region.env.accountId}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling`,
    CapacityRebalance: g.capacityRebalance,
    TrafficSources: [],
    ...(g.deleting ? { Status: 'Delete in progress' } : {}),
  };
}

function renderActivity(a: Activity, ctx: OpContext): T.Activity {
  return {
    ActivityId: a.id,
    AutoScalingGroupName: a.groupName,
    AutoScalingGroupARN: ctx.region.autoscaling.groups.get(a.groupName)?.arn,
    Description: a.description,
    Cause: a.cause,
    StartTime: a.start,
    EndTime: a.end,
    StatusCode: a.status,
    StatusMessage: a.statusMessage,
    Progress: a.progress,
    Details: a.details,
  };
}

export function groupTags(tags: readonly T.Tag[] | undefined): GroupTag[] {
  return (tags ?? []).map((t) => ({ key: t.Key ?? '', value: t.Value ?? '', propagateAtLaunch: t.PropagateAtLaunch ?? false }));
}

function subnetsOf(vpcZoneIdentifier: string | undefined): string[] | undefined {
  return vpcZoneIdentifier === undefined ? undefined : vpcZoneIdentifier.split(',').map((s) => s.trim()).filter(Boolean);
}

function launchTemplateOf(lt: T.LaunchTemplateSpecification | undefined) {
  return lt ? { id: lt.LaunchTemplateId, name: lt.LaunchTemplateName, version: lt.Version } : undefined;
}

export const autoScalingOperations = opTable([
  op<T.DescribeAutoScalingGroupsCommandInput, Out<T.DescribeAutoScalingGroupsCommandOutput>>(asg.DescribeAutoScalingGroups$, (input, ctx) => {
    const as = ctx.region.autoscaling;
    let groups = [...as.groups.values()];
    if (input.AutoScalingGroupNames?.length) groups = groups.filter((g) => input.AutoScalingGroupNames!.includes(g.name));
    groups = applyFilters(groups, input.Filters, { fields: {}, tags: (g) => new Map(g.tags.map((t) => [t.key, t.value])) }, 'ValidationError');
    const page = paginate(groups, input.MaxRecords, input.NextToken, invalidToken);
    return { AutoScalingGroups: page.items.map((g) => renderGroup(ctx, g)), NextToken: page.next };
  }),

  op<T.DescribeAutoScalingInstancesCommandInput, Out<T.DescribeAutoScalingInstancesCommandOutput>>(asg.DescribeAutoScalingInstances$, (input, ctx) => {
    const rows: T.AutoScalingInstanceDetails[] = [];
    for (const g of ctx.region.autoscaling.groups.values()) {
      for (const m of g.instances.values()) {
        if (input.InstanceIds?.length && !input.InstanceIds.includes(m.instanceId)) continue;
        rows.push({
          InstanceId: m.instanceId,
          InstanceType: m.instanceType,
          AutoScalingGroupName: g.name,
          AvailabilityZone: m.az,
          LifecycleState: m.lifecycle,
          // DescribeAutoScalingInstances reports health in upper case, unlike DescribeAutoScalingGroups.
          HealthStatus: m.health.toUpperCase(),
          LaunchTemplate: { LaunchTemplateId: m.launchTemplate.id, LaunchTemplateName: m.launchTemplate.name, Version: m.launchTemplate.version },
          ProtectedFromScaleIn: m.protectedFromScaleIn,
        });
      }
    }
    const page = paginate(rows, input.MaxRecords, input.NextToken, invalidToken);
    return { AutoScalingInstances: page.items, NextToken: page.next };
  }),

  op<T.SetInstanceHealthCommandInput, object>(asg.SetInstanceHealth$, (input, ctx) => {
    if (input.HealthStatus !== 'Healthy' && input.HealthStatus !== 'Unhealthy') {
      throw validationError(`Valid instance health states are: [Healthy, Unhealthy].`);
    }
    ctx.region.autoscaling.setInstanceHealth(input.InstanceId ?? '', input.HealthStatus, input.ShouldRespectGracePeriod ?? true);
    return {};
  }),

  op<T.TerminateInstanceInAutoScalingGroupCommandInput, Out<T.TerminateInstanceInAutoScalingGroupCommandOutput>>(asg.TerminateInstanceInAutoScalingGroup$, (input, ctx) => {
    if (input.ShouldDecrementDesiredCapacity === undefined) throw validationError("1 validation error detected: Value null at 'shouldDecrementDesiredCapacity' failed to satisfy constraint: Member must not be null");
    const a = ctx.region.autoscaling.terminateInGroup(input.InstanceId ?? '', input.ShouldDecrementDesiredCapacity);
    return { Activity: renderActivity(a, ctx) };
  }),

  op<T.UpdateAutoScalingGroupCommandInput, object>(asg.UpdateAutoScalingGroup$, (input, ctx) => {
    ctx.region.autoscaling.updateGroup(input.AutoScalingGroupName ?? '', {
      min: input.MinSize,
      max: input.MaxSize,
      desired: input.DesiredCapacity,
      launchTemplate: launchTemplateOf(input.LaunchTemplate),
      subnets: subnetsOf(input.VPCZoneIdentifier),
      healthCheckType: input.HealthCheckType,
      healthCheckGracePeriod: input.HealthCheckGracePeriod,
      defaultCooldown: input.DefaultCooldown,
      terminationPolicies: input.TerminationPolicies,
      newInstancesProtectedFromScaleIn: input.NewInstancesProtectedFromScaleIn,
      capacityRebalance: input.CapacityRebalance,
    });
    return {};
  }),

  op<T.SetDesiredCapacityCommandInput, object>(asg.SetDesiredCapacity$, (input, ctx) => {
    ctx.region.autoscaling.updateGroup(input.AutoScalingGroupName ?? '', { desired: input.DesiredCapacity });
    return {};
  }),

  op<T.CreateAutoScalingGroupCommandInput, object>(asg.CreateAutoScalingGroup$, (input, ctx) => {
    const lt = launchTemplateOf(input.LaunchTemplate);
    if (!lt) throw validationError('Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.');
    ctx.region.autoscaling.createGroup({
      name: input.AutoScalingGroupName ?? '',
      launchTemplate: lt,
      min: input.MinSize ?? 0,
      max: input.MaxSize ?? 0,
      desired: input.DesiredCapacity,
      subnets: subnetsOf(input.VPCZoneIdentifier) ?? [],
      healthCheckType: input.HealthCheckType,
      healthCheckGracePeriod: input.HealthCheckGracePeriod,
      defaultCooldown: input.DefaultCooldown,
      tags: groupTags(input.Tags),
      terminationPolicies: input.TerminationPolicies,
      newInstancesProtectedFromScaleIn: input.NewInstancesProtectedFromScaleIn,
      capacityRebalance: input.CapacityRebalance,
    });
    return {};
  }),

  op<T.DeleteAutoScalingGroupCommandInput, object>(asg.DeleteAutoScalingGroup$, (input, ctx) => {
    const as = ctx.region.autoscaling;
    const name = input.AutoScalingGroupName ?? '';
    const g = as.group(name);
    if (!input.ForceDelete && g.instances.size > 0) {
      throw new AwsError('ResourceInUse', 'You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.');
    }
    // The call returns while the group's instances terminate, as on AWS ("Delete in progress").
    as.deleteGroup(name, true).catch((err: unknown) => ctx.region.env.log(`DeleteAutoScalingGroup ${name}: ${String(err)}`));
    return {};
  }),

  op<T.DescribeScalingActivitiesCommandInput, Out<T.DescribeScalingActivitiesCommandOutput>>(asg.DescribeScalingActivities$, (input, ctx) => {
    const as = ctx.region.autoscaling;
    if (input.AutoScalingGroupName) as.group(input.AutoScalingGroupName);
    let list = as.activities;
    if (input.AutoScalingGroupName) list = list.filter((a) => a.groupName === input.AutoScalingGroupName);
    if (input.ActivityIds?.length) list = list.filter((a) => input.ActivityIds!.includes(a.id));
    const page = paginate(list, input.MaxRecords, input.NextToken, invalidToken);
    return { Activities: page.items.map((a) => renderActivity(a, ctx)), NextToken: page.next };
  }),
]);
