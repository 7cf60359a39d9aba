/**
 * The emulated operations that hanat itself does not call (the template engine, users of
 * `hanat-lab serve` and the AWS CLI do): each one's happy path and an AWS error case,
 * through the real SDK clients.
 */
import { CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand, DescribeAutoScalingInstancesCommand, SetDesiredCapacityCommand } from '@aws-sdk/client-auto-scaling';
import { CreateStackCommand, DescribeStackResourceCommand, DescribeStacksCommand, ListStacksCommand, type StackStatus } from '@aws-sdk/client-cloudformation';
import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  AssociateRouteTableCommand,
  AttachInternetGatewayCommand,
  CreateInternetGatewayCommand,
  CreateKeyPairCommand,
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateRouteTableCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DeleteKeyPairCommand,
  DeleteLaunchTemplateCommand,
  DeleteRouteTableCommand,
  DeleteSubnetCommand,
  DeleteVpcCommand,
  DescribeAccountAttributesCommand,
  DescribeAddressesCommand,
  DescribeKeyPairsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeNetworkInterfacesCommand,
  DescribeRegionsCommand,
  DescribeRouteTablesCommand,
  DescribeVpcsCommand,
  DetachInternetGatewayCommand,
  DisassociateAddressCommand,
  DisassociateRouteTableCommand,
  ModifyNetworkInterfaceAttributeCommand,
  ReleaseAddressCommand,
  ReplaceRouteTableAssociationCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DeleteParameterCommand, GetParameterCommand, GetParametersCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LAB_IMAGES } from '../src/emulator/index.js';
import { eventually, rejection, startLab, type Harness } from './emulator/helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await startLab();
});
afterEach(async () => {
  await h.close();
});

