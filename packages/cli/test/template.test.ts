/**
 * What an operator relies on in the rendered template: the address plan, the
 * private route tables left to the agents, the security group, IMDSv2, one NAT
 * group per AZ, the tag contract, IAM scopes, the parameter patterns, the size
 * limit, and the checked-in templates/hanat.json.
 *
 * templates/hanat.json is regenerated with
 *   HANAT_WRITE_TEMPLATE=1 pnpm exec vitest run packages/cli/test/template.test.ts
 * (or `pnpm hanat template > templates/hanat.json`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TAG } from '@hanat/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CIDR_PREFIX_PATTERN,
  type CfnResource,
  type CfnTemplate,
  type CfnValue,
  DEFAULT_TEMPLATE_OPTIONS,
  INSTANCE_TYPE_PATTERN,
  MAX_AZS,
  MIN_AZS,
  NAT_AMI_PATTERN,
  TEMPLATE_BODY_LIMIT,
  renderTemplate,
  templateBody,
} from '../src/template/index.js';
import { tagProperty } from './template/validate.js';

const CHECKED_IN = new URL('../../../templates/hanat.json', import.meta.url);

const stackName = { Ref: 'AWS::StackName' };
const azName = (i: number) => ({ 'Fn::Select': [i, { Ref: 'AvailabilityZones' }] });
const ref = (id: string) => ({ Ref: id });

function ofType(t: CfnTemplate, type: string): [string, CfnResource][] {
  return Object.entries(t.Resources).filter(([, r]) => r.Type === type);
}

/** Test reads reach deep into properties; loosely typed on purpose. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

function props(t: CfnTemplate, id: string): Loose {
  const r = t.Resources[id];
  if (!r) throw new Error(`no resource ${id}`);
  return r.Properties ?? {};
}

/** Tags of a resource as a Map, whatever list they sit in. */
function tagsOf(list: unknown): Map<string, CfnValue> {
  return new Map((list as { Key: string; Value: CfnValue }[]).map((tag) => [tag.Key, tag.Value]));
}

/** Every `Ref`/`Fn::Sub` variable that points at a logical id, anywhere in a value. */
function referencedIds(v: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) v.forEach((x) => referencedIds(x, out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'Ref' && typeof x === 'string') out.add(x);
      if (k === 'Fn::Sub') {
        const text = typeof x === 'string' ? x : Array.isArray(x) && typeof x[0] === 'string' ? x[0] : '';
        for (const m of text.matchAll(/\$\{([^}!.]+)\}/g)) out.add(m[1] ?? '');
      }
      referencedIds(x, out);
    }
  }
  return out;
}

const variants = [
  { azs: 2, eip: true },
  { azs: 3, eip: true },
  { azs: 6, eip: true },
  { azs: 3, eip: false },
  { azs: 6, eip: false },
];

describe('templates/hanat.json', () => {
  it('is exactly the default render (regenerate: see the header of this file)', () => {
    const expected = templateBody(DEFAULT_TEMPLATE_OPTIONS);
    if (process.env.HANAT_WRITE_TEMPLATE === '1') writeFileSync(CHECKED_IN, expected);
    expect(readFileSync(CHECKED_IN, 'utf8')).toBe(expected);
  });
});

describe('the template body', () => {
  it.each(variants)('parses back to the rendered object ($azs AZs, eip $eip) and ends with a newline', (opts) => {
    const body = templateBody(opts);
    expect(body.endsWith('}\n')).toBe(true);
    expect(JSON.parse(body)).toEqual(renderTemplate(opts));
  });

  it(`stays under CloudFormation's ${TEMPLATE_BODY_LIMIT}-byte inline limit at ${MAX_AZS} AZs with EIPs`, () => {
    const size = Buffer.byteLength(templateBody({ azs: MAX_AZS, eip: true }));
    expect(size).toBeLessThan(TEMPLATE_BODY_LIMIT);
  });

  it('keeps lines short enough to read and diff', () => {
    const long = templateBody(DEFAULT_TEMPLATE_OPTIONS)
      .split('\n')
      .filter((line) => line.length > 120 && !/^\s*"[^"]+": "[^"]*",?$/.test(line)); // only a long string scalar may overflow
    expect(long).toEqual([]);
  });
});

