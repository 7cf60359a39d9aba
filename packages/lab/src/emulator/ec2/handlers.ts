/**
 * EC2 API operations (Query protocol, Version 2016-11-15). One handler per
 * operation; each validates its input the way EC2 does and delegates to the
 * region's Ec2 state. Describe filters are tables of extractors (filters.ts).
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import * as ec2sdk from '@aws-sdk/client-ec2';
import type * as T from '@aws-sdk/client-ec2';
import { AwsError, invalidParameterValue, missingParameter } from '../errors.js';
import { applyFilters, type FilterTable } from '../filters.js';
import { azId } from '../env.js';
import { op, opTable, paginate, type OpContext, type OpDef, type Out } from '../protocol/ops.js';
import { tagsFromList, type Tags } from '../tags.js';
import {
  renderAddress,
  renderAvailabilityZone,
  renderImage,
  renderInstance,
  renderInternetGateway,
  renderKeyPair,
  renderLaunchTemplate,
  renderLaunchTemplateVersion,
  renderNetworkInterface,
  renderRouteTable,
  renderSecurityGroup,
  renderSubnet,
  renderVpc,
} from './render.js';
import { isOffered, LAB_INSTANCE_TYPES } from './offerings.js';
import { STATE_CODE, type InstanceStatusView, type StatusCheck, type Address, type Ec2, type Image, type Instance, type KeyPair, type NetworkInterface, type RouteTable, type SecurityGroup, type Subnet, type Vpc } from './state.js';

const invalidToken = (t: string) => new AwsError('InvalidNextToken', `The token '${t}' is invalid`);

function ec2Of(ctx: OpContext): Ec2 {
  return ctx.region.ec2;
}

/** Ids that must all exist: EC2 fails the whole call, naming every missing id. */
function requireIds<X>(ids: readonly string[] | undefined, lookup: (id: string) => X | undefined, code: string, noun: string): void {
  const missing = (ids ?? []).filter((id) => lookup(id) === undefined);
  if (missing.length === 1) throw new AwsError(code, `The ${noun} ID '${missing[0]}' does not exist`);
  if (missing.length > 1) throw new AwsError(code, `The ${noun} IDs '${missing.join(', ')}' do not exist`);
}

function byIds<X>(all: Iterable<X>, ids: readonly string[] | undefined, idOf: (x: X) => string): X[] {
  const list = [...all];
  if (!ids?.length) return list;
  const wanted = new Set(ids);
  return list.filter((x) => wanted.has(idOf(x)));
}

/** Tags given to a Create call through TagSpecifications, for one resource type. */
function specTags(specs: readonly T.TagSpecification[] | undefined, resourceType: string): Tags | undefined {
  const spec = specs?.find((s) => s.ResourceType === resourceType);
  return spec ? tagsFromList(spec.Tags) : undefined;
}

function checkUserTags(tags: readonly T.Tag[]): void {
  for (const t of tags) {
    if (!t.Key) throw missingParameter('Tag.Key');
    if (t.Key.toLowerCase().startsWith('aws:')) throw invalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use");
    if (t.Key.length > 128) throw invalidParameterValue(`Tag key exceeds the maximum length of 128 characters`);
    if ((t.Value ?? '').length > 256) throw invalidParameterValue(`Tag value exceeds the maximum length of 256 characters`);
  }
}

// ------------------------------------------------------------------ filter tables

const vpcFilters = (ec2: Ec2): FilterTable<Vpc> => ({
  tags: (v) => ec2.tags.get(v.id),
  fields: {
    'vpc-id': (v) => v.id,
    cidr: (v) => v.cidr,
    'cidr-block-association.cidr-block': (v) => v.cidrs.map((c) => c.cidr),
    'cidr-block-association.association-id': (v) => v.cidrs.map((c) => c.associationId),
    'cidr-block-association.state': () => 'associated',
    'dhcp-options-id': (v) => v.dhcpOptionsId,
    'is-default': () => false,
    'owner-id': () => ec2.env.accountId,
    state: () => 'available',
  },
});

const subnetFilters = (ec2: Ec2): FilterTable<Subnet> => ({
  tags: (s) => ec2.tags.get(s.id),
  fields: {
    'subnet-id': (s) => s.id,
    'vpc-id': (s) => s.vpcId,
    'availability-zone': (s) => s.az,
    availabilityZone: (s) => s.az,
    'availability-zone-id': (s) => renderSubnet(ec2, s).AvailabilityZoneId,
    'cidr-block': (s) => s.cidr,
    cidr: (s) => s.cidr,
    cidrBlock: (s) => s.cidr,
    'default-for-az': () => false,
    defaultForAz: () => false,
    'map-public-ip-on-launch': (s) => s.mapPublicIpOnLaunch,
    'owner-id': () => ec2.env.accountId,
    state: () => 'available',
    'subnet-arn': (s) => renderSubnet(ec2, s).SubnetArn,
    'available-ip-address-count': (s) => ec2.availableAddresses(s),
  },
});

const routeTableFilters = (ec2: Ec2): FilterTable<RouteTable> => ({
  tags: (r) => ec2.tags.get(r.id),
  fields: {
    'route-table-id': (r) => r.id,
    'vpc-id': (r) => r.vpcId,
    'owner-id': () => ec2.env.accountId,
    'association.route-table-association-id': (r) => r.associations.map((a) => a.id),
    'association.route-table-id': (r) => (r.associations.length ? r.id : undefined),
    'association.subnet-id': (r) => r.associations.map((a) => a.subnetId),
    'association.main': (r) => (r.associations.some((a) => a.main) ? 'true' : 'false'),
    'route.destination-cidr-block': (r) => r.routes.map((x) => x.destination),
    'route.gateway-id': (r) => r.routes.map((x) => x.gatewayId),
    'route.network-interface-id': (r) => r.routes.map((x) => x.networkInterfaceId),
    'route.instance-id': (r) =>
      r.routes.map((x) => {
        const eni = x.networkInterfaceId ? ec2.networkInterfaces.get(x.networkInterfaceId) : undefined;
        return eni ? ec2.attachedInstance(eni)?.id : undefined;
      }),
    'route.origin': (r) => r.routes.map((x) => x.origin),
    'route.state': (r) => r.routes.map((x) => ec2.routeState(r, x)),
  },
});

