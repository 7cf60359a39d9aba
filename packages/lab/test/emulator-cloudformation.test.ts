/**
 * CloudFormation through the real SDK: hanat's own template materialised into
 * the world, change sets, updates (in place and replacement), delete,
 * rollback, and CloudFormation's validation errors.
 */
import {
  CreateChangeSetCommand,
  CreateStackCommand,
  DeleteChangeSetCommand,
  DeleteStackCommand,
  DescribeChangeSetCommand,
  DescribeStackEventsCommand,
  DescribeStackResourcesCommand,
  DescribeStacksCommand,
  ExecuteChangeSetCommand,
  GetTemplateCommand,
  GetTemplateSummaryCommand,
  ListChangeSetsCommand,
  ListStackResourcesCommand,
  UpdateStackCommand,
  ValidateTemplateCommand,
  type CloudFormationClient,
  type DescribeChangeSetCommandOutput,
  type Parameter,
  type Stack,
  type StackEvent,
} from '@aws-sdk/client-cloudformation';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeAddressesCommand, DescribeInstancesCommand, DescribeInternetGatewaysCommand, DescribeRouteTablesCommand, DescribeSubnetsCommand, DescribeVpcsCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { templateBody } from '../../cli/src/template/index.js';
import { ManualClock, type LatencyProfile } from '../src/emulator/index.js';
import { eventually, rejection, startLab, type Harness } from './emulator/helpers.js';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const HANAT_PARAMS: Parameter[] = [
  { ParameterKey: 'CidrPrefix', ParameterValue: '10.0' },
  { ParameterKey: 'AvailabilityZones', ParameterValue: 'us-east-1a,us-east-1b,us-east-1c' },
];

async function waitChangeSet(cfn: CloudFormationClient, id: string): Promise<DescribeChangeSetCommandOutput> {
  return eventually(async () => {
    const cs = await cfn.send(new DescribeChangeSetCommand({ ChangeSetName: id }));
    return cs.Status === 'CREATE_COMPLETE' || cs.Status === 'FAILED' ? cs : undefined;
  }, 5000, 'change set');
}

async function waitStack(cfn: CloudFormationClient, name: string): Promise<Stack> {
  return eventually(async () => {
    const s = (await cfn.send(new DescribeStacksCommand({ StackName: name }))).Stacks![0]!;
    return s.StackStatus!.endsWith('_IN_PROGRESS') && s.StackStatus !== 'REVIEW_IN_PROGRESS' ? undefined : s;
  }, 10_000, `stack ${name}`);
}

async function changeSet(cfn: CloudFormationClient, name: string, body: string, params: Parameter[] = [], type: 'CREATE' | 'UPDATE' = 'CREATE', extra: { tags?: Record<string, string> } = {}) {
  const out = await cfn.send(
    new CreateChangeSetCommand({
      StackName: name,
      ChangeSetName: `cs-${Math.random().toString(36).slice(2, 8)}`,
      ChangeSetType: type,
      TemplateBody: body,
      Parameters: params,
      Capabilities: ['CAPABILITY_IAM'],
      ...(extra.tags ? { Tags: Object.entries(extra.tags).map(([Key, Value]) => ({ Key, Value })) } : {}),
    }),
  );
  return waitChangeSet(cfn, out.Id!);
}

async function deploy(cfn: CloudFormationClient, name: string, body: string, params: Parameter[] = [], type: 'CREATE' | 'UPDATE' = 'CREATE', extra: { tags?: Record<string, string>; disableRollback?: boolean } = {}) {
  const cs = await changeSet(cfn, name, body, params, type, extra);
  expect(cs.Status).toBe('CREATE_COMPLETE');
  await cfn.send(new ExecuteChangeSetCommand({ ChangeSetName: cs.ChangeSetId, DisableRollback: extra.disableRollback }));
  return waitStack(cfn, name);
}

async function events(cfn: CloudFormationClient, name: string): Promise<StackEvent[]> {
  const all: StackEvent[] = [];
  let token: string | undefined;
  do {
    const out = await cfn.send(new DescribeStackEventsCommand({ StackName: name, NextToken: token }));
    all.push(...out.StackEvents!);
    token = out.NextToken;
  } while (token);
  return all.reverse();
}

/** A small template: a VPC and one subnet, whose properties come from parameters. */
const SMALL = JSON.stringify({
  Parameters: {
    Cidr: { Type: 'String', Default: '10.1.0.0/24' },
    Public: { Type: 'String', Default: 'false', AllowedValues: ['true', 'false'] },
    Owner: { Type: 'String', Default: 'a' },
  },
  Resources: {
    Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: '10.1.0.0/16', Tags: [{ Key: 'owner', Value: { Ref: 'Owner' } }] } },
    Subnet: { Type: 'AWS::EC2::Subnet', Properties: { VpcId: { Ref: 'Vpc' }, CidrBlock: { Ref: 'Cidr' }, AvailabilityZone: { 'Fn::Select': [1, { 'Fn::GetAZs': '' }] }, MapPublicIpOnLaunch: { Ref: 'Public' } } },
  },
  Outputs: { SubnetId: { Value: { Ref: 'Subnet' } } },
});

