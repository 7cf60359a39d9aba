/**
 * The rendered template against AWS's CloudFormation resource specification
 * (@aws-cdk/aws-service-spec), and proof that the validator catches the
 * mistakes it exists for.
 */
import { describe, expect, it } from 'vitest';
import { type CfnTemplate, renderTemplate } from '../src/template/index.js';
import { type Finding, isConditionOperator, specResourceCount, validateTemplate } from './template/validate.js';

const render = (azs = 3, eip = true): CfnTemplate => renderTemplate({ azs, eip });

/** Planting a mistake means writing anywhere in the JSON tree, so the copy is loosely typed on purpose. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Tree = Record<string, any>;

/** A deep copy to plant a mistake in. */
const copy = (t: CfnTemplate = render()): Tree => JSON.parse(JSON.stringify(t)) as Tree;

const messages = (findings: Finding[]) => findings.map((f) => `${f.path}: ${f.message}`);

describe('the rendered template', () => {
  it('comes from a real, current specification', () => {
    // Guards against an empty or broken spec database making every check vacuous.
    expect(specResourceCount()).toBeGreaterThan(1000);
  });

  it.each([
    { azs: 3, eip: true, what: 'the default (3 AZs, EIPs)' },
    { azs: 2, eip: true, what: '2 AZs' },
    { azs: 6, eip: true, what: '6 AZs' },
    { azs: 3, eip: false, what: '--no-eip' },
    { azs: 6, eip: false, what: '6 AZs with --no-eip' },
  ])('passes every check for $what', ({ azs, eip }) => {
    expect(messages(validateTemplate(render(azs, eip)))).toEqual([]);
  });
});