const instanceFilters = (ec2: Ec2): FilterTable<Instance> => {
  const eni = (i: Instance) => (i.state === 'terminated' ? undefined : ec2.networkInterfaces.get(i.eniId));
  return {
    tags: (i) => ec2.tags.get(i.id),
    fields: {
      'instance-id': (i) => i.id,
      'instance-state-name': (i) => i.state,
      'instance-state-code': (i) => STATE_CODE[i.state],
      'instance-type': (i) => i.instanceType,
      'image-id': (i) => i.imageId,
      architecture: (i) => i.architecture,
      'availability-zone': (i) => i.az,
      'vpc-id': (i) => (i.state === 'terminated' ? undefined : i.vpcId),
      'subnet-id': (i) => (i.state === 'terminated' ? undefined : i.subnetId),
      'private-ip-address': (i) => (i.state === 'terminated' ? undefined : i.privateIp),
      'ip-address': (i) => {
        const e = eni(i);
        return e ? ec2.publicIpOf(e) : undefined;
      },
      'key-name': (i) => i.keyName,
      'reservation-id': (i) => i.reservationId,
      'owner-id': () => ec2.env.accountId,
      'iam-instance-profile.arn': (i) => i.iamInstanceProfile?.arn,
      'source-dest-check': (i) => eni(i)?.sourceDestCheck,
      'network-interface.network-interface-id': (i) => eni(i)?.id,
      'network-interface.addresses.private-ip-address': (i) => eni(i)?.privateIp,
      'network-interface.subnet-id': (i) => eni(i)?.subnetId,
      'network-interface.vpc-id': (i) => eni(i)?.vpcId,
      'network-interface.mac-address': (i) => eni(i)?.mac,
      'network-interface.source-dest-check': (i) => eni(i)?.sourceDestCheck,
      'metadata-options.http-tokens': (i) => i.metadata.httpTokens,
      'metadata-options.instance-metadata-tags': (i) => i.metadata.instanceMetadataTags,
      'client-token': (i) => i.clientToken,
      'instance.group-id': (i) => i.groups,
    },
  };
};

/** Reachability as a status check detail: what the summary status means for its one check. */
function reachability(s: StatusCheck): string | undefined {
  switch (s) {
    case 'ok':
      return 'passed';
    case 'impaired':
      return 'failed';
    case 'initializing':
      return 'initializing';
    case 'insufficient-data':
      return 'insufficient-data';
    case 'not-applicable':
      return undefined;
  }
}

const instanceStatusFilters: FilterTable<{ i: Instance; s: InstanceStatusView }> = {
  fields: {
    'availability-zone': ({ i }) => i.az,
    'instance-state-name': ({ i }) => i.state,
    'instance-state-code': ({ i }) => STATE_CODE[i.state],
    'instance-status.status': ({ s }) => s.instance,
    'instance-status.reachability': ({ s }) => reachability(s.instance),
    'system-status.status': ({ s }) => s.system,
    'system-status.reachability': ({ s }) => reachability(s.system),
    'event.code': () => undefined,
  },
};

function renderInstanceStatus(i: Instance, s: InstanceStatusView): T.InstanceStatus {
  const summary = (status: StatusCheck, impairedSince?: Date): T.InstanceStatusSummary => {
    const detail = reachability(status);
    return {
      Status: status,
      ...(detail ? { Details: [{ Name: 'reachability', Status: detail, ...(status === 'impaired' && impairedSince ? { ImpairedSince: impairedSince } : {}) }] } : {}),
    } as T.InstanceStatusSummary;
  };
  return {
    InstanceId: i.id,
    AvailabilityZone: i.az,
    InstanceState: { Code: STATE_CODE[i.state], Name: i.state },
    InstanceStatus: summary(s.instance, s.impairedSince),
    SystemStatus: summary(s.system),
  };
}

const eniFilters = (ec2: Ec2): FilterTable<NetworkInterface> => ({
  tags: (e) => ec2.tags.get(e.id),
  fields: {
    'network-interface-id': (e) => e.id,
    'subnet-id': (e) => e.subnetId,
    'vpc-id': (e) => e.vpcId,
    'availability-zone': (e) => e.az,
    'private-ip-address': (e) => e.privateIp,
    'addresses.private-ip-address': (e) => e.privateIp,
    'mac-address': (e) => e.mac,
    'source-dest-check': (e) => e.sourceDestCheck,
    status: (e) => (e.attachment ? 'in-use' : 'available'),
    description: (e) => e.description,
    'interface-type': () => 'interface',
    'owner-id': () => ec2.env.accountId,
    'requester-managed': () => false,
    'group-id': (e) => e.groups,
    'attachment.instance-id': (e) => e.attachment?.instanceId,
    'attachment.attachment-id': (e) => e.attachment?.id,
    'attachment.device-index': (e) => e.attachment?.deviceIndex,
    'attachment.status': (e) => (e.attachment ? 'attached' : undefined),
    'association.public-ip': (e) => ec2.publicIpOf(e),
    'association.allocation-id': (e) => ec2.addressOn(e.id)?.allocationId,
    'association.association-id': (e) => ec2.addressOn(e.id)?.association?.id,
  },
});

const addressFilters = (ec2: Ec2): FilterTable<Address> => ({
  tags: (a) => ec2.tags.get(a.allocationId),
  fields: {
    'allocation-id': (a) => a.allocationId,
    'association-id': (a) => a.association?.id,
    domain: () => 'vpc',
    'public-ip': (a) => a.publicIp,
    'network-interface-id': (a) => a.association?.networkInterfaceId,
    'network-interface-owner-id': (a) => (a.association ? ec2.env.accountId : undefined),
    'instance-id': (a) => renderAddress(ec2, a).InstanceId,
    'private-ip-address': (a) => renderAddress(ec2, a).PrivateIpAddress,
    'network-border-group': () => ec2.env.region,
  },
});

const keyPairFilters = (ec2: Ec2): FilterTable<KeyPair> => ({
  tags: (k) => ec2.tags.get(k.id),
  fields: {
    'key-name': (k) => k.name,
    'key-pair-id': (k) => k.id,
    fingerprint: (k) => k.fingerprint,
    'key-type': (k) => k.type,
  },
});

const imageFilters = (ec2: Ec2): FilterTable<Image> => ({
  tags: (i) => ec2.tags.get(i.id),
  fields: {
    'image-id': (i) => i.id,
    architecture: (i) => i.architecture,
    name: (i) => i.name,
    description: (i) => i.description,
    state: () => 'available',
    'owner-id': () => ec2.env.accountId,
    'is-public': () => false,
    'image-type': () => 'machine',
    'root-device-type': () => 'ebs',
    'virtualization-type': () => 'hvm',
    'ena-support': () => true,
  },
});

const securityGroupFilters = (ec2: Ec2): FilterTable<SecurityGroup> => ({
  tags: (g) => ec2.tags.get(g.id),
  fields: {
    'group-id': (g) => g.id,
    'group-name': (g) => g.name,
    description: (g) => g.description,
    'vpc-id': (g) => g.vpcId,
    'owner-id': () => ec2.env.accountId,
    'ip-permission.protocol': (g) => g.ingress.map((p) => p.IpProtocol),
    'ip-permission.cidr': (g) => g.ingress.flatMap((p) => (p.IpRanges ?? []).map((r) => r.CidrIp)),
    'egress.ip-permission.protocol': (g) => g.egress.map((p) => p.IpProtocol),
    'egress.ip-permission.cidr': (g) => g.egress.flatMap((p) => (p.IpRanges ?? []).map((r) => r.CidrIp)),
  },
});

