/**
 * EC2 through the real SDK: every operation hanat uses, its AWS error codes,
 * and Describe filters as AWS documents them.
 */
import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  AssociateRouteTableCommand,
  AssociateVpcCidrBlockCommand,
  AttachInternetGatewayCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateInternetGatewayCommand,
  CreateKeyPairCommand,
  CreateLaunchTemplateCommand,
  CreateRouteCommand,
  CreateRouteTableCommand,
  CreateSubnetCommand,
  CreateTagsCommand,
  CreateVpcCommand,
  DeleteRouteCommand,
  DeleteRouteTableCommand,
  DeleteTagsCommand,
  DeleteVpcCommand,
  DescribeAddressesCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeInternetGatewaysCommand,
  DescribeKeyPairsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeSubnetsCommand,
  DescribeTagsCommand,
  DescribeVpcsCommand,
  DisassociateAddressCommand,
  ImportKeyPairCommand,
  ModifyInstanceAttributeCommand,
  ReplaceRouteCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  paginateDescribeInstances,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LAB_INSTANCE_HEADER } from '../src/contract.js';
import { LAB_IMAGES } from '../src/emulator/index.js';
import { eventually, rejection, startLab, type Harness } from './emulator/helpers.js';

let h: Harness;
beforeEach(async () => {
  h = await startLab();
});
afterEach(async () => {
  await h.close();
});

/** A VPC with one public and one private subnet in us-east-1a, an attached IGW and a private route table. */
async function network(ec2: EC2Client) {
  const vpc = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16', TagSpecifications: [{ ResourceType: 'vpc', Tags: [{ Key: 'hanat:stack', Value: 'lab' }] }] }))).Vpc!;
  const pub = (await ec2.send(new CreateSubnetCommand({ VpcId: vpc.VpcId, CidrBlock: '10.0.0.0/24', AvailabilityZone: 'us-east-1a', TagSpecifications: [{ ResourceType: 'subnet', Tags: [{ Key: 'network', Value: 'public' }] }] }))).Subnet!;
  const priv = (await ec2.send(new CreateSubnetCommand({ VpcId: vpc.VpcId, CidrBlock: '10.0.10.0/24', AvailabilityZone: 'us-east-1a', TagSpecifications: [{ ResourceType: 'subnet', Tags: [{ Key: 'network', Value: 'private' }] }] }))).Subnet!;
  const igw = (await ec2.send(new CreateInternetGatewayCommand({}))).InternetGateway!;
  await ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: igw.InternetGatewayId, VpcId: vpc.VpcId }));
  const rt = (await ec2.send(new CreateRouteTableCommand({ VpcId: vpc.VpcId, TagSpecifications: [{ ResourceType: 'route-table', Tags: [{ Key: 'network', Value: 'private' }, { Key: 'hanat:az', Value: 'us-east-1a' }] }] }))).RouteTable!;
  const assoc = await ec2.send(new AssociateRouteTableCommand({ RouteTableId: rt.RouteTableId, SubnetId: priv.SubnetId }));
  return { vpcId: vpc.VpcId!, publicSubnetId: pub.SubnetId!, privateSubnetId: priv.SubnetId!, igwId: igw.InternetGatewayId!, routeTableId: rt.RouteTableId!, associationId: assoc.AssociationId! };
}

async function launch(ec2: EC2Client, subnetId: string, tags: Record<string, string> = {}) {
  const out = await ec2.send(
    new RunInstancesCommand({
      MinCount: 1,
      MaxCount: 1,
      ImageId: LAB_IMAGES[0]!.id,
      InstanceType: 't4g.nano',
      NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: subnetId, AssociatePublicIpAddress: true }],
      TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }],
    }),
  );
  const id = out.Instances![0]!.InstanceId!;
  await eventually(() => (h.emu.world.ec2.instances.get(id)?.state === 'running' ? true : undefined), 2000, `${id} running`);
  return id;
}

describe('images, zones and regions', () => {
  it('publishes the lab images for arm64 and x86_64 at fixed ids', async () => {
    const out = await h.ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    const byArch = Object.fromEntries(out.Images!.map((i) => [i.Architecture, i.ImageId]));
    expect(byArch).toEqual({ arm64: 'ami-0a1b2c3d4e5f60001', x86_64: 'ami-0a1b2c3d4e5f60002' });
    const arm = await h.ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'architecture', Values: ['arm64'] }] }));
    expect(arm.Images!.map((i) => i.ImageId)).toEqual(['ami-0a1b2c3d4e5f60001']);
    expect(arm.Images![0]!.State).toBe('available');
  });

  it('fails DescribeImages for unknown and malformed image ids with EC2 error codes', async () => {
    const missing = await rejection(h.ec2.send(new DescribeImagesCommand({ ImageIds: ['ami-0123456789abcdef0'] })));
    expect(missing.name).toBe('InvalidAMIID.NotFound');
    expect(missing.message).toBe("The image id '[ami-0123456789abcdef0]' does not exist");
    const malformed = await rejection(h.ec2.send(new DescribeImagesCommand({ ImageIds: ['banana'] })));
    expect(malformed.name).toBe('InvalidAMIID.Malformed');
  });

  it('names six Availability Zones after the region the request was signed for', async () => {
    const east = await h.ec2.send(new DescribeAvailabilityZonesCommand({}));
    expect(east.AvailabilityZones!.map((z) => z.ZoneName)).toEqual(['a', 'b', 'c', 'd', 'e', 'f'].map((l) => `us-east-1${l}`));
    expect(east.AvailabilityZones![0]).toMatchObject({ State: 'available', RegionName: 'us-east-1', ZoneId: 'use1-az1' });
    const west = await h.clients({ region: 'eu-west-1' }).ec2.send(new DescribeAvailabilityZonesCommand({}));
    expect(west.AvailabilityZones!.map((z) => z.ZoneName)).toContain('eu-west-1c');
    const err = await rejection(h.ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: ['us-east-1z'] })));
    expect(err.name).toBe('InvalidParameterValue');
  });

  it('keeps each region a separate world', async () => {
    const west = h.clients({ region: 'eu-west-1' });
    await west.ec2.send(new CreateVpcCommand({ CidrBlock: '10.9.0.0/16' }));
    expect((await west.ec2.send(new DescribeVpcsCommand({}))).Vpcs).toHaveLength(1);
    expect((await h.ec2.send(new DescribeVpcsCommand({}))).Vpcs).toHaveLength(0);
  });
});

