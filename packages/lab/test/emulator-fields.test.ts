/**
 * Contract: the emulator returns every response field that hanat's code reads.
 *
 * HANAT_READS lists, per operation, the fields that packages/cli, packages/agent
 * and packages/core read from the SDK's output, and only those; and of those,
 * only fields AWS always returns for such a resource in such a state (the
 * AWS API Reference, "Response Elements" and the data types). A world is built
 * in the emulator through the real SDK as hanat builds it (hanat's template, a
 * lab image from SSM, an agent pointing a default route at its NAT, a failover
 * pin), each
 * operation is called with the real SDK client, and every listed path must
 * resolve in the deserialised output. A field the emulator leaves out fails
 * the test with the operation and the path.
 *
 * Fields hanat reads that AWS returns only sometimes are not asserted:
 * Stacks[].StackStatusReason (deploy.ts, on a failed deploy), the NextToken of
 * every paged call, Routes[].GatewayId / NatGatewayId (agent.ts, check.ts,
 * observe.ts: for a route pointing elsewhere than a NAT), and
 * InstanceStatuses[].InstanceStatus.Details[].ImpairedSince (observe.ts: only
 * for an impaired instance).
 *
 * Path syntax: test/emulator/field-paths.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DescribeAutoScalingGroupsCommand, DescribeAutoScalingInstancesCommand, DescribeScalingActivitiesCommand } from '@aws-sdk/client-auto-scaling';
import {
  CreateChangeSetCommand,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeChangeSetCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  GetTemplateCommand,
  type CloudFormationClient,
  type CreateChangeSetCommandOutput,
  type Parameter,
  type Stack,
  type StackEvent,
} from '@aws-sdk/client-cloudformation';
import {
  AssociateAddressCommand,
  CreateKeyPairCommand,
  CreateTagsCommand,
  DescribeAccountAttributesCommand,
  DescribeAddressesCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeKeyPairsCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  type AssociateAddressCommandOutput,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { NETWORK_PRIVATE, TAG, ownerTags, pointDefaultRoute, stackFilters, tagValue } from '@hanat/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ec2Api } from '../../agent/src/ec2.js';
import { amiParameter } from '../../cli/src/ami.js';
import { capabilitiesFor } from '../../cli/src/deploy.js';
import { DEFAULT_TEMPLATE_OPTIONS, LOGICAL_ID, PARAM, templateBody } from '../../cli/src/template/index.js';
import { eventually, startLab, type Harness } from './emulator/helpers.js';
import { missingAt, missingFields, parsePath, removeAt } from './emulator/field-paths.js';

interface FieldContract {
  /** The hanat files (from the repository root) that read these fields. */
  readBy: string[];
  /** Paths into the SDK command's output (field-paths.ts). */
  fields: string[];
}

/**
 * What hanat reads, keyed `<service>:<Action>`, with ` (<case>)` when one
 * operation is checked in more than one state. A new read goes here, with its
 * call in CALLS; the source scan below fails until every Command hanat sends is
 * here or in NO_OUTPUT_READ.
 */