describe('the hanat template', () => {
  beforeEach(async () => {
    h = await startLab();
  });

  it('materialises subnets, route tables, groups and addresses as the template says', async () => {
    const body = templateBody({ azs: 3, eip: true });
    const stack = await deploy(h.cfn, 'lab', body, HANAT_PARAMS, 'CREATE', { tags: { team: 'net' } });
    expect(stack.StackStatus).toBe('CREATE_COMPLETE');
    const out = Object.fromEntries(stack.Outputs!.map((o) => [o.OutputKey, o.OutputValue]));
    const vpcId = out.VpcId!;
    const vpc = (await h.ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }))).Vpcs![0]!;
    expect(vpc.CidrBlock).toBe('10.0.0.0/16');
    expect(vpc.Tags).toEqual(expect.arrayContaining([{ Key: 'hanat:stack', Value: 'lab' }, { Key: 'team', Value: 'net' }, { Key: 'aws:cloudformation:stack-name', Value: 'lab' }]));

    const subnets = (await h.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }))).Subnets!;
    const layout = subnets.map((s) => [s.CidrBlock, s.AvailabilityZone, s.Tags!.find((t) => t.Key === 'network')?.Value, s.MapPublicIpOnLaunch]).sort((a, b) => String(a[0]).localeCompare(String(b[0]), 'en', { numeric: true }));
    expect(layout).toEqual([
      ['10.0.0.0/24', 'us-east-1a', 'public', true],
      ['10.0.1.0/24', 'us-east-1b', 'public', true],
      ['10.0.2.0/24', 'us-east-1c', 'public', true],
      ['10.0.10.0/24', 'us-east-1a', 'private', false],
      ['10.0.11.0/24', 'us-east-1b', 'private', false],
      ['10.0.12.0/24', 'us-east-1c', 'private', false],
      ['10.0.20.0/24', 'us-east-1a', 'private', false],
      ['10.0.21.0/24', 'us-east-1b', 'private', false],
      ['10.0.22.0/24', 'us-east-1c', 'private', false],
    ]);

    const igw = (await h.ec2.send(new DescribeInternetGatewaysCommand({ Filters: [{ Name: 'attachment.vpc-id', Values: [vpcId] }] }))).InternetGateways!;
    expect(igw).toHaveLength(1);
    const subnetAz = new Map(subnets.map((s) => [s.SubnetId!, s.AvailabilityZone!]));
    const publicTables = (await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'tag:network', Values: ['public'] }] }))).RouteTables!;
    expect(publicTables).toHaveLength(1);
    expect(publicTables[0]!.Associations!.map((a) => subnetAz.get(a.SubnetId!)).sort()).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c']);
    expect(publicTables[0]!.Routes).toContainEqual(expect.objectContaining({ DestinationCidrBlock: '0.0.0.0/0', GatewayId: igw[0]!.InternetGatewayId, State: 'active' }));

    const privateTables = (await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: ['lab'] }, { Name: 'tag:network', Values: ['private'] }] }))).RouteTables!;
    expect(privateTables).toHaveLength(3);
    for (const rt of privateTables) {
      const az = rt.Tags!.find((t) => t.Key === 'hanat:az')!.Value;
      expect(rt.Associations!.map((a) => subnetAz.get(a.SubnetId!))).toEqual([az, az]);
      expect(rt.Routes!.map((r) => r.DestinationCidrBlock)).toEqual(['10.0.0.0/16']);
    }
    expect(privateTables.map((rt) => rt.Tags!.find((t) => t.Key === 'hanat:az')!.Value).sort()).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c']);

    const groups = (await h.asg.send(new DescribeAutoScalingGroupsCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: ['lab'] }] }))).AutoScalingGroups!;
    expect(groups).toHaveLength(3);
    const publicSubnetOf = new Map(subnets.filter((s) => s.MapPublicIpOnLaunch).map((s) => [s.AvailabilityZone!, s.SubnetId!]));
    for (const g of groups) {
      const az = g.Tags!.find((t) => t.Key === 'hanat:az')!.Value!;
      expect(g).toMatchObject({ MinSize: 1, MaxSize: 1, DesiredCapacity: 1, VPCZoneIdentifier: publicSubnetOf.get(az), AvailabilityZones: [az] });
      expect(g.Instances!.map((i) => [i.AvailabilityZone, i.LifecycleState])).toEqual([[az, 'InService']]);
    }
    const instances = (await h.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: ['lab'] }, { Name: 'instance-state-name', Values: ['running'] }] }))).Reservations!.flatMap((r) => r.Instances!);
    expect(instances).toHaveLength(3);
    for (const i of instances) {
      const tags = Object.fromEntries(i.Tags!.map((t) => [t.Key, t.Value]));
      expect(tags['hanat:az']).toBe(i.Placement!.AvailabilityZone);
      expect(tags['aws:autoscaling:groupName']).toMatch(/^lab-Az\dNatGroup-/);
      expect(i.SubnetId).toBe(publicSubnetOf.get(i.Placement!.AvailabilityZone!));
      expect(i.MetadataOptions).toMatchObject({ HttpTokens: 'required', HttpPutResponseHopLimit: 1, InstanceMetadataTags: 'enabled' });
      expect(i.IamInstanceProfile?.Arn).toMatch(/^arn:aws:iam::123456789012:instance-profile\//);
      expect(i.SourceDestCheck).toBe(true);
    }
    const eips = (await h.ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: ['lab'] }] }))).Addresses!;
    expect(eips.map((a) => a.Tags!.find((t) => t.Key === 'hanat:az')!.Value).sort()).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c']);
    expect(eips.map((a) => a.PublicIp).sort()).toEqual([out.Az0Eip, out.Az1Eip, out.Az2Eip].sort());

    // The data plane sees the same world.
    const snap = h.emu.network.snapshot();
    for (const rt of privateTables) {
      for (const a of rt.Associations!) expect(snap.subnets.find((s) => s.subnetId === a.SubnetId)!.routeTableId).toBe(rt.RouteTableId);
    }

    const evs = await events(h.cfn, 'lab');
    expect(evs[0]).toMatchObject({ LogicalResourceId: 'lab', ResourceStatus: 'REVIEW_IN_PROGRESS', ResourceType: 'AWS::CloudFormation::Stack' });
    expect(evs[1]).toMatchObject({ LogicalResourceId: 'lab', ResourceStatus: 'CREATE_IN_PROGRESS', ResourceStatusReason: 'User Initiated' });
    expect(evs.at(-1)).toMatchObject({ LogicalResourceId: 'lab', ResourceStatus: 'CREATE_COMPLETE', PhysicalResourceId: stack.StackId });
    for (let i = 1; i < evs.length; i++) expect(evs[i]!.Timestamp!.getTime()).toBeGreaterThanOrEqual(evs[i - 1]!.Timestamp!.getTime());
    const resources = (await h.cfn.send(new ListStackResourcesCommand({ StackName: 'lab' }))).StackResourceSummaries!;
    for (const r of resources) {
      const mine = evs.filter((e) => e.LogicalResourceId === r.LogicalResourceId).map((e) => e.ResourceStatus);
      expect(mine[0]).toBe('CREATE_IN_PROGRESS');
      expect(mine.at(-1)).toBe('CREATE_COMPLETE');
      expect(r.ResourceStatus).toBe('CREATE_COMPLETE');
    }
  });

  it('treats the same template and parameters as no changes', async () => {
    const body = templateBody({ azs: 2, eip: false });
    await deploy(h.cfn, 'lab', body, HANAT_PARAMS);
    const cs = await changeSet(h.cfn, 'lab', body, HANAT_PARAMS, 'UPDATE');
    expect(cs.Status).toBe('FAILED');
    expect(cs.ExecutionStatus).toBe('UNAVAILABLE');
    expect(cs.StatusReason).toBe("The submitted information didn't contain changes. Submit different information to create a change set.");
    const err = await rejection(h.cfn.send(new UpdateStackCommand({ StackName: 'lab', TemplateBody: body, Parameters: HANAT_PARAMS, Capabilities: ['CAPABILITY_IAM'] })));
    expect(err.name).toBe('ValidationError');
    expect(err.message).toBe('No updates are to be performed.');
    const exec = await rejection(h.cfn.send(new ExecuteChangeSetCommand({ ChangeSetName: cs.ChangeSetId })));
    expect(exec.name).toBe('InvalidChangeSetStatusException');
  });

  it('destroys everything it created', async () => {
    const stack = await deploy(h.cfn, 'lab', templateBody({ azs: 3, eip: true }), HANAT_PARAMS);
    const ec2 = h.emu.world.ec2;
    const instanceIds = [...ec2.instances.keys()];
    expect(instanceIds).toHaveLength(3);
    await h.cfn.send(new DeleteStackCommand({ StackName: 'lab' }));
    const gone = await waitStack(h.cfn, stack.StackId!);
    expect(gone.StackStatus).toBe('DELETE_COMPLETE');
    expect(ec2.vpcs.size + ec2.subnets.size + ec2.routeTables.size + ec2.internetGateways.size + ec2.securityGroups.size + ec2.addresses.size + ec2.launchTemplates.size + ec2.networkInterfaces.size).toBe(0);
    expect([...ec2.instances.values()].map((i) => i.state)).toEqual(['terminated', 'terminated', 'terminated']);
    expect(h.emu.world.autoscaling.groups.size).toBe(0);
    expect(h.emu.account.iam.roles.size + h.emu.account.iam.instanceProfiles.size).toBe(0);
    const byName = await rejection(h.cfn.send(new DescribeStacksCommand({ StackName: 'lab' })));
    expect(byName.message).toBe('Stack with id lab does not exist');
    const evs = await events(h.cfn, stack.StackId!);
    expect(evs.at(-1)).toMatchObject({ ResourceStatus: 'DELETE_COMPLETE', LogicalResourceId: 'lab' });
    // Deleting a stack that no longer exists succeeds, as on AWS.
    await h.cfn.send(new DeleteStackCommand({ StackName: 'lab' }));
  });
});