describe('VPCs and subnets', () => {
  it('allows VPCs with overlapping ranges, as AWS does', async () => {
    await h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }));
    await h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }));
    expect((await h.ec2.send(new DescribeVpcsCommand({}))).Vpcs).toHaveLength(2);
  });

  it('with distinctVpcCidrs (the lab: one router for every VPC) refuses a range that overlaps a VPC in any region, naming it, until that VPC is deleted', async () => {
    const lab = await startLab({ distinctVpcCidrs: true });
    try {
      const first = (await lab.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!.VpcId!;
      const west = lab.clients({ region: 'eu-west-1' }).ec2;
      for (const [ec2, cidr] of [[lab.ec2, '10.0.0.0/16'], [lab.ec2, '10.0.128.0/17'], [west, '10.0.0.0/16'], [lab.ec2, '10.0.64.0/18']] as const) {
        const err = await rejection(ec2.send(new CreateVpcCommand({ CidrBlock: cidr })));
        expect(err.name).toBe('InvalidVpc.Range');
        expect(err.message).toContain(`The CIDR '${cidr}' overlaps 10.0.0.0/16 of ${first} (us-east-1)`);
        expect(err.message).toContain('hanat-lab routes every VPC through one router');
      }
      await lab.ec2.send(new CreateVpcCommand({ CidrBlock: '10.1.0.0/16' }));
      await lab.ec2.send(new DeleteVpcCommand({ VpcId: first }));
      await west.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }));
      expect((await lab.ec2.send(new DescribeVpcsCommand({}))).Vpcs!.map((v) => v.CidrBlock)).toEqual(['10.1.0.0/16']);
    } finally {
      await lab.close();
    }
  });

  it('creates a VPC with its main route table and default security group', async () => {
    const { vpcId } = await network(h.ec2);
    const vpcs = await h.ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }));
    expect(vpcs.Vpcs![0]).toMatchObject({ VpcId: vpcId, CidrBlock: '10.0.0.0/16', State: 'available', IsDefault: false, Tags: [{ Key: 'hanat:stack', Value: 'lab' }] });
    expect(vpcs.Vpcs![0]!.CidrBlockAssociationSet![0]!.CidrBlock).toBe('10.0.0.0/16');
    const main = await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'association.main', Values: ['true'] }] }));
    expect(main.RouteTables).toHaveLength(1);
    expect(main.RouteTables![0]!.Routes).toEqual([{ DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local', Origin: 'CreateRouteTable', State: 'active' }]);
    const sgs = await h.ec2.send(new DescribeSecurityGroupsCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }, { Name: 'group-name', Values: ['default'] }] }));
    expect(sgs.SecurityGroups).toHaveLength(1);
  });

  it('rejects subnets outside the VPC, overlapping ones and unknown zones', async () => {
    const { vpcId } = await network(h.ec2);
    const outside = await rejection(h.ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.1.0.0/24', AvailabilityZone: 'us-east-1a' })));
    expect(outside.name).toBe('InvalidSubnet.Range');
    const overlap = await rejection(h.ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.0.128/25', AvailabilityZone: 'us-east-1b' })));
    expect(overlap.name).toBe('InvalidSubnet.Conflict');
    const zone = await rejection(h.ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.5.0/24', AvailabilityZone: 'us-east-1q' })));
    expect(zone.name).toBe('InvalidParameterValue');
    const vpc = await rejection(h.ec2.send(new CreateSubnetCommand({ VpcId: 'vpc-0123456789abcdef0', CidrBlock: '10.0.5.0/24' })));
    expect(vpc.name).toBe('InvalidVpcID.NotFound');
  });

  it('filters subnets by vpc-id, availability-zone, tags and wildcards', async () => {
    const { vpcId, publicSubnetId, privateSubnetId } = await network(h.ec2);
    await h.ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.11.0/24', AvailabilityZone: 'us-east-1b', TagSpecifications: [{ ResourceType: 'subnet', Tags: [{ Key: 'network', Value: 'private' }] }] }));
    const ids = async (filters: { Name: string; Values: string[] }[]) => (await h.ec2.send(new DescribeSubnetsCommand({ Filters: filters }))).Subnets!.map((s) => s.SubnetId).sort();
    expect(await ids([{ Name: 'vpc-id', Values: [vpcId] }])).toHaveLength(3);
    expect(await ids([{ Name: 'availability-zone', Values: ['us-east-1a'] }])).toEqual([publicSubnetId, privateSubnetId].sort());
    expect(await ids([{ Name: 'tag:network', Values: ['private'] }, { Name: 'availability-zone', Values: ['us-east-1a'] }])).toEqual([privateSubnetId]);
    expect(await ids([{ Name: 'tag-key', Values: ['network'] }])).toHaveLength(3);
    expect(await ids([{ Name: 'cidr-block', Values: ['10.0.1*'] }])).toHaveLength(2);
    expect(await ids([{ Name: 'tag:network', Values: ['nothing'] }])).toEqual([]);
    const bad = await rejection(h.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'no-such-filter', Values: ['x'] }] })));
    expect(bad.name).toBe('InvalidParameterValue');
    expect(bad.message).toContain("The filter 'no-such-filter' is invalid");
    const missing = await rejection(h.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ['subnet-0123456789abcdef0'] })));
    expect(missing.name).toBe('InvalidSubnetID.NotFound');
  });
});

