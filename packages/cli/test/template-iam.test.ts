/**
 * The NAT role's policy against AWS's Service Authorization Reference: every
 * action exists, every ARN is of a resource type the action authorizes, every
 * condition key is one IAM evaluates for that action and resource type, and
 * every EC2 and Auto Scaling call the agent makes is allowed. The planted
 * mistakes below show that each check can fail.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderTemplate } from '../src/template/index.js';
import { checkStatements, grants, type Statement } from './template/iam-reference.js';

function statementsOf(azs: number, eip: boolean): Statement[] {
  const role = renderTemplate({ azs, eip }).Resources.NatRole?.Properties as unknown as { Policies: { PolicyDocument: { Statement: Statement[] } }[] };
  return role.Policies.flatMap((p) => p.PolicyDocument.Statement);
}

/**
 * The agent's AWS calls, read from its source and from @hanat/core's, which it
 * bundles (core's routes.ts makes its route writes): the `…Command`s each imports
 * from an SDK client.
 */
function agentCalls(): string[] {
  const dirs = [new URL('../../agent/src/', import.meta.url), new URL('../../core/src/', import.meta.url)];
  const prefix: Record<string, string> = { 'client-ec2': 'ec2', 'client-auto-scaling': 'autoscaling' };
  const calls = new Set<string>();
  for (const [dir, file] of dirs.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.ts')).map((f) => [d, f] as const))) {
    const text = readFileSync(new URL(file, dir), 'utf8');
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'@aws-sdk\/(client-ec2|client-auto-scaling)'/g)) {
      for (const name of m[1]!.matchAll(/\b([A-Z][A-Za-z0-9]+)Command\b/g)) calls.add(`${prefix[m[2]!]}:${name[1]}`);
    }
  }
  return [...calls].sort();
}

/**
 * The resource types a call of the agent puts in its request, where they are
 * more than the action's required ones: the agent associates an EIP with a
 * network interface, tags route tables, and admits VPC CIDR blocks into its group.
 */
const REQUEST_TYPES: Record<string, string[]> = {
  'ec2:AssociateAddress': ['elastic-ip', 'network-interface'],
  'ec2:CreateTags': ['route-table'],
  'ec2:CreateRoute': ['route-table'],
  'ec2:ReplaceRoute': ['route-table'],
  'ec2:AuthorizeSecurityGroupIngress': ['security-group'],
  'ec2:DescribeInstanceAttribute': ['instance'],
  'ec2:ModifyInstanceAttribute': ['instance'],
  'autoscaling:SetInstanceHealth': ['autoScalingGroup'],
};

describe('the NAT role against the Service Authorization Reference', () => {
  it.each([
    [3, true],
    [2, true],
    [6, true],
    [3, false],
  ])('grants only what IAM can evaluate (%i AZs, eip %s)', async (azs, eip) => {
    expect(await checkStatements(statementsOf(azs, eip))).toEqual([]);
  });

  it('allows every EC2 and Auto Scaling call the agent makes', async () => {
    const calls = agentCalls();
    expect(calls).toContain('ec2:ReplaceRoute');
    const statements = statementsOf(3, true);
    const denied: string[] = [];
    for (const call of calls) if (!(await grants(statements, call, REQUEST_TYPES[call] ?? []))) denied.push(call);
    expect(denied).toEqual([]);
  });
});

describe('the reference check catches', () => {
  const base = (): Statement[] => JSON.parse(JSON.stringify(statementsOf(3, true))) as Statement[];
  const bySid = (statements: Statement[], sid: string): Statement => statements.find((s) => s.Sid === sid)!;

  it('an action that does not exist', async () => {
    const st = base();
    bySid(st, 'AssociateAzEip').Action = 'ec2:AssociateAdress';
    expect(await checkStatements(st)).toEqual(['AssociateAzEip: ec2:AssociateAdress is not an IAM action']);
  });

  it('a condition key the action never carries for that resource type', async () => {
    const st = base();
    bySid(st, 'ReplaceFailedNat').Condition = { StringEquals: { 'ec2:ResourceTag/hanat:stack': { Ref: 'AWS::StackName' } } };
    expect(await checkStatements(st)).toEqual([
      'ReplaceFailedNat: autoscaling:SetInstanceHealth on autoScalingGroup has no condition key ec2:ResourceTag/hanat:stack, so the condition never holds',
    ]);
  });

  it('an ARN of a resource type the action does not authorize, and a required type left out', async () => {
    const st = base();
    bySid(st, 'SourceDestCheck').Resource = { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*' };
    const found = await checkStatements(st);
    expect(found).toContain(
      'SourceDestCheck: ec2:ModifyInstanceAttribute does not authorize arn:aws:ec2:eu-west-1:123456789012:network-interface/*; its resource types are instance, security-group, volume',
    );
    expect(found).toContain('SourceDestCheck: ec2:ModifyInstanceAttribute needs permission on resource type instance, which no Resource names');
  });

  it('an ARN on an action that IAM only accepts with "*"', async () => {
    const st = base();
    bySid(st, 'ReadState').Resource = { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:route-table/*' };
    expect((await checkStatements(st))[0]).toBe(
      'ReadState: ec2:DescribeRouteTables authorizes no resource type, so IAM accepts only Resource "*"; an ARN is never matched and the call is denied',
    );
  });

  it('an agent call left without a grant', async () => {
    const st = base();
    bySid(st, 'AssociateAzEip').Resource = [{ 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:elastic-ip/*' }];
    expect(await checkStatements(st)).toEqual([]);
    expect(await grants(st, 'ec2:AssociateAddress', REQUEST_TYPES['ec2:AssociateAddress']!)).toBe(false);
  });
});