describe('updates', () => {
  beforeEach(async () => {
    h = await startLab();
  });

  it('modifies a property in place when AWS does', async () => {
    const created = await deploy(h.cfn, 'small', SMALL);
    const subnetId = created.Outputs![0]!.OutputValue!;
    const cs = await changeSet(h.cfn, 'small', SMALL, [{ ParameterKey: 'Public', ParameterValue: 'true' }], 'UPDATE');
    expect(cs.Changes!.map((c) => c.ResourceChange)).toEqual([
      expect.objectContaining({ Action: 'Modify', LogicalResourceId: 'Subnet', PhysicalResourceId: subnetId, Replacement: 'False', Scope: ['Properties'] }),
    ]);
    expect(cs.Changes![0]!.ResourceChange!.Details![0]).toMatchObject({ Target: { Attribute: 'Properties', Name: 'MapPublicIpOnLaunch', RequiresRecreation: 'Never' }, Evaluation: 'Static' });
    await h.cfn.send(new ExecuteChangeSetCommand({ ChangeSetName: cs.ChangeSetId }));
    const updated = await waitStack(h.cfn, 'small');
    expect(updated.StackStatus).toBe('UPDATE_COMPLETE');
    expect(updated.Outputs![0]!.OutputValue).toBe(subnetId);
    const s = (await h.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] }))).Subnets![0]!;
    expect(s.MapPublicIpOnLaunch).toBe(true);
  });

  it('replaces a resource when a replacing property changes, then cleans up the old one', async () => {
    const created = await deploy(h.cfn, 'small', SMALL);
    const oldSubnet = created.Outputs![0]!.OutputValue!;
    const cs = await changeSet(h.cfn, 'small', SMALL, [{ ParameterKey: 'Cidr', ParameterValue: '10.1.1.0/24' }], 'UPDATE');
    expect(cs.Changes![0]!.ResourceChange).toMatchObject({ Action: 'Modify', LogicalResourceId: 'Subnet', Replacement: 'True' });
    expect(cs.Changes![0]!.ResourceChange!.Details![0]!.Target).toMatchObject({ Name: 'CidrBlock', RequiresRecreation: 'Always' });
    await h.cfn.send(new ExecuteChangeSetCommand({ ChangeSetName: cs.ChangeSetId }));
    const updated = await waitStack(h.cfn, 'small');
    expect(updated.StackStatus).toBe('UPDATE_COMPLETE');
    const newSubnet = updated.Outputs![0]!.OutputValue!;
    expect(newSubnet).not.toBe(oldSubnet);
    const subnets = (await h.ec2.send(new DescribeSubnetsCommand({}))).Subnets!;
    expect(subnets.map((s) => [s.SubnetId, s.CidrBlock])).toEqual([[newSubnet, '10.1.1.0/24']]);
    const evs = (await events(h.cfn, 'small')).map((e) => [e.LogicalResourceId, e.ResourceStatus, e.ResourceStatusReason ?? '']);
    expect(evs).toContainEqual(['Subnet', 'UPDATE_IN_PROGRESS', 'Requested update requires the creation of a new physical resource; hence creating one.']);
    expect(evs).toContainEqual(['small', 'UPDATE_COMPLETE_CLEANUP_IN_PROGRESS', '']);
    expect(evs.at(-1)).toEqual(['small', 'UPDATE_COMPLETE', '']);
  });

  it('shows a tag change as a Modify of Tags and retags in place', async () => {
    const created = await deploy(h.cfn, 'small', SMALL);
    const vpcId = [...h.emu.world.ec2.vpcs.keys()][0]!;
    const cs = await changeSet(h.cfn, 'small', SMALL, [{ ParameterKey: 'Owner', ParameterValue: 'b' }], 'UPDATE');
    expect(cs.Changes![0]!.ResourceChange).toMatchObject({ Action: 'Modify', LogicalResourceId: 'Vpc', Replacement: 'False', Scope: ['Tags'] });
    await h.cfn.send(new ExecuteChangeSetCommand({ ChangeSetName: cs.ChangeSetId }));
    expect((await waitStack(h.cfn, 'small')).StackStatus).toBe('UPDATE_COMPLETE');
    const vpc = (await h.ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }))).Vpcs![0]!;
    expect(vpc.Tags).toContainEqual({ Key: 'owner', Value: 'b' });
    expect(created.StackId).toBeDefined();
  });

  it('rolls an update back when a resource fails to update', async () => {
    const created = await deploy(h.cfn, 'small', SMALL);
    const subnetId = created.Outputs![0]!.OutputValue!;
    h.emu.faults.failResource({ logicalId: 'Subnet', phase: 'update', message: 'the subnet refused (test)' });
    const cs = await changeSet(h.cfn, 'small', SMALL, [{ ParameterKey: 'Public', ParameterValue: 'true' }], 'UPDATE');
    await h.cfn.send(new ExecuteChangeSetCommand({ ChangeSetName: cs.ChangeSetId }));
    const after = await waitStack(h.cfn, 'small');
    expect(after.StackStatus).toBe('UPDATE_ROLLBACK_COMPLETE');
    const evs = await events(h.cfn, 'small');
    expect(evs).toContainEqual(expect.objectContaining({ LogicalResourceId: 'Subnet', ResourceStatus: 'UPDATE_FAILED', ResourceStatusReason: 'the subnet refused (test)' }));
    expect(evs).toContainEqual(expect.objectContaining({ LogicalResourceId: 'small', ResourceStatus: 'UPDATE_ROLLBACK_IN_PROGRESS', ResourceStatusReason: 'The following resource(s) failed to update: [Subnet]. ' }));
    expect(after.Parameters!.find((p) => p.ParameterKey === 'Public')!.ParameterValue).toBe('false');
    expect((await h.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [subnetId] }))).Subnets![0]!.MapPublicIpOnLaunch).toBe(false);
  });
});