describe('route tables and routes', () => {
  it('finds a subnet\'s table by association.subnet-id and tags', async () => {
    const { routeTableId, privateSubnetId, associationId } = await network(h.ec2);
    const out = await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'association.subnet-id', Values: [privateSubnetId] }] }));
    expect(out.RouteTables!.map((r) => r.RouteTableId)).toEqual([routeTableId]);
    expect(out.RouteTables![0]!.Associations).toEqual([{ Main: false, RouteTableAssociationId: associationId, RouteTableId: routeTableId, SubnetId: privateSubnetId, AssociationState: { State: 'associated' } }]);
    const tagged = await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'tag:hanat:az', Values: ['us-east-1a'] }, { Name: 'tag:network', Values: ['private'] }] }));
    expect(tagged.RouteTables!.map((r) => r.RouteTableId)).toEqual([routeTableId]);
    const again = await rejection(h.ec2.send(new AssociateRouteTableCommand({ RouteTableId: routeTableId, SubnetId: privateSubnetId })));
    expect(again.name).toBe('Resource.AlreadyAssociated');
  });

  it('creates, replaces and deletes routes with AWS error codes for each failure', async () => {
    const { routeTableId, igwId, publicSubnetId } = await network(h.ec2);
    const instanceId = await launch(h.ec2, publicSubnetId);
    const eni = h.emu.world.ec2.instances.get(instanceId)!.eniId;

    const noRoute = await rejection(h.ec2.send(new ReplaceRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: eni })));
    expect(noRoute.name).toBe('InvalidParameterValue');
    expect(noRoute.message).toContain("There is no route defined for '0.0.0.0/0' in the route table");

    await h.ec2.send(new CreateRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: eni }));
    let routes = (await h.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [routeTableId] }))).RouteTables![0]!.Routes!;
    expect(routes.find((r) => r.DestinationCidrBlock === '0.0.0.0/0')).toEqual({ DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: eni, InstanceId: instanceId, InstanceOwnerId: '123456789012', Origin: 'CreateRoute', State: 'active' });

    const dup = await rejection(h.ec2.send(new CreateRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0', GatewayId: igwId })));
    expect(dup.name).toBe('RouteAlreadyExists');
    expect(dup.message).toBe('The route identified by 0.0.0.0/0 already exists.');

    await h.ec2.send(new ReplaceRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0', GatewayId: igwId }));
    routes = (await h.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [routeTableId] }))).RouteTables![0]!.Routes!;
    expect(routes.find((r) => r.DestinationCidrBlock === '0.0.0.0/0')).toMatchObject({ GatewayId: igwId, State: 'active' });
    expect(routes.find((r) => r.DestinationCidrBlock === '0.0.0.0/0')!.NetworkInterfaceId).toBeUndefined();

    // An instance target is stored as its primary interface.
    await h.ec2.send(new ReplaceRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0', InstanceId: instanceId }));
    const filtered = await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'route.network-interface-id', Values: [eni] }] }));
    expect(filtered.RouteTables!.map((r) => r.RouteTableId)).toEqual([routeTableId]);

    await h.ec2.send(new DeleteRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0' }));
    const gone = await rejection(h.ec2.send(new DeleteRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0' })));
    expect(gone.name).toBe('InvalidRoute.NotFound');
    const local = await rejection(h.ec2.send(new DeleteRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '10.0.0.0/16' })));
    expect(local.name).toBe('InvalidParameterValue');
    const table = await rejection(h.ec2.send(new CreateRouteCommand({ RouteTableId: 'rtb-0123456789abcdef0', DestinationCidrBlock: '0.0.0.0/0', GatewayId: igwId })));
    expect(table.name).toBe('InvalidRouteTableID.NotFound');
    const target = await rejection(h.ec2.send(new CreateRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: 'eni-0123456789abcdef0' })));
    expect(target.name).toBe('InvalidNetworkInterfaceID.NotFound');
    const inst = await rejection(h.ec2.send(new CreateRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0', InstanceId: 'i-0123456789abcdef0' })));
    expect(inst.name).toBe('InvalidInstanceID.NotFound');
    const cidr = await rejection(h.ec2.send(new CreateRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/33', GatewayId: igwId })));
    expect(cidr.name).toBe('InvalidParameterValue');
  });

  it('turns a route to a terminated instance\'s interface into a blackhole', async () => {
    const { routeTableId, publicSubnetId } = await network(h.ec2);
    const instanceId = await launch(h.ec2, publicSubnetId);
    await h.ec2.send(new CreateRouteCommand({ RouteTableId: routeTableId, DestinationCidrBlock: '0.0.0.0/0', InstanceId: instanceId }));
    await h.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    await eventually(() => (h.emu.world.ec2.instances.get(instanceId)?.state === 'terminated' ? true : undefined));
    const route = (await h.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [routeTableId] }))).RouteTables![0]!.Routes!.find((r) => r.DestinationCidrBlock === '0.0.0.0/0')!;
    expect(route.State).toBe('blackhole');
    expect(route.InstanceId).toBeUndefined();
    const blackholes = await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'route.state', Values: ['blackhole'] }] }));
    expect(blackholes.RouteTables!.map((r) => r.RouteTableId)).toEqual([routeTableId]);
  });

  it('refuses to delete a route table that still has subnets', async () => {
    const { routeTableId } = await network(h.ec2);
    const err = await rejection(h.ec2.send(new DeleteRouteTableCommand({ RouteTableId: routeTableId })));
    expect(err.name).toBe('DependencyViolation');
  });
});