// ------------------------------------------------------------------ operations

function routeTarget(input: { GatewayId?: string | undefined; NetworkInterfaceId?: string | undefined; InstanceId?: string | undefined; NatGatewayId?: string | undefined }) {
  return { gatewayId: input.GatewayId, networkInterfaceId: input.NetworkInterfaceId, instanceId: input.InstanceId, natGatewayId: input.NatGatewayId };
}

function sshFingerprint(material: string): string {
  const md5 = createHash('md5').update(material).digest('hex');
  return md5.match(/../g)!.join(':');
}

const ops: OpDef[] = [
  op<T.DescribeVpcsCommandInput, Out<T.DescribeVpcsCommandOutput>>(ec2sdk.DescribeVpcs$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    requireIds(input.VpcIds, (id) => ec2.vpcs.get(id), 'InvalidVpcID.NotFound', 'vpc');
    const all = applyFilters(byIds(ec2.vpcs.values(), input.VpcIds, (v) => v.id), input.Filters, vpcFilters(ec2));
    const page = paginate(all, input.MaxResults, input.NextToken, invalidToken);
    return { Vpcs: page.items.map((v) => renderVpc(ec2, v)), NextToken: page.next };
  }),

  op<T.CreateVpcCommandInput, Out<T.CreateVpcCommandOutput>>(ec2sdk.CreateVpc$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.CidrBlock) throw missingParameter('cidrBlock');
    const vpc = ec2.createVpc({ cidr: input.CidrBlock, instanceTenancy: input.InstanceTenancy, tags: specTags(input.TagSpecifications, 'vpc') });
    return { Vpc: renderVpc(ec2, vpc) };
  }),

  op<T.AssociateVpcCidrBlockCommandInput, Out<T.AssociateVpcCidrBlockCommandOutput>>(ec2sdk.AssociateVpcCidrBlock$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.VpcId) throw missingParameter('vpcId');
    if (!input.CidrBlock) {
      // IPv6 and IPAM pools are not emulated: say so instead of pretending.
      if (input.AmazonProvidedIpv6CidrBlock || input.Ipv6CidrBlock || input.Ipv4IpamPoolId || input.Ipv6IpamPoolId) {
        throw new AwsError('UnsupportedOperation', 'hanat-lab emulates IPv4 CIDR blocks given as CidrBlock only');
      }
      throw missingParameter('cidrBlock');
    }
    const assoc = ec2.associateVpcCidr(input.VpcId, input.CidrBlock);
    return {
      VpcId: input.VpcId,
      CidrBlockAssociation: { AssociationId: assoc.associationId, CidrBlock: assoc.cidr, CidrBlockState: { State: 'associated' } },
    };
  }),

  op<T.DeleteVpcCommandInput, object>(ec2sdk.DeleteVpc$, (input, ctx) => {
    ec2Of(ctx).deleteVpc(input.VpcId ?? '');
    return {};
  }),

  op<T.DescribeSubnetsCommandInput, Out<T.DescribeSubnetsCommandOutput>>(ec2sdk.DescribeSubnets$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    requireIds(input.SubnetIds, (id) => ec2.subnets.get(id), 'InvalidSubnetID.NotFound', 'subnet');
    const all = applyFilters(byIds(ec2.subnets.values(), input.SubnetIds, (s) => s.id), input.Filters, subnetFilters(ec2));
    const page = paginate(all, input.MaxResults, input.NextToken, invalidToken);
    return { Subnets: page.items.map((s) => renderSubnet(ec2, s)), NextToken: page.next };
  }),

  op<T.CreateSubnetCommandInput, Out<T.CreateSubnetCommandOutput>>(ec2sdk.CreateSubnet$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.VpcId) throw missingParameter('vpcId');
    if (!input.CidrBlock) throw missingParameter('cidrBlock');
    const s = ec2.createSubnet({ vpcId: input.VpcId, cidr: input.CidrBlock, az: input.AvailabilityZone, tags: specTags(input.TagSpecifications, 'subnet') });
    return { Subnet: renderSubnet(ec2, s) };
  }),

  op<T.DeleteSubnetCommandInput, object>(ec2sdk.DeleteSubnet$, (input, ctx) => {
    ec2Of(ctx).deleteSubnet(input.SubnetId ?? '');
    return {};
  }),

  op<T.DescribeRouteTablesCommandInput, Out<T.DescribeRouteTablesCommandOutput>>(ec2sdk.DescribeRouteTables$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    requireIds(input.RouteTableIds, (id) => ec2.routeTables.get(id), 'InvalidRouteTableID.NotFound', 'routeTable');
    const all = applyFilters(byIds(ec2.routeTables.values(), input.RouteTableIds, (r) => r.id), input.Filters, routeTableFilters(ec2));
    const page = paginate(all, input.MaxResults, input.NextToken, invalidToken);
    return { RouteTables: page.items.map((r) => renderRouteTable(ec2, r)), NextToken: page.next };
  }),

  op<T.CreateRouteTableCommandInput, Out<T.CreateRouteTableCommandOutput>>(ec2sdk.CreateRouteTable$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.VpcId) throw missingParameter('vpcId');
    const rt = ec2.createRouteTable(input.VpcId, specTags(input.TagSpecifications, 'route-table'));
    return { RouteTable: renderRouteTable(ec2, rt) };
  }),

  op<T.DeleteRouteTableCommandInput, object>(ec2sdk.DeleteRouteTable$, (input, ctx) => {
    ec2Of(ctx).deleteRouteTable(input.RouteTableId ?? '');
    return {};
  }),

  op<T.AssociateRouteTableCommandInput, Out<T.AssociateRouteTableCommandOutput>>(ec2sdk.AssociateRouteTable$, (input, ctx) => {
    if (!input.RouteTableId) throw missingParameter('routeTableId');
    if (!input.SubnetId) throw missingParameter('subnetId');
    const a = ec2Of(ctx).associateRouteTable(input.RouteTableId, input.SubnetId);
    return { AssociationId: a.id, AssociationState: { State: 'associated' } };
  }),

  op<T.DisassociateRouteTableCommandInput, object>(ec2sdk.DisassociateRouteTable$, (input, ctx) => {
    ec2Of(ctx).disassociateRouteTable(input.AssociationId ?? '');
    return {};
  }),

  op<T.ReplaceRouteTableAssociationCommandInput, Out<T.ReplaceRouteTableAssociationCommandOutput>>(ec2sdk.ReplaceRouteTableAssociation$, (input, ctx) => {
    const a = ec2Of(ctx).replaceRouteTableAssociation(input.AssociationId ?? '', input.RouteTableId ?? '');
    return { NewAssociationId: a.id, AssociationState: { State: 'associated' } };
  }),

  op<T.CreateRouteCommandInput, Out<T.CreateRouteCommandOutput>>(ec2sdk.CreateRoute$, (input, ctx) => {
    if (!input.RouteTableId) throw missingParameter('routeTableId');
    ec2Of(ctx).createRoute(input.RouteTableId, input.DestinationCidrBlock, routeTarget(input));
    return { Return: true };
  }),

  op<T.ReplaceRouteCommandInput, object>(ec2sdk.ReplaceRoute$, (input, ctx) => {
    if (!input.RouteTableId) throw missingParameter('routeTableId');
    ec2Of(ctx).replaceRoute(input.RouteTableId, input.DestinationCidrBlock, routeTarget(input));
    return {};
  }),

  op<T.DeleteRouteCommandInput, object>(ec2sdk.DeleteRoute$, (input, ctx) => {
    if (!input.RouteTableId) throw missingParameter('routeTableId');
    ec2Of(ctx).deleteRoute(input.RouteTableId, input.DestinationCidrBlock);
    return {};
  }),

  op<T.DescribeInternetGatewaysCommandInput, Out<T.DescribeInternetGatewaysCommandOutput>>(ec2sdk.DescribeInternetGateways$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    requireIds(input.InternetGatewayIds, (id) => ec2.internetGateways.get(id), 'InvalidInternetGatewayID.NotFound', 'internetGateway');
    const all = applyFilters(byIds(ec2.internetGateways.values(), input.InternetGatewayIds, (g) => g.id), input.Filters, {
      tags: (g) => ec2.tags.get(g.id),
      fields: {
        'internet-gateway-id': (g) => g.id,
        'attachment.vpc-id': (g) => g.vpcId,
        'attachment.state': (g) => (g.vpcId ? 'available' : undefined),
        'owner-id': () => ec2.env.accountId,
      },
    });
    return { InternetGateways: all.map((g) => renderInternetGateway(ec2, g)) };
  }),

  op<T.CreateInternetGatewayCommandInput, Out<T.CreateInternetGatewayCommandOutput>>(ec2sdk.CreateInternetGateway$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    return { InternetGateway: renderInternetGateway(ec2, ec2.createInternetGateway(specTags(input.TagSpecifications, 'internet-gateway'))) };
  }),

  op<T.AttachInternetGatewayCommandInput, object>(ec2sdk.AttachInternetGateway$, (input, ctx) => {
    ec2Of(ctx).attachInternetGateway(input.InternetGatewayId ?? '', input.VpcId ?? '');
    return {};
  }),

  op<T.DetachInternetGatewayCommandInput, object>(ec2sdk.DetachInternetGateway$, (input, ctx) => {
    ec2Of(ctx).detachInternetGateway(input.InternetGatewayId ?? '', input.VpcId ?? '');
    return {};
  }),

  op<T.DescribeInstancesCommandInput, Out<T.DescribeInstancesCommandOutput>>(ec2sdk.DescribeInstances$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    ec2.pruneTerminated();
    for (const id of input.InstanceIds ?? []) if (!/^i-[0-9a-f]{8}([0-9a-f]{9})?$/.test(id)) throw new AwsError('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
    requireIds(input.InstanceIds, (id) => ec2.instances.get(id), 'InvalidInstanceID.NotFound', 'instance');
    if (input.InstanceIds?.length && input.MaxResults) throw new AwsError('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults');
    const all = applyFilters(byIds(ec2.instances.values(), input.InstanceIds, (i) => i.id), input.Filters, instanceFilters(ec2));
    const page = paginate(all, input.MaxResults, input.NextToken, invalidToken);
    const reservations = new Map<string, Instance[]>();
    for (const i of page.items) {
      const list = reservations.get(i.reservationId) ?? [];
      list.push(i);
      reservations.set(i.reservationId, list);
    }
    return {
      Reservations: [...reservations].map(([rid, list]) => ({
        ReservationId: rid,
        OwnerId: ec2.env.accountId,
        Groups: [],
        Instances: list.map((i) => renderInstance(ec2, i)),
      })),
      NextToken: page.next,
    };
  }),

  op<T.DescribeInstanceStatusCommandInput, Out<T.DescribeInstanceStatusCommandOutput>>(ec2sdk.DescribeInstanceStatus$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    ec2.pruneTerminated();
    for (const id of input.InstanceIds ?? []) if (!/^i-[0-9a-f]{8}([0-9a-f]{9})?$/.test(id)) throw new AwsError('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
    requireIds(input.InstanceIds, (id) => ec2.instances.get(id), 'InvalidInstanceID.NotFound', 'instance');
    if (input.InstanceIds?.length && input.MaxResults) throw new AwsError('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults');
    // Without IncludeAllInstances only running instances are described (API Reference, DescribeInstanceStatus).
    const candidates = byIds(ec2.instances.values(), input.InstanceIds, (i) => i.id).filter((i) => input.IncludeAllInstances || i.state === 'running');
    const withStatus = candidates.map((i) => ({ i, s: ec2.instanceStatus(i) }));
    const all = applyFilters(withStatus, input.Filters, instanceStatusFilters);
    const page = paginate(all, input.MaxResults, input.NextToken, invalidToken);
    return { InstanceStatuses: page.items.map(({ i, s }) => renderInstanceStatus(i, s)), NextToken: page.next };
  }),

  op<T.RunInstancesCommandInput, Out<T.RunInstancesCommandOutput>>(ec2sdk.RunInstances$, async (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if ((input.MinCount ?? 1) !== 1 || (input.MaxCount ?? 1) !== 1) throw new AwsError('Unsupported', 'hanat-lab launches one instance per RunInstances call (MinCount = MaxCount = 1).');
    const nic = input.NetworkInterfaces?.[0];
    let data: Record<string, unknown> = {};
    let launchTemplate: Instance['launchTemplate'];
    if (input.LaunchTemplate) {
      const lt = ec2.launchTemplate({ id: input.LaunchTemplate.LaunchTemplateId, name: input.LaunchTemplate.LaunchTemplateName });
      const v = ec2.launchTemplateVersion(lt, input.LaunchTemplate.Version);
      data = v.data;
      launchTemplate = { id: lt.id, name: lt.name, version: String(v.number) };
    }
    const ltNic = (data.NetworkInterfaces as T.LaunchTemplateInstanceNetworkInterfaceSpecificationRequest[] | undefined)?.[0];
    const subnetId = input.SubnetId ?? nic?.SubnetId ?? ltNic?.SubnetId;
    if (!subnetId) throw new AwsError('MissingInput', 'No subnets found for the default VPC. Please specify a subnet.');
    const imageId = input.ImageId ?? (data.ImageId as string | undefined);
    if (!imageId) throw missingParameter('ImageId');
    const tags = new Map<string, string>();
    for (const spec of [...((data.TagSpecifications as T.TagSpecification[] | undefined) ?? []), ...(input.TagSpecifications ?? [])]) {
      if (spec.ResourceType === 'instance') for (const [k, v] of tagsFromList(spec.Tags)) tags.set(k, v);
    }
    const md = { ...((data.MetadataOptions as T.LaunchTemplateInstanceMetadataOptionsRequest | undefined) ?? {}), ...(input.MetadataOptions ?? {}) };
    const instance = ec2.launchInstance({
      subnetId,
      imageId: await ctx.region.resolveImageId(imageId),
      instanceType: input.InstanceType ?? (data.InstanceType as string | undefined) ?? 'm1.small',
      keyName: input.KeyName ?? (data.KeyName as string | undefined),
      iamInstanceProfile: input.IamInstanceProfile?.Arn ?? input.IamInstanceProfile?.Name ?? (data.IamInstanceProfile as { Arn?: string; Name?: string } | undefined)?.Arn ?? (data.IamInstanceProfile as { Name?: string } | undefined)?.Name,
      metadata: {
        ...(md.HttpTokens ? { httpTokens: md.HttpTokens } : {}),
        ...(md.HttpPutResponseHopLimit ? { httpPutResponseHopLimit: Number(md.HttpPutResponseHopLimit) } : {}),
        ...(md.HttpEndpoint ? { httpEndpoint: md.HttpEndpoint } : {}),
        ...(md.InstanceMetadataTags ? { instanceMetadataTags: md.InstanceMetadataTags } : {}),
      },
      userData: input.UserData ?? (data.UserData as string | undefined),
      securityGroupIds: input.SecurityGroupIds ?? nic?.Groups ?? ltNic?.Groups ?? (data.SecurityGroupIds as string[] | undefined),
      associatePublicIp: nic?.AssociatePublicIpAddress ?? ltNic?.AssociatePublicIpAddress,
      tags,
      launchTemplate,
      clientToken: input.ClientToken,
    });
    if (launchTemplate) {
      ec2.tagsOf(instance.id).set('aws:ec2launchtemplate:id', launchTemplate.id);
      ec2.tagsOf(instance.id).set('aws:ec2launchtemplate:version', launchTemplate.version);
    }
    ctx.region.bootLater(instance.id);
    return {
      ReservationId: instance.reservationId,
      OwnerId: ec2.env.accountId,
      Groups: [],
      Instances: [renderInstance(ec2, instance)],
    };
  }),

  op<T.TerminateInstancesCommandInput, Out<T.TerminateInstancesCommandOutput>>(ec2sdk.TerminateInstances$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.InstanceIds?.length) throw missingParameter('InstanceId');
    for (const id of input.InstanceIds) ec2.instance(id);
    requireIds(input.InstanceIds, (id) => ec2.instances.get(id), 'InvalidInstanceID.NotFound', 'instance');
    return {
      TerminatingInstances: input.InstanceIds.map((id) => {
        const inst = ec2.instance(id);
        const previous = inst.state;
        if (previous !== 'terminated') void ec2.terminate(id).catch((err: unknown) => ec2.env.log(`terminate ${id}: ${String(err)}`));
        return {
          InstanceId: id,
          PreviousState: { Code: STATE_CODE[previous], Name: previous },
          CurrentState: { Code: STATE_CODE[inst.state], Name: inst.state },
        };
      }),
    };
  }),

  op<T.DescribeInstanceAttributeCommandInput, Out<T.DescribeInstanceAttributeCommandOutput>>(ec2sdk.DescribeInstanceAttribute$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.InstanceId) throw missingParameter('InstanceId');
    if (!input.Attribute) throw missingParameter('Attribute');
    const inst = ec2.instance(input.InstanceId);
    const eni = ec2.networkInterfaces.get(inst.eniId);
    const base = { InstanceId: inst.id };
    switch (input.Attribute) {
      case 'sourceDestCheck':
        return { ...base, SourceDestCheck: { Value: eni?.sourceDestCheck ?? true } };
      case 'instanceType':
        return { ...base, InstanceType: { Value: inst.instanceType } };
      case 'userData':
        return { ...base, UserData: inst.userData ? { Value: inst.userData } : {} };
      case 'groupSet':
        return { ...base, Groups: inst.groups.map((g) => ({ GroupId: g, GroupName: ec2.securityGroups.get(g)?.name })) };
      case 'disableApiTermination':
        return { ...base, DisableApiTermination: { Value: false } };
      case 'disableApiStop':
        return { ...base, DisableApiStop: { Value: false } };
      case 'instanceInitiatedShutdownBehavior':
        return { ...base, InstanceInitiatedShutdownBehavior: { Value: 'stop' } };
      case 'rootDeviceName':
        return { ...base, RootDeviceName: { Value: '/dev/xvda' } };
      case 'ebsOptimized':
        return { ...base, EbsOptimized: { Value: false } };
      case 'enaSupport':
        return { ...base, EnaSupport: { Value: true } };
      case 'blockDeviceMapping':
        return { ...base, BlockDeviceMappings: [] };
      default:
        throw invalidParameterValue(`Value (${String(input.Attribute)}) for parameter attribute is invalid. Unknown attribute.`);
    }
  }),

  op<T.ModifyInstanceAttributeCommandInput, object>(ec2sdk.ModifyInstanceAttribute$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.InstanceId) throw missingParameter('InstanceId');
    const inst = ec2.liveInstance(input.InstanceId);
    if (input.SourceDestCheck?.Value !== undefined) {
      ec2.setSourceDestCheck({ instanceId: inst.id }, input.SourceDestCheck.Value);
      return {};
    }
    if (input.Attribute === 'sourceDestCheck' && input.Value !== undefined) {
      ec2.setSourceDestCheck({ instanceId: inst.id }, input.Value === 'true');
      return {};
    }
    throw new AwsError('UnsupportedOperation', 'hanat-lab supports ModifyInstanceAttribute for SourceDestCheck only.');
  }),

  op<T.DescribeNetworkInterfacesCommandInput, Out<T.DescribeNetworkInterfacesCommandOutput>>(ec2sdk.DescribeNetworkInterfaces$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    requireIds(input.NetworkInterfaceIds, (id) => ec2.networkInterfaces.get(id), 'InvalidNetworkInterfaceID.NotFound', 'networkInterface');
    const all = applyFilters(byIds(ec2.networkInterfaces.values(), input.NetworkInterfaceIds, (e) => e.id), input.Filters, eniFilters(ec2));
    const page = paginate(all, input.MaxResults, input.NextToken, invalidToken);
    return { NetworkInterfaces: page.items.map((e) => renderNetworkInterface(ec2, e)), NextToken: page.next };
  }),

  op<T.ModifyNetworkInterfaceAttributeCommandInput, object>(ec2sdk.ModifyNetworkInterfaceAttribute$, (input, ctx) => {
    if (!input.NetworkInterfaceId) throw missingParameter('NetworkInterfaceId');
    if (input.SourceDestCheck?.Value === undefined) throw new AwsError('UnsupportedOperation', 'hanat-lab supports ModifyNetworkInterfaceAttribute for SourceDestCheck only.');
    ec2Of(ctx).setSourceDestCheck({ networkInterfaceId: input.NetworkInterfaceId }, input.SourceDestCheck.Value);
    return {};
  }),

  op<T.DescribeAddressesCommandInput, Out<T.DescribeAddressesCommandOutput>>(ec2sdk.DescribeAddresses$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    for (const id of input.AllocationIds ?? []) if (!ec2.addresses.has(id)) throw new AwsError('InvalidAllocationID.NotFound', `The allocation ID '${id}' does not exist`);
    const byIp = new Map([...ec2.addresses.values()].map((a) => [a.publicIp, a]));
    for (const ip of input.PublicIps ?? []) if (!byIp.has(ip)) throw new AwsError('InvalidAddress.NotFound', `Address '${ip}' not found.`);
    let list = byIds(ec2.addresses.values(), input.AllocationIds, (a) => a.allocationId);
    if (input.PublicIps?.length) list = list.filter((a) => input.PublicIps!.includes(a.publicIp));
    return { Addresses: applyFilters(list, input.Filters, addressFilters(ec2)).map((a) => renderAddress(ec2, a)) };
  }),

  op<T.AllocateAddressCommandInput, Out<T.AllocateAddressCommandOutput>>(ec2sdk.AllocateAddress$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    const a = ec2.allocateAddress(specTags(input.TagSpecifications, 'elastic-ip'));
    return { AllocationId: a.allocationId, PublicIp: a.publicIp, Domain: 'vpc', PublicIpv4Pool: 'amazon', NetworkBorderGroup: ec2.env.region };
  }),

  op<T.ReleaseAddressCommandInput, object>(ec2sdk.ReleaseAddress$, (input, ctx) => {
    if (!input.AllocationId) throw missingParameter('AllocationId');
    ec2Of(ctx).releaseAddress(input.AllocationId);
    return {};
  }),

  op<T.AssociateAddressCommandInput, Out<T.AssociateAddressCommandOutput>>(ec2sdk.AssociateAddress$, (input, ctx) => {
    const id = ec2Of(ctx).associateAddress({
      allocationId: input.AllocationId,
      publicIp: input.PublicIp,
      instanceId: input.InstanceId,
      networkInterfaceId: input.NetworkInterfaceId,
      allowReassociation: input.AllowReassociation,
    });
    return { AssociationId: id };
  }),

  op<T.DisassociateAddressCommandInput, object>(ec2sdk.DisassociateAddress$, (input, ctx) => {
    ec2Of(ctx).disassociateAddress({ associationId: input.AssociationId, publicIp: input.PublicIp });
    return {};
  }),

  op<T.CreateTagsCommandInput, object>(ec2sdk.CreateTags$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.Resources?.length) throw missingParameter('ResourceId');
    if (!input.Tags?.length) throw missingParameter('Tag');
    checkUserTags(input.Tags);
    for (const id of input.Resources) ec2.requireResource(id);
    for (const id of input.Resources) ec2.setTags(id, tagsFromList(input.Tags));
    return {};
  }),

  op<T.DeleteTagsCommandInput, object>(ec2sdk.DeleteTags$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.Resources?.length) throw missingParameter('ResourceId');
    for (const id of input.Resources) ec2.requireResource(id);
    for (const id of input.Resources) {
      const keys = input.Tags?.length ? input.Tags.map((t) => ({ key: t.Key ?? '', value: t.Value })) : [...ec2.tagsOf(id).keys()].filter((k) => !k.startsWith('aws:')).map((key) => ({ key }));
      ec2.deleteTags(id, keys);
    }
    return {};
  }),

  op<T.DescribeTagsCommandInput, Out<T.DescribeTagsCommandOutput>>(ec2sdk.DescribeTags$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    const rows: T.TagDescription[] = [];
    for (const [id, tags] of ec2.tags) {
      const type = ec2.resourceType(id);
      if (!type) continue;
      for (const [Key, Value] of tags) rows.push({ ResourceId: id, ResourceType: type as T.ResourceType, Key, Value });
    }
    const filtered = applyFilters(rows, input.Filters, {
      fields: {
        'resource-id': (r) => r.ResourceId,
        'resource-type': (r) => r.ResourceType,
        key: (r) => r.Key,
        value: (r) => r.Value,
      },
      tags: (r) => new Map([[r.Key ?? '', r.Value ?? '']]),
    });
    const page = paginate(filtered, input.MaxResults, input.NextToken, invalidToken);
    return { Tags: page.items, NextToken: page.next };
  }),

  op<T.DescribeKeyPairsCommandInput, Out<T.DescribeKeyPairsCommandOutput>>(ec2sdk.DescribeKeyPairs$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    for (const name of input.KeyNames ?? []) ec2.keyPair(name);
    const byId = new Set(input.KeyPairIds ?? []);
    for (const id of byId) if (![...ec2.keyPairs.values()].some((k) => k.id === id)) throw new AwsError('InvalidKeyPair.NotFound', `The key pair '${id}' does not exist`);
    let list = byIds(ec2.keyPairs.values(), input.KeyNames, (k) => k.name);
    if (byId.size) list = list.filter((k) => byId.has(k.id));
    return { KeyPairs: applyFilters(list, input.Filters, keyPairFilters(ec2)).map((k) => renderKeyPair(ec2, k)) };
  }),

  op<T.ImportKeyPairCommandInput, Out<T.ImportKeyPairCommandOutput>>(ec2sdk.ImportKeyPair$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.KeyName) throw missingParameter('KeyName');
    if (!input.PublicKeyMaterial) throw missingParameter('PublicKeyMaterial');
    const material = Buffer.from(input.PublicKeyMaterial).toString('utf8').trim();
    const m = /^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp\d+) ([A-Za-z0-9+/=]+)/.exec(material);
    if (!m) throw new AwsError('InvalidKey.Format', 'Key is not in valid OpenSSH public key format');
    const type = m[1] === 'ssh-ed25519' ? 'ed25519' : 'rsa';
    const k = ec2.importKeyPair(input.KeyName, material, sshFingerprint(m[2]!), type, specTags(input.TagSpecifications, 'key-pair'));
    return { KeyFingerprint: k.fingerprint, KeyName: k.name, KeyPairId: k.id, Tags: renderKeyPair(ec2, k).Tags };
  }),

  op<T.CreateKeyPairCommandInput, Out<T.CreateKeyPairCommandOutput>>(ec2sdk.CreateKeyPair$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.KeyName) throw missingParameter('KeyName');
    const type = input.KeyType === 'ed25519' ? 'ed25519' : 'rsa';
    const pair = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pub = pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    const k = ec2.importKeyPair(input.KeyName, pub, sshFingerprint(pub), type, specTags(input.TagSpecifications, 'key-pair'));
    const pem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    return { KeyFingerprint: k.fingerprint, KeyName: k.name, KeyPairId: k.id, KeyMaterial: pem, Tags: renderKeyPair(ec2, k).Tags };
  }),

  op<T.DeleteKeyPairCommandInput, Out<T.DeleteKeyPairCommandOutput>>(ec2sdk.DeleteKeyPair$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    const name = input.KeyName ?? [...ec2.keyPairs.values()].find((k) => k.id === input.KeyPairId)?.name;
    if (name) ec2.deleteKeyPair(name);
    return { Return: true };
  }),

  op<T.DescribeImagesCommandInput, Out<T.DescribeImagesCommandOutput>>(ec2sdk.DescribeImages$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    for (const id of input.ImageIds ?? []) ec2.image(id);
    let list = byIds(ec2.images.values(), input.ImageIds, (i) => i.id);
    if (input.Owners?.length) {
      const mine = input.Owners.some((o) => o === 'self' || o === ec2.env.accountId);
      if (!mine) list = [];
    }
    return { Images: applyFilters(list, input.Filters, imageFilters(ec2)).map((i) => renderImage(ec2, i)) };
  }),

  op<T.DescribeAvailabilityZonesCommandInput, Out<T.DescribeAvailabilityZonesCommandOutput>>(ec2sdk.DescribeAvailabilityZones$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    const azs = [...ec2.env.azs];
    for (const z of input.ZoneNames ?? []) if (!azs.includes(z)) throw invalidParameterValue(`The zone '${z}' does not exist.`);
    let list = input.ZoneNames?.length ? azs.filter((z) => input.ZoneNames!.includes(z)) : azs;
    const rendered = list.map((z) => renderAvailabilityZone(ec2, z));
    if (input.ZoneIds?.length) list = list.filter((_, i) => input.ZoneIds!.includes(rendered[i]!.ZoneId!));
    return {
      AvailabilityZones: applyFilters(
        rendered.filter((z) => list.includes(z.ZoneName!)),
        input.Filters,
        {
          fields: {
            'zone-name': (z) => z.ZoneName,
            'zone-id': (z) => z.ZoneId,
            state: (z) => z.State,
            'region-name': (z) => z.RegionName,
            'zone-type': (z) => z.ZoneType,
            'group-name': (z) => z.GroupName,
            'opt-in-status': (z) => z.OptInStatus,
            'network-border-group': (z) => z.NetworkBorderGroup,
          },
        },
      ),
    };
  }),

  op<T.DescribeInstanceTypeOfferingsCommandInput, Out<T.DescribeInstanceTypeOfferingsCommandOutput>>(ec2sdk.DescribeInstanceTypeOfferings$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    const { region, azs } = ec2.env;
    const locationType = input.LocationType ?? 'region';
    if (input.MaxResults !== undefined && (input.MaxResults < 5 || input.MaxResults > 1000)) {
      throw invalidParameterValue(`Value ( ${input.MaxResults} ) for parameter maxResults is invalid. Parameter must be between 5 and 1000.`);
    }
    let rows: T.InstanceTypeOffering[];
    switch (locationType) {
      case 'region':
        rows = LAB_INSTANCE_TYPES.filter((t) => azs.some((az) => isOffered(t, az))).map((t) => ({ InstanceType: t as T._InstanceType, LocationType: 'region', Location: region }));
        break;
      case 'availability-zone':
      case 'availability-zone-id':
        rows = azs.flatMap((az) =>
          LAB_INSTANCE_TYPES.filter((t) => isOffered(t, az)).map((t) => ({
            InstanceType: t as T._InstanceType,
            LocationType: locationType,
            Location: locationType === 'availability-zone' ? az : azId(region, az),
          })),
        );
        break;
      case 'outpost':
        rows = [];
        break;
      default:
        throw invalidParameterValue(`Value (${String(locationType)}) for parameter locationType is invalid. Valid values are region, availability-zone, availability-zone-id and outpost.`);
    }
    const filtered = applyFilters(rows, input.Filters, { fields: { 'instance-type': (o) => o.InstanceType, location: (o) => o.Location } });
    // Without MaxResults, EC2 answers in pages of at most 1000 and hands out a NextToken.
    const page = paginate(filtered, input.MaxResults ?? 1000, input.NextToken, invalidToken);
    return { InstanceTypeOfferings: page.items, NextToken: page.next };
  }),

  op<T.DescribeRegionsCommandInput, Out<T.DescribeRegionsCommandOutput>>(ec2sdk.DescribeRegions$, (_input, ctx) => {
    const region = ctx.region.env.region;
    return { Regions: [{ RegionName: region, Endpoint: `ec2.${region}.amazonaws.com`, OptInStatus: 'opt-in-not-required' }] };
  }),

  // The account's attributes; vpc-max-elastic-ips is the quota AllocateAddress enforces.
  op<T.DescribeAccountAttributesCommandInput, Out<T.DescribeAccountAttributesCommandOutput>>(ec2sdk.DescribeAccountAttributes$, (input, ctx) => {
    const quota = String(ctx.region.env.settings.eipQuota);
    const all: Record<string, string> = {
      'supported-platforms': 'VPC',
      'vpc-max-security-groups-per-interface': '5',
      'max-elastic-ips': quota,
      'max-instances': '20',
      'vpc-max-elastic-ips': quota,
      'default-vpc': 'none',
    };
    const names: string[] = input.AttributeNames?.length ? input.AttributeNames : Object.keys(all);
    for (const n of names) if (!(n in all)) throw new AwsError('InvalidParameterValue', `Value (${n}) for parameter attributeName is invalid. Unknown attribute.`);
    return { AccountAttributes: names.map((AttributeName) => ({ AttributeName, AttributeValues: [{ AttributeValue: all[AttributeName] }] })) };
  }),

  op<T.AuthorizeSecurityGroupIngressCommandInput, Out<T.AuthorizeSecurityGroupIngressCommandOutput>>(ec2sdk.AuthorizeSecurityGroupIngress$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.GroupId) throw missingParameter('GroupId');
    // The flat form (CidrIp, IpProtocol, ports) is one permission.
    const permissions: T.IpPermission[] = input.IpPermissions?.length
      ? input.IpPermissions
      : input.CidrIp
        ? [{ IpProtocol: input.IpProtocol ?? '-1', FromPort: input.FromPort, ToPort: input.ToPort, IpRanges: [{ CidrIp: input.CidrIp }] }]
        : [];
    const added = ec2.authorizeIngress(input.GroupId, permissions);
    const sg = ec2.securityGroup(input.GroupId);
    return {
      Return: true,
      SecurityGroupRules: added.map((p, i) => ({
        SecurityGroupRuleId: `sgr-${input.GroupId!.slice(3)}${String(sg.ingress.length - added.length + i).padStart(3, '0')}`.slice(0, 21),
        GroupId: sg.id,
        GroupOwnerId: ec2.env.accountId,
        IsEgress: false,
        IpProtocol: p.IpProtocol,
        FromPort: p.FromPort ?? -1,
        ToPort: p.ToPort ?? -1,
        ...(p.IpRanges?.[0] ? { CidrIpv4: p.IpRanges[0].CidrIp, Description: p.IpRanges[0].Description } : {}),
        ...(p.UserIdGroupPairs?.[0] ? { ReferencedGroupInfo: { GroupId: p.UserIdGroupPairs[0].GroupId, UserId: ec2.env.accountId } } : {}),
      })),
    };
  }),

  op<T.DescribeSecurityGroupsCommandInput, Out<T.DescribeSecurityGroupsCommandOutput>>(ec2sdk.DescribeSecurityGroups$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    for (const id of input.GroupIds ?? []) ec2.securityGroup(id);
    let list = byIds(ec2.securityGroups.values(), input.GroupIds, (g) => g.id);
    if (input.GroupNames?.length) {
      for (const n of input.GroupNames) if (!list.some((g) => g.name === n)) throw new AwsError('InvalidGroup.NotFound', `The security group '${n}' does not exist`);
      list = list.filter((g) => input.GroupNames!.includes(g.name));
    }
    const page = paginate(applyFilters(list, input.Filters, securityGroupFilters(ec2)), input.MaxResults, input.NextToken, invalidToken);
    return { SecurityGroups: page.items.map((g) => renderSecurityGroup(ec2, g)), NextToken: page.next };
  }),

  op<T.DescribeLaunchTemplatesCommandInput, Out<T.DescribeLaunchTemplatesCommandOutput>>(ec2sdk.DescribeLaunchTemplates$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    for (const id of input.LaunchTemplateIds ?? []) ec2.launchTemplate({ id });
    for (const name of input.LaunchTemplateNames ?? []) ec2.launchTemplate({ name });
    let list = byIds(ec2.launchTemplates.values(), input.LaunchTemplateIds, (t) => t.id);
    if (input.LaunchTemplateNames?.length) list = list.filter((t) => input.LaunchTemplateNames!.includes(t.name));
    const filtered = applyFilters(list, input.Filters, {
      tags: (t) => ec2.tags.get(t.id),
      fields: { 'launch-template-name': (t) => t.name, 'create-time': (t) => t.created.toISOString() },
    });
    return { LaunchTemplates: filtered.map((t) => renderLaunchTemplate(ec2, t)) };
  }),

  op<T.CreateLaunchTemplateCommandInput, Out<T.CreateLaunchTemplateCommandOutput>>(ec2sdk.CreateLaunchTemplate$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    if (!input.LaunchTemplateName) throw missingParameter('LaunchTemplateName');
    if (!input.LaunchTemplateData) throw missingParameter('LaunchTemplateData');
    const lt = ec2.createLaunchTemplate(input.LaunchTemplateName, input.LaunchTemplateData as Record<string, unknown>, specTags(input.TagSpecifications, 'launch-template'), input.VersionDescription);
    return { LaunchTemplate: renderLaunchTemplate(ec2, lt) };
  }),

  op<T.CreateLaunchTemplateVersionCommandInput, Out<T.CreateLaunchTemplateVersionCommandOutput>>(ec2sdk.CreateLaunchTemplateVersion$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    const lt = ec2.launchTemplate({ id: input.LaunchTemplateId, name: input.LaunchTemplateName });
    let data = (input.LaunchTemplateData ?? {}) as Record<string, unknown>;
    if (input.SourceVersion) data = { ...ec2.launchTemplateVersion(lt, input.SourceVersion).data, ...data };
    const v = ec2.createLaunchTemplateVersion(lt.id, data, input.VersionDescription);
    return { LaunchTemplateVersion: renderLaunchTemplateVersion(ec2, lt, v.number) };
  }),

  op<T.DeleteLaunchTemplateCommandInput, Out<T.DeleteLaunchTemplateCommandOutput>>(ec2sdk.DeleteLaunchTemplate$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    const lt = ec2.launchTemplate({ id: input.LaunchTemplateId, name: input.LaunchTemplateName });
    const rendered = renderLaunchTemplate(ec2, lt);
    ec2.deleteLaunchTemplate(lt.id);
    return { LaunchTemplate: rendered };
  }),

  op<T.DescribeLaunchTemplateVersionsCommandInput, Out<T.DescribeLaunchTemplateVersionsCommandOutput>>(ec2sdk.DescribeLaunchTemplateVersions$, (input, ctx) => {
    const ec2 = ec2Of(ctx);
    const lt = ec2.launchTemplate({ id: input.LaunchTemplateId, name: input.LaunchTemplateName });
    const numbers = input.Versions?.length ? input.Versions.map((v) => ec2.launchTemplateVersion(lt, v).number) : lt.versions.map((v) => v.number);
    return { LaunchTemplateVersions: numbers.map((n) => renderLaunchTemplateVersion(ec2, lt, n)) };
  }),
];