describe('failures and rollback', () => {
  beforeEach(async () => {
    h = await startLab();
  });

  it('rolls a failed create back and deletes what it made', async () => {
    const bad = JSON.stringify({
      Resources: {
        Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: '10.1.0.0/16' } },
        Subnet: { Type: 'AWS::EC2::Subnet', Properties: { VpcId: { Ref: 'Vpc' }, CidrBlock: '10.2.0.0/24' } },
      },
    });
    const stack = await deploy(h.cfn, 'bad', bad);
    expect(stack.StackStatus).toBe('ROLLBACK_COMPLETE');
    expect(stack.StackStatusReason).toBe('The following resource(s) failed to create: [Subnet]. Rollback requested by user.');
    const evs = await events(h.cfn, 'bad');
    const failed = evs.find((e) => e.ResourceStatus === 'CREATE_FAILED')!;
    expect(failed.LogicalResourceId).toBe('Subnet');
    expect(failed.ResourceStatusReason).toMatch(/^Resource handler returned message: "The CIDR '10\.2\.0\.0\/24' is invalid\. \(Service: Ec2, Status Code: 400, Request ID: [0-9a-f-]+\)" \(RequestToken: [0-9a-f-]+, HandlerErrorCode: InvalidRequest\)$/);
    expect(evs.filter((e) => e.LogicalResourceId === 'Vpc').map((e) => e.ResourceStatus)).toEqual(['CREATE_IN_PROGRESS', 'CREATE_IN_PROGRESS', 'CREATE_COMPLETE', 'DELETE_IN_PROGRESS', 'DELETE_COMPLETE']);
    expect(evs.at(-1)).toMatchObject({ LogicalResourceId: 'bad', ResourceStatus: 'ROLLBACK_COMPLETE' });
    expect(h.emu.world.ec2.vpcs.size).toBe(0);
    const update = await rejection(changeSet(h.cfn, 'bad', SMALL, [], 'UPDATE'));
    expect(update.message).toContain('is in ROLLBACK_COMPLETE state and can not be updated.');
  });

  it('fails a resource on demand, and keeps what was made when rollback is disabled', async () => {
    h.emu.faults.failResource({ logicalId: 'Subnet', message: 'injected by the test' });
    const stack = await deploy(h.cfn, 'small', SMALL, [], 'CREATE', { disableRollback: true });
    expect(stack.StackStatus).toBe('CREATE_FAILED');
    expect(h.emu.world.ec2.vpcs.size).toBe(1);
    const evs = await events(h.cfn, 'small');
    expect(evs).toContainEqual(expect.objectContaining({ LogicalResourceId: 'Subnet', ResourceStatus: 'CREATE_FAILED', ResourceStatusReason: 'injected by the test' }));
  });

  it('fails an Auto Scaling group whose zone cannot launch, and rolls the stack back', async () => {
    h.emu.blockLaunches('us-east-1b');
    const stack = await deploy(h.cfn, 'lab', templateBody({ azs: 2, eip: false }), HANAT_PARAMS);
    expect(stack.StackStatus).toBe('ROLLBACK_COMPLETE');
    const evs = await events(h.cfn, 'lab');
    const failed = evs.find((e) => e.ResourceStatus === 'CREATE_FAILED' && e.ResourceType === 'AWS::AutoScaling::AutoScalingGroup')!;
    expect(failed.LogicalResourceId).toBe('Az1NatGroup');
    expect(failed.ResourceStatusReason).toContain('We currently do not have sufficient t4g.nano capacity in the Availability Zone you requested (us-east-1b)');
    expect(h.emu.world.ec2.vpcs.size).toBe(0);
    expect([...h.emu.world.ec2.instances.values()].every((i) => i.state === 'terminated')).toBe(true);
    // The group that failed goes too, as rollback deletes it on AWS: none is left retrying launches.
    expect([...h.emu.world.autoscaling.groups.keys()]).toEqual([]);
  });

  it('rejects resource types it does not know, as CloudFormation does', async () => {
    const body = JSON.stringify({ Resources: { Fn: { Type: 'AWS::Lambda::Function', Properties: {} }, Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: '10.0.0.0/16' } } } });
    const err = await rejection(changeSet(h.cfn, 'x', body));
    expect(err.name).toBe('ValidationError');
    expect(err.message).toBe('Template format error: Unrecognized resource types: [AWS::Lambda::Function]');
    const validate = await rejection(h.cfn.send(new ValidateTemplateCommand({ TemplateBody: body })));
    expect(validate.message).toBe(err.message);
  });

  it('validates parameters, capabilities and template structure', async () => {
    const body = templateBody({ azs: 2, eip: true });
    const pattern = await rejection(changeSet(h.cfn, 'lab', body, [{ ParameterKey: 'CidrPrefix', ParameterValue: '10.0.0' }, HANAT_PARAMS[1]!]));
    expect(pattern.message).toBe('Parameter CidrPrefix failed to satisfy constraint: two octets from 0 to 255 without leading zeros, e.g. 10.0 or 172.31');
    const missing = await rejection(changeSet(h.cfn, 'lab', body, []));
    expect(missing.message).toBe('Parameters: [AvailabilityZones, CidrPrefix] must have values');
    const extra = await rejection(changeSet(h.cfn, 'lab', body, [...HANAT_PARAMS, { ParameterKey: 'Nope', ParameterValue: 'x' }]));
    expect(extra.message).toBe('Parameters: [Nope] do not exist in the template');
    const caps = await rejection(h.cfn.send(new CreateChangeSetCommand({ StackName: 'lab', ChangeSetName: 'c', ChangeSetType: 'CREATE', TemplateBody: body, Parameters: HANAT_PARAMS })));
    expect(caps.name).toBe('InsufficientCapabilitiesException');
    expect(caps.message).toBe('Requires capabilities : [CAPABILITY_IAM]');
    const json = await rejection(changeSet(h.cfn, 'x', '{"Resources": '));
    expect(json.message).toMatch(/^Template format error: JSON not well-formed\./);
    const cycle = JSON.stringify({ Resources: { A: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: '10.0.0.0/16' }, DependsOn: 'B' }, B: { Type: 'AWS::EC2::InternetGateway', DependsOn: 'A' } } });
    expect((await rejection(changeSet(h.cfn, 'x', cycle))).message).toBe('Circular dependency between resources: [A, B]');
    const unresolved = JSON.stringify({ Resources: { A: { Type: 'AWS::EC2::Subnet', Properties: { VpcId: { Ref: 'Nothing' }, CidrBlock: '10.0.0.0/24' } } } });
    expect((await rejection(changeSet(h.cfn, 'x', unresolved))).message).toBe('Template format error: Unresolved resource dependencies [Nothing] in the Resources block of the template');
    // Nothing above created a stack.
    expect(await rejection(h.cfn.send(new DescribeStacksCommand({ StackName: 'lab' })))).toHaveProperty('message', 'Stack with id lab does not exist');
  });

  it('reports validation of a good template like ValidateTemplate does', async () => {
    const out = await h.cfn.send(new ValidateTemplateCommand({ TemplateBody: templateBody({ azs: 2, eip: true }) }));
    expect(out.Capabilities).toEqual(['CAPABILITY_IAM']);
    expect(out.CapabilitiesReason).toContain('AWS::IAM::Role');
    expect(out.Parameters!.map((p) => p.ParameterKey).sort()).toEqual(['AvailabilityZones', 'CidrPrefix', 'InstanceType', 'KeyName', 'NatAmi', 'VpcName']);
  });
});