describe('instances', () => {
  it('launches into the first free address from .10 with source/dest check on', async () => {
    const { publicSubnetId, vpcId } = await network(h.ec2);
    const a = await launch(h.ec2, publicSubnetId, { Name: 'a' });
    const b = await launch(h.ec2, publicSubnetId, { Name: 'b' });
    const out = await h.ec2.send(new DescribeInstancesCommand({ InstanceIds: [a, b] }));
    const instances = out.Reservations!.flatMap((r) => r.Instances!);
    expect(instances.map((i) => i.PrivateIpAddress).sort()).toEqual(['10.0.0.10', '10.0.0.11']);
    const first = instances.find((i) => i.InstanceId === a)!;
    expect(first).toMatchObject({ State: { Code: 16, Name: 'running' }, SubnetId: publicSubnetId, VpcId: vpcId, Architecture: 'arm64', SourceDestCheck: true, Tags: [{ Key: 'Name', Value: 'a' }] });
    expect(first.PublicIpAddress).toMatch(/^198\.19\./);
    expect(first.NetworkInterfaces![0]!.MacAddress).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(first.Placement!.AvailabilityZone).toBe('us-east-1a');
  });

  it('filters instances by state, tag, subnet and interface', async () => {
    const { publicSubnetId } = await network(h.ec2);
    const a = await launch(h.ec2, publicSubnetId, { role: 'nat' });
    const b = await launch(h.ec2, publicSubnetId, { role: 'other' });
    await h.ec2.send(new TerminateInstancesCommand({ InstanceIds: [b] }));
    await eventually(() => (h.emu.world.ec2.instances.get(b)?.state === 'terminated' ? true : undefined));
    const ids = async (filters: { Name: string; Values: string[] }[]) =>
      (await h.ec2.send(new DescribeInstancesCommand({ Filters: filters }))).Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId)).sort();
    expect(await ids([{ Name: 'instance-state-name', Values: ['running'] }])).toEqual([a]);
    expect(await ids([{ Name: 'instance-state-name', Values: ['terminated'] }])).toEqual([b]);
    expect(await ids([{ Name: 'tag:role', Values: ['nat'] }])).toEqual([a]);
    expect(await ids([{ Name: 'subnet-id', Values: [publicSubnetId] }, { Name: 'instance-state-name', Values: ['pending', 'running'] }])).toEqual([a]);
    const eni = h.emu.world.ec2.instances.get(a)!.eniId;
    expect(await ids([{ Name: 'network-interface.network-interface-id', Values: [eni] }])).toEqual([a]);
  });

  it('pages DescribeInstances for the SDK paginator', async () => {
    const { publicSubnetId } = await network(h.ec2);
    const launched: string[] = [];
    for (let i = 0; i < 12; i++) launched.push(await launch(h.ec2, publicSubnetId));
    const pages: string[][] = [];
    for await (const page of paginateDescribeInstances({ client: h.ec2, pageSize: 5 }, {})) {
      pages.push(page.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId!)));
    }
    expect(pages.map((p) => p.length)).toEqual([5, 5, 2]);
    const seen = pages.flat();
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.sort()).toEqual(launched.sort());

    const first = await h.ec2.send(new DescribeInstancesCommand({ MaxResults: 5 }));
    expect(first.NextToken).toEqual(expect.any(String));
    const last = await h.ec2.send(new DescribeInstancesCommand({ MaxResults: 10, NextToken: first.NextToken }));
    expect(last.NextToken).toBeUndefined();
    expect(last.Reservations!.flatMap((r) => r.Instances!)).toHaveLength(7);
  });

  it('fails on unknown and malformed instance ids', async () => {
    const missing = await rejection(h.ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0', 'i-0123456789abcdef1'] })));
    expect(missing.name).toBe('InvalidInstanceID.NotFound');
    expect(missing.message).toBe("The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist");
    const malformed = await rejection(h.ec2.send(new DescribeInstancesCommand({ InstanceIds: ['nat-1'] })));
    expect(malformed.name).toBe('InvalidInstanceID.Malformed');
  });

  it('reads and turns off source/dest check, on the instance and its interface', async () => {
    const { publicSubnetId } = await network(h.ec2);
    const id = await launch(h.ec2, publicSubnetId);
    const before = await h.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'sourceDestCheck' }));
    expect(before.SourceDestCheck).toEqual({ Value: true });
    await h.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, SourceDestCheck: { Value: false } }));
    const after = await h.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'sourceDestCheck' }));
    expect(after.SourceDestCheck).toEqual({ Value: false });
    const enis = await h.ec2.send(new DescribeNetworkInterfacesCommand({ Filters: [{ Name: 'attachment.instance-id', Values: [id] }] }));
    expect(enis.NetworkInterfaces).toHaveLength(1);
    expect(enis.NetworkInterfaces![0]).toMatchObject({ SourceDestCheck: false, Status: 'in-use', Attachment: { InstanceId: id, DeviceIndex: 0 } });
    expect(h.emu.network.snapshot().instances.find((i) => i.instanceId === id)!.sourceDestCheck).toBe(false);
    const missing = await rejection(h.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: 'i-0123456789abcdef0', SourceDestCheck: { Value: false } })));
    expect(missing.name).toBe('InvalidInstanceID.NotFound');
    const attr = await rejection(h.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: id, Attribute: 'bogus' as 'sourceDestCheck' })));
    expect(attr.name).toBe('InvalidParameterValue');
  });

  it('refuses an image whose architecture does not fit the instance type', async () => {
    const { publicSubnetId } = await network(h.ec2);
    const err = await rejection(h.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: LAB_IMAGES[1]!.id, InstanceType: 't4g.nano', SubnetId: publicSubnetId })));
    expect(err.name).toBe('InvalidParameterValue');
    expect(err.message).toContain("architecture 'arm64' of the specified instance type does not match the architecture 'x86_64'");
  });

  it('launches from a launch template, with its tags and metadata options', async () => {
    const { publicSubnetId } = await network(h.ec2);
    const lt = await h.ec2.send(
      new CreateLaunchTemplateCommand({
        LaunchTemplateName: 'nat',
        LaunchTemplateData: {
          ImageId: 'resolve:ssm:/hanat/ami/x86_64',
          InstanceType: 't3.micro',
          MetadataOptions: { HttpTokens: 'required', InstanceMetadataTags: 'enabled' },
          TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'hanat:stack', Value: 'lab' }] }],
        },
      }),
    );
    const out = await h.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, SubnetId: publicSubnetId, LaunchTemplate: { LaunchTemplateId: lt.LaunchTemplate!.LaunchTemplateId } }));
    const i = out.Instances![0]!;
    expect(i.ImageId).toBe('ami-0a1b2c3d4e5f60002');
    expect(i.MetadataOptions).toMatchObject({ HttpTokens: 'required', InstanceMetadataTags: 'enabled' });
    expect(i.Tags).toEqual(expect.arrayContaining([{ Key: 'hanat:stack', Value: 'lab' }]));
    const lts = await h.ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: ['nat'] }));
    expect(lts.LaunchTemplates![0]).toMatchObject({ LaunchTemplateName: 'nat', LatestVersionNumber: 1, DefaultVersionNumber: 1 });
  });

  it('rejects DryRun requests with DryRunOperation', async () => {
    const { publicSubnetId } = await network(h.ec2);
    const id = await launch(h.ec2, publicSubnetId);
    const err = await rejection(h.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: id, SourceDestCheck: { Value: false }, DryRun: true })));
    expect(err.name).toBe('DryRunOperation');
    expect(err.$metadata?.httpStatusCode).toBe(412);
    expect(h.emu.world.ec2.networkInterfaces.get(h.emu.world.ec2.instances.get(id)!.eniId)!.sourceDestCheck).toBe(true);
  });
});