const HANAT_READS = {
  // The agent's route reconciler, `hanat-agent check`, hanat status and failover:
  // the stack's private tables, whose AZ serves each (servingAz, the failover pin),
  // who last claimed it (routeOwner), and where the default route points.
  'ec2:DescribeRouteTables': {
    readBy: ['packages/agent/src/ec2.ts', 'packages/agent/src/agent.ts', 'packages/agent/src/check.ts', 'packages/core/src/ownership.ts', 'packages/cli/src/observe.ts'],
    fields: [
      'RouteTables[].RouteTableId',
      'RouteTables[].Tags[].Key',
      'RouteTables[].Tags[Key=hanat:az].Value',
      'RouteTables[].Routes[].DestinationCidrBlock',
      'RouteTables[].Routes[].State',
      // The table the agent claimed: its default route to the NAT's interface, and the owner tags it wrote.
      'RouteTables[?].Routes[DestinationCidrBlock=0.0.0.0/0].NetworkInterfaceId',
      'RouteTables[?].Routes[DestinationCidrBlock=0.0.0.0/0].InstanceId',
      'RouteTables[?].Tags[Key=hanat:owner].Value',
      'RouteTables[?].Tags[Key=hanat:owner-since].Value',
      // The table hanat failover pinned to another AZ.
      'RouteTables[?].Tags[Key=hanat:override].Value',
    ],
  },
  // The agent's source/dest check reconciler.
  'ec2:DescribeInstanceAttribute': {
    readBy: ['packages/agent/src/ec2.ts'],
    fields: ['SourceDestCheck.Value'],
  },
  // The agent's Elastic IP reconciler: the AZ's address and where it is associated.
  'ec2:DescribeAddresses': {
    readBy: ['packages/agent/src/ec2.ts', 'packages/agent/src/agent.ts'],
    fields: ['Addresses[].AllocationId', 'Addresses[].PublicIp', 'Addresses[].AssociationId', 'Addresses[].NetworkInterfaceId', 'Addresses[].InstanceId'],
  },
  'ec2:AssociateAddress': {
    readBy: ['packages/agent/src/ec2.ts', 'packages/agent/src/agent.ts'],
    fields: ['AssociationId'],
  },
  // The agent's ingress reconciler: which VPC CIDR blocks the stack's group admits.
  'ec2:DescribeSecurityGroups': {
    readBy: ['packages/agent/src/ec2.ts', 'packages/agent/src/agent.ts'],
    fields: ['SecurityGroups[].GroupId', 'SecurityGroups[].IpPermissions[].IpProtocol', 'SecurityGroups[].IpPermissions[].IpRanges[].CidrIp'],
  },
  // hanat deploy --key.
  'ec2:DescribeKeyPairs': {
    readBy: ['packages/cli/src/ami.ts'],
    fields: ['KeyPairs[].KeyName'],
  },
  // hanat deploy without --ami, or with --ami resolve:ssm:...
  'ssm:GetParameter': {
    readBy: ['packages/cli/src/ami.ts'],
    fields: ['Parameter.Value'],
  },
  'ec2:DescribeImages': {
    readBy: ['packages/cli/src/ami.ts'],
    fields: ['Images[].ImageId', 'Images[].State', 'Images[].Architecture', 'Images[].Name'],
  },
  // hanat deploy's zone check: the region's AZs, and what each offers.
  'ec2:DescribeAvailabilityZones': {
    readBy: ['packages/cli/src/zones.ts'],
    fields: ['AvailabilityZones[].ZoneName', 'AvailabilityZones[].ZoneType'],
  },
  // hanat deploy's Elastic IP quota check (quota.ts; it reads DescribeAddresses as observe.ts does).
  'ec2:DescribeAccountAttributes': {
    readBy: ['packages/cli/src/quota.ts'],
    fields: ['AccountAttributes[AttributeName=vpc-max-elastic-ips].AttributeValues[].AttributeValue'],
  },
  'ec2:DescribeInstanceTypeOfferings': {
    readBy: ['packages/cli/src/zones.ts'],
    fields: ['InstanceTypeOfferings[].InstanceType', 'InstanceTypeOfferings[].Location'],
  },
  // deploy and destroy: the stack, whether it is hanat's, its status and outputs.
  'cloudformation:DescribeStacks': {
    readBy: ['packages/cli/src/cfn.ts', 'packages/cli/src/deploy.ts', 'packages/cli/src/destroy.ts', 'packages/cli/src/observe.ts', 'packages/cli/src/status.ts', 'packages/cli/src/failover.ts'],
    fields: [
      'Stacks[].StackId',
      'Stacks[].StackName',
      'Stacks[].StackStatus',
      'Stacks[].Tags[Key=hanat:stack]',
      'Stacks[].Outputs[].OutputKey',
      'Stacks[].Outputs[].OutputValue',
    ],
  },
  // destroy's waitForStack polls the stack by id; a deleted stack answers DELETE_COMPLETE.
  'cloudformation:DescribeStacks (deleted, by id)': {
    readBy: ['packages/cli/src/cfn.ts', 'packages/cli/src/destroy.ts'],
    fields: ['Stacks[].StackId', 'Stacks[].StackStatus'],
  },
  // ownershipOf: a stack without the tag is hanat's if its template carries Metadata.hanat.
  'cloudformation:GetTemplate': {
    readBy: ['packages/cli/src/cfn.ts'],
    fields: ['TemplateBody'],
  },
  'cloudformation:CreateChangeSet': {
    readBy: ['packages/cli/src/deploy.ts'],
    fields: ['Id', 'StackId'],
  },
  // waitForChangeSet, the change list (format.ts) and deploy --json.
  'cloudformation:DescribeChangeSet': {
    readBy: ['packages/cli/src/cfn.ts', 'packages/cli/src/deploy.ts', 'packages/cli/src/format.ts'],
    fields: [
      'Status',
      'Changes[].ResourceChange.Action',
      'Changes[].ResourceChange.LogicalResourceId',
      'Changes[].ResourceChange.ResourceType',
      // AWS gives Replacement for Modify changes only.
      'Changes[ResourceChange.Action=Modify].ResourceChange.Replacement',
    ],
  },
  // A change set without changes: "didn't contain changes" means success.
  'cloudformation:DescribeChangeSet (no changes)': {
    readBy: ['packages/cli/src/cfn.ts', 'packages/cli/src/deploy.ts'],
    fields: ['Status', 'StatusReason'],
  },
  // StackEventStream, waitForStack, the event lines (format.ts).
  'cloudformation:DescribeStackEvents': {
    readBy: ['packages/cli/src/cfn.ts', 'packages/cli/src/format.ts'],
    fields: [
      'StackEvents[].EventId',
      'StackEvents[].Timestamp',
      'StackEvents[].LogicalResourceId',
      'StackEvents[].ResourceType',
      'StackEvents[].ResourceStatus',
      'StackEvents[ResourceType=AWS::CloudFormation::Stack].PhysicalResourceId',
      'StackEvents[?].ResourceStatusReason',
    ],
  },
  // failedResources: the resource that failed, and the reason hanat quotes (every page, as StackEventStream reads them).
  'cloudformation:DescribeStackEvents (failed create)': {
    readBy: ['packages/cli/src/cfn.ts', 'packages/cli/src/deploy.ts'],
    fields: [
      'StackEvents[ResourceStatus=CREATE_FAILED].LogicalResourceId',
      'StackEvents[ResourceStatus=CREATE_FAILED].ResourceType',
      'StackEvents[ResourceStatus=CREATE_FAILED].ResourceStatusReason',
    ],
  },
  // hanat status and hanat failover (observe.ts): the stack's NATs and their health, its Elastic IPs.
  'ec2:DescribeInstances': {
    readBy: ['packages/cli/src/observe.ts'],
    fields: [
      'Reservations[].Instances[].InstanceId',
      'Reservations[].Instances[].State.Name',
      'Reservations[].Instances[].Placement.AvailabilityZone',
      'Reservations[].Instances[].Tags[Key=hanat:az].Value',
      'Reservations[].Instances[].NetworkInterfaces[].NetworkInterfaceId',
      'Reservations[].Instances[].NetworkInterfaces[].Attachment.DeviceIndex',
      'Reservations[].Instances[].PrivateIpAddress',
      'Reservations[].Instances[].PublicIpAddress',
      'Reservations[].Instances[].SourceDestCheck',
      'Reservations[].Instances[].LaunchTime',
    ],
  },
  'ec2:DescribeInstanceStatus': {
    readBy: ['packages/cli/src/observe.ts'],
    fields: ['InstanceStatuses[].InstanceId', 'InstanceStatuses[].InstanceStatus.Status', 'InstanceStatuses[].SystemStatus.Status'],
  },
  'autoscaling:DescribeAutoScalingInstances': {
    readBy: ['packages/cli/src/observe.ts'],
    fields: ['AutoScalingInstances[].InstanceId', 'AutoScalingInstances[].AutoScalingGroupName', 'AutoScalingInstances[].HealthStatus', 'AutoScalingInstances[].LifecycleState'],
  },
  // hanat status, for an AZ without a running NAT: its group, and why it has no NAT.
  'autoscaling:DescribeAutoScalingGroups': {
    readBy: ['packages/cli/src/observe.ts'],
    fields: ['AutoScalingGroups[].AutoScalingGroupName', 'AutoScalingGroups[].Tags[Key=hanat:az].Value'],
  },
  'autoscaling:DescribeScalingActivities': {
    readBy: ['packages/cli/src/observe.ts'],
    fields: ['Activities[].StatusCode', 'Activities[].StartTime', 'Activities[].Description'],
  },
  'ec2:DescribeAddresses (every AZ)': {
    readBy: ['packages/cli/src/observe.ts'],
    fields: ['Addresses[].AllocationId', 'Addresses[].PublicIp', 'Addresses[].Tags[Key=hanat:az].Value', 'Addresses[?].InstanceId', 'Addresses[?].NetworkInterfaceId'],
  },
} satisfies Record<string, FieldContract>;