describe('GetTemplateSummary and the size of a template', () => {
  beforeEach(async () => {
    h = await startLab();
  });

  it('summarises a template body, a live stack by name and a deleted one by id', async () => {
    const body = templateBody({ azs: 2, eip: true });
    const fromBody = await h.cfn.send(new GetTemplateSummaryCommand({ TemplateBody: body }));
    expect(fromBody.Parameters!.map((p) => p.ParameterKey).sort()).toEqual(['AvailabilityZones', 'CidrPrefix', 'InstanceType', 'KeyName', 'NatAmi', 'VpcName']);
    const instanceType = fromBody.Parameters!.find((p) => p.ParameterKey === 'InstanceType')!;
    expect(instanceType).toMatchObject({ ParameterType: 'String', DefaultValue: 't4g.nano', NoEcho: false });
    expect(fromBody.Parameters!.find((p) => p.ParameterKey === 'AvailabilityZones')).toMatchObject({ ParameterType: 'List<AWS::EC2::AvailabilityZone::Name>' });
    expect(fromBody.Parameters!.find((p) => p.ParameterKey === 'AvailabilityZones')!.DefaultValue).toBeUndefined();
    expect(fromBody.Capabilities).toEqual(['CAPABILITY_IAM']);
    expect(fromBody.ResourceTypes).toContain('AWS::AutoScaling::AutoScalingGroup');
    expect(fromBody.Version).toBe('2010-09-09');
    expect(JSON.parse(fromBody.Metadata!)).toHaveProperty('AWS::CloudFormation::Interface');

    const withChoices = JSON.stringify({ Parameters: { Size: { Type: 'String', AllowedValues: ['s', 'm'], Default: 's' } }, Resources: { Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: '10.1.0.0/16' } } } });
    const choices = await h.cfn.send(new GetTemplateSummaryCommand({ TemplateBody: withChoices }));
    expect(choices.Parameters).toEqual([expect.objectContaining({ ParameterKey: 'Size', ParameterConstraints: { AllowedValues: ['s', 'm'] } })]);

    // A live stack, by name: its current template (here SMALL, not hanat's).
    const stack = await deploy(h.cfn, 'small', SMALL);
    const live = await h.cfn.send(new GetTemplateSummaryCommand({ StackName: 'small' }));
    expect(live.Parameters!.map((p) => p.ParameterKey)).toEqual(['Cidr', 'Public', 'Owner']);
    expect(live.ResourceTypes).toEqual(['AWS::EC2::VPC', 'AWS::EC2::Subnet']);
    // Deleted: by id only, as AWS documents; the name no longer finds it.
    await h.cfn.send(new DeleteStackCommand({ StackName: 'small' }));
    await h.emu.stacksSettled();
    expect((await h.cfn.send(new GetTemplateSummaryCommand({ StackName: stack.StackId }))).ResourceTypes).toEqual(['AWS::EC2::VPC', 'AWS::EC2::Subnet']);
    const gone = await rejection(h.cfn.send(new GetTemplateSummaryCommand({ StackName: 'small' })));
    expect(gone.name).toBe('ValidationError');
    expect(gone.message).toBe('Stack with id small does not exist');

    const none = await rejection(h.cfn.send(new GetTemplateSummaryCommand({})));
    expect(none.name).toBe('ValidationError');
    const two = await rejection(h.cfn.send(new GetTemplateSummaryCommand({ StackName: 'small', TemplateBody: SMALL })));
    expect(two.name).toBe('ValidationError');
  });

  it('refuses a TemplateBody over 51,200 bytes, as CloudFormation does, and takes one of exactly that size', async () => {
    const padded = (bytes: number) => {
      const base = JSON.stringify({ Description: '', Resources: { Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: '10.1.0.0/16' } } } });
      return base.replace('"Description":""', `"Description":"${'x'.repeat(bytes - base.length)}"`);
    };
    expect(Buffer.byteLength(padded(51_200))).toBe(51_200);
    await h.cfn.send(new ValidateTemplateCommand({ TemplateBody: padded(51_200) }));
    const big = await rejection(h.cfn.send(new ValidateTemplateCommand({ TemplateBody: padded(51_201) })));
    expect(big.name).toBe('ValidationError');
    expect(big.message).toMatch(/^1 validation error detected: Value '.*' at 'templateBody' failed to satisfy constraint: Member must have length less than or equal to 51200$/s);
    const create = await rejection(changeSet(h.cfn, 'big', padded(51_201)));
    expect(create.message).toBe(big.message);
    expect(h.emu.world.cloudformation.stacks).toEqual([]);
  });
});