describe('the validator catches', () => {
  it('a misspelled property, and suggests the right name', () => {
    const t = copy();
    t.Resources.Az0PublicSubnet.Properties.MapPublicIPOnLaunch = t.Resources.Az0PublicSubnet.Properties.MapPublicIpOnLaunch;
    delete t.Resources.Az0PublicSubnet.Properties.MapPublicIpOnLaunch;
    expect(messages(validateTemplate(t))).toEqual([
      'Resources.Az0PublicSubnet.Properties.MapPublicIPOnLaunch: AWS::EC2::Subnet has no property "MapPublicIPOnLaunch" (did you mean "MapPublicIpOnLaunch"?)',
    ]);
  });

  it('a misspelled property inside a nested property type (LaunchTemplateData.MetadataOptions)', () => {
    const t = copy();
    t.Resources.NatLaunchTemplate.Properties.LaunchTemplateData.MetadataOptions.HttpToken = 'required';
    const found = messages(validateTemplate(t));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/MetadataOptions\.HttpToken: MetadataOptions has no property "HttpToken" \(did you mean "HttpTokens"\?\)/);
  });

  it('a misspelled key in a tag and in a network interface', () => {
    const t = copy();
    t.Resources.Vpc.Properties.Tags[0] = { Key: 'hanat:stack', Valeu: 'x' };
    t.Resources.NatLaunchTemplate.Properties.LaunchTemplateData.NetworkInterfaces[0].Group = [];
    const found = messages(validateTemplate(t)).join('\n');
    expect(found).toMatch(/Vpc\.Properties\.Tags\[0\]\.Valeu: Tag has no property "Valeu"/);
    expect(found).toMatch(/Vpc\.Properties\.Tags\[0\]: Tag requires property "Value"/);
    expect(found).toMatch(/NetworkInterfaces\[0\]\.Group: NetworkInterface has no property "Group" \(did you mean "Groups"\?\)/);
  });

  it('a dangling Ref', () => {
    const t = copy();
    t.Resources.Az1PrivateSubnet1RouteTableAssociation.Properties.RouteTableId = { Ref: 'Az1PrivateRouteTabel' };
    expect(messages(validateTemplate(t))).toEqual([
      'Resources.Az1PrivateSubnet1RouteTableAssociation.Properties.RouteTableId.Ref: Ref to "Az1PrivateRouteTabel", which is neither a parameter, a resource nor a pseudo parameter (did you mean "Az1PrivateRouteTable"?)',
    ]);
  });

  it('a dangling Fn::GetAtt: unknown resource, and unknown attribute', () => {
    const t = copy();
    t.Resources.NatSecurityGroup.Properties.SecurityGroupIngress[0].CidrIp = { 'Fn::GetAtt': ['TheVpc', 'CidrBlock'] };
    t.Outputs.VpcCidr.Value = { 'Fn::GetAtt': ['Vpc', 'Cidr'] };
    const found = messages(validateTemplate(t));
    expect(found).toContain(
      'Resources.NatSecurityGroup.Properties.SecurityGroupIngress[0].CidrIp.Fn::GetAtt: Fn::GetAtt on "TheVpc", which is not a resource in this template (did you mean "Vpc"?)',
    );
    expect(found).toContain('Outputs.VpcCidr.Value.Fn::GetAtt: AWS::EC2::VPC has no attribute "Cidr" (did you mean "CidrBlock"?)');
    expect(found).toHaveLength(2);
  });

  it('an unresolved Fn::Sub variable, in a plain Sub and inside an IAM ARN', () => {
    const t = copy();
    t.Resources.Vpc.Properties.CidrBlock = { 'Fn::Sub': '${CidrPrefx}.0.0/16' };
    const policy = t.Resources.NatRole.Properties.Policies[0].PolicyDocument;
    policy.Statement[1].Resource[0] = { 'Fn::Sub': 'arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:route-table/${Az9PrivateRouteTable}' };
    const found = messages(validateTemplate(t)).join('\n');
    expect(found).toMatch(/Vpc\.Properties\.CidrBlock\.Fn::Sub: Ref to "CidrPrefx".*did you mean "CidrPrefix"/);
    expect(found).toMatch(/Ref to "Az9PrivateRouteTable"/);
  });

  it('an unknown resource type', () => {
    const t = copy();
    t.Resources.InternetGateway.Type = 'AWS::EC2::InternetGateWay';
    expect(messages(validateTemplate(t))).toEqual([
      'Resources.InternetGateway.Type: unknown resource type "AWS::EC2::InternetGateWay" (did you mean "AWS::EC2::InternetGateway"?)',
    ]);
  });

  it('a missing required property', () => {
    const t = copy();
    delete t.Resources.NatSecurityGroup.Properties.GroupDescription;
    delete t.Resources.Az0NatGroup.Properties.MaxSize;
    const found = messages(validateTemplate(t));
    expect(found).toContain('Resources.NatSecurityGroup.Properties: AWS::EC2::SecurityGroup requires property "GroupDescription"');
    expect(found).toContain('Resources.Az0NatGroup.Properties: AWS::AutoScaling::AutoScalingGroup requires property "MaxSize"');
  });

  it('values of the wrong type', () => {
    const t = copy();
    t.Resources.Vpc.Properties.EnableDnsSupport = 'true';
    t.Resources.Az0NatGroup.Properties.HealthCheckGracePeriod = '120';
    t.Resources.Az0NatGroup.Properties.VPCZoneIdentifier = { Ref: 'Az0PublicSubnet' };
    t.Resources.NatLaunchTemplate.Properties.LaunchTemplateData.IamInstanceProfile = { Ref: 'NatInstanceProfile' };
    t.Resources.Az1PublicSubnet.Properties.AvailabilityZone = { 'Fn::GetAZs': '' };
    const found = messages(validateTemplate(t));
    expect(found).toEqual([
      'Resources.Vpc.Properties.EnableDnsSupport: expected true or false, got string "true"',
      'Resources.Az1PublicSubnet.Properties.AvailabilityZone: Fn::GetAZs yields a list where a single value is expected',
      'Resources.NatLaunchTemplate.Properties.LaunchTemplateData.IamInstanceProfile: Ref yields a single value where an object is expected',
      'Resources.Az0NatGroup.Properties.VPCZoneIdentifier: Ref yields a single value where a list is expected',
      'Resources.Az0NatGroup.Properties.HealthCheckGracePeriod: expected an integer, got string "120"',
    ]);
  });

  it('a DependsOn on a resource that does not exist, and an undefined condition', () => {
    const t = copy();
    t.Resources.PublicDefaultRoute.DependsOn = 'GatewayAttachment';
    t.Resources.NatLaunchTemplate.Properties.LaunchTemplateData.KeyName['Fn::If'][0] = 'HasKey';
    const found = messages(validateTemplate(t));
    expect(found).toContain('Resources.PublicDefaultRoute.DependsOn: DependsOn "GatewayAttachment" is not a resource in this template');
    expect(found).toContain('Resources.NatLaunchTemplate.Properties.LaunchTemplateData.KeyName.Fn::If[0]: condition "HasKey" is not defined in Conditions');
    // HasKeyName is now unused, which CloudFormation tolerates but is a sign of the same slip.
    expect(found).toContain('Conditions.HasKeyName: condition "HasKeyName" is never used');
  });

  it('a circular dependency', () => {
    const t = copy();
    t.Resources.NatRole.DependsOn = 'Az0NatGroup';
    const found = messages(validateTemplate(t));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/circular dependency: .*NatRole.*Az0NatGroup/);
  });

  it('a parameter default that its own AllowedPattern rejects, and an unused parameter', () => {
    const t = copy();
    t.Parameters.CidrPrefix.Default = '10.0.0';
    t.Parameters.Unused = { Type: 'String' };
    const found = messages(validateTemplate(t));
    expect(found).toEqual([
      'Parameters.CidrPrefix.Default: default "10.0.0" does not match AllowedPattern',
      'Parameters.Unused: parameter "Unused" is never used',
    ]);
  });

  it('a condition function used as a value', () => {
    const t = copy();
    t.Resources.Vpc.Properties.EnableDnsHostnames = { 'Fn::Equals': ['a', 'b'] };
    expect(messages(validateTemplate(t))).toEqual([
      'Resources.Vpc.Properties.EnableDnsHostnames.Fn::Equals: Fn::Equals belongs in the Conditions section; use Fn::If with a named condition here',
    ]);
  });
});

