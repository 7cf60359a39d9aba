/**
 * Renders hanat's CloudFormation template (DESIGN.md "The network the template
 * creates"). The output is raw CloudFormation JSON that works without the CLI
 * and fits every region: the Availability Zones are the `AvailabilityZones`
 * parameter, not `Fn::GetAZs`, whose answer depends on the account's default
 * subnets and whose order can change when AWS adds an AZ; a parameter keeps its
 * value across updates, so a stack's AZs never move unless someone asks.
 *
 * The AZ count and the Elastic IPs are render-time structure (`--azs`,
 * `--no-eip`); everything an operator picks per stack is a Parameter.
 * docs/template.md describes every resource, parameter, output and IAM statement.
 */
import { FORWARD_PROBE_CIDR, HA_PORT, NETWORK_PRIVATE, NETWORK_PUBLIC, TAG } from '@hanat/core';
import {
  type CfnOutput,
  type CfnResource,
  type CfnTemplate,
  type CfnValue,
  NO_VALUE,
  azName,
  getAtt,
  ifCondition,
  ref,
  sub,
  tagList,
} from './cfn.js';
import { EC2_TRUST_POLICY, agentPolicyDocument } from './iam.js';
import { formatJson } from './json.js';

export type { CfnOutput, CfnParameter, CfnResource, CfnTemplate, CfnValue } from './cfn.js';

export interface TemplateOptions {
  /** Number of Availability Zones, MIN_AZS..MAX_AZS. */
  azs: number;
  /** One Elastic IP per AZ, for a stable egress address per AZ. */
  eip: boolean;
  /** Default for the CidrPrefix parameter, e.g. "10.0". Without it the parameter has no default. */
  cidrPrefix?: string;
}

export const MIN_AZS = 2;
export const MAX_AZS = 6;

export const DEFAULT_TEMPLATE_OPTIONS: TemplateOptions = Object.freeze({ azs: 3, eip: true });

/**
 * The key of the template's own metadata (`Metadata.hanat`: the render-time
 * options). Every render carries it, so a stack made from hanat's template
 * outside hanat (console, `aws cloudformation deploy`) can be recognised.
 */
export const HANAT_METADATA = 'hanat';

/** CloudFormation's limit for a template passed inline (`TemplateBody`), in bytes. */
export const TEMPLATE_BODY_LIMIT = 51_200;

/** The parameters the template takes; `hanat deploy` passes them by these names. */
export const PARAM = {
  vpcName: 'VpcName',
  cidrPrefix: 'CidrPrefix',
  keyName: 'KeyName',
  natAmi: 'NatAmi',
  instanceType: 'InstanceType',
  availabilityZones: 'AvailabilityZones',
} as const;

const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** Exactly two octets 0-255 without leading zeros (`10.0`, `172.31`); the VPC is `x.y.0.0/16`. */
export const CIDR_PREFIX_PATTERN = `^${OCTET}\\.${OCTET}$`;
/** An AMI id, or an SSM parameter that EC2 resolves at launch (`resolve:ssm:/hanat/ami/arm64[:version|label]`). */
export const NAT_AMI_PATTERN = '^(ami-([0-9a-f]{8}|[0-9a-f]{17})|resolve:ssm:/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*(:[A-Za-z0-9_.-]+)?)$';
/** An EC2 instance type name: family, a dot, size (`t4g.nano`, `c7gn.medium`, `u-6tb1.metal`). */
export const INSTANCE_TYPE_PATTERN = '^[a-z][a-z0-9-]*\\.[a-z0-9][a-z0-9-]*$';

export const DEFAULT_INSTANCE_TYPE = 't4g.nano';
/** Where the AMI build publishes the arm64 image id (issue 6); fits the default instance type. */
export const DEFAULT_NAT_AMI = 'resolve:ssm:/hanat/ami/arm64';

const HAS_KEY_NAME = 'HasKeyName';

/** Starts the agent through its unit. The agent learns its stack and AZ from the instance's tags over IMDSv2. */
const USER_DATA = [
  '#!/bin/bash',
  '# hanat: start the NAT agent; it reads hanat:stack and hanat:az from the instance tags (IMDSv2).',
  'set -eu',
  'systemctl enable --now hanat-agent.service',
  '',
].join('\n');