async function vpcWithSubnet() {
  const vpcId = (await h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!.VpcId!;
  const subnetId = (await h.ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.0.0/24', AvailabilityZone: 'us-east-1a' }))).Subnet!.SubnetId!;
  return { vpcId, subnetId };
}

describe('EC2', () => {
  it('deletes subnets, route tables and VPCs only once nothing depends on them', async () => {
    const { vpcId, subnetId } = await vpcWithSubnet();
    const rt = (await h.ec2.send(new CreateRouteTableCommand({ VpcId: vpcId }))).RouteTable!.RouteTableId!;
    const assoc = (await h.ec2.send(new AssociateRouteTableCommand({ RouteTableId: rt, SubnetId: subnetId }))).AssociationId!;
    expect(await rejection(h.ec2.send(new DeleteVpcCommand({ VpcId: vpcId })))).toMatchObject({ name: 'DependencyViolation' });
    expect(await rejection(h.ec2.send(new DeleteRouteTableCommand({ RouteTableId: rt })))).toMatchObject({ name: 'DependencyViolation' });
    await h.ec2.send(new DisassociateRouteTableCommand({ AssociationId: assoc }));
    expect(await rejection(h.ec2.send(new DisassociateRouteTableCommand({ AssociationId: assoc })))).toMatchObject({ name: 'InvalidAssociationID.NotFound' });
    await h.ec2.send(new DeleteRouteTableCommand({ RouteTableId: rt }));
    await h.ec2.send(new DeleteSubnetCommand({ SubnetId: subnetId }));
    expect(await rejection(h.ec2.send(new DeleteSubnetCommand({ SubnetId: subnetId })))).toMatchObject({ name: 'InvalidSubnetID.NotFound' });
    await h.ec2.send(new DeleteVpcCommand({ VpcId: vpcId }));
    expect(await rejection(h.ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] })))).toMatchObject({ name: 'InvalidVpcID.NotFound', message: `The vpc ID '${vpcId}' does not exist` });
  });

  it('moves a subnet to another route table with ReplaceRouteTableAssociation', async () => {
    const { vpcId, subnetId } = await vpcWithSubnet();
    const [a, b] = await Promise.all([0, 1].map(async () => (await h.ec2.send(new CreateRouteTableCommand({ VpcId: vpcId }))).RouteTable!.RouteTableId!));
    const assoc = (await h.ec2.send(new AssociateRouteTableCommand({ RouteTableId: a, SubnetId: subnetId }))).AssociationId!;
    const moved = await h.ec2.send(new ReplaceRouteTableAssociationCommand({ AssociationId: assoc, RouteTableId: b }));
    expect(moved.NewAssociationId).toMatch(/^rtbassoc-/);
    const found = await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'association.subnet-id', Values: [subnetId] }] }));
    expect(found.RouteTables?.map((t) => t.RouteTableId)).toEqual([b]);
    expect(await rejection(h.ec2.send(new ReplaceRouteTableAssociationCommand({ AssociationId: assoc, RouteTableId: a })))).toMatchObject({ name: 'InvalidAssociationID.NotFound' });
  });

  it('detaches an internet gateway only from the VPC it is attached to', async () => {
    const { vpcId } = await vpcWithSubnet();
    const other = (await h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.1.0.0/16' }))).Vpc!.VpcId!;
    const igw = (await h.ec2.send(new CreateInternetGatewayCommand({}))).InternetGateway!.InternetGatewayId!;
    await h.ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: igw, VpcId: vpcId }));
    expect(await rejection(h.ec2.send(new DetachInternetGatewayCommand({ InternetGatewayId: igw, VpcId: other })))).toMatchObject({ name: 'Gateway.NotAttached' });
    await h.ec2.send(new DetachInternetGatewayCommand({ InternetGatewayId: igw, VpcId: vpcId }));
    await h.ec2.send(new DeleteVpcCommand({ VpcId: other }));
  });

  it('refuses AllocateAddress over the Elastic IP quota (5 by default) with AddressLimitExceeded, and DescribeAccountAttributes reports the quota', async () => {
    const quota = async () =>
      (await h.ec2.send(new DescribeAccountAttributesCommand({}))).AccountAttributes?.find((a) => a.AttributeName === 'vpc-max-elastic-ips')?.AttributeValues?.[0]?.AttributeValue;
    expect(await quota()).toBe('5');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await h.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }))).AllocationId!);
    expect(await rejection(h.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' })))).toMatchObject({
      name: 'AddressLimitExceeded',
      message: 'The maximum number of addresses has been reached.',
    });
    // A released address frees its place; a raised quota (Service Quotas) makes room.
    await h.ec2.send(new ReleaseAddressCommand({ AllocationId: ids[0] }));
    await h.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
    h.emu.account.settings.eipQuota = 6;
    expect(await quota()).toBe('6');
    await h.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
    // The quota is per region.
    const other = h.clients({ region: 'eu-west-1' });
    await other.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
  });

  it('turns off source/dest check on an interface, and releases an Elastic IP only once it is free', async () => {
    const { subnetId } = await vpcWithSubnet();
    const run = await h.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: LAB_IMAGES[0]!.id, InstanceType: 't4g.nano', SubnetId: subnetId }));
    const eni = run.Instances![0]!.NetworkInterfaces![0]!.NetworkInterfaceId!;
    await h.ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: eni, SourceDestCheck: { Value: false } }));
    const described = await h.ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [eni] }));
    expect(described.NetworkInterfaces?.[0]?.SourceDestCheck).toBe(false);
    expect(await rejection(h.ec2.send(new ModifyNetworkInterfaceAttributeCommand({ NetworkInterfaceId: 'eni-0123456789abcdef0', SourceDestCheck: { Value: false } })))).toMatchObject({
      name: 'InvalidNetworkInterfaceID.NotFound',
    });

    const eip = await h.ec2.send(new AllocateAddressCommand({ Domain: 'vpc' }));
    const association = await h.ec2.send(new AssociateAddressCommand({ AllocationId: eip.AllocationId, NetworkInterfaceId: eni }));
    expect(await rejection(h.ec2.send(new ReleaseAddressCommand({ AllocationId: eip.AllocationId })))).toMatchObject({ name: 'InvalidIPAddress.InUse' });
    await h.ec2.send(new DisassociateAddressCommand({ AssociationId: association.AssociationId }));
    await h.ec2.send(new ReleaseAddressCommand({ AllocationId: eip.AllocationId }));
    expect(await rejection(h.ec2.send(new DescribeAddressesCommand({ AllocationIds: [eip.AllocationId!] })))).toMatchObject({ name: 'InvalidAllocationID.NotFound' });
  });

  it('versions, describes and deletes launch templates', async () => {
    const lt = (await h.ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'nat', LaunchTemplateData: { InstanceType: 't4g.nano', ImageId: LAB_IMAGES[0]!.id } }))).LaunchTemplate!;
    const v2 = await h.ec2.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: lt.LaunchTemplateId, SourceVersion: '1', LaunchTemplateData: { InstanceType: 't4g.micro' } }));
    expect(v2.LaunchTemplateVersion?.VersionNumber).toBe(2);
    const latest = await h.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: lt.LaunchTemplateId, Versions: ['$Latest'] }));
    // The new version keeps what it did not change from its source version.
    expect(latest.LaunchTemplateVersions?.[0]?.LaunchTemplateData).toMatchObject({ InstanceType: 't4g.micro', ImageId: LAB_IMAGES[0]!.id });
    expect(await rejection(h.ec2.send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: lt.LaunchTemplateId, Versions: ['7'] })))).toMatchObject({
      name: 'InvalidLaunchTemplateVersion.NotFound',
    });
    await h.ec2.send(new DeleteLaunchTemplateCommand({ LaunchTemplateName: 'nat' }));
    expect(await rejection(h.ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: [lt.LaunchTemplateId!] })))).toMatchObject({
      name: 'InvalidLaunchTemplateId.NotFound',
    });
    expect(await rejection(h.ec2.send(new DeleteLaunchTemplateCommand({ LaunchTemplateName: 'nat' })))).toMatchObject({
      name: 'InvalidLaunchTemplateName.NotFoundException',
      message: 'The specified launch template, with template name nat, does not exist.',
    });
    expect(await rejection(h.ec2.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: lt.LaunchTemplateId, LaunchTemplateData: { InstanceType: 't4g.micro' } })))).toMatchObject({
      name: 'InvalidLaunchTemplateId.NotFound',
      message: `The specified launch template, with template ID ${lt.LaunchTemplateId}, does not exist.`,
    });
  });

  it('deletes key pairs, and names the region it answers for', async () => {
    await h.ec2.send(new CreateKeyPairCommand({ KeyName: 'ops' }));
    const dryRun = { name: 'DryRunOperation', message: 'Request would have succeeded, but DryRun flag is set.' };
    expect(await rejection(h.ec2.send(new DeleteKeyPairCommand({ KeyName: 'ops', DryRun: true })))).toMatchObject(dryRun);
    await h.ec2.send(new DeleteKeyPairCommand({ KeyName: 'ops' }));
    expect(await rejection(h.ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['ops'] })))).toMatchObject({ name: 'InvalidKeyPair.NotFound' });
    const regions = await h.clients({ region: 'eu-west-1' }).ec2.send(new DescribeRegionsCommand({}));
    expect(regions.Regions?.map((r) => r.RegionName)).toEqual(['eu-west-1']);
    expect(await rejection(h.ec2.send(new DescribeRegionsCommand({ DryRun: true })))).toMatchObject(dryRun);
  });
});