type ContractKey = keyof typeof HANAT_READS;

/** Commands whose output hanat does not read at all. */
const NO_OUTPUT_READ = [
  'CreateRoute', // core/src/routes.ts pointDefaultRoute
  'ReplaceRoute', // core/src/routes.ts pointDefaultRoute
  'CreateTags', // agent/src/ec2.ts tag, cli/src/failover.ts
  'DeleteTags', // cli/src/failover.ts --restore
  'ModifyInstanceAttribute', // agent/src/ec2.ts disableSourceDestCheck
  'ExecuteChangeSet', // cli/src/deploy.ts
  'DeleteChangeSet', // cli/src/deploy.ts discardChangeSet
  'DeleteStack', // cli/src/deploy.ts, cli/src/destroy.ts
  'SetInstanceHealth', // agent/src/cli.ts (HA: stepping aside, fencing a failed peer)
  'AuthorizeSecurityGroupIngress', // agent/src/ec2.ts admitCidr
];

const STACK = 'lab';
const BROKEN = 'broken';
const KEY_NAME = 'lab-key';
const INSTANCE_TYPE = 't4g.nano';

/** The world the calls look at, built once. */
interface World {
  h: Harness;
  stackId: string;
  brokenStackId: string;
  ami: string;
  /** The AZ whose NAT the test plays the agent of, its instance, interface and address. */
  az: string;
  azs: string[];
  instanceId: string;
  /** Every NAT instance of the stack. */
  instanceIds: string[];
  /** A change set that modifies the stack, and one without changes. */
  changeSetId: string;
  noChangesId: string;
  created: CreateChangeSetCommandOutput;
  associated: AssociateAddressCommandOutput;
}