/** Strings in `value` (a string or a list of them). */
function idsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * EC2's eventual consistency (settings.propagationDelayMs): a call naming a
 * just-booted instance, or its network interface, by id answers NotFound as
 * EC2 does until the new resource has propagated. Filters are not affected.
 */
function checkPropagated(input: unknown, ctx: OpContext): void {
  const ec2 = ec2Of(ctx);
  if (ec2.env.settings.propagationDelayMs <= 0 || typeof input !== 'object' || input === null) return;
  const i = input as Record<string, unknown>;
  for (const id of [...idsIn(i.InstanceId), ...idsIn(i.InstanceIds)]) {
    const inst = ec2.instances.get(id);
    if (inst && ec2.notPropagatedYet(inst)) throw new AwsError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
  }
  for (const id of [...idsIn(i.NetworkInterfaceId), ...idsIn(i.NetworkInterfaceIds)]) {
    const owner = ec2.networkInterfaces.get(id)?.attachment?.instanceId;
    const inst = owner ? ec2.instances.get(owner) : undefined;
    if (inst && ec2.notPropagatedYet(inst)) throw new AwsError('InvalidNetworkInterfaceID.NotFound', `The networkInterface ID '${id}' does not exist`);
  }
}

export const ec2Operations = opTable(
  ops.map((d) => ({
    ...d,
    handler: (input: never, ctx: OpContext) => {
      checkPropagated(input, ctx);
      return d.handler(input, ctx);
    },
  })),
);