describe('options', () => {
  it.each([MIN_AZS - 1, MAX_AZS + 1, 2.5, Number.NaN])('refuses %s AZs', (azs) => {
    expect(() => renderTemplate({ azs, eip: true })).toThrow(RangeError);
  });

  it('uses cidrPrefix as the CidrPrefix default, and refuses a malformed one', () => {
    expect(renderTemplate({ azs: 3, eip: true, cidrPrefix: '172.31' }).Parameters.CidrPrefix?.Default).toBe('172.31');
    expect(renderTemplate(DEFAULT_TEMPLATE_OPTIONS).Parameters.CidrPrefix?.Default).toBeUndefined();
    expect(() => renderTemplate({ azs: 3, eip: true, cidrPrefix: '10.0.0' })).toThrow(/cidrPrefix/);
  });

  it('records its render options in the template metadata', () => {
    expect(renderTemplate({ azs: 4, eip: false }).Metadata?.hanat).toEqual({ azs: 4, eip: false });
  });
});

describe('network', () => {
  it.each(variants)('has the resource counts of $azs AZs (eip $eip)', ({ azs, eip }) => {
    const t = renderTemplate({ azs, eip });
    const count = (type: string) => ofType(t, type).length;
    expect(count('AWS::EC2::VPC')).toBe(1);
    expect(count('AWS::EC2::Subnet')).toBe(3 * azs);
    expect(count('AWS::EC2::RouteTable')).toBe(azs + 1);
    expect(count('AWS::EC2::SubnetRouteTableAssociation')).toBe(3 * azs);
    expect(count('AWS::AutoScaling::AutoScalingGroup')).toBe(azs);
    expect(count('AWS::EC2::EIP')).toBe(eip ? azs : 0);
    expect(count('AWS::EC2::LaunchTemplate')).toBe(1);
    expect(Object.keys(t.Resources)).toHaveLength(9 + azs * (eip ? 9 : 8));
  });

  it('gives the VPC x.y.0.0/16 from CidrPrefix with DNS on', () => {
    const vpc = props(renderTemplate(DEFAULT_TEMPLATE_OPTIONS), 'Vpc');
    expect(vpc).toMatchObject({ CidrBlock: { 'Fn::Sub': '${CidrPrefix}.0.0/16' }, EnableDnsSupport: true, EnableDnsHostnames: true });
  });

  it.each([2, 6])('lays out subnets per the address plan in each of %i AZs', (azs) => {
    const t = renderTemplate({ azs, eip: true });
    for (let i = 0; i < azs; i++) {
      const subnets = [
        [`Az${i}PublicSubnet`, i, 'public', true],
        [`Az${i}PrivateSubnet1`, 10 + i, 'private', undefined],
        [`Az${i}PrivateSubnet2`, 20 + i, 'private', undefined],
      ] as const;
      for (const [id, octet, network, publicIp] of subnets) {
        const p = props(t, id);
        expect(p.CidrBlock).toEqual({ 'Fn::Sub': `\${CidrPrefix}.${octet}.0/24` });
        expect(p.AvailabilityZone).toEqual(azName(i));
        expect(p.VpcId).toEqual(ref('Vpc'));
        expect(p.MapPublicIpOnLaunch).toBe(publicIp);
        expect(tagsOf(p.Tags).get(TAG.network)).toBe(network);
      }
    }
  });

  it('routes the public subnets to the internet gateway, after the gateway is attached', () => {
    const t = renderTemplate(DEFAULT_TEMPLATE_OPTIONS);
    const routes = ofType(t, 'AWS::EC2::Route');
    expect(routes).toHaveLength(1);
    const [, route] = routes[0]!;
    expect(route.DependsOn).toBe('InternetGatewayAttachment');
    expect(route.Properties).toEqual({
      RouteTableId: ref('PublicRouteTable'),
      DestinationCidrBlock: '0.0.0.0/0',
      GatewayId: ref('InternetGateway'),
    });
    for (let i = 0; i < 3; i++) {
      expect(props(t, `Az${i}PublicSubnetRouteTableAssociation`)).toEqual({ SubnetId: ref(`Az${i}PublicSubnet`), RouteTableId: ref('PublicRouteTable') });
    }
  });

  it('creates each private route table without a default route, shared by its AZ\'s two private subnets', () => {
    const t = renderTemplate({ azs: 6, eip: true });
    const routedTables = ofType(t, 'AWS::EC2::Route').map(([, r]) => r.Properties?.RouteTableId);
    for (let i = 0; i < 6; i++) {
      const table = `Az${i}PrivateRouteTable`;
      expect(routedTables).not.toContainEqual(ref(table));
      expect(t.Resources[table]?.Properties).not.toHaveProperty('Routes');
      for (const n of [1, 2]) {
        expect(props(t, `Az${i}PrivateSubnet${n}RouteTableAssociation`)).toEqual({ SubnetId: ref(`Az${i}PrivateSubnet${n}`), RouteTableId: ref(table) });
      }
    }
  });
});

