/**
 * CloudFormation resource providers: how each resource type is created,
 * updated in place, and deleted, in terms of the region's services. Which
 * property changes replace a resource, and which attributes Fn::GetAtt offers,
 * follow the CloudFormation resource specification (the "Update requires:
 * Replacement" notes of each property in the Template Reference).
 */
import type { IpPermission } from '@aws-sdk/client-ec2';
import type { Ec2 } from '../ec2/state.js';
import { AwsError, isAwsError } from '../errors.js';
import type { Region } from '../region.js';
import type { IdGenerator } from '../random.js';
import { tagsFromList, type Tags } from '../tags.js';
import type { GroupTag } from '../autoscaling/state.js';
import { scalar } from '../text.js';

export type Props = Record<string, unknown>;

export interface ResourceContext {
  region: Region;
  stackName: string;
  stackId: string;
  logicalId: string;
  /** Stack-level tags plus aws:cloudformation:stack-name/stack-id/logical-id. */
  stackTags: Tags;
  ids: IdGenerator;
}

export interface Provisioned {
  physicalId: string;
  attrs: Record<string, unknown>;
}

export interface Provider {
  /** Properties whose change requires a new physical resource. */
  replaceOn: readonly string[];
  /** Names Fn::GetAtt accepts. */
  attributes: readonly string[];
  create(props: Props, ctx: ResourceContext): Promise<Provisioned>;
  /** In-place update; absent means every change replaces. */
  update?(physicalId: string, props: Props, old: Props, ctx: ResourceContext): Promise<Provisioned>;
  delete(physicalId: string, props: Props, ctx: ResourceContext): Promise<void>;
}

/** A property problem, reported as CloudFormation's "Properties validation failed" reason. */
export class PropertyError extends Error {
  override readonly name = 'PropertyError';
}

function required<T = unknown>(props: Props, key: string): T {
  const v = props[key];
  if (v === undefined || v === null || v === '') throw new PropertyError(`#: required key [${key}] not found`);
  return v as T;
}

function str(v: unknown): string | undefined {
  return v === undefined || v === null ? undefined : scalar(v);
}

function bool(v: unknown): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  return v === true || v === 'true';
}

function num(v: unknown): number | undefined {
  return v === undefined || v === null || v === '' ? undefined : Number(v);
}

/** Generated physical names: `<stack>-<logicalId>-<RANDOM>`, shortened to fit. */
export function physicalName(ctx: ResourceContext, max = 128): string {
  const suffix = ctx.ids.suffix(12);
  const room = max - suffix.length - 2;
  let stack = ctx.stackName;
  let logical = ctx.logicalId;
  while (stack.length + logical.length > room) {
    if (stack.length >= logical.length) stack = stack.slice(0, -1);
    else logical = logical.slice(0, -1);
  }
  return `${stack}-${logical}-${suffix}`;
}

/** Tags a taggable resource gets: the stack's, then the template's (which win). */
function resourceTags(props: Props, ctx: ResourceContext): Tags {
  const tags = new Map(ctx.stackTags);
  for (const [k, v] of tagsFromList(props.Tags as { Key?: string; Value?: string }[] | undefined)) tags.set(k, v);
  return tags;
}

/** Replaces a resource's tags with `next`, keeping the aws: tags AWS itself manages. */
function retag(ec2: Ec2, id: string, next: Tags): void {
  const current = ec2.tagsOf(id);
  const gone = [...current.keys()].filter((k) => !next.has(k) && !k.startsWith('aws:'));
  if (gone.length) ec2.deleteTags(id, gone.map((key) => ({ key })));
  ec2.setTags(id, next);
}

function ignoreNotFound(err: unknown): void {
  if (isAwsError(err) && /NotFound|NotAttached/.test(err.code)) return;
  throw err;
}

function ec2Of(ctx: ResourceContext): Ec2 {
  return ctx.region.ec2;
}

// ------------------------------------------------------------------ EC2