/** How each listed operation is called, as hanat calls it (same inputs, unless a comment says otherwise). */
const CALLS: Record<ContractKey, (w: World) => Promise<object>> = {
  'ec2:DescribeRouteTables': (w) => w.h.ec2.send(new DescribeRouteTablesCommand({ Filters: stackFilters(STACK, { [TAG.network]: NETWORK_PRIVATE }) })),
  'ec2:DescribeInstanceAttribute': (w) => w.h.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: w.instanceId, Attribute: 'sourceDestCheck' })),
  'ec2:DescribeAddresses': (w) => w.h.ec2.send(new DescribeAddressesCommand({ Filters: stackFilters(STACK, { [TAG.az]: w.az }) })),
  'ec2:AssociateAddress': (w) => Promise.resolve(w.associated),
  'ec2:DescribeSecurityGroups': async (w) => {
    // The agent names its interface's groups (from IMDS) and the stack's tag.
    const instance = (await w.h.ec2.send(new DescribeInstancesCommand({ InstanceIds: [w.instanceId] }))).Reservations![0]!.Instances![0]!;
    const groupIds = instance.SecurityGroups!.map((g) => g.GroupId!);
    return w.h.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'group-id', Values: groupIds }, ...stackFilters(STACK)] }));
  },
  'ec2:DescribeKeyPairs': (w) => w.h.ec2.send(new DescribeKeyPairsCommand({ KeyNames: [KEY_NAME] })),
  'ssm:GetParameter': (w) => w.h.ssm.send(new GetParameterCommand({ Name: amiParameter('arm64') })),
  'ec2:DescribeImages': (w) => w.h.ec2.send(new DescribeImagesCommand({ ImageIds: [w.ami] })),
  'ec2:DescribeAccountAttributes': (w) => w.h.ec2.send(new DescribeAccountAttributesCommand({})),
  'ec2:DescribeAvailabilityZones': (w) => w.h.ec2.send(new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'zone-type', Values: ['availability-zone'] }] })),
  'ec2:DescribeInstanceTypeOfferings': (w) =>
    w.h.ec2.send(
      new DescribeInstanceTypeOfferingsCommand({
        LocationType: 'availability-zone',
        Filters: [
          { Name: 'location', Values: w.azs },
          { Name: 'instance-type', Values: [INSTANCE_TYPE] },
        ],
        MaxResults: 1000,
      }),
    ),
  'ec2:DescribeInstances': (w) =>
    w.h.ec2.send(new DescribeInstancesCommand({ Filters: [...stackFilters(STACK), { Name: 'instance-state-name', Values: ['pending', 'running', 'shutting-down', 'stopping', 'stopped'] }] })),
  'ec2:DescribeInstanceStatus': (w) => w.h.ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: w.instanceIds })),
  'autoscaling:DescribeAutoScalingInstances': (w) => w.h.asg.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: w.instanceIds })),
  'autoscaling:DescribeAutoScalingGroups': (w) => w.h.asg.send(new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: `tag:${TAG.stack}`, Values: [STACK] }] })),
  'autoscaling:DescribeScalingActivities': async (w) => {
    const groups = await w.h.asg.send(new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: `tag:${TAG.stack}`, Values: [STACK] }] }));
    return w.h.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: groups.AutoScalingGroups![0]!.AutoScalingGroupName, MaxRecords: 10 }));
  },
  'ec2:DescribeAddresses (every AZ)': (w) => w.h.ec2.send(new DescribeAddressesCommand({ Filters: stackFilters(STACK) })),
  'cloudformation:DescribeStacks': (w) => w.h.cfn.send(new DescribeStacksCommand({ StackName: STACK })),
  'cloudformation:DescribeStacks (deleted, by id)': (w) => w.h.cfn.send(new DescribeStacksCommand({ StackName: w.brokenStackId })),
  'cloudformation:GetTemplate': (w) => w.h.cfn.send(new GetTemplateCommand({ StackName: w.stackId, TemplateStage: 'Original' })),
  'cloudformation:CreateChangeSet': (w) => Promise.resolve(w.created),
  'cloudformation:DescribeChangeSet': (w) => w.h.cfn.send(new DescribeChangeSetCommand({ ChangeSetName: w.changeSetId })),
  'cloudformation:DescribeChangeSet (no changes)': (w) => w.h.cfn.send(new DescribeChangeSetCommand({ ChangeSetName: w.noChangesId })),
  'cloudformation:DescribeStackEvents': (w) => w.h.cfn.send(new DescribeStackEventsCommand({ StackName: w.stackId })),
  'cloudformation:DescribeStackEvents (failed create)': (w) => allStackEvents(w.h.cfn, w.brokenStackId),
};