describe('NAT instances', () => {
  const t = renderTemplate(DEFAULT_TEMPLATE_OPTIONS);
  const data = props(t, 'NatLaunchTemplate').LaunchTemplateData as Loose;

  it("admits every protocol from the VPC range, and from outside it only the peers' forward probes on the heartbeat port; lets everything out", () => {
    const sg = props(t, 'NatSecurityGroup');
    expect(sg.SecurityGroupIngress).toEqual([
      { IpProtocol: '-1', CidrIp: { 'Fn::GetAtt': ['Vpc', 'CidrBlock'] }, Description: expect.any(String) },
      { IpProtocol: 'udp', FromPort: 4242, ToPort: 4242, CidrIp: '100.64.0.0/16', Description: expect.any(String) },
    ]);
    expect(sg.SecurityGroupEgress).toEqual([{ IpProtocol: '-1', CidrIp: '0.0.0.0/0', Description: expect.any(String) }]);
    expect(ofType(t, 'AWS::EC2::SecurityGroupIngress')).toEqual([]);
  });

  it('requires IMDSv2 with a hop limit of 1 and exposes instance tags to the agent', () => {
    expect(data.MetadataOptions).toEqual({ HttpEndpoint: 'enabled', HttpTokens: 'required', HttpPutResponseHopLimit: 1, InstanceMetadataTags: 'enabled' });
  });

  it('gives the primary interface a public IP and the NAT security group', () => {
    expect(data.NetworkInterfaces).toEqual([{ DeviceIndex: 0, AssociatePublicIpAddress: true, DeleteOnTermination: true, Groups: [ref('NatSecurityGroup')] }]);
    expect(data).not.toHaveProperty('SecurityGroupIds');
  });

  it('takes the image, type and optional key pair from the parameters', () => {
    expect(data.ImageId).toEqual(ref('NatAmi'));
    expect(data.InstanceType).toEqual(ref('InstanceType'));
    expect(data.KeyName).toEqual({ 'Fn::If': ['HasKeyName', ref('KeyName'), ref('AWS::NoValue')] });
    expect(t.Conditions?.HasKeyName).toEqual({ 'Fn::Not': [{ 'Fn::Equals': [ref('KeyName'), ''] }] });
    expect(data.IamInstanceProfile).toEqual({ Arn: { 'Fn::GetAtt': ['NatInstanceProfile', 'Arn'] } });
  });

  it('starts the agent from user data through its systemd unit, with nothing secret in it', () => {
    const script = data.UserData['Fn::Base64'] as string;
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    expect(script).toContain('\nsystemctl enable --now hanat-agent.service\n');
    expect(script).not.toMatch(/secret|password|token|AKIA|aws_access_key/i);
  });

  it.each([2, 6])('runs one Auto Scaling group of exactly one NAT in each AZ\'s public subnet (%i AZs)', (azs) => {
    const tt = renderTemplate({ azs, eip: true });
    for (let i = 0; i < azs; i++) {
      const group = tt.Resources[`Az${i}NatGroup`];
      expect(group?.Properties).toMatchObject({
        MinSize: '1',
        MaxSize: '1',
        DesiredCapacity: '1',
        VPCZoneIdentifier: [ref(`Az${i}PublicSubnet`)],
        HealthCheckType: 'EC2',
        LaunchTemplate: { LaunchTemplateId: ref('NatLaunchTemplate'), Version: { 'Fn::GetAtt': ['NatLaunchTemplate', 'LatestVersionNumber'] } },
      });
      // Boots with a path to the internet; its EIP exists first and is released after it.
      expect(group?.DependsOn).toEqual(['PublicDefaultRoute', `Az${i}PublicSubnetRouteTableAssociation`, `Az${i}Eip`]);
    }
  });

  it('leaves the EIPs out with --no-eip, and nothing refers to them', () => {
    const tt = renderTemplate({ azs: 3, eip: false });
    expect(ofType(tt, 'AWS::EC2::EIP')).toEqual([]);
    expect([...referencedIds(tt)].filter((id) => /Eip/.test(id))).toEqual([]);
    expect(JSON.stringify(tt)).not.toContain('AssociateAddress');
    expect(Object.keys(tt.Outputs).filter((k) => k.endsWith('Eip'))).toEqual([]);
  });
});