const vpc: Provider = {
  replaceOn: ['CidrBlock', 'InstanceTenancy', 'Ipv4IpamPoolId', 'Ipv4NetmaskLength'],
  attributes: ['VpcId', 'CidrBlock', 'CidrBlockAssociations', 'DefaultNetworkAcl', 'DefaultSecurityGroup', 'Ipv6CidrBlocks'],
  create(props, ctx) {
    const ec2 = ec2Of(ctx);
    const v = ec2.createVpc({
      cidr: required<string>(props, 'CidrBlock'),
      instanceTenancy: str(props.InstanceTenancy),
      enableDnsSupport: bool(props.EnableDnsSupport),
      enableDnsHostnames: bool(props.EnableDnsHostnames),
      tags: resourceTags(props, ctx),
    });
    return Promise.resolve({ physicalId: v.id, attrs: vpcAttrs(ec2, v.id) });
  },
  update(id, props, _old, ctx) {
    const ec2 = ec2Of(ctx);
    ec2.modifyVpc(id, { enableDnsSupport: bool(props.EnableDnsSupport) ?? true, enableDnsHostnames: bool(props.EnableDnsHostnames) ?? false });
    retag(ec2, id, resourceTags(props, ctx));
    return Promise.resolve({ physicalId: id, attrs: vpcAttrs(ec2, id) });
  },
  delete(id, _props, ctx) {
    try {
      ec2Of(ctx).deleteVpc(id);
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

function vpcAttrs(ec2: Ec2, id: string): Record<string, unknown> {
  const v = ec2.vpc(id);
  return {
    VpcId: v.id,
    CidrBlock: v.cidr,
    CidrBlockAssociations: v.cidrs.map((c) => c.associationId),
    DefaultNetworkAcl: v.defaultNetworkAclId,
    DefaultSecurityGroup: v.defaultSecurityGroupId,
    Ipv6CidrBlocks: [],
  };
}

const subnet: Provider = {
  replaceOn: ['VpcId', 'AvailabilityZone', 'AvailabilityZoneId', 'CidrBlock', 'Ipv6CidrBlock', 'Ipv6Native', 'OutpostArn', 'Ipv4IpamPoolId', 'Ipv4NetmaskLength'],
  attributes: ['SubnetId', 'AvailabilityZone', 'AvailabilityZoneId', 'CidrBlock', 'VpcId', 'NetworkAclAssociationId', 'Ipv6CidrBlocks', 'OutpostArn'],
  create(props, ctx) {
    const ec2 = ec2Of(ctx);
    let az = str(props.AvailabilityZone);
    const azIdProp = str(props.AvailabilityZoneId);
    if (!az && azIdProp) az = ec2.env.azs.find((a) => a.endsWith(String.fromCharCode(96 + Number(azIdProp.split('-az')[1]))));
    const s = ec2.createSubnet({
      vpcId: required<string>(props, 'VpcId'),
      cidr: required<string>(props, 'CidrBlock'),
      az,
      mapPublicIpOnLaunch: bool(props.MapPublicIpOnLaunch),
      tags: resourceTags(props, ctx),
    });
    return Promise.resolve({ physicalId: s.id, attrs: subnetAttrs(ctx, s.id) });
  },
  update(id, props, _old, ctx) {
    const ec2 = ec2Of(ctx);
    ec2.modifySubnet(id, { mapPublicIpOnLaunch: bool(props.MapPublicIpOnLaunch) ?? false });
    retag(ec2, id, resourceTags(props, ctx));
    return Promise.resolve({ physicalId: id, attrs: subnetAttrs(ctx, id) });
  },
  delete(id, _props, ctx) {
    try {
      ec2Of(ctx).deleteSubnet(id);
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

function subnetAttrs(ctx: ResourceContext, id: string): Record<string, unknown> {
  const s = ec2Of(ctx).subnet(id);
  const region = ctx.region.name;
  const n = s.az.charCodeAt(s.az.length - 1) - 96;
  return {
    SubnetId: s.id,
    AvailabilityZone: s.az,
    AvailabilityZoneId: `${region.split('-').map((p, i) => (i === 0 || /^\d+$/.test(p) ? p : p[0])).join('')}-az${n}`,
    CidrBlock: s.cidr,
    VpcId: s.vpcId,
    NetworkAclAssociationId: `aclassoc-${s.id.slice(7)}`,
    Ipv6CidrBlocks: [],
    OutpostArn: '',
  };
}

const internetGateway: Provider = {
  replaceOn: [],
  attributes: ['InternetGatewayId'],
  create(props, ctx) {
    const igw = ec2Of(ctx).createInternetGateway(resourceTags(props, ctx));
    return Promise.resolve({ physicalId: igw.id, attrs: { InternetGatewayId: igw.id } });
  },
  update(id, props, _old, ctx) {
    retag(ec2Of(ctx), id, resourceTags(props, ctx));
    return Promise.resolve({ physicalId: id, attrs: { InternetGatewayId: id } });
  },
  delete(id, _props, ctx) {
    try {
      ec2Of(ctx).deleteInternetGateway(id);
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

const gatewayAttachment: Provider = {
  replaceOn: ['VpcId'],
  attributes: ['AttachmentType'],
  create(props, ctx) {
    if (props.VpnGatewayId !== undefined) throw new PropertyError('hanat-lab supports internet gateway attachments only (VpnGatewayId is not emulated)');
    const vpcId = required<string>(props, 'VpcId');
    ec2Of(ctx).attachInternetGateway(required<string>(props, 'InternetGatewayId'), vpcId);
    return Promise.resolve({ physicalId: `IGW|${vpcId}`, attrs: { AttachmentType: 'igw' } });
  },
  update(id, props, old, ctx) {
    const ec2 = ec2Of(ctx);
    const vpcId = required<string>(props, 'VpcId');
    if (old.InternetGatewayId !== props.InternetGatewayId) {
      try {
        ec2.detachInternetGateway(String(old.InternetGatewayId), vpcId);
      } catch (err) {
        ignoreNotFound(err);
      }
      ec2.attachInternetGateway(required<string>(props, 'InternetGatewayId'), vpcId);
    }
    return Promise.resolve({ physicalId: id, attrs: { AttachmentType: 'igw' } });
  },
  delete(_id, props, ctx) {
    try {
      ec2Of(ctx).detachInternetGateway(String(props.InternetGatewayId), String(props.VpcId));
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

const routeTable: Provider = {
  replaceOn: ['VpcId'],
  attributes: ['RouteTableId'],
  create(props, ctx) {
    const rt = ec2Of(ctx).createRouteTable(required<string>(props, 'VpcId'), resourceTags(props, ctx));
    return Promise.resolve({ physicalId: rt.id, attrs: { RouteTableId: rt.id } });
  },
  update(id, props, _old, ctx) {
    retag(ec2Of(ctx), id, resourceTags(props, ctx));
    return Promise.resolve({ physicalId: id, attrs: { RouteTableId: id } });
  },
  delete(id, _props, ctx) {
    try {
      ec2Of(ctx).deleteRouteTable(id);
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

function routeTargetProps(props: Props) {
  for (const k of ['VpcEndpointId', 'TransitGatewayId', 'VpcPeeringConnectionId', 'EgressOnlyInternetGatewayId', 'LocalGatewayId', 'CarrierGatewayId', 'CoreNetworkArn']) {
    if (props[k] !== undefined) throw new PropertyError(`hanat-lab does not emulate route targets of kind ${k}`);
  }
  return { gatewayId: str(props.GatewayId), networkInterfaceId: str(props.NetworkInterfaceId), instanceId: str(props.InstanceId), natGatewayId: str(props.NatGatewayId) };
}

const route: Provider = {
  replaceOn: ['RouteTableId', 'DestinationCidrBlock', 'DestinationIpv6CidrBlock', 'DestinationPrefixListId'],
  attributes: ['CidrBlock'],
  create(props, ctx) {
    const rtb = required<string>(props, 'RouteTableId');
    const cidr = required<string>(props, 'DestinationCidrBlock');
    ec2Of(ctx).createRoute(rtb, cidr, routeTargetProps(props));
    return Promise.resolve({ physicalId: `${rtb}|${cidr}`, attrs: { CidrBlock: cidr } });
  },
  update(id, props, _old, ctx) {
    const cidr = required<string>(props, 'DestinationCidrBlock');
    ec2Of(ctx).replaceRoute(required<string>(props, 'RouteTableId'), cidr, routeTargetProps(props));
    return Promise.resolve({ physicalId: id, attrs: { CidrBlock: cidr } });
  },
  delete(_id, props, ctx) {
    try {
      ec2Of(ctx).deleteRoute(String(props.RouteTableId), String(props.DestinationCidrBlock));
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

const subnetRouteTableAssociation: Provider = {
  replaceOn: ['RouteTableId', 'SubnetId'],
  attributes: ['Id'],
  create(props, ctx) {
    const a = ec2Of(ctx).associateRouteTable(required<string>(props, 'RouteTableId'), required<string>(props, 'SubnetId'));
    return Promise.resolve({ physicalId: a.id, attrs: { Id: a.id } });
  },
  delete(id, _props, ctx) {
    try {
      ec2Of(ctx).disassociateRouteTable(id);
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

function permission(rule: Record<string, unknown>, egress: boolean, accountId: string): IpPermission {
  const protocol = String((rule.IpProtocol as string | number | undefined) ?? '-1');
  const peerGroup = str(egress ? rule.DestinationSecurityGroupId : rule.SourceSecurityGroupId);
  const desc = str(rule.Description);
  return {
    IpProtocol: protocol,
    ...(protocol !== '-1' && rule.FromPort !== undefined ? { FromPort: num(rule.FromPort) } : {}),
    ...(protocol !== '-1' && rule.ToPort !== undefined ? { ToPort: num(rule.ToPort) } : {}),
    IpRanges: rule.CidrIp !== undefined ? [{ CidrIp: str(rule.CidrIp), ...(desc ? { Description: desc } : {}) }] : [],
    Ipv6Ranges: rule.CidrIpv6 !== undefined ? [{ CidrIpv6: str(rule.CidrIpv6), ...(desc ? { Description: desc } : {}) }] : [],
    PrefixListIds: [],
    UserIdGroupPairs: peerGroup ? [{ GroupId: peerGroup, UserId: accountId, ...(desc ? { Description: desc } : {}) }] : [],
  };
}

function sgRules(props: Props, ctx: ResourceContext) {
  const acct = ctx.region.env.accountId;
  const ingress = ((props.SecurityGroupIngress as Record<string, unknown>[] | undefined) ?? []).map((r) => permission(r, false, acct));
  const egressRules = props.SecurityGroupEgress as Record<string, unknown>[] | undefined;
  const egress = egressRules
    ? egressRules.map((r) => permission(r, true, acct))
    : [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }], Ipv6Ranges: [], PrefixListIds: [], UserIdGroupPairs: [] }];
  return { ingress, egress };
}

const securityGroup: Provider = {
  replaceOn: ['GroupDescription', 'GroupName', 'VpcId'],
  attributes: ['GroupId', 'VpcId', 'Id'],
  create(props, ctx) {
    const ec2 = ec2Of(ctx);
    const sg = ec2.createSecurityGroup({
      name: str(props.GroupName) ?? physicalName(ctx, 255),
      description: required<string>(props, 'GroupDescription'),
      vpcId: str(props.VpcId),
      tags: resourceTags(props, ctx),
    });
    ec2.setSecurityGroupRules(sg.id, sgRules(props, ctx));
    return Promise.resolve({ physicalId: sg.id, attrs: { GroupId: sg.id, VpcId: sg.vpcId, Id: sg.id } });
  },
  update(id, props, _old, ctx) {
    const ec2 = ec2Of(ctx);
    ec2.setSecurityGroupRules(id, sgRules(props, ctx));
    retag(ec2, id, resourceTags(props, ctx));
    const sg = ec2.securityGroup(id);
    return Promise.resolve({ physicalId: id, attrs: { GroupId: id, VpcId: sg.vpcId, Id: id } });
  },
  delete(id, _props, ctx) {
    try {
      ec2Of(ctx).deleteSecurityGroup(id);
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

/** Standalone ingress/egress rules: appended to / removed from the group's rule list. */
function sgRule(egress: boolean): Provider {
  const replaceOn = egress
    ? ['CidrIp', 'CidrIpv6', 'DestinationPrefixListId', 'DestinationSecurityGroupId', 'FromPort', 'GroupId', 'IpProtocol', 'ToPort']
    : ['CidrIp', 'CidrIpv6', 'FromPort', 'GroupId', 'GroupName', 'IpProtocol', 'SourcePrefixListId', 'SourceSecurityGroupId', 'SourceSecurityGroupName', 'SourceSecurityGroupOwnerId', 'ToPort'];
  const list = (ec2: Ec2, groupId: string) => {
    const sg = ec2.securityGroup(groupId);
    return egress ? sg.egress : sg.ingress;
  };
  return {
    replaceOn,
    attributes: ['Id'],
    create(props, ctx) {
      const ec2 = ec2Of(ctx);
      const id = ctx.ids.next('sgr');
      const perm = permission(props, egress, ctx.region.env.accountId);
      list(ec2, required<string>(props, 'GroupId')).push({ ...perm, ...{ ['hanatRuleId' as string]: id } });
      return Promise.resolve({ physicalId: id, attrs: { Id: id } });
    },
    delete(id, props, ctx) {
      try {
        const rules = list(ec2Of(ctx), String(props.GroupId));
        const i = rules.findIndex((r) => (r as Record<string, unknown>).hanatRuleId === id);
        if (i >= 0) rules.splice(i, 1);
      } catch (err) {
        ignoreNotFound(err);
      }
      return Promise.resolve();
    },
  };
}

const eip: Provider = {
  replaceOn: ['Domain', 'NetworkBorderGroup', 'PublicIpv4Pool', 'TransferAddress', 'IpamPoolId', 'Address'],
  attributes: ['AllocationId', 'PublicIp'],
  create(props, ctx) {
    const ec2 = ec2Of(ctx);
    if (props.Domain !== undefined && props.Domain !== 'vpc') throw new PropertyError(`Domain must be vpc (EC2-Classic addresses do not exist any more)`);
    const a = ec2.allocateAddress(resourceTags(props, ctx));
    if (props.InstanceId) ec2.associateAddress({ allocationId: a.allocationId, instanceId: scalar(props.InstanceId), allowReassociation: true });
    return Promise.resolve({ physicalId: a.publicIp, attrs: { AllocationId: a.allocationId, PublicIp: a.publicIp } });
  },
  update(id, props, old, ctx) {
    const ec2 = ec2Of(ctx);
    const a = [...ec2.addresses.values()].find((x) => x.publicIp === id);
    if (!a) throw new AwsError('InvalidAddress.NotFound', `Address '${id}' not found.`);
    if (props.InstanceId !== old.InstanceId) {
      if (a.association) ec2.disassociateAddress({ associationId: a.association.id });
      if (props.InstanceId) ec2.associateAddress({ allocationId: a.allocationId, instanceId: scalar(props.InstanceId), allowReassociation: true });
    }
    retag(ec2, a.allocationId, resourceTags(props, ctx));
    return Promise.resolve({ physicalId: id, attrs: { AllocationId: a.allocationId, PublicIp: a.publicIp } });
  },
  delete(id, _props, ctx) {
    const ec2 = ec2Of(ctx);
    const a = [...ec2.addresses.values()].find((x) => x.publicIp === id);
    if (!a) return Promise.resolve();
    if (a.association) ec2.disassociateAddress({ associationId: a.association.id });
    ec2.releaseAddress(a.allocationId);
    return Promise.resolve();
  },
};

const eipAssociation: Provider = {
  replaceOn: ['AllocationId', 'EIP', 'InstanceId', 'NetworkInterfaceId', 'PrivateIpAddress'],
  attributes: ['Id'],
  create(props, ctx) {
    const id = ec2Of(ctx).associateAddress({
      allocationId: str(props.AllocationId),
      publicIp: str(props.EIP),
      instanceId: str(props.InstanceId),
      networkInterfaceId: str(props.NetworkInterfaceId),
      allowReassociation: true,
    });
    return Promise.resolve({ physicalId: id, attrs: { Id: id } });
  },
  delete(id, _props, ctx) {
    try {
      ec2Of(ctx).disassociateAddress({ associationId: id });
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

function launchTemplateAttrs(ec2: Ec2, id: string): Record<string, unknown> {
  const lt = ec2.launchTemplate({ id });
  return {
    LaunchTemplateId: lt.id,
    LatestVersionNumber: String(Math.max(...lt.versions.map((v) => v.number))),
    DefaultVersionNumber: String(lt.defaultVersion),
  };
}

function launchTemplateTags(props: Props, ctx: ResourceContext): Tags {
  const tags = new Map(ctx.stackTags);
  for (const spec of (props.TagSpecifications as { ResourceType?: string; Tags?: { Key?: string; Value?: string }[] }[] | undefined) ?? []) {
    if (spec.ResourceType === 'launch-template') for (const [k, v] of tagsFromList(spec.Tags)) tags.set(k, v);
  }
  return tags;
}

const launchTemplate: Provider = {
  replaceOn: ['LaunchTemplateName'],
  attributes: ['LaunchTemplateId', 'LatestVersionNumber', 'DefaultVersionNumber'],
  create(props, ctx) {
    const ec2 = ec2Of(ctx);
    const data = required<Record<string, unknown>>(props, 'LaunchTemplateData');
    const name = str(props.LaunchTemplateName) ?? `${ctx.logicalId}_${ctx.ids.suffix(12)}`;
    const lt = ec2.createLaunchTemplate(name, data, launchTemplateTags(props, ctx), str(props.VersionDescription));
    return Promise.resolve({ physicalId: lt.id, attrs: launchTemplateAttrs(ec2, lt.id) });
  },
  update(id, props, old, ctx) {
    const ec2 = ec2Of(ctx);
    if (JSON.stringify(props.LaunchTemplateData) !== JSON.stringify(old.LaunchTemplateData) || props.VersionDescription !== old.VersionDescription) {
      const v = ec2.createLaunchTemplateVersion(id, required<Record<string, unknown>>(props, 'LaunchTemplateData'), str(props.VersionDescription));
      ec2.setDefaultLaunchTemplateVersion(id, v.number);
    }
    retag(ec2, id, launchTemplateTags(props, ctx));
    return Promise.resolve({ physicalId: id, attrs: launchTemplateAttrs(ec2, id) });
  },
  delete(id, _props, ctx) {
    try {
      ec2Of(ctx).deleteLaunchTemplate(id);
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

// ------------------------------------------------------------------ IAM (recorded, not enforced)

const role: Provider = {
  replaceOn: ['RoleName', 'Path'],
  attributes: ['Arn', 'RoleId'],
  create(props, ctx) {
    const iam = ctx.region.env.iam;
    const r = iam.createRole(str(props.RoleName) ?? physicalName(ctx, 64), str(props.Path) ?? '/', required(props, 'AssumeRolePolicyDocument'), (props.ManagedPolicyArns as string[] | undefined) ?? []);
    for (const p of (props.Policies as { PolicyName?: string; PolicyDocument?: unknown }[] | undefined) ?? []) r.inlinePolicies.set(String(p.PolicyName), p.PolicyDocument);
    return Promise.resolve({ physicalId: r.name, attrs: { Arn: r.arn, RoleId: r.id } });
  },
  update(id, props, _old, ctx) {
    const r = ctx.region.env.iam.roles.get(id);
    if (!r) throw new AwsError('NoSuchEntity', `The role with name ${id} cannot be found.`, 404);
    r.assumeRolePolicy = props.AssumeRolePolicyDocument;
    r.managedPolicyArns = (props.ManagedPolicyArns as string[] | undefined) ?? [];
    r.inlinePolicies.clear();
    for (const p of (props.Policies as { PolicyName?: string; PolicyDocument?: unknown }[] | undefined) ?? []) r.inlinePolicies.set(String(p.PolicyName), p.PolicyDocument);
    return Promise.resolve({ physicalId: id, attrs: { Arn: r.arn, RoleId: r.id } });
  },
  delete(id, _props, ctx) {
    ctx.region.env.iam.deleteRole(id);
    return Promise.resolve();
  },
};

const instanceProfile: Provider = {
  replaceOn: ['InstanceProfileName', 'Path'],
  attributes: ['Arn'],
  create(props, ctx) {
    const p = ctx.region.env.iam.createInstanceProfile(str(props.InstanceProfileName) ?? physicalName(ctx, 128), str(props.Path) ?? '/', required<string[]>(props, 'Roles'));
    return Promise.resolve({ physicalId: p.name, attrs: { Arn: p.arn } });
  },
  update(id, props, _old, ctx) {
    const p = ctx.region.env.iam.instanceProfiles.get(id);
    if (!p) throw new AwsError('NoSuchEntity', `Instance Profile ${id} cannot be found.`, 404);
    p.roles = [...required<string[]>(props, 'Roles')];
    return Promise.resolve({ physicalId: id, attrs: { Arn: p.arn } });
  },
  delete(id, _props, ctx) {
    ctx.region.env.iam.instanceProfiles.delete(id);
    return Promise.resolve();
  },
};

const policy: Provider = {
  replaceOn: [],
  attributes: ['Id'],
  create(props, ctx) {
    const id = physicalName(ctx, 128);
    ctx.region.env.iam.policies.set(id, { name: required<string>(props, 'PolicyName'), roles: (props.Roles as string[] | undefined) ?? [], document: required(props, 'PolicyDocument') });
    return Promise.resolve({ physicalId: id, attrs: { Id: id } });
  },
  update(id, props, _old, ctx) {
    ctx.region.env.iam.policies.set(id, { name: required<string>(props, 'PolicyName'), roles: (props.Roles as string[] | undefined) ?? [], document: required(props, 'PolicyDocument') });
    return Promise.resolve({ physicalId: id, attrs: { Id: id } });
  },
  delete(id, _props, ctx) {
    ctx.region.env.iam.policies.delete(id);
    return Promise.resolve();
  },
};

const managedPolicy: Provider = {
  replaceOn: ['ManagedPolicyName', 'Path', 'Description'],
  attributes: ['PolicyArn', 'PolicyId', 'AttachmentCount', 'DefaultVersionId', 'IsAttachable', 'CreateDate', 'UpdateDate', 'PermissionsBoundaryUsageCount'],
  create(props, ctx) {
    const p = ctx.region.env.iam.createManagedPolicy(str(props.ManagedPolicyName) ?? physicalName(ctx, 128), str(props.Path) ?? '/', required(props, 'PolicyDocument'), (props.Roles as string[] | undefined) ?? []);
    return Promise.resolve({ physicalId: p.arn, attrs: { PolicyArn: p.arn, PolicyId: p.id, AttachmentCount: p.roles.length, DefaultVersionId: 'v1', IsAttachable: true } });
  },
  update(id, props, _old, ctx) {
    const p = ctx.region.env.iam.managedPolicies.get(id);
    if (!p) throw new AwsError('NoSuchEntity', `Policy ${id} does not exist.`, 404);
    p.document = props.PolicyDocument;
    p.roles = (props.Roles as string[] | undefined) ?? [];
    return Promise.resolve({ physicalId: id, attrs: { PolicyArn: p.arn, PolicyId: p.id, AttachmentCount: p.roles.length, DefaultVersionId: 'v1', IsAttachable: true } });
  },
  delete(id, _props, ctx) {
    ctx.region.env.iam.managedPolicies.delete(id);
    return Promise.resolve();
  },
};

// ------------------------------------------------------------------ Auto Scaling

function asgSpec(props: Props) {
  for (const k of ['LaunchConfigurationName', 'MixedInstancesPolicy', 'InstanceId']) {
    if (props[k] !== undefined) throw new PropertyError(`hanat-lab emulates Auto Scaling groups with a LaunchTemplate only (${k} is not supported)`);
  }
  const lt = required<Record<string, unknown>>(props, 'LaunchTemplate');
  const subnets = (props.VPCZoneIdentifier as string[] | undefined) ?? [];
  return {
    launchTemplate: { id: str(lt.LaunchTemplateId), name: str(lt.LaunchTemplateName), version: str(lt.Version) },
    min: Number(required(props, 'MinSize')),
    max: Number(required(props, 'MaxSize')),
    desired: num(props.DesiredCapacity),
    subnets: Array.isArray(subnets) ? subnets.map(String) : String(subnets).split(','),
    healthCheckType: str(props.HealthCheckType),
    healthCheckGracePeriod: num(props.HealthCheckGracePeriod),
    defaultCooldown: num(props.Cooldown),
    terminationPolicies: props.TerminationPolicies as string[] | undefined,
    newInstancesProtectedFromScaleIn: bool(props.NewInstancesProtectedFromScaleIn),
    capacityRebalance: bool(props.CapacityRebalance),
  };
}

function asgTags(props: Props, ctx: ResourceContext) {
  const fromStack = [...ctx.stackTags].map(([Key, Value]) => ({ Key, Value, PropagateAtLaunch: true }));
  const own = ((props.Tags as { Key?: string; Value?: string; PropagateAtLaunch?: unknown }[] | undefined) ?? []).map((t) => ({ Key: t.Key, Value: t.Value, PropagateAtLaunch: bool(t.PropagateAtLaunch) ?? false }));
  const merged = new Map<string, GroupTag>();
  for (const t of [...fromStack, ...own]) merged.set(t.Key ?? '', { key: t.Key ?? '', value: t.Value ?? '', propagateAtLaunch: t.PropagateAtLaunch });
  return [...merged.values()];
}

const autoScalingGroup: Provider = {
  replaceOn: ['AutoScalingGroupName', 'InstanceId'],
  attributes: ['AutoScalingGroupARN'],
  async create(props, ctx) {
    const as = ctx.region.autoscaling;
    const name = str(props.AutoScalingGroupName) ?? physicalName(ctx, 255);
    const g = as.createGroup({ name, ...asgSpec(props), tags: asgTags(props, ctx) });
    try {
      await as.waitForCapacity(name);
    } catch (err) {
      // The resource failed, so the stack does not own it: the handler removes the group it
      // made, or it would stay behind, retrying launches, after the stack is gone.
      if (as.groups.has(name)) await as.deleteGroup(name, true).catch((e: unknown) => ctx.region.env.log(`could not delete the failed group ${name}: ${String(e)}`));
      throw new AwsError('GeneralServiceException', `Group did not stabilize. ${err instanceof Error ? err.message : String(err)}`, 400, { cause: err });
    }
    return { physicalId: name, attrs: { AutoScalingGroupARN: g.arn } };
  },
  async update(id, props, _old, ctx) {
    const as = ctx.region.autoscaling;
    const { desired, ...rest } = asgSpec(props);
    as.updateGroup(id, { ...rest, ...(desired !== undefined ? { desired } : {}) });
    as.setTags(id, asgTags(props, ctx));
    await as.waitForCapacity(id);
    return { physicalId: id, attrs: { AutoScalingGroupARN: as.group(id).arn } };
  },
  async delete(id, _props, ctx) {
    const as = ctx.region.autoscaling;
    if (!as.groups.has(id)) return;
    await as.deleteGroup(id, true);
  },
};

// ------------------------------------------------------------------ SSM

const ssmParameter: Provider = {
  replaceOn: ['Name'],
  attributes: ['Type', 'Value', 'Arn'],
  create(props, ctx) {
    const name = str(props.Name) ?? `CFN-${ctx.logicalId}-${ctx.ids.suffix(12)}`;
    const tags = new Map(Object.entries((props.Tags as Record<string, string> | undefined) ?? {}));
    ctx.region.ssm.put({ name, value: required<string>(props, 'Value'), type: required<string>(props, 'Type'), dataType: str(props.DataType), description: str(props.Description), tags });
    return Promise.resolve({ physicalId: name, attrs: { Type: props.Type, Value: props.Value, Arn: ctx.region.ssm.arn(name) } });
  },
  update(id, props, _old, ctx) {
    ctx.region.ssm.put({ name: id, value: required<string>(props, 'Value'), type: required<string>(props, 'Type'), dataType: str(props.DataType), description: str(props.Description), overwrite: true });
    return Promise.resolve({ physicalId: id, attrs: { Type: props.Type, Value: props.Value, Arn: ctx.region.ssm.arn(id) } });
  },
  delete(id, _props, ctx) {
    try {
      ctx.region.ssm.delete(id);
    } catch (err) {
      ignoreNotFound(err);
    }
    return Promise.resolve();
  },
};

/** Resource types the emulator materialises. Any other type is "Unrecognized" at validation. */
export const PROVIDERS: Record<string, Provider> = {
  'AWS::EC2::VPC': vpc,
  'AWS::EC2::Subnet': subnet,
  'AWS::EC2::InternetGateway': internetGateway,
  'AWS::EC2::VPCGatewayAttachment': gatewayAttachment,
  'AWS::EC2::RouteTable': routeTable,
  'AWS::EC2::Route': route,
  'AWS::EC2::SubnetRouteTableAssociation': subnetRouteTableAssociation,
  'AWS::EC2::SecurityGroup': securityGroup,
  'AWS::EC2::SecurityGroupIngress': sgRule(false),
  'AWS::EC2::SecurityGroupEgress': sgRule(true),
  'AWS::EC2::EIP': eip,
  'AWS::EC2::EIPAssociation': eipAssociation,
  'AWS::EC2::LaunchTemplate': launchTemplate,
  'AWS::IAM::Role': role,
  'AWS::IAM::InstanceProfile': instanceProfile,
  'AWS::IAM::Policy': policy,
  'AWS::IAM::ManagedPolicy': managedPolicy,
  'AWS::AutoScaling::AutoScalingGroup': autoScalingGroup,
  'AWS::SSM::Parameter': ssmParameter,
};

/** Types that carry tags and so receive the stack's tags and aws:cloudformation:* tags. */
export const TAGGABLE = new Set([
  'AWS::EC2::VPC',
  'AWS::EC2::Subnet',
  'AWS::EC2::InternetGateway',
  'AWS::EC2::RouteTable',
  'AWS::EC2::SecurityGroup',
  'AWS::EC2::EIP',
  'AWS::EC2::LaunchTemplate',
  'AWS::AutoScaling::AutoScalingGroup',
]);