describe('Elastic IPs', () => {
  it('associates, moves with AllowReassociation, and disassociates', async () => {
    const { publicSubnetId } = await network(h.ec2);
    const a = await launch(h.ec2, publicSubnetId);
    const b = await launch(h.ec2, publicSubnetId);
    const eip = await h.ec2.send(new AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: [{ ResourceType: 'elastic-ip', Tags: [{ Key: 'hanat:az', Value: 'us-east-1a' }] }] }));
    expect(eip.PublicIp).toMatch(/^198\.18\./);
    const autoA = h.emu.network.snapshot().instances.find((i) => i.instanceId === a)!.publicIp;

    const assoc = await h.ec2.send(new AssociateAddressCommand({ AllocationId: eip.AllocationId, InstanceId: a }));
    const described = (await h.ec2.send(new DescribeAddressesCommand({ Filters: [{ Name: 'tag:hanat:az', Values: ['us-east-1a'] }] }))).Addresses!;
    expect(described).toHaveLength(1);
    expect(described[0]).toMatchObject({ AllocationId: eip.AllocationId, PublicIp: eip.PublicIp, Domain: 'vpc', AssociationId: assoc.AssociationId, InstanceId: a, PrivateIpAddress: '10.0.0.10' });
    const ia = (await h.ec2.send(new DescribeInstancesCommand({ InstanceIds: [a] }))).Reservations![0]!.Instances![0]!;
    expect(ia.PublicIpAddress).toBe(eip.PublicIp);
    expect(h.emu.network.snapshot().instances.find((i) => i.instanceId === a)!.publicIp).toBe(eip.PublicIp);

    const eniB = h.emu.world.ec2.instances.get(b)!.eniId;
    const taken = await rejection(h.ec2.send(new AssociateAddressCommand({ AllocationId: eip.AllocationId, NetworkInterfaceId: eniB, AllowReassociation: false })));
    expect(taken.name).toBe('Resource.AlreadyAssociated');
    await h.ec2.send(new AssociateAddressCommand({ AllocationId: eip.AllocationId, NetworkInterfaceId: eniB, AllowReassociation: true }));
    const moved = (await h.ec2.send(new DescribeAddressesCommand({ AllocationIds: [eip.AllocationId!] }))).Addresses![0]!;
    expect(moved).toMatchObject({ InstanceId: b, NetworkInterfaceId: eniB });
    const snapA = h.emu.network.snapshot().instances.find((i) => i.instanceId === a)!.publicIp;
    expect(snapA).toMatch(/^198\.19\./);
    expect(snapA).not.toBe(autoA);

    await h.ec2.send(new DisassociateAddressCommand({ AssociationId: moved.AssociationId }));
    expect((await h.ec2.send(new DescribeAddressesCommand({ AllocationIds: [eip.AllocationId!] }))).Addresses![0]!.AssociationId).toBeUndefined();
    const again = await rejection(h.ec2.send(new DisassociateAddressCommand({ AssociationId: moved.AssociationId })));
    expect(again.name).toBe('InvalidAssociationID.NotFound');
    const unknown = await rejection(h.ec2.send(new AssociateAddressCommand({ AllocationId: 'eipalloc-0123456789abcdef0', InstanceId: a })));
    expect(unknown.name).toBe('InvalidAllocationID.NotFound');
  });
});