function stackParameters(ami: string, instanceType: string, cidrPrefix: string, name: string): Parameter[] {
  return [
    { ParameterKey: PARAM.vpcName, ParameterValue: name },
    { ParameterKey: PARAM.cidrPrefix, ParameterValue: cidrPrefix },
    { ParameterKey: PARAM.keyName, ParameterValue: KEY_NAME },
    { ParameterKey: PARAM.natAmi, ParameterValue: ami },
    { ParameterKey: PARAM.instanceType, ParameterValue: instanceType },
    { ParameterKey: PARAM.availabilityZones, ParameterValue: 'us-east-1a,us-east-1b,us-east-1c' },
  ];
}

async function settledStack(cfn: CloudFormationClient, name: string): Promise<Stack> {
  return eventually(
    async () => {
      const s = (await cfn.send(new DescribeStacksCommand({ StackName: name }))).Stacks?.[0];
      return s?.StackStatus?.endsWith('_IN_PROGRESS') ? undefined : s;
    },
    20_000,
    `stack ${name} to settle`,
  );
}

/** Every page of a stack's events, as one output. */
async function allStackEvents(cfn: CloudFormationClient, stackId: string): Promise<{ StackEvents: StackEvent[] }> {
  const events: StackEvent[] = [];
  let token: string | undefined;
  do {
    const out = await cfn.send(new DescribeStackEventsCommand({ StackName: stackId, NextToken: token }));
    events.push(...(out.StackEvents ?? []));
    token = out.NextToken;
  } while (token);
  return { StackEvents: events };
}