describe('IAM policy checks catch', () => {
  const statements = (t: Tree) => t.Resources.NatRole.Properties.Policies[0].PolicyDocument.Statement as [Tree, Tree, Tree, Tree, Tree, ...Tree[]];

  it('a mutating action granted on "*"', () => {
    const t = copy();
    statements(t)[0].Action.push('ec2:ReplaceRoute');
    expect(messages(validateTemplate(t))).toEqual([
      'Resources.NatRole.Properties.Policies[0].PolicyDocument.Statement[0]: mutating action(s) ec2:ReplaceRoute granted on every resource ("*")',
    ]);
  });

  it('a tag-scoped statement that loses its Condition', () => {
    const t = copy();
    const modify = statements(t).find((s) => s.Sid === 'SourceDestCheck');
    expect(modify).toBeDefined();
    delete modify?.Condition;
    expect(messages(validateTemplate(t))).toEqual([
      expect.stringMatching(/mutating action\(s\) ec2:ModifyInstanceAttribute on wildcard ARNs without a Condition/),
    ]);
  });

  it('malformed documents: version, effect, action names, operators, resources', () => {
    const t = copy();
    const doc = t.Resources.NatRole.Properties.Policies[0].PolicyDocument;
    doc.Version = '2008-10-17';
    statements(t)[1].Effect = 'allow';
    statements(t)[1].Action[0] = 'CreateRoute';
    statements(t)[3].Condition = { StringEqual: { 'aws:ResourceTag/hanat:stack': 'x' } };
    statements(t)[4].Resource[0] = 'elastic-ip/*';
    const found = messages(validateTemplate(t)).map((m) => m.replace('Resources.NatRole.Properties.Policies[0].PolicyDocument.', ''));
    expect(found).toEqual([
      'Version: must be "2012-10-17", got "2008-10-17"',
      'Statement[1].Effect: Effect must be Allow or Deny, got "allow"',
      'Statement[1].Action: "CreateRoute" is not a "service:Action" name',
      'Statement[3].Condition.StringEqual: unknown condition operator "StringEqual"',
      'Statement[4].Resource: "elastic-ip/*" is neither "*" nor an ARN',
    ]);
  });

  it('a trust policy without a principal', () => {
    const t = copy();
    delete t.Resources.NatRole.Properties.AssumeRolePolicyDocument.Statement[0].Principal;
    expect(messages(validateTemplate(t))).toEqual([
      'Resources.NatRole.Properties.AssumeRolePolicyDocument.Statement[0]: a trust policy statement needs a Principal',
    ]);
  });

  it('knows IAM condition operators, with set qualifiers and IfExists', () => {
    expect(['StringEquals', 'ForAllValues:StringEquals', 'ForAnyValue:StringLikeIfExists', 'ArnLike', 'Null', 'Bool'].every(isConditionOperator)).toBe(true);
    expect(['StringEqual', 'NullIfExists', 'ForEach:StringEquals', 'stringequals'].some(isConditionOperator)).toBe(false);
  });
});