describe('Auto Scaling', () => {
  it('follows SetDesiredCapacity within the group bounds', async () => {
    const { subnetId } = await vpcWithSubnet();
    await h.ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'nat', LaunchTemplateData: { InstanceType: 't4g.nano', ImageId: LAB_IMAGES[0]!.id } }));
    await h.asg.send(new CreateAutoScalingGroupCommand({ AutoScalingGroupName: 'g', LaunchTemplate: { LaunchTemplateName: 'nat' }, MinSize: 1, MaxSize: 2, VPCZoneIdentifier: subnetId }));
    expect(await rejection(h.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'g', DesiredCapacity: 3 })))).toMatchObject({
      name: 'ValidationError',
      message: 'Desired capacity:3 must be between the specified min size:1 and max size:2',
    });
    await h.asg.send(new SetDesiredCapacityCommand({ AutoScalingGroupName: 'g', DesiredCapacity: 2 }));
    await eventually(async () => {
      const g = (await h.asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['g'] }))).AutoScalingGroups?.[0];
      return g?.DesiredCapacity === 2 && g.Instances?.filter((i) => i.LifecycleState === 'InService').length === 2 ? true : undefined;
    }, 5_000, 'two instances in service');
    const page = await h.asg.send(new DescribeAutoScalingInstancesCommand({ MaxRecords: 1 }));
    expect(page.AutoScalingInstances).toHaveLength(1);
    expect(await rejection(h.asg.send(new DescribeAutoScalingInstancesCommand({ NextToken: 'not-a-token' })))).toMatchObject({ name: 'InvalidNextToken', message: 'The NextToken value is not valid.' });
  });
});