describe('intrinsic functions', () => {
  beforeEach(async () => {
    h = await startLab({ region: 'eu-west-1' });
  });

  it('evaluates every function hanat may use', async () => {
    const body = JSON.stringify({
      Parameters: { Prefix: { Type: 'String', Default: '10.4' }, Azs: { Type: 'Number', Default: '2', MinValue: 2, MaxValue: 6 }, List: { Type: 'CommaDelimitedList', Default: 'x,y,z' } },
      Mappings: { Size: { small: { Type: 't4g.nano' } } },
      Conditions: {
        Two: { 'Fn::Equals': [{ Ref: 'Azs' }, '2'] },
        NotTwo: { 'Fn::Not': [{ Condition: 'Two' }] },
        Both: { 'Fn::And': [{ Condition: 'Two' }, { 'Fn::Equals': ['a', 'a'] }] },
        Either: { 'Fn::Or': [{ Condition: 'NotTwo' }, { 'Fn::Equals': ['a', 'b'] }] },
      },
      Resources: {
        Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: { 'Fn::Sub': '${Prefix}.0.0/16' } } },
        Extra: { Type: 'AWS::EC2::InternetGateway', Condition: 'NotTwo' },
      },
      Outputs: {
        Sub: { Value: { 'Fn::Sub': ['${AWS::StackName}-${AWS::Region}-${X}-${Vpc.CidrBlock}-${!Literal}', { X: { 'Fn::Select': [2, { Ref: 'List' }] } }] } },
        Join: { Value: { 'Fn::Join': ['/', [{ Ref: 'AWS::AccountId' }, { Ref: 'AWS::Partition' }, { Ref: 'AWS::URLSuffix' }]] } },
        Azs: { Value: { 'Fn::Join': [',', { 'Fn::GetAZs': '' }] } },
        Cidr: { Value: { 'Fn::Join': [' ', { 'Fn::Cidr': [{ 'Fn::GetAtt': ['Vpc', 'CidrBlock'] }, 3, 8] }] } },
        Split: { Value: { 'Fn::Select': [1, { 'Fn::Split': ['.', { Ref: 'Prefix' }] }] } },
        If: { Value: { 'Fn::If': ['Two', 'two', 'not two'] } },
        Flags: { Value: { 'Fn::Join': [',', [{ 'Fn::If': ['Both', 'both', 'no'] }, { 'Fn::If': ['Either', 'either', 'neither'] }]] } },
        Map: { Value: { 'Fn::FindInMap': ['Size', 'small', 'Type'] } },
        B64: { Value: { 'Fn::Base64': 'hello' } },
        NoValue: { Value: { 'Fn::Join': ['', [{ 'Fn::If': ['Two', { Ref: 'AWS::NoValue' }, 'x'] }, 'kept']] } },
        Ssm: { Value: '{{resolve:ssm:/hanat/ami/arm64}}' },
        StackId: { Value: { Ref: 'AWS::StackId' } },
      },
    });
    const stack = await deploy(h.cfn, 'fns', body);
    expect(stack.StackStatus).toBe('CREATE_COMPLETE');
    const out = Object.fromEntries(stack.Outputs!.map((o) => [o.OutputKey, o.OutputValue]));
    expect(out).toEqual({
      Sub: 'fns-eu-west-1-z-10.4.0.0/16-${Literal}',
      Join: '123456789012/aws/amazonaws.com',
      Azs: 'eu-west-1a,eu-west-1b,eu-west-1c,eu-west-1d,eu-west-1e,eu-west-1f',
      Cidr: '10.4.0.0/24 10.4.1.0/24 10.4.2.0/24',
      Split: '4',
      If: 'two',
      Flags: 'both,neither',
      Map: 't4g.nano',
      B64: 'aGVsbG8=',
      NoValue: 'kept',
      Ssm: 'ami-0a1b2c3d4e5f60001',
      StackId: stack.StackId,
    });
    const resources = (await h.cfn.send(new DescribeStackResourcesCommand({ StackName: 'fns' }))).StackResources!;
    expect(resources.map((r) => r.LogicalResourceId)).toEqual(['Vpc']);
    const select = JSON.stringify({ Resources: { Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: { 'Fn::Select': [9, ['10.0.0.0/16']] } } } } });
    expect((await rejection(changeSet(h.cfn, 'sel', select))).message).toBe('Template error: Fn::Select cannot select nonexistent value at index 9');
    const attr = JSON.stringify({ Resources: { Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: '10.0.0.0/16' } } }, Outputs: { X: { Value: { 'Fn::GetAtt': ['Vpc', 'Nope'] } } } });
    expect((await rejection(changeSet(h.cfn, 'attr', attr))).message).toBe('Template error: resource Vpc does not support attribute type Nope in Fn::GetAtt');
  });
});