async function computedChangeSet(cfn: CloudFormationClient, id: string): Promise<string> {
  return eventually(
    async () => {
      const cs = await cfn.send(new DescribeChangeSetCommand({ ChangeSetName: id }));
      return cs.Status === 'CREATE_COMPLETE' || cs.Status === 'FAILED' ? cs.Status : undefined;
    },
    10_000,
    `change set ${id}`,
  );
}

/**
 * hanat's stack with its NATs running; the agent of the first AZ's NAT has
 * done its work (source/dest check off, the AZ's Elastic IP, the default
 * route and the owner tags); the second AZ failed over to the first NAT by
 * hanat failover; two change sets as deploy makes them; and a
 * second stack whose NAT group failed, rolled back, and was deleted.
 */
async function buildWorld(h: Harness): Promise<World> {
  const ami = (await h.ssm.send(new GetParameterCommand({ Name: amiParameter('arm64') }))).Parameter!.Value!;
  await h.ec2.send(new CreateKeyPairCommand({ KeyName: KEY_NAME, KeyType: 'ed25519' }));
  const body = templateBody(DEFAULT_TEMPLATE_OPTIONS);
  const create = (name: string, cidrPrefix: string) =>
    h.cfn.send(
      new CreateStackCommand({
        StackName: name,
        TemplateBody: body,
        Parameters: stackParameters(ami, INSTANCE_TYPE, cidrPrefix, name),
        Capabilities: capabilitiesFor(body),
        Tags: [{ Key: TAG.stack, Value: name }],
      }),
    );

  const stackId = (await create(STACK, '10.0')).StackId!;
  h.emu.faults.failResource({ stackName: BROKEN, logicalId: LOGICAL_ID.natGroup(1), phase: 'create' });
  const brokenStackId = (await create(BROKEN, '10.1')).StackId!;
  expect((await settledStack(h.cfn, STACK)).StackStatus).toBe('CREATE_COMPLETE');
  expect((await settledStack(h.cfn, brokenStackId)).StackStatus).toBe('ROLLBACK_COMPLETE');
  // What hanat deploy then says to do: hanat destroy, which deletes it by id.
  await h.cfn.send(new DeleteStackCommand({ StackName: brokenStackId }));
  expect((await settledStack(h.cfn, brokenStackId)).StackStatus).toBe('DELETE_COMPLETE');

  // The NATs: one Auto Scaling group per AZ, each with its instance in service.
  const groups = await eventually(async () => {
    const out = await h.asg.send(new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: `tag:${TAG.stack}`, Values: [STACK] }] }));
    const all = out.AutoScalingGroups ?? [];
    return all.length === DEFAULT_TEMPLATE_OPTIONS.azs && all.every((g) => g.Instances?.length === 1 && g.Instances[0]!.LifecycleState === 'InService') ? all : undefined;
  }, 10_000, 'the NAT instances to be in service');
  const azs = groups.map((g) => tagValue(g.Tags, TAG.az)!).sort();
  const az = azs[0]!;
  const instanceId = groups.find((g) => tagValue(g.Tags, TAG.az) === az)!.Instances![0]!.InstanceId!;
  const instance = (await h.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))).Reservations![0]!.Instances![0]!;
  const eni = instance.NetworkInterfaces![0]!;

  // What that NAT's agent does, with the agent's own EC2 calls.
  const agent = new Ec2Api(h.ec2);
  await agent.disableSourceDestCheck(instanceId);
  const [eip] = await agent.addresses(STACK, az);
  const associated = await h.ec2.send(
    new AssociateAddressCommand({ AllocationId: eip!.AllocationId, NetworkInterfaceId: eni.NetworkInterfaceId, PrivateIpAddress: eni.PrivateIpAddress, AllowReassociation: true }),
  );
  const tables = await agent.privateRouteTables(STACK);
  const tableOf = (zone: string) => tables.find((t) => tagValue(t.Tags, TAG.az) === zone)!.RouteTableId!;
  await agent.pointDefaultRoute(tableOf(az), eni.NetworkInterfaceId!, false);
  await agent.tag([tableOf(az)], ownerTags(instanceId, new Date(), 'own-az'));

  // What `hanat failover --az <second AZ> --to <first AZ>` writes (failover.ts): the pin, the route, the owner tags.
  const pinned = tableOf(azs[1]!);
  await h.ec2.send(new CreateTagsCommand({ Resources: [pinned], Tags: [{ Key: TAG.override, Value: az }] }));
  await pointDefaultRoute(h.ec2, pinned, eni.NetworkInterfaceId!, false);
  await h.ec2.send(new CreateTagsCommand({ Resources: [pinned], Tags: ownerTags(instanceId, new Date(), 'manual-failover') }));

  // Change sets as hanat deploy makes them: one that changes the instance type, one that changes nothing.
  const changeSet = (name: string, instanceType: string) =>
    h.cfn.send(
      new CreateChangeSetCommand({
        StackName: STACK,
        ChangeSetName: name,
        ChangeSetType: 'UPDATE',
        TemplateBody: body,
        Parameters: stackParameters(ami, instanceType, '10.0', STACK),
        Capabilities: capabilitiesFor(body),
        Tags: [{ Key: TAG.stack, Value: STACK }],
        Description: `hanat deploy of ${STACK}`,
      }),
    );
  const created = await changeSet('hanat-bigger', 't4g.micro');
  expect(await computedChangeSet(h.cfn, created.Id!)).toBe('CREATE_COMPLETE');
  const same = await changeSet('hanat-same', INSTANCE_TYPE);
  expect(await computedChangeSet(h.cfn, same.Id!)).toBe('FAILED');

  const instanceIds = groups.map((g) => g.Instances![0]!.InstanceId!);
  return { h, stackId, brokenStackId, ami, az, azs, instanceId, instanceIds, changeSetId: created.Id!, noChangesId: same.Id!, created, associated };
}