describe('CloudFormation', () => {
  it('lists stacks by status and describes one resource of a stack', async () => {
    const TemplateBody = JSON.stringify({ Resources: { Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: '10.9.0.0/16' } } } });
    await h.cfn.send(new CreateStackCommand({ StackName: 's', TemplateBody }));
    await eventually(async () => ((await h.cfn.send(new DescribeStacksCommand({ StackName: 's' }))).Stacks?.[0]?.StackStatus === 'CREATE_COMPLETE' ? true : undefined), 5_000, 'stack created');
    const listed = await h.cfn.send(new ListStacksCommand({ StackStatusFilter: ['CREATE_COMPLETE'] }));
    expect(listed.StackSummaries?.map((s) => s.StackName)).toEqual(['s']);
    expect((await h.cfn.send(new ListStacksCommand({ StackStatusFilter: ['DELETE_COMPLETE'] }))).StackSummaries).toEqual([]);
    const vpc = await h.cfn.send(new DescribeStackResourceCommand({ StackName: 's', LogicalResourceId: 'Vpc' }));
    expect(vpc.StackResourceDetail).toMatchObject({ ResourceType: 'AWS::EC2::VPC', ResourceStatus: 'CREATE_COMPLETE', PhysicalResourceId: expect.stringMatching(/^vpc-/) });
    expect(await rejection(h.cfn.send(new DescribeStackResourceCommand({ StackName: 's', LogicalResourceId: 'Nope' })))).toMatchObject({ name: 'ValidationError', message: 'Resource Nope does not exist for stack s' });
    const bogus = await rejection(h.cfn.send(new ListStacksCommand({ StackStatusFilter: ['CREATE_COMPLETE', 'DONE' as StackStatus] })));
    expect(bogus.name).toBe('ValidationError');
    expect(bogus.message).toMatch(/^1 validation error detected: Value '\[DONE\]' at 'stackStatusFilter' failed to satisfy constraint: Member must satisfy constraint: \[Member must satisfy enum value set: \[.*\bUPDATE_ROLLBACK_COMPLETE\b.*\]\]$/);
  });
});

describe('SSM', () => {
  it('puts parameter versions, refuses to overwrite unless asked, and reads several at once', async () => {
    expect((await h.ssm.send(new PutParameterCommand({ Name: '/hanat/test', Value: 'one', Type: 'String' }))).Version).toBe(1);
    expect(await rejection(h.ssm.send(new PutParameterCommand({ Name: '/hanat/test', Value: 'two', Type: 'String' })))).toMatchObject({ name: 'ParameterAlreadyExists' });
    expect((await h.ssm.send(new PutParameterCommand({ Name: '/hanat/test', Value: 'two', Type: 'String', Overwrite: true }))).Version).toBe(2);
    const got = await h.ssm.send(new GetParametersCommand({ Names: ['/hanat/test', '/hanat/missing'] }));
    expect(got.Parameters?.map((p) => [p.Name, p.Value, p.Version])).toEqual([['/hanat/test', 'two', 2]]);
    expect(got.InvalidParameters).toEqual(['/hanat/missing']);
    const eleven = Array.from({ length: 11 }, (_, i) => `/hanat/p${i}`);
    expect(await rejection(h.ssm.send(new GetParametersCommand({ Names: eleven })))).toMatchObject({
      name: 'ValidationException',
      message: `1 validation error detected: Value '[${eleven.join(', ')}]' at 'names' failed to satisfy constraint: Member must have length less than or equal to 10`,
    });
  });

  it('deletes a parameter, and refuses to delete one that does not exist', async () => {
    await h.ssm.send(new PutParameterCommand({ Name: '/hanat/test', Value: 'one', Type: 'String' }));
    await h.ssm.send(new DeleteParameterCommand({ Name: '/hanat/test' }));
    expect(await rejection(h.ssm.send(new GetParameterCommand({ Name: '/hanat/test' })))).toMatchObject({ name: 'ParameterNotFound' });
    expect(await rejection(h.ssm.send(new DeleteParameterCommand({ Name: '/hanat/test' })))).toMatchObject({ name: 'ParameterNotFound', message: 'Parameter /hanat/test not found.' });
  });
});