describe('stack and change set lifecycle', () => {
  beforeEach(async () => {
    h = await startLab();
  });

  it('keeps a REVIEW_IN_PROGRESS stack for a CREATE change set until it is executed', async () => {
    const cs = await changeSet(h.cfn, 'small', SMALL);
    const review = (await h.cfn.send(new DescribeStacksCommand({ StackName: 'small' }))).Stacks![0]!;
    expect(review.StackStatus).toBe('REVIEW_IN_PROGRESS');
    expect(cs.Changes!.map((c) => [c.ResourceChange!.Action, c.ResourceChange!.LogicalResourceId])).toEqual([
      ['Add', 'Vpc'],
      ['Add', 'Subnet'],
    ]);
    const list = await h.cfn.send(new ListChangeSetsCommand({ StackName: 'small' }));
    expect(list.Summaries!.map((s) => [s.ChangeSetName, s.Status, s.ExecutionStatus])).toEqual([[cs.ChangeSetName, 'CREATE_COMPLETE', 'AVAILABLE']]);
    const template = await h.cfn.send(new GetTemplateCommand({ StackName: 'small', ChangeSetName: cs.ChangeSetName }));
    expect(template.TemplateBody).toBe(SMALL);
    const again = await rejection(h.cfn.send(new CreateChangeSetCommand({ StackName: 'small', ChangeSetName: cs.ChangeSetName, ChangeSetType: 'CREATE', TemplateBody: SMALL })));
    expect(again.name).toBe('AlreadyExistsException');
    await h.cfn.send(new DeleteChangeSetCommand({ ChangeSetName: cs.ChangeSetName, StackName: 'small' }));
    const missing = await rejection(h.cfn.send(new DescribeChangeSetCommand({ ChangeSetName: cs.ChangeSetId })));
    expect(missing.name).toBe('ChangeSetNotFoundException');
    await h.cfn.send(new DeleteStackCommand({ StackName: 'small' }));
    await eventually(async () => ((await h.cfn.send(new DescribeStacksCommand({}))).Stacks!.length === 0 ? true : undefined), 3000, 'review stack deleted');
  });

  it('refuses UPDATE change sets for missing stacks and CREATE ones for existing stacks', async () => {
    const update = await rejection(changeSet(h.cfn, 'nope', SMALL, [], 'UPDATE'));
    expect(update.name).toBe('ValidationError');
    expect(update.message).toBe('Stack [nope] does not exist');
    await deploy(h.cfn, 'small', SMALL);
    const create = await rejection(changeSet(h.cfn, 'small', SMALL));
    expect(create.name).toBe('AlreadyExistsException');
    const describe = await rejection(h.cfn.send(new DescribeStacksCommand({ StackName: 'nope' })));
    expect(describe.name).toBe('ValidationError');
    expect(describe.message).toBe('Stack with id nope does not exist');
    const direct = await rejection(h.cfn.send(new CreateStackCommand({ StackName: 'small', TemplateBody: SMALL })));
    expect(direct.name).toBe('AlreadyExistsException');
  });

  it('progresses asynchronously on the emulator clock', async () => {
    await h.close();
    const clock = new ManualClock();
    const slow: LatencyProfile = { name: 'slow', api: () => 0, resource: () => 1000, changeSet: () => 500, instanceShutdown: () => 0, healthCheck: () => 0, launchRetry: () => 1000 };
    h = await startLab({ clock, latency: slow });
    const created = await h.cfn.send(new CreateChangeSetCommand({ StackName: 'small', ChangeSetName: 'c1', ChangeSetType: 'CREATE', TemplateBody: SMALL }));
    expect((await h.cfn.send(new DescribeChangeSetCommand({ ChangeSetName: created.Id }))).Status).not.toBe('CREATE_COMPLETE');
    await clock.advance(500);
    await waitChangeSet(h.cfn, created.Id!);
    const start = clock.now();
    await h.cfn.send(new ExecuteChangeSetCommand({ ChangeSetName: created.Id }));
    await clock.advance(1000);
    const midway = await eventually(async () => {
      const s = (await h.cfn.send(new DescribeStacksCommand({ StackName: 'small' }))).Stacks![0]!;
      return h.emu.world.ec2.vpcs.size === 1 ? s : undefined;
    });
    expect(midway.StackStatus).toBe('CREATE_IN_PROGRESS');
    expect(h.emu.world.ec2.subnets.size).toBe(0);
    await clock.advance(1000);
    const done = await waitStack(h.cfn, 'small');
    expect(done.StackStatus).toBe('CREATE_COMPLETE');
    const evs = await events(h.cfn, 'small');
    const vpcDone = evs.find((e) => e.LogicalResourceId === 'Vpc' && e.ResourceStatus === 'CREATE_COMPLETE')!;
    const subnetDone = evs.find((e) => e.LogicalResourceId === 'Subnet' && e.ResourceStatus === 'CREATE_COMPLETE')!;
    expect(vpcDone.Timestamp!.getTime() - start).toBe(1000);
    expect(subnetDone.Timestamp!.getTime() - start).toBe(2000);
  });
});

