/**
 * The NAT instances' IAM policy: what hanat-agent may do, and no more
 * (DESIGN.md "Security"). docs/template.md explains every statement.
 */
import { TAG } from '@hanat/core';
import { type CfnValue, ref, sub } from './cfn.js';

/** Read-only calls; EC2 and Auto Scaling give them no resource-level scoping, so they need `*`. */
export const DESCRIBE_ACTIONS = [
  'ec2:DescribeRouteTables',
  'ec2:DescribeInstances',
  'ec2:DescribeInstanceStatus',
  'ec2:DescribeAddresses',
  'ec2:DescribeSecurityGroups',
] as const;

/** Claim, take over and hand over a default route: always by pointing it at a NAT, never by deleting it. */
export const ROUTE_ACTIONS = ['ec2:CreateRoute', 'ec2:ReplaceRoute'] as const;

/** The only tags an agent writes: who owns a private route table's default route, since when, and why. */
export const AGENT_TAG_KEYS = [TAG.owner, TAG.ownerSince, TAG.ownerReason] as const;

export interface AgentPolicyOptions {
  /** Logical ids of the private route tables the agents steer. */
  privateRouteTables: readonly string[];
  /** Whether the stack has Elastic IPs for the agents to associate. */
  eip: boolean;
}

const arn = (service: string, resource: string): CfnValue =>
  sub(`arn:\${AWS::Partition}:${service}:\${AWS::Region}:\${AWS::AccountId}:${resource}`);

/** Matches only resources carrying `hanat:stack` = this stack's name. */
const taggedWithThisStack: CfnValue = {
  StringEquals: { [`aws:ResourceTag/${TAG.stack}`]: ref('AWS::StackName') },
};

/** The inline policy document attached to the NAT instances' role. */
export function agentPolicyDocument(opts: AgentPolicyOptions): CfnValue {
  const routeTableArns = opts.privateRouteTables.map((id) => arn('ec2', `route-table/\${${id}}`));
  const statements: CfnValue[] = [
    { Sid: 'ReadState', Effect: 'Allow', Action: [...DESCRIBE_ACTIONS], Resource: '*' },
    { Sid: 'SteerPrivateRoutes', Effect: 'Allow', Action: [...ROUTE_ACTIONS], Resource: routeTableArns },
    {
      Sid: 'RecordRouteOwner',
      Effect: 'Allow',
      Action: ['ec2:CreateTags'],
      Resource: routeTableArns,
      Condition: {
        'ForAllValues:StringEquals': { 'aws:TagKeys': [...AGENT_TAG_KEYS] },
        // An empty key set would satisfy ForAllValues: require the request to name its keys.
        Null: { 'aws:TagKeys': 'false' },
      },
    },
    {
      // Read and turn off source/dest check; DescribeInstanceAttribute can also
      // read user data, so it is scoped to the stack's own instances too.
      Sid: 'SourceDestCheck',
      Effect: 'Allow',
      Action: ['ec2:DescribeInstanceAttribute', 'ec2:ModifyInstanceAttribute'],
      Resource: arn('ec2', 'instance/*'),
      Condition: taggedWithThisStack,
    },
  ];
  if (opts.eip) {
    statements.push({
      Sid: 'AssociateAzEip',
      Effect: 'Allow',
      Action: 'ec2:AssociateAddress',
      Resource: [arn('ec2', 'elastic-ip/*'), arn('ec2', 'instance/*'), arn('ec2', 'network-interface/*')],
      Condition: taggedWithThisStack,
    });
  }
  statements.push({
    // A VPC CIDR block associated after deploy: the agents add it to their own group's
    // ingress, so that its hosts are not dropped before the NAT (docs/agent.md).
    Sid: 'AdmitVpcCidrs',
    Effect: 'Allow',
    Action: 'ec2:AuthorizeSecurityGroupIngress',
    Resource: [arn('ec2', 'security-group/*')],
    Condition: taggedWithThisStack,
  });
  statements.push({
    Sid: 'ReplaceFailedNat',
    Effect: 'Allow',
    Action: 'autoscaling:SetInstanceHealth',
    Resource: arn('autoscaling', 'autoScalingGroup:*:autoScalingGroupName/*'),
    Condition: taggedWithThisStack,
  });
  return { Version: '2012-10-17', Statement: statements };
}

/**
 * Lets EC2 hand the role to the NAT instances. The service principal follows
 * the partition's domain (`ec2.amazonaws.com`, `ec2.amazonaws.com.cn` in China).
 */
export const EC2_TRUST_POLICY: CfnValue = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: sub('ec2.${AWS::URLSuffix}') }, Action: 'sts:AssumeRole' }],
};