describe('tags and key pairs', () => {
  it('creates, describes and deletes tags; aws: keys are reserved', async () => {
    const { vpcId, routeTableId } = await network(h.ec2);
    await h.ec2.send(new CreateTagsCommand({ Resources: [routeTableId], Tags: [{ Key: 'hanat:owner', Value: 'i-1' }, { Key: 'hanat:owner-since', Value: '2026-01-01T00:00:00Z' }] }));
    const tags = await h.ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [routeTableId] }, { Name: 'key', Values: ['hanat:owner*'] }] }));
    expect(tags.Tags!.map((t) => [t.Key, t.Value, t.ResourceType])).toEqual([
      ['hanat:owner', 'i-1', 'route-table'],
      ['hanat:owner-since', '2026-01-01T00:00:00Z', 'route-table'],
    ]);
    await h.ec2.send(new DeleteTagsCommand({ Resources: [routeTableId], Tags: [{ Key: 'hanat:owner-since' }, { Key: 'hanat:owner', Value: 'someone-else' }] }));
    const left = await h.ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-id', Values: [routeTableId] }] }));
    expect(left.Tags!.map((t) => t.Key).sort()).toEqual(['hanat:az', 'hanat:owner', 'network']);
    const reserved = await rejection(h.ec2.send(new CreateTagsCommand({ Resources: [vpcId], Tags: [{ Key: 'aws:cloudformation:stack-name', Value: 'x' }] })));
    expect(reserved.name).toBe('InvalidParameterValue');
    const missing = await rejection(h.ec2.send(new CreateTagsCommand({ Resources: ['rtb-0123456789abcdef0'], Tags: [{ Key: 'a', Value: 'b' }] })));
    expect(missing.name).toBe('InvalidRouteTableID.NotFound');
  });

  it('imports, creates and describes key pairs', async () => {
    const material = Buffer.from('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHanatLabTestKeyMaterialOnlyForTests00000 lab');
    const imported = await h.ec2.send(new ImportKeyPairCommand({ KeyName: 'ops', PublicKeyMaterial: material }));
    expect(imported.KeyFingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
    const created = await h.ec2.send(new CreateKeyPairCommand({ KeyName: 'gen', KeyType: 'ed25519' }));
    expect(created.KeyMaterial).toContain('PRIVATE KEY');
    const listed = await h.ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['ops'] }));
    expect(listed.KeyPairs!.map((k) => k.KeyName)).toEqual(['ops']);
    const dup = await rejection(h.ec2.send(new ImportKeyPairCommand({ KeyName: 'ops', PublicKeyMaterial: material })));
    expect(dup.name).toBe('InvalidKeyPair.Duplicate');
    const missing = await rejection(h.ec2.send(new DescribeKeyPairsCommand({ KeyNames: ['nope'] })));
    expect(missing.name).toBe('InvalidKeyPair.NotFound');
  });
});