describe('AWS errors of the stack calls', () => {
  beforeEach(async () => {
    h = await startLab();
  });

  it('fails the per-stack calls for a stack that does not exist, each with its own wording', async () => {
    const failure = async (p: Promise<unknown>) => {
      const err = await rejection(p);
      return [err.name, err.message];
    };
    expect(await failure(h.cfn.send(new DescribeStackEventsCommand({ StackName: 'nope' })))).toEqual(['ValidationError', 'Stack [nope] does not exist']);
    const withId = ['ValidationError', 'Stack with id nope does not exist'];
    expect(await failure(h.cfn.send(new DescribeStackResourcesCommand({ StackName: 'nope' })))).toEqual(withId);
    expect(await failure(h.cfn.send(new ListStackResourcesCommand({ StackName: 'nope' })))).toEqual(withId);
    expect(await failure(h.cfn.send(new GetTemplateCommand({ StackName: 'nope' })))).toEqual(withId);
    expect(await failure(h.cfn.send(new ListChangeSetsCommand({ StackName: 'nope' })))).toEqual(withId);
    const arn = 'arn:aws:cloudformation:us-east-1:123456789012:changeSet/c1/00000000-0000-0000-0000-000000000000';
    expect(await failure(h.cfn.send(new DeleteChangeSetCommand({ ChangeSetName: arn })))).toEqual(['ChangeSetNotFoundException', `ChangeSet [${arn}] does not exist`]);
  });

  it('refuses RetainResources unless the stack is DELETE_FAILED', async () => {
    const stack = await deploy(h.cfn, 'small', SMALL);
    expect(await rejection(h.cfn.send(new DeleteStackCommand({ StackName: 'small', RetainResources: ['Vpc'] })))).toMatchObject({
      name: 'ValidationError',
      message: `Invalid operation on stack [${stack.StackId}]. RetainResources can only be specified when the stack is in the DELETE_FAILED state`,
    });
  });
});

describe('deleting a stack while an operation runs', () => {
  let clock: ManualClock;
  const slow: LatencyProfile = { name: 'slow', api: () => 0, resource: () => 1000, changeSet: () => 0, instanceShutdown: () => 0, healthCheck: () => 0, launchRetry: () => 1000 };

  beforeEach(async () => {
    clock = new ManualClock();
    h = await startLab({ clock, latency: slow });
  });

  /** Advances the clock a second at a time until the stack settles. */
  async function settle(name: string): Promise<Stack> {
    return eventually(async () => {
      await clock.advance(1000);
      const s = (await h.cfn.send(new DescribeStacksCommand({ StackName: name }))).Stacks![0]!;
      return s.StackStatus!.endsWith('_IN_PROGRESS') ? undefined : s;
    }, 5000, `stack ${name} settled`);
  }

  it('deletes a stack that is being created, as AWS does: creation stops, what it made is deleted', async () => {
    const created = await h.cfn.send(new CreateChangeSetCommand({ StackName: 'small', ChangeSetName: 'c1', ChangeSetType: 'CREATE', TemplateBody: SMALL }));
    await waitChangeSet(h.cfn, created.Id!);
    await h.cfn.send(new ExecuteChangeSetCommand({ ChangeSetName: created.Id }));
    await clock.advance(1000);
    // The VPC is made; the subnet that depends on it is being created.
    await eventually(() => (h.emu.world.ec2.vpcs.size === 1 && h.emu.world.cloudformation.findStack('small')!.resources.get('Subnet')!.status === 'CREATE_IN_PROGRESS' ? true : undefined));
    expect(await rejection(h.cfn.send(new DeleteChangeSetCommand({ ChangeSetName: created.Id })))).toMatchObject({
      name: 'InvalidChangeSetStatusException',
      message: 'Cannot delete ChangeSet in status EXECUTE_IN_PROGRESS',
    });

    await h.cfn.send(new DeleteStackCommand({ StackName: 'small' }));
    const stackId = created.StackId!;
    expect((await h.cfn.send(new DescribeStacksCommand({ StackName: stackId }))).Stacks![0]!.StackStatus).toBe('DELETE_IN_PROGRESS');
    // A second delete is accepted and changes nothing.
    await h.cfn.send(new DeleteStackCommand({ StackName: 'small' }));
    const gone = await settle(stackId);
    expect(gone.StackStatus).toBe('DELETE_COMPLETE');
    expect(h.emu.world.ec2.vpcs.size + h.emu.world.ec2.subnets.size).toBe(0);

    const evs = await events(h.cfn, stackId);
    expect(evs.filter((e) => e.LogicalResourceId === 'small').map((e) => e.ResourceStatus)).toEqual(['REVIEW_IN_PROGRESS', 'CREATE_IN_PROGRESS', 'DELETE_IN_PROGRESS', 'DELETE_COMPLETE']);
    expect(evs.filter((e) => e.LogicalResourceId === 'Subnet').map((e) => [e.ResourceStatus, e.ResourceStatusReason])).toEqual([
      ['CREATE_IN_PROGRESS', undefined],
      ['CREATE_IN_PROGRESS', 'Resource creation Initiated'],
      ['CREATE_COMPLETE', undefined],
      ['CREATE_FAILED', 'Resource creation cancelled'],
      ['DELETE_IN_PROGRESS', undefined],
      ['DELETE_COMPLETE', undefined],
    ]);
    expect(evs.filter((e) => e.LogicalResourceId === 'Vpc').map((e) => e.ResourceStatus).slice(-2)).toEqual(['DELETE_IN_PROGRESS', 'DELETE_COMPLETE']);
  });

  it('refuses to delete a stack that is being updated', async () => {
    await h.cfn.send(new CreateStackCommand({ StackName: 'small', TemplateBody: SMALL }));
    expect((await settle('small')).StackStatus).toBe('CREATE_COMPLETE');
    await h.cfn.send(new UpdateStackCommand({ StackName: 'small', TemplateBody: SMALL, Parameters: [{ ParameterKey: 'Public', ParameterValue: 'true' }] }));
    await eventually(async () => ((await h.cfn.send(new DescribeStacksCommand({ StackName: 'small' }))).Stacks![0]!.StackStatus === 'UPDATE_IN_PROGRESS' ? true : undefined));
    expect(await rejection(h.cfn.send(new DeleteStackCommand({ StackName: 'small' })))).toMatchObject({
      name: 'ValidationError',
      message: 'Stack [small] cannot be deleted while in status UPDATE_IN_PROGRESS',
    });
    expect((await settle('small')).StackStatus).toBe('UPDATE_COMPLETE');
  });
});