/** Logical ids. Per-AZ resources are prefixed `Az<i>` with i 0-based, as in the address plan. */
export const LOGICAL_ID = {
  vpc: 'Vpc',
  internetGateway: 'InternetGateway',
  gatewayAttachment: 'InternetGatewayAttachment',
  publicRouteTable: 'PublicRouteTable',
  publicDefaultRoute: 'PublicDefaultRoute',
  securityGroup: 'NatSecurityGroup',
  role: 'NatRole',
  instanceProfile: 'NatInstanceProfile',
  launchTemplate: 'NatLaunchTemplate',
  publicSubnet: (i: number) => `Az${i}PublicSubnet`,
  publicSubnetAssociation: (i: number) => `Az${i}PublicSubnetRouteTableAssociation`,
  privateSubnet: (i: number, n: 1 | 2) => `Az${i}PrivateSubnet${n}`,
  privateSubnetAssociation: (i: number, n: 1 | 2) => `Az${i}PrivateSubnet${n}RouteTableAssociation`,
  privateRouteTable: (i: number) => `Az${i}PrivateRouteTable`,
  natGroup: (i: number) => `Az${i}NatGroup`,
  eip: (i: number) => `Az${i}Eip`,
} as const;

const stackTag = [TAG.stack, ref('AWS::StackName')] as const;
/** `Name` = the VpcName parameter, plus a suffix, plus the AZ name for per-AZ resources. */
function nameTag(suffix: string, az?: number): readonly [string, CfnValue] {
  if (az !== undefined) return ['Name', sub(`\${${PARAM.vpcName}}${suffix}-\${Az}`, { Az: azName(az) })];
  return ['Name', suffix === '' ? ref(PARAM.vpcName) : sub(`\${${PARAM.vpcName}}${suffix}`)];
}

function parameters(opts: TemplateOptions): CfnTemplate['Parameters'] {
  return {
    [PARAM.vpcName]: {
      Type: 'String',
      Description: 'Name tag prefix for the VPC and everything in it.',
      Default: 'hanat',
      MinLength: 1,
      MaxLength: 200,
    },
    [PARAM.availabilityZones]: {
      Type: 'List<AWS::EC2::AvailabilityZone::Name>',
      Description: `The ${opts.azs} Availability Zones of the stack, in order (AZ 0 first). Keep them on updates: a changed list moves subnets.`,
    },
    [PARAM.cidrPrefix]: {
      Type: 'String',
      Description: 'First two octets of the VPC range: 10.0 gives 10.0.0.0/16.',
      ...(opts.cidrPrefix === undefined ? {} : { Default: opts.cidrPrefix }),
      AllowedPattern: CIDR_PREFIX_PATTERN,
      ConstraintDescription: 'two octets from 0 to 255 without leading zeros, e.g. 10.0 or 172.31',
    },
    [PARAM.keyName]: {
      Type: 'String',
      Description: 'EC2 key pair for the NAT instances; empty launches them without a key.',
      Default: '',
      MaxLength: 255,
    },
    [PARAM.natAmi]: {
      Type: 'String',
      Description: 'hanat NAT image: an AMI id, or resolve:ssm:<parameter> holding one. Its architecture must fit InstanceType.',
      Default: DEFAULT_NAT_AMI,
      AllowedPattern: NAT_AMI_PATTERN,
      ConstraintDescription: 'ami- followed by 8 or 17 hex digits, or resolve:ssm:/parameter/name',
    },
    [PARAM.instanceType]: {
      Type: 'String',
      Description: 'NAT instance type.',
      Default: DEFAULT_INSTANCE_TYPE,
      AllowedPattern: INSTANCE_TYPE_PATTERN,
      ConstraintDescription: 'an EC2 instance type such as t4g.nano',
    },
  };
}