describe('AWS errors of the operations above', () => {
  /** The SDK error's code and message, for one toEqual. */
  const failure = async (p: Promise<unknown>) => {
    const err = await rejection(p);
    return [err.name, err.message];
  };
  const UNKNOWN = '0123456789abcdef0';

  it('refuses VPC blocks outside /16–/28 and route tables for unknown VPCs', async () => {
    expect(await failure(h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/8' })))).toEqual(['InvalidVpc.Range', "The CIDR '10.0.0.0/8' is invalid."]);
    expect(await failure(h.ec2.send(new CreateRouteTableCommand({ VpcId: `vpc-${UNKNOWN}` })))).toEqual(['InvalidVpcID.NotFound', `The vpc ID 'vpc-${UNKNOWN}' does not exist`]);
  });

  it('fails Describe calls that name an unknown id', async () => {
    expect(await failure(h.ec2.send(new DescribeRouteTablesCommand({ RouteTableIds: [`rtb-${UNKNOWN}`] })))).toEqual(['InvalidRouteTableID.NotFound', `The routeTable ID 'rtb-${UNKNOWN}' does not exist`]);
    expect(await failure(h.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [`sg-${UNKNOWN}`] })))).toEqual(['InvalidGroup.NotFound', `The security group 'sg-${UNKNOWN}' does not exist`]);
    expect(await failure(h.ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [`eni-${UNKNOWN}`] })))).toEqual([
      'InvalidNetworkInterfaceID.NotFound',
      `The networkInterface ID 'eni-${UNKNOWN}' does not exist`,
    ]);
    expect(await failure(h.ec2.send(new DescribeInternetGatewaysCommand({ InternetGatewayIds: [`igw-${UNKNOWN}`] })))).toEqual([
      'InvalidInternetGatewayID.NotFound',
      `The internetGateway ID 'igw-${UNKNOWN}' does not exist`,
    ]);
    expect(await failure(h.ec2.send(new DescribeTagsCommand({ Filters: [{ Name: 'resource-kind', Values: ['vpc'] }] })))).toEqual(['InvalidParameterValue', "The filter 'resource-kind' is invalid"]);
  });

  it('attaches an internet gateway to one VPC only, and a VPC takes one gateway', async () => {
    const { vpcId, igwId } = await network(h.ec2);
    const other = (await h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.1.0.0/16' }))).Vpc!.VpcId!;
    expect(await failure(h.ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: igwId, VpcId: other })))).toEqual(['Resource.AlreadyAssociated', `resource ${igwId} is already attached to network ${vpcId}`]);
    const second = (await h.ec2.send(new CreateInternetGatewayCommand({}))).InternetGateway!.InternetGatewayId!;
    expect(await failure(h.ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: second, VpcId: vpcId })))).toEqual(['InvalidParameterValue', `Network ${vpcId} already has an internet gateway attached`]);
  });

  it('fails TerminateInstances and DeleteTags for unknown ids', async () => {
    expect(await failure(h.ec2.send(new TerminateInstancesCommand({ InstanceIds: [`i-${UNKNOWN}`] })))).toEqual(['InvalidInstanceID.NotFound', `The instance ID 'i-${UNKNOWN}' does not exist`]);
    expect(await failure(h.ec2.send(new DeleteTagsCommand({ Resources: [`rtb-${UNKNOWN}`], Tags: [{ Key: 'hanat:owner' }] })))).toEqual(['InvalidRouteTableID.NotFound', `The routeTable ID 'rtb-${UNKNOWN}' does not exist`]);
  });

  it('refuses a malformed public key and duplicate key pair and launch template names', async () => {
    expect(await failure(h.ec2.send(new ImportKeyPairCommand({ KeyName: 'bad', PublicKeyMaterial: Buffer.from('-----BEGIN PUBLIC KEY-----') })))).toEqual(['InvalidKey.Format', 'Key is not in valid OpenSSH public key format']);
    await h.ec2.send(new CreateKeyPairCommand({ KeyName: 'ops' }));
    expect(await failure(h.ec2.send(new CreateKeyPairCommand({ KeyName: 'ops' })))).toEqual(['InvalidKeyPair.Duplicate', "The keypair 'ops' already exists."]);
    const data = { ImageId: LAB_IMAGES[0]!.id, InstanceType: 't4g.nano' as const };
    await h.ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'nat', LaunchTemplateData: data }));
    expect(await failure(h.ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'nat', LaunchTemplateData: data })))).toEqual([
      'InvalidLaunchTemplateName.AlreadyExistsException',
      'Launch template name already in use.',
    ]);
  });

  it('answers DryRun on calls that cannot otherwise fail here, and changes nothing', async () => {
    const dryRun = ['DryRunOperation', 'Request would have succeeded, but DryRun flag is set.'];
    expect(await failure(h.ec2.send(new AllocateAddressCommand({ Domain: 'vpc', DryRun: true })))).toEqual(dryRun);
    expect(await failure(h.ec2.send(new CreateInternetGatewayCommand({ DryRun: true })))).toEqual(dryRun);
    expect(h.emu.world.ec2.addresses.size + h.emu.world.ec2.internetGateways.size).toBe(0);
  });
});