describe('tag contract', () => {
  it.each(variants)('puts hanat:stack = the stack name on every taggable resource ($azs AZs, eip $eip)', (opts) => {
    const t = renderTemplate(opts);
    for (const [id, r] of Object.entries(t.Resources)) {
      const tagProp = tagProperty(r.Type);
      if (tagProp === undefined) continue;
      expect(tagsOf(r.Properties?.[tagProp]).get(TAG.stack), `${id} (${r.Type})`).toEqual(stackName);
    }
    const lt = props(t, 'NatLaunchTemplate');
    expect(lt.TagSpecifications).toEqual([{ ResourceType: 'launch-template', Tags: [{ Key: TAG.stack, Value: stackName }] }]);
    const specs = (lt.LaunchTemplateData as Loose).TagSpecifications as { ResourceType: string; Tags: unknown }[];
    expect(specs.map((s) => s.ResourceType).sort()).toEqual(['instance', 'network-interface', 'volume']);
    for (const s of specs) expect(tagsOf(s.Tags).get(TAG.stack)).toEqual(stackName);
  });

  it('marks route tables public or private, and private ones with their AZ', () => {
    const t = renderTemplate({ azs: 3, eip: true });
    expect(tagsOf(props(t, 'PublicRouteTable').Tags).get(TAG.network)).toBe('public');
    expect(tagsOf(props(t, 'PublicRouteTable').Tags).has(TAG.az)).toBe(false);
    for (let i = 0; i < 3; i++) {
      const tags = tagsOf(props(t, `Az${i}PrivateRouteTable`).Tags);
      expect(tags.get(TAG.network)).toBe('private');
      expect(tags.get(TAG.az)).toEqual(azName(i));
    }
  });

  it('tags each NAT group (propagated to its instance) and each EIP with its AZ', () => {
    const t = renderTemplate({ azs: 3, eip: true });
    for (let i = 0; i < 3; i++) {
      const groupTags = props(t, `Az${i}NatGroup`).Tags as { Key: string; Value: CfnValue; PropagateAtLaunch: boolean }[];
      expect(groupTags.filter((g) => g.Key === TAG.stack || g.Key === TAG.az)).toEqual([
        { Key: TAG.stack, Value: stackName, PropagateAtLaunch: true },
        { Key: TAG.az, Value: azName(i), PropagateAtLaunch: true },
      ]);
      expect(tagsOf(props(t, `Az${i}Eip`).Tags).get(TAG.az)).toEqual(azName(i));
    }
  });

  it('writes none of the runtime tags the agents and CLI own', () => {
    const text = JSON.stringify(renderTemplate({ azs: 6, eip: true }));
    for (const tag of [TAG.override]) expect(text).not.toContain(`"${tag}"`);
    expect(text).not.toMatch(/"Key": ?"hanat:owner/);
  });
});

describe('IAM', () => {
  type Statement = { Sid: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
  const statementsOf = (t: CfnTemplate): Statement[] => {
    const policies = props(t, 'NatRole').Policies as { PolicyDocument: { Statement: Statement[] } }[];
    expect(policies).toHaveLength(1);
    return policies[0]!.PolicyDocument.Statement;
  };
  const actions = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
  const routeTableArn = (id: string) => ({ 'Fn::Sub': `arn:\${AWS::Partition}:ec2:\${AWS::Region}:\${AWS::AccountId}:route-table/\${${id}}` });
  const byStackTag = { StringEquals: { 'aws:ResourceTag/hanat:stack': stackName } };

  it('lets only EC2 assume the role', () => {
    expect(props(renderTemplate(DEFAULT_TEMPLATE_OPTIONS), 'NatRole').AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Service: { 'Fn::Sub': 'ec2.${AWS::URLSuffix}' } }, Action: 'sts:AssumeRole' }],
    });
  });

  it.each(variants)('grants only Describe calls on "*" ($azs AZs, eip $eip)', (opts) => {
    for (const s of statementsOf(renderTemplate(opts))) {
      expect(s.Effect).toBe('Allow');
      if (s.Resource === '*') expect(actions(s).every((a) => /^(ec2|autoscaling):Describe[A-Za-z]+$/.test(a)), s.Sid).toBe(true);
    }
  });

  it.each([2, 6])('scopes route changes and owner tags (owner, since when, why) to the stack\'s private route tables (%i AZs)', (azs) => {
    const statements = statementsOf(renderTemplate({ azs, eip: true }));
    const tables = Array.from({ length: azs }, (_, i) => routeTableArn(`Az${i}PrivateRouteTable`));
    const routes = statements.filter((s) => actions(s).some((a) => /Route$/.test(a)));
    expect(routes).toEqual([{ Sid: 'SteerPrivateRoutes', Effect: 'Allow', Action: ['ec2:CreateRoute', 'ec2:ReplaceRoute'], Resource: tables }]);
    const tagging = statements.filter((s) => actions(s).some((a) => /Tags$/.test(a)));
    expect(tagging).toEqual([
      {
        Sid: 'RecordRouteOwner',
        Effect: 'Allow',
        Action: ['ec2:CreateTags'],
        Resource: tables,
        Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': [TAG.owner, TAG.ownerSince, TAG.ownerReason] }, Null: { 'aws:TagKeys': 'false' } },
      },
    ]);
  });

  it('scopes ModifyInstanceAttribute, AssociateAddress and SetInstanceHealth to resources tagged with the stack', () => {
    const statements = statementsOf(renderTemplate(DEFAULT_TEMPLATE_OPTIONS));
    const find = (action: string) => statements.filter((s) => actions(s).includes(action));
    const scoped = {
      'ec2:ModifyInstanceAttribute': ['ec2:DescribeInstanceAttribute', 'ec2:ModifyInstanceAttribute'],
      'ec2:AssociateAddress': ['ec2:AssociateAddress'],
      'autoscaling:SetInstanceHealth': ['autoscaling:SetInstanceHealth'],
    };
    for (const [action, grantedTogether] of Object.entries(scoped)) {
      const granting = find(action);
      expect(granting, action).toHaveLength(1);
      expect(actions(granting[0]!), action).toEqual(grantedTogether);
      expect(granting[0]!.Condition, action).toEqual(byStackTag);
    }
    expect(find('ec2:ModifyInstanceAttribute')[0]!.Resource).toEqual({ 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*' });
    expect(find('ec2:AssociateAddress')[0]!.Resource).toEqual([
      { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:elastic-ip/*' },
      { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*' },
      { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*' },
    ]);
  });

  it('grants no EIP association when there are no EIPs', () => {
    const statements = statementsOf(renderTemplate({ azs: 3, eip: false }));
    expect(statements.flatMap(actions)).not.toContain('ec2:AssociateAddress');
  });
});

describe('parameters', () => {
  const t = renderTemplate(DEFAULT_TEMPLATE_OPTIONS);
  const matches = (pattern: string, value: string) => new RegExp(pattern).test(value);

  it('never takes the AZs from Fn::GetAZs, whose answer can change under an existing stack', () => {
    for (const opts of [DEFAULT_TEMPLATE_OPTIONS, { azs: 6, eip: false }]) expect(templateBody(opts)).not.toContain('Fn::GetAZs');
  });

  it('are exactly the ones hanat deploy passes', () => {
    expect(Object.keys(t.Parameters).sort()).toEqual(['AvailabilityZones', 'CidrPrefix', 'InstanceType', 'KeyName', 'NatAmi', 'VpcName']);
    // No default: the console and aws cloudformation deploy make the operator pick them, and keep them on updates.
    expect(t.Parameters.AvailabilityZones).toMatchObject({ Type: 'List<AWS::EC2::AvailabilityZone::Name>' });
    expect(t.Parameters.AvailabilityZones?.Default).toBeUndefined();
    expect(t.Parameters.KeyName?.Default).toBe('');
    expect(t.Parameters.InstanceType?.Default).toBe('t4g.nano');
    expect(t.Parameters.CidrPrefix?.AllowedPattern).toBe(CIDR_PREFIX_PATTERN);
    expect(t.Parameters.NatAmi?.AllowedPattern).toBe(NAT_AMI_PATTERN);
    expect(t.Parameters.InstanceType?.AllowedPattern).toBe(INSTANCE_TYPE_PATTERN);
  });

  it.each(['10.0', '172.31', '192.168', '0.0', '255.255', '100.64', '9.9'])('CidrPrefix accepts %s', (v) => {
    expect(matches(CIDR_PREFIX_PATTERN, v)).toBe(true);
  });

  it.each(['256.1', '10.256', '10', '10.0.0', '01.2', '10.00', '', ' 10.0', '10.0 ', '10.0/16', '-1.0', '1e1.0', '10..0'])(
    'CidrPrefix rejects %j',
    (v) => {
      expect(matches(CIDR_PREFIX_PATTERN, v)).toBe(false);
    },
  );

  it.each(['ami-12345678', 'ami-0123456789abcdef0', 'resolve:ssm:/hanat/ami/arm64', 'resolve:ssm:/hanat/ami/x86_64:3', 'resolve:ssm:hanat-ami', 'resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-arm64'])(
    'NatAmi accepts %s',
    (v) => {
      expect(matches(NAT_AMI_PATTERN, v)).toBe(true);
    },
  );

  it.each(['ami-123', 'ami-0123456789ABCDEF0', 'ami-0123456789abcdef', '/hanat/ami/arm64', 'resolve:ssm:', '{{resolve:ssm:/hanat/ami/arm64}}', 'resolve:ssm:/a b', 'ssm:/hanat'])(
    'NatAmi rejects %j',
    (v) => {
      expect(matches(NAT_AMI_PATTERN, v)).toBe(false);
    },
  );

  it.each([
    ['t4g.nano', true],
    ['c7gn.medium', true],
    ['u-6tb1.metal', true],
    ['t4g', false],
    ['T4G.nano', false],
    ['t4g.nano ', false],
    ['t4g..nano', false],
  ] as const)('InstanceType %j → %s', (v, ok) => {
    expect(matches(INSTANCE_TYPE_PATTERN, v)).toBe(ok);
  });
});

describe('outputs', () => {
  it.each(variants)('name the VPC, and per AZ its subnets, route table, NAT group and EIP ($azs AZs, eip $eip)', ({ azs, eip }) => {
    const outputs = renderTemplate({ azs, eip }).Outputs;
    const expected = ['VpcId', 'VpcCidr', 'PublicRouteTableId', 'NatSecurityGroupId'];
    for (let i = 0; i < azs; i++) {
      expected.push(`Az${i}Name`, `Az${i}PublicSubnetId`, `Az${i}PrivateSubnet1Id`, `Az${i}PrivateSubnet2Id`, `Az${i}PrivateRouteTableId`, `Az${i}NatGroupName`);
      if (eip) expected.push(`Az${i}Eip`);
    }
    expect(Object.keys(outputs).sort()).toEqual(expected.sort());
    expect(outputs.Az1PrivateRouteTableId?.Value).toEqual(ref('Az1PrivateRouteTable'));
    expect(outputs.Az1NatGroupName?.Value).toEqual(ref('Az1NatGroup'));
  });
});

/** AWS's own linter, when the machine has it (pip install cfn-lint); the spec checks above run regardless. */
const cfnLint = spawnSync('cfn-lint', ['--version'], { encoding: 'utf8' });
const haveCfnLint = cfnLint.status === 0;
describe.skipIf(!haveCfnLint)(`cfn-lint ${haveCfnLint ? cfnLint.stdout.trim() : '(not installed: skipped)'}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hanat-cfn-lint-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reports nothing for every variant', () => {
    const files = variants.map(({ azs, eip }) => {
      const file = join(dir, `hanat-${azs}az${eip ? '' : '-noeip'}.json`);
      writeFileSync(file, templateBody({ azs, eip }));
      return file;
    });
    const run = spawnSync('cfn-lint', ['--', ...files], { encoding: 'utf8', timeout: 120_000 });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  }, 130_000);
});