function sharedNetwork(): Record<string, CfnResource> {
  const id = LOGICAL_ID;
  return {
    [id.vpc]: {
      Type: 'AWS::EC2::VPC',
      Properties: {
        CidrBlock: sub('${CidrPrefix}.0.0/16'),
        EnableDnsSupport: true,
        EnableDnsHostnames: true,
        Tags: tagList([stackTag, nameTag('')]),
      },
    },
    [id.internetGateway]: {
      Type: 'AWS::EC2::InternetGateway',
      Properties: { Tags: tagList([stackTag, nameTag('')]) },
    },
    [id.gatewayAttachment]: {
      Type: 'AWS::EC2::VPCGatewayAttachment',
      Properties: { VpcId: ref(id.vpc), InternetGatewayId: ref(id.internetGateway) },
    },
    [id.publicRouteTable]: {
      Type: 'AWS::EC2::RouteTable',
      Properties: {
        VpcId: ref(id.vpc),
        Tags: tagList([stackTag, [TAG.network, NETWORK_PUBLIC], nameTag('-public')]),
      },
    },
    [id.publicDefaultRoute]: {
      Type: 'AWS::EC2::Route',
      DependsOn: id.gatewayAttachment,
      Properties: {
        RouteTableId: ref(id.publicRouteTable),
        DestinationCidrBlock: '0.0.0.0/0',
        GatewayId: ref(id.internetGateway),
      },
    },
  };
}

/** One AZ's subnets and private route table. The private table has no default route: the agents own it. */
function azNetwork(i: number): Record<string, CfnResource> {
  const id = LOGICAL_ID;
  const subnet = (cidrThirdOctet: number, network: string, name: string, publicIp: boolean): CfnResource => ({
    Type: 'AWS::EC2::Subnet',
    Properties: {
      VpcId: ref(id.vpc),
      AvailabilityZone: azName(i),
      CidrBlock: sub(`\${CidrPrefix}.${cidrThirdOctet}.0/24`),
      ...(publicIp ? { MapPublicIpOnLaunch: true } : {}),
      Tags: tagList([stackTag, [TAG.network, network], nameTag(name, i)]),
    },
  });
  const association = (subnetId: string, routeTableId: string): CfnResource => ({
    Type: 'AWS::EC2::SubnetRouteTableAssociation',
    Properties: { SubnetId: ref(subnetId), RouteTableId: ref(routeTableId) },
  });
  return {
    [id.publicSubnet(i)]: subnet(i, NETWORK_PUBLIC, '-public', true),
    [id.publicSubnetAssociation(i)]: association(id.publicSubnet(i), id.publicRouteTable),
    [id.privateSubnet(i, 1)]: subnet(10 + i, NETWORK_PRIVATE, '-private1', false),
    [id.privateSubnet(i, 2)]: subnet(20 + i, NETWORK_PRIVATE, '-private2', false),
    [id.privateRouteTable(i)]: {
      Type: 'AWS::EC2::RouteTable',
      Properties: {
        VpcId: ref(id.vpc),
        Tags: tagList([stackTag, [TAG.network, NETWORK_PRIVATE], [TAG.az, azName(i)], nameTag('-private', i)]),
      },
    },
    [id.privateSubnetAssociation(i, 1)]: association(id.privateSubnet(i, 1), id.privateRouteTable(i)),
    [id.privateSubnetAssociation(i, 2)]: association(id.privateSubnet(i, 2), id.privateRouteTable(i)),
  };
}