describe('secondary VPC CIDR blocks (VPC User Guide, "VPC CIDR blocks")', () => {
  it('associates a block: Describe lists both, every route table routes it locally, subnets fit in it, IMDS lists it', async () => {
    const { vpcId, routeTableId } = await network(h.ec2);
    const id = await launch(h.ec2, (await network2(h.ec2, vpcId)).subnetId);
    const out = await h.ec2.send(new AssociateVpcCidrBlockCommand({ VpcId: vpcId, CidrBlock: '10.1.0.0/16' }));
    expect(out.CidrBlockAssociation).toMatchObject({ CidrBlock: '10.1.0.0/16', CidrBlockState: { State: 'associated' } });
    const vpc = (await h.ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }))).Vpcs![0]!;
    expect(vpc.CidrBlock).toBe('10.0.0.0/16');
    expect(vpc.CidrBlockAssociationSet!.map((c) => c.CidrBlock)).toEqual(['10.0.0.0/16', '10.1.0.0/16']);
    const tables = (await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'vpc-id', Values: [vpcId] }] }))).RouteTables!;
    for (const t of tables) expect(t.Routes!.filter((r) => r.GatewayId === 'local').map((r) => r.DestinationCidrBlock), t.RouteTableId).toEqual(['10.0.0.0/16', '10.1.0.0/16']);
    expect(tables.map((t) => t.RouteTableId)).toContain(routeTableId);
    await h.ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.1.10.0/24', AvailabilityZone: 'us-east-1a' }));

    const header = { [LAB_INSTANCE_HEADER]: id };
    const token = await (await fetch(`${h.url}/latest/api/token`, { method: 'PUT', headers: { ...header, 'x-aws-ec2-metadata-token-ttl-seconds': '60' } })).text();
    const mac = h.emu.world.ec2.instances.get(id)!.mac;
    const blocks = await fetch(`${h.url}/latest/meta-data/network/interfaces/macs/${mac}/vpc-ipv4-cidr-blocks`, { headers: { ...header, 'x-aws-ec2-metadata-token': token } });
    expect((await blocks.text()).split('\n')).toEqual(['10.0.0.0/16', '10.1.0.0/16']);
  });

  it("refuses an overlapping block, one from another private range than the primary's, a size outside /16-/28, and a sixth block", async () => {
    const { vpcId } = await network(h.ec2);
    const associate = (CidrBlock: string) => h.ec2.send(new AssociateVpcCidrBlockCommand({ VpcId: vpcId, CidrBlock }));
    expect((await rejection(associate('10.0.128.0/17'))).name).toBe('InvalidVpc.Range');
    expect((await rejection(associate('172.16.0.0/16'))).name).toBe('InvalidVpc.Range');
    expect((await rejection(associate('10.1.0.0/29'))).name).toBe('InvalidVpc.Range');
    for (const b of ['10.1.0.0/16', '10.2.0.0/16', '100.64.0.0/16', '10.3.0.0/16']) await associate(b);
    expect((await rejection(associate('10.4.0.0/16'))).name).toBe('CidrLimitExceeded');
  });
});

describe('security group ingress', () => {
  it('adds rules that Describe shows and the data plane sees on the instances in the group; a duplicate fails the call', async () => {
    const { vpcId, publicSubnetId } = await network(h.ec2);
    // The emulator has no CreateSecurityGroup call (templates create groups): make one directly.
    const sg = h.emu.world.ec2.createSecurityGroup({ name: 'nat', description: 'nat', vpcId }).id;
    const id = (
      await h.ec2.send(
        new RunInstancesCommand({
          MinCount: 1,
          MaxCount: 1,
          ImageId: LAB_IMAGES[0]!.id,
          InstanceType: 't4g.nano',
          NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: publicSubnetId, Groups: [sg] }],
        }),
      )
    ).Instances![0]!.InstanceId!;
    const ingressOf = () => h.emu.network.snapshot().instances.find((i) => i.instanceId === id)!.ingress;
    expect(ingressOf()).toEqual([]);
    const out = await h.ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: sg, IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '10.0.0.0/16', Description: 'vpc' }] }] }));
    expect(out.Return).toBe(true);
    await h.ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: sg, IpProtocol: 'tcp', FromPort: 22, ToPort: 22, CidrIp: '192.0.2.0/24' }));
    const group = (await h.ec2.send(new DescribeSecurityGroupsCommand({ GroupIds: [sg] }))).SecurityGroups![0]!;
    expect(group.IpPermissions).toEqual([
      expect.objectContaining({ IpProtocol: '-1', IpRanges: [{ CidrIp: '10.0.0.0/16', Description: 'vpc' }] }),
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 22, ToPort: 22, IpRanges: [{ CidrIp: '192.0.2.0/24' }] }),
    ]);
    expect(ingressOf()).toEqual([
      { protocol: '-1', cidr: '10.0.0.0/16' },
      { protocol: 'tcp', fromPort: 22, toPort: 22, cidr: '192.0.2.0/24' },
    ]);
    const dup = await rejection(h.ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: sg, IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '10.0.0.0/16' }] }] })));
    expect(dup.name).toBe('InvalidPermission.Duplicate');
    expect((await rejection(h.ec2.send(new AuthorizeSecurityGroupIngressCommand({ GroupId: 'sg-0123456789abcdef0', CidrIp: '10.0.0.0/16', IpProtocol: '-1' })))).name).toBe('InvalidGroup.NotFound');
  });
});

/** A public subnet of its own in an existing VPC's first block (for an instance). */
async function network2(ec2: EC2Client, vpcId: string) {
  const s = (await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: '10.0.1.0/24', AvailabilityZone: 'us-east-1a' }))).Subnet!;
  return { subnetId: s.SubnetId! };
}