describe('every response field hanat reads', () => {
  let world: World | undefined;
  beforeAll(async () => {
    world = await buildWorld(await startLab({ latency: 'zero', bootDelayMs: 0 }));
  }, 60_000);
  afterAll(async () => {
    await world?.h.close();
  });

  for (const [key, contract] of Object.entries(HANAT_READS) as [ContractKey, FieldContract][]) {
    it(`${key} returns the ${contract.fields.length} field(s) hanat reads`, async () => {
      const response = await CALLS[key](world!);
      const missing = missingFields(response, contract.fields).map((m) => `${key}: ${m}`);
      expect(missing, 'fields hanat reads that the emulator did not return').toEqual([]);

      // Each listed path can fail: without its field, the same response is refused.
      for (const path of contract.fields) {
        const without = structuredClone(response);
        removeAt(without, path);
        expect(missingAt(without, path), `${key}: ${path} removed`).toBeDefined();
      }
    });
  }
});

describe('the list of fields hanat reads', () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));

  function sources(dir: string): string[] {
    const base = join(root, dir);
    return readdirSync(base, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
      .map((f) => readFileSync(join(base, f), 'utf8'));
  }

  /** The actions of every SDK Command that hanat's code sends. */
  function commandsHanatSends(): Set<string> {
    const text = ['packages/cli/src/', 'packages/agent/src/', 'packages/core/src/'].flatMap(sources).join('\n');
    return new Set([...text.matchAll(/\bnew\s+([A-Z]\w*)Command\s*\(/g)].map((m) => m[1]!));
  }

  const actionOf = (key: string) => /^[a-z0-9-]+:([A-Za-z]+)/.exec(key)![1]!;

  it('covers every Command hanat sends, and lists none it does not', () => {
    const sent = commandsHanatSends();
    const listed = new Set([...Object.keys(HANAT_READS).map(actionOf), ...NO_OUTPUT_READ]);
    expect([...sent].filter((a) => !listed.has(a)), 'sent by hanat but not listed: add what it reads to HANAT_READS (and a call to CALLS), or add it to NO_OUTPUT_READ').toEqual([]);
    expect([...listed].filter((a) => !sent.has(a)), 'listed, but no longer sent by hanat').toEqual([]);
  });

  it('names hanat files that exist, and paths that parse', () => {
    for (const [key, contract] of Object.entries(HANAT_READS)) {
      expect(contract.readBy.length, key).toBeGreaterThan(0);
      for (const file of contract.readBy) expect(existsSync(join(root, file)), `${key}: ${file}`).toBe(true);
      for (const path of contract.fields) expect(() => parsePath(path), `${key}: ${path}`).not.toThrow();
    }
  });
});