function natShared(opts: TemplateOptions): Record<string, CfnResource> {
  const id = LOGICAL_ID;
  const privateRouteTables = Array.from({ length: opts.azs }, (_, i) => id.privateRouteTable(i));
  const instanceTags = tagList([stackTag]);
  return {
    [id.securityGroup]: {
      Type: 'AWS::EC2::SecurityGroup',
      Properties: {
        GroupDescription: 'hanat NAT instances: all traffic from the VPC in, all traffic out',
        VpcId: ref(id.vpc),
        SecurityGroupIngress: [
          { IpProtocol: '-1', CidrIp: getAtt(id.vpc, 'CidrBlock'), Description: 'everything from inside the VPC' },
          // The NATs' forward probes leave from 100.64.x.y, not a VPC address (docs/ha.md).
          { IpProtocol: 'udp', FromPort: HA_PORT, ToPort: HA_PORT, CidrIp: FORWARD_PROBE_CIDR, Description: "hanat forward probes from peer NATs (sent from 100.64.x.y)" },
        ],
        SecurityGroupEgress: [{ IpProtocol: '-1', CidrIp: '0.0.0.0/0', Description: 'everything out' }],
        Tags: tagList([stackTag, nameTag('-nat')]),
      },
    },
    [id.role]: {
      Type: 'AWS::IAM::Role',
      Properties: {
        Description: 'hanat NAT instances: steer this stack\'s private routes',
        AssumeRolePolicyDocument: EC2_TRUST_POLICY,
        Policies: [{ PolicyName: 'hanat-agent', PolicyDocument: agentPolicyDocument({ privateRouteTables, eip: opts.eip }) }],
        Tags: tagList([stackTag]),
      },
    },
    [id.instanceProfile]: {
      Type: 'AWS::IAM::InstanceProfile',
      Properties: { Roles: [ref(id.role)] },
    },
    [id.launchTemplate]: {
      Type: 'AWS::EC2::LaunchTemplate',
      Properties: {
        TagSpecifications: [{ ResourceType: 'launch-template', Tags: tagList([stackTag]) }],
        LaunchTemplateData: {
          ImageId: ref(PARAM.natAmi),
          InstanceType: ref(PARAM.instanceType),
          KeyName: ifCondition(HAS_KEY_NAME, ref(PARAM.keyName), NO_VALUE),
          IamInstanceProfile: { Arn: getAtt(id.instanceProfile, 'Arn') },
          NetworkInterfaces: [
            {
              DeviceIndex: 0,
              AssociatePublicIpAddress: true,
              DeleteOnTermination: true,
              Groups: [ref(id.securityGroup)],
            },
          ],
          MetadataOptions: {
            HttpEndpoint: 'enabled',
            HttpTokens: 'required',
            HttpPutResponseHopLimit: 1,
            InstanceMetadataTags: 'enabled',
          },
          TagSpecifications: [
            { ResourceType: 'instance', Tags: instanceTags },
            { ResourceType: 'volume', Tags: instanceTags },
            { ResourceType: 'network-interface', Tags: instanceTags },
          ],
          UserData: { 'Fn::Base64': USER_DATA },
        },
      },
    },
  };
}

/** One AZ's NAT: its Elastic IP (when on) and its own Auto Scaling group of exactly one instance. */
function azNat(i: number, opts: TemplateOptions): Record<string, CfnResource> {
  const id = LOGICAL_ID;
  const resources: Record<string, CfnResource> = {};
  if (opts.eip) {
    resources[id.eip(i)] = {
      Type: 'AWS::EC2::EIP',
      DependsOn: id.gatewayAttachment,
      Properties: { Domain: 'vpc', Tags: tagList([stackTag, [TAG.az, azName(i)], nameTag('-nat', i)]) },
    };
  }
  const groupTag = ([Key, Value]: readonly [string, CfnValue]): CfnValue => ({ Key, Value, PropagateAtLaunch: true });
  resources[id.natGroup(i)] = {
    Type: 'AWS::AutoScaling::AutoScalingGroup',
    // Boot with a working path to the internet and the EC2 API; on delete, the
    // NAT goes first so its EIP is free to release.
    DependsOn: [id.publicDefaultRoute, id.publicSubnetAssociation(i), ...(opts.eip ? [id.eip(i)] : [])],
    Properties: {
      MinSize: '1',
      MaxSize: '1',
      DesiredCapacity: '1',
      LaunchTemplate: {
        LaunchTemplateId: ref(id.launchTemplate),
        Version: getAtt(id.launchTemplate, 'LatestVersionNumber'),
      },
      VPCZoneIdentifier: [ref(id.publicSubnet(i))],
      HealthCheckType: 'EC2',
      HealthCheckGracePeriod: 120,
      Tags: [stackTag, [TAG.az, azName(i)] as const, nameTag('-nat', i)].map(groupTag),
    },
  };
  return resources;
}