describe('the field path walker', () => {
  const table = {
    RouteTables: [
      { RouteTableId: 'rtb-1', Routes: [{ DestinationCidrBlock: '10.0.0.0/16', State: 'active' }], Tags: [{ Key: 'hanat:az', Value: 'us-east-1a' }] },
      {
        RouteTableId: 'rtb-2',
        Routes: [
          { DestinationCidrBlock: '10.0.0.0/16', State: 'active' },
          { DestinationCidrBlock: '0.0.0.0/0', State: 'active', NetworkInterfaceId: 'eni-1' },
        ],
        Tags: [],
      },
    ],
  };

  it('accepts a response that has every field', () => {
    expect(
      missingFields(table, ['RouteTables[].RouteTableId', 'RouteTables[].Routes[].State', 'RouteTables[?].Routes[DestinationCidrBlock=0.0.0.0/0].NetworkInterfaceId', 'RouteTables[?].Tags[Key=hanat:az]']),
    ).toEqual([]);
    expect(missingFields({ SourceDestCheck: { Value: false } }, ['SourceDestCheck.Value'])).toEqual([]);
  });

  it('names the path and where it broke when a field is missing', () => {
    expect(missingFields({ SourceDestCheck: {} }, ['SourceDestCheck.Value'])).toEqual(['SourceDestCheck.Value: SourceDestCheck.Value is missing']);
    expect(missingFields({}, ['Parameter.Value'])).toEqual(['Parameter.Value: Parameter is missing']);
    expect(missingFields({ StackEvents: [{ Timestamp: new Date('not a time') }] }, ['StackEvents[].Timestamp'])).toEqual([
      'StackEvents[].Timestamp: StackEvents[0].Timestamp is not a valid date',
    ]);
  });

  it('requires a [] field on every element, and the list to have elements', () => {
    expect(missingAt(table, 'RouteTables[].Routes[].NetworkInterfaceId')).toBe('RouteTables[0].Routes[0].NetworkInterfaceId is missing');
    expect(missingAt({ Stacks: [] }, 'Stacks[].StackStatus')).toBe('Stacks is empty');
    expect(missingAt({}, 'Stacks[].StackStatus')).toBe('Stacks is missing');
  });

  it('requires a [?] field on at least one element', () => {
    expect(missingAt(table, 'RouteTables[?].Routes[?].InstanceId')).toMatch(/^no element of RouteTables has it/);
  });

  it('requires a filter to match, and every match to have the field', () => {
    expect(missingAt(table, 'RouteTables[].Routes[DestinationCidrBlock=0.0.0.0/0].NetworkInterfaceId')).toBe('RouteTables[0].Routes has no element with DestinationCidrBlock=0.0.0.0/0');
    expect(missingAt(table, 'RouteTables[?].Tags[Key=hanat:owner].Value')).toMatch(/^no element of RouteTables has it .*Tags has no element with Key=hanat:owner/);
    expect(missingAt({ Changes: [{ ResourceChange: { Action: 'Modify' } }] }, 'Changes[ResourceChange.Action=Modify].ResourceChange.Replacement')).toBe(
      'Changes[0].ResourceChange.Replacement is missing',
    );
  });

  it('removes what a path names, so that the path then fails', () => {
    const copy = structuredClone(table);
    removeAt(copy, 'RouteTables[?].Routes[DestinationCidrBlock=0.0.0.0/0].NetworkInterfaceId');
    expect(copy.RouteTables[1]!.Routes[1]).toEqual({ DestinationCidrBlock: '0.0.0.0/0', State: 'active' });
    removeAt(copy, 'RouteTables[].Tags[Key=hanat:az]');
    expect(copy.RouteTables[0]!.Tags).toEqual([]);
  });

  it('refuses a malformed path instead of passing it', () => {
    expect(() => parsePath('Stacks[.StackStatus')).toThrow(/without "]"/);
    expect(() => parsePath('Stacks[x].StackStatus')).toThrow(/selector \[x\]/);
    expect(() => parsePath('Stacks..StackStatus')).toThrow(/cannot read ""/);
  });
});