function outputs(opts: TemplateOptions): Record<string, CfnOutput> {
  const id = LOGICAL_ID;
  const out: Record<string, CfnOutput> = {
    VpcId: { Description: 'VPC id', Value: ref(id.vpc) },
    VpcCidr: { Description: 'VPC IPv4 range', Value: getAtt(id.vpc, 'CidrBlock') },
    PublicRouteTableId: { Description: 'Route table of the public subnets', Value: ref(id.publicRouteTable) },
    NatSecurityGroupId: { Description: 'Security group of the NAT instances', Value: ref(id.securityGroup) },
  };
  for (let i = 0; i < opts.azs; i++) {
    out[`Az${i}Name`] = { Description: `Availability Zone ${i}`, Value: azName(i) };
    out[`Az${i}PublicSubnetId`] = { Description: `Public subnet in AZ ${i} (NAT)`, Value: ref(id.publicSubnet(i)) };
    out[`Az${i}PrivateSubnet1Id`] = { Description: `First private subnet in AZ ${i}`, Value: ref(id.privateSubnet(i, 1)) };
    out[`Az${i}PrivateSubnet2Id`] = { Description: `Second private subnet in AZ ${i}`, Value: ref(id.privateSubnet(i, 2)) };
    out[`Az${i}PrivateRouteTableId`] = { Description: `Private route table in AZ ${i}`, Value: ref(id.privateRouteTable(i)) };
    out[`Az${i}NatGroupName`] = { Description: `Auto Scaling group of the NAT in AZ ${i}`, Value: ref(id.natGroup(i)) };
    if (opts.eip) out[`Az${i}Eip`] = { Description: `Egress address of AZ ${i}`, Value: ref(id.eip(i)) };
  }
  return out;
}

export function renderTemplate(opts: TemplateOptions): CfnTemplate {
  if (!Number.isInteger(opts.azs) || opts.azs < MIN_AZS || opts.azs > MAX_AZS) {
    throw new RangeError(`azs must be a whole number from ${MIN_AZS} to ${MAX_AZS}, got ${opts.azs}`);
  }
  if (opts.cidrPrefix !== undefined && !new RegExp(CIDR_PREFIX_PATTERN).test(opts.cidrPrefix)) {
    throw new RangeError(`cidrPrefix must be two octets from 0 to 255 such as 10.0, got ${JSON.stringify(opts.cidrPrefix)}`);
  }
  const azs = Array.from({ length: opts.azs }, (_, i) => i);
  const resources: Record<string, CfnResource> = { ...sharedNetwork() };
  for (const i of azs) Object.assign(resources, azNetwork(i));
  Object.assign(resources, natShared(opts));
  for (const i of azs) Object.assign(resources, azNat(i, opts));
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: `hanat: a VPC whose private subnets reach the internet through highly available NAT instances (${opts.azs} AZs${opts.eip ? ', one Elastic IP per AZ' : ''})`,
    Metadata: {
      [HANAT_METADATA]: { azs: opts.azs, eip: opts.eip },
      // NatAmi is a String on purpose: AWS::EC2::Image::Id would refuse the
      // resolve:ssm: form that EC2 resolves at every launch (docs/template.md).
      'cfn-lint': { config: { ignore_checks: ['W2506'] } },
      'AWS::CloudFormation::Interface': {
        ParameterGroups: [
          { Label: { default: 'Network' }, Parameters: [PARAM.vpcName, PARAM.cidrPrefix, PARAM.availabilityZones] },
          { Label: { default: 'NAT instances' }, Parameters: [PARAM.natAmi, PARAM.instanceType, PARAM.keyName] },
        ],
      },
    },
    Parameters: parameters(opts),
    Conditions: {
      [HAS_KEY_NAME]: { 'Fn::Not': [{ 'Fn::Equals': [ref(PARAM.keyName), ''] }] },
    },
    Resources: resources,
    Outputs: outputs(opts),
  };
}

/** The template as `hanat template` prints it and templates/hanat.json holds it. */
export function templateBody(opts: TemplateOptions): string {
  return formatJson(renderTemplate(opts)) + '\n';
}
