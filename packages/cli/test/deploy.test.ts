import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeAccountAttributesCommand, DescribeAddressesCommand, DescribeAvailabilityZonesCommand, DescribeInstanceTypeOfferingsCommand, EC2ServiceException } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_TEMPLATE_OPTIONS, templateBody } from '../src/template/render.js';
import { MAX_POLL_RETRIES } from '../src/cfn.js';
import { inputsOf, names, retryLines, sent } from './support/calls.js';
import { awsError } from './support/fake-cloudformation.js';
import { ARM_AMI, cfnMock, ec2Mock, harness, smallTemplate, ssmMock, X86_AMI, zonesOf, type Harness } from './support/harness.js';

function ec2Error(name: string, message: string, status = 400): EC2ServiceException {
  return new EC2ServiceException({ name, message, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

const DEPLOY = ['deploy', '--name', 'demo', '--cidr-prefix', '10.20', '--region', 'eu-west-1'];

let h: Harness;
beforeEach(() => {
  h = harness();
  h.deps.templateBody = () => smallTemplate();
});
afterEach(() => {
  vi.unstubAllEnvs();
});

/** Deploys once so that the stack exists, then forgets the calls made. */
async function existingStack(...extra: string[]) {
  const r = await h.hanat(...DEPLOY, '--yes', ...extra);
  expect(r.code).toBe(0);
  cfnMock.resetHistory();
  ec2Mock.resetHistory();
  ssmMock.resetHistory();
}

describe('hanat deploy: create', () => {
  it('creates the stack through a change set and prints its outputs', async () => {
    const r = await h.hanat(...DEPLOY, '--yes');

    expect(r.code).toBe(0);
    expect(r.stdout).toBe('OUTPUT     VALUE\nNatGroupA  value-of-NatGroupA\nVpcId      value-of-VpcId\n');
    expect(r.stderr).toContain('NAT image ami-0a1b2c3d4e5f60718 (hanat-0.1.0-arm64), arm64, from /hanat/ami/arm64');
    expect(r.stderr).toContain('Changes to stack demo (CREATE): 4 to add, 0 to modify, 0 to remove');
    expect(r.stderr).toMatch(/\+ Add +AWS::EC2::VPC +Vpc/);
    expect(r.stderr).toMatch(/CREATE_COMPLETE +AWS::AutoScaling::AutoScalingGroup +NatGroupA/);
    expect(r.stderr).toMatch(/CREATE_COMPLETE +AWS::CloudFormation::Stack +demo/);

    expect(sent(ssmMock)).toEqual([['GetParameter', { Name: '/hanat/ami/arm64' }]]);
    expect(sent(ec2Mock)).toEqual([
      ['DescribeImages', { ImageIds: [ARM_AMI] }],
      ['DescribeAvailabilityZones', { Filters: [{ Name: 'zone-type', Values: ['availability-zone'] }] }],
      [
        'DescribeInstanceTypeOfferings',
        {
          LocationType: 'availability-zone',
          Filters: [
            { Name: 'location', Values: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'] },
            { Name: 'instance-type', Values: ['t4g.nano'] },
          ],
          MaxResults: 1000,
        },
      ],
      ['DescribeAccountAttributes', {}],
      ['DescribeAddresses', {}],
    ]);
    expect(r.stderr).toContain('Availability Zones eu-west-1a, eu-west-1b, eu-west-1c (the first 3 of eu-west-1) all offer t4g.nano');
    const calls = names(cfnMock);
    expect(calls.slice(0, 6)).toEqual(['DescribeStacks', 'CreateChangeSet', 'DescribeChangeSet', 'DescribeChangeSet', 'DescribeStackEvents', 'ExecuteChangeSet']);
    expect(new Set(calls.slice(6))).toEqual(new Set(['DescribeStackEvents', 'DescribeStacks']));

    const [create] = inputsOf(cfnMock, 'CreateChangeSet');
    expect(create).toEqual({
      StackName: 'demo',
      ChangeSetName: 'hanat-20260115T120000Z',
      ChangeSetType: 'CREATE',
      TemplateBody: smallTemplate(),
      Parameters: [
        { ParameterKey: 'VpcName', ParameterValue: 'demo' },
        { ParameterKey: 'CidrPrefix', ParameterValue: '10.20' },
        { ParameterKey: 'KeyName', ParameterValue: '' },
        { ParameterKey: 'NatAmi', ParameterValue: ARM_AMI },
        { ParameterKey: 'InstanceType', ParameterValue: 't4g.nano' },
        { ParameterKey: 'AvailabilityZones', ParameterValue: 'eu-west-1a,eu-west-1b,eu-west-1c' },
      ],
      Capabilities: ['CAPABILITY_IAM'],
      Tags: [{ Key: 'hanat:stack', Value: 'demo' }],
      Description: 'hanat deploy of demo',
    });
    const csId = h.cfn.stack('demo')!.id;
    expect(inputsOf(cfnMock, 'ExecuteChangeSet')[0]!.ChangeSetName).toMatch(/^arn:aws:cloudformation:eu-west-1:123456789012:changeSet\/hanat-20260115T120000Z\//);
    // Polling reads the stack by its id, not its name, so a new stack of the same name cannot confuse it.
    expect(inputsOf(cfnMock, 'DescribeStacks').slice(1).every((i) => i.StackName === csId)).toBe(true);
    expect(h.cfn.stack('demo')!.status).toBe('CREATE_COMPLETE');
  });

  it('waits between polls on the injected clock, never on wall time', async () => {
    const before = h.clock.now();
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(0);
    expect(h.clock.sleeps.length).toBeGreaterThan(2);
    expect(h.clock.sleeps.every((ms) => ms === 2_000)).toBe(true);
    expect(h.clock.now() - before).toBe(2_000 * h.clock.sleeps.length);
  });

  it('checks the key pair and passes it as KeyName', async () => {
    const r = await h.hanat(...DEPLOY, '--yes', '--key', 'ops-key');
    expect(r.code).toBe(0);
    expect(sent(ec2Mock)[0]).toEqual(['DescribeKeyPairs', { KeyNames: ['ops-key'] }]);
    expect(inputsOf(cfnMock, 'CreateChangeSet')[0]!.Parameters).toContainEqual({ ParameterKey: 'KeyName', ParameterValue: 'ops-key' });
  });

  it('reads /hanat/ami/x86_64 for an x86 instance type and launches that image', async () => {
    const r = await h.hanat(...DEPLOY, '--yes', '--instance-type', 't3.micro');
    expect(r.code).toBe(0);
    expect(sent(ssmMock)).toEqual([['GetParameter', { Name: '/hanat/ami/x86_64' }]]);
    const params = inputsOf(cfnMock, 'CreateChangeSet')[0]!.Parameters;
    expect(params).toContainEqual({ ParameterKey: 'NatAmi', ParameterValue: X86_AMI });
    expect(params).toContainEqual({ ParameterKey: 'InstanceType', ParameterValue: 't3.micro' });
  });

  it('resolves an SSM parameter given with --ami to the concrete image id', async () => {
    h.parameters.set('/team/nat-image', ARM_AMI);
    const r = await h.hanat(...DEPLOY, '--yes', '--ami', 'resolve:ssm:/team/nat-image');
    expect(r.code).toBe(0);
    expect(sent(ssmMock)).toEqual([['GetParameter', { Name: '/team/nat-image' }]]);
    expect(inputsOf(cfnMock, 'CreateChangeSet')[0]!.Parameters).toContainEqual({ ParameterKey: 'NatAmi', ParameterValue: ARM_AMI });
  });

  it('uses the given AMI id without asking SSM', async () => {
    const r = await h.hanat(...DEPLOY, '--yes', '--ami', ARM_AMI);
    expect(r.code).toBe(0);
    expect(sent(ssmMock)).toEqual([]);
    expect(r.stderr).toContain(`NAT image ${ARM_AMI} (hanat-0.1.0-arm64), arm64, from --ami`);
  });

  it('deploys the rendered template, with the AZ count and EIP choice, and the IAM capability it needs', async () => {
    delete h.deps.templateBody;
    const r = await h.hanat(...DEPLOY, '--yes', '--azs', '2', '--no-eip');
    expect(r.code).toBe(0);
    const [create] = inputsOf(cfnMock, 'CreateChangeSet');
    expect(create!.TemplateBody).toBe(templateBody({ azs: 2, eip: false }));
    expect(create!.Capabilities).toContain('CAPABILITY_IAM');
    // The fake refuses parameters the template does not declare, so this also proves the contract holds.
    expect(r.stdout).toMatch(/^OUTPUT +VALUE\n/);
    expect(r.stdout).toContain('VpcId');
  });

  it('takes the region from AWS_REGION when --region is not given', async () => {
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    const r = await h.hanat('deploy', '--name', 'demo', '--cidr-prefix', '10.20', '--yes');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('for stack demo in eu-west-1');
  });

  it('takes the region from AWS_DEFAULT_REGION as the AWS CLI does', async () => {
    h.deps.env = { AWS_DEFAULT_REGION: 'eu-west-1' };
    const r = await h.hanat('deploy', '--name', 'demo', '--cidr-prefix', '10.20', '--yes');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('for stack demo in eu-west-1');
  });
});

describe('hanat deploy: an image pinned to an SSM parameter version', () => {
  it('reads that version of the parameter and deploys the image it held', async () => {
    h.parameters.set('/hanat/ami/arm64:3', ARM_AMI);
    h.parameters.delete('/hanat/ami/arm64');
    const r = await h.hanat(...DEPLOY, '--ami', 'resolve:ssm:/hanat/ami/arm64:3', '--yes');

    expect(r.code, r.stderr).toBe(0);
    expect(sent(ssmMock)).toEqual([['GetParameter', { Name: '/hanat/ami/arm64:3' }]]);
    expect(r.stderr).toContain(`NAT image ${ARM_AMI} (hanat-0.1.0-arm64), arm64, from /hanat/ami/arm64:3`);
    expect(inputsOf(cfnMock, 'CreateChangeSet')[0]?.Parameters).toContainEqual({ ParameterKey: 'NatAmi', ParameterValue: ARM_AMI });
  });
});

describe('hanat deploy: update and no changes', () => {
  it('updates an existing stack and shows what changes', async () => {
    await existingStack();
    h.cfn.replacements.add('Vpc');
    const r = await h.hanat(...DEPLOY, '--yes', '--cidr-prefix', '10.30');

    expect(r.code).toBe(0);
    expect(inputsOf(cfnMock, 'CreateChangeSet')[0]!.ChangeSetType).toBe('UPDATE');
    expect(r.stderr).toContain('Changes to stack demo (UPDATE): 0 to add, 1 to modify, 0 to remove, 1 replaced');
    expect(r.stderr).toMatch(/~ Modify +AWS::EC2::VPC +Vpc {2}replacement: yes/);
    expect(r.stderr).toMatch(/UPDATE_COMPLETE +AWS::CloudFormation::Stack +demo/);
    expect(h.cfn.stack('demo')!.parameters.CidrPrefix).toBe('10.30');
  });

  it('streams only the events of this operation, each once', async () => {
    await existingStack();
    const r = await h.hanat(...DEPLOY, '--yes', '--instance-type', 't4g.micro');
    expect(r.code).toBe(0);
    const eventLines = r.stderr.split('\n').filter((l) => /^\d\d:\d\d:\d\d {2}/.test(l));
    // The create's events are older than the marker and must not be shown again.
    expect(eventLines.some((l) => l.includes('CREATE_'))).toBe(false);
    expect(eventLines).toEqual([...new Set(eventLines)]);
    expect(eventLines.map((l) => l.replace(/^\S+\s+/, '').replace(/\s+/g, ' ').trim())).toEqual([
      'UPDATE_IN_PROGRESS AWS::CloudFormation::Stack demo User Initiated',
      'UPDATE_IN_PROGRESS AWS::EC2::LaunchTemplate NatLaunchTemplate',
      'UPDATE_COMPLETE AWS::EC2::LaunchTemplate NatLaunchTemplate',
      'UPDATE_COMPLETE_CLEANUP_IN_PROGRESS AWS::CloudFormation::Stack demo',
      'UPDATE_COMPLETE AWS::CloudFormation::Stack demo',
    ]);
  });

  it('treats "no changes" as success, deletes the empty change set and prints the outputs', async () => {
    await existingStack();
    const r = await h.hanat(...DEPLOY, '--yes');

    expect(r.code).toBe(0);
    expect(r.stderr).toContain('No changes: stack demo is up to date.');
    expect(r.stdout).toBe('OUTPUT     VALUE\nNatGroupA  value-of-NatGroupA\nVpcId      value-of-VpcId\n');
    expect(names(cfnMock)).toEqual(['DescribeStacks', 'CreateChangeSet', 'DescribeChangeSet', 'DescribeChangeSet', 'DeleteChangeSet']);
    expect(h.cfn.changeSets.size).toBe(0);
  });

  it('reports "no changes" as JSON too', async () => {
    await existingStack();
    const r = await h.hanat(...DEPLOY, '--yes', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'no-changes', status: 'CREATE_COMPLETE', changes: [], outputs: { VpcId: 'value-of-VpcId' } });
  });

  it('creates again on a stack whose change sets were never executed (REVIEW_IN_PROGRESS), tagged or not', async () => {
    h.cfn.seedStack({ name: 'demo', status: 'REVIEW_IN_PROGRESS', tags: [] });
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(0);
    expect(inputsOf(cfnMock, 'CreateChangeSet')[0]!.ChangeSetType).toBe('CREATE');
  });
});

/** A stack made from hanat's checked-in template in the console: no hanat:stack tag, the console's parameters. */
function consoleStack(name = 'demo', body = templateBody(DEFAULT_TEMPLATE_OPTIONS)) {
  return h.cfn.seedStack({
    name,
    status: 'CREATE_COMPLETE',
    tags: [],
    templateBody: body,
    template: JSON.parse(body) as object,
    parameters: { VpcName: 'hanat', CidrPrefix: '10.20', KeyName: '', NatAmi: 'resolve:ssm:/hanat/ami/arm64', InstanceType: 't4g.nano' },
  });
}

const NOT_HANAT = 'error: Stack demo in eu-west-1 exists but was not created by hanat (it has no hanat:stack tag); hanat will not overwrite it. Choose another --name.';

describe("hanat deploy: a stack made from hanat's template outside hanat", () => {
  beforeEach(() => {
    delete h.deps.templateBody;
  });

  it('recognises it by Metadata.hanat, updates it through an UPDATE change set that adds the hanat:stack tag, and says so once', async () => {
    const id = consoleStack().id;
    const r = await h.hanat(...DEPLOY, '--yes');

    expect(r.code).toBe(0);
    expect(names(cfnMock).slice(0, 3)).toEqual(['DescribeStacks', 'GetTemplate', 'CreateChangeSet']);
    expect(inputsOf(cfnMock, 'GetTemplate')).toEqual([{ StackName: id, TemplateStage: 'Original' }]);
    const [create] = inputsOf(cfnMock, 'CreateChangeSet');
    expect(create).toMatchObject({ StackName: 'demo', ChangeSetType: 'UPDATE', Tags: [{ Key: 'hanat:stack', Value: 'demo' }] });
    const notice =
      "Stack demo in eu-west-1 was made from hanat's template outside hanat (its template carries Metadata.hanat, the stack has no hanat:stack tag). " +
      'It is now managed by hanat deploy: this update gives it the hanat:stack tag.';
    expect(r.stderr.split('\n').filter((l) => l.includes('outside hanat'))).toEqual([notice]);
    expect(r.stderr).toMatch(/UPDATE_COMPLETE +AWS::CloudFormation::Stack +demo/);
    expect(h.cfn.stack('demo')!.tags).toEqual([{ Key: 'hanat:stack', Value: 'demo' }]);

    // From now on it is an ordinary hanat stack: the tag is enough, the template is not read.
    cfnMock.resetHistory();
    const again = await h.hanat(...DEPLOY, '--yes');
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('No changes: stack demo is up to date.');
    expect(again.stderr).not.toContain('outside hanat');
    expect(names(cfnMock)).not.toContain('GetTemplate');
  });

  it('--dry-run says the tag comes with a real deploy, and leaves the stack untagged', async () => {
    consoleStack();
    const r = await h.hanat(...DEPLOY, '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Deploying it without --dry-run gives it the hanat:stack tag; from then on hanat deploy manages it.');
    expect(inputsOf(cfnMock, 'CreateChangeSet')[0]!.ChangeSetType).toBe('UPDATE');
    expect(names(cfnMock)).not.toContain('ExecuteChangeSet');
    expect(h.cfn.stack('demo')!.tags).toEqual([]);
  });

  it('still refuses a stack with neither the tag nor Metadata.hanat, with the same message, before any change', async () => {
    h.cfn.seedStack({ name: 'demo', status: 'CREATE_COMPLETE', tags: [{ Key: 'owner', Value: 'payments-team' }], template: JSON.parse(smallTemplate()) as object });
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error: '))).toEqual([NOT_HANAT]);
    expect(names(cfnMock)).toEqual(['DescribeStacks', 'GetTemplate']);
  });

  it('refuses a YAML template even when it carries Metadata.hanat: only JSON is hanat\'s', async () => {
    const yaml = "AWSTemplateFormatVersion: '2010-09-09'\nMetadata:\n  hanat:\n    azs: 3\n    eip: true\nResources: {}\n";
    h.cfn.seedStack({ name: 'demo', status: 'CREATE_COMPLETE', tags: [], templateBody: yaml });
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error: '))).toEqual([NOT_HANAT]);
    expect(names(cfnMock)).not.toContain('CreateChangeSet');
  });

  it('refuses with today\'s message, plus that the template could not be read, when GetTemplate is denied', async () => {
    consoleStack();
    h.cfn.deny('GetTemplate');
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error: '))).toEqual([
      `${NOT_HANAT} hanat could not check whether the stack was made from hanat's template outside hanat: AWS denied cloudformation:GetTemplate. ` +
        'Allow cloudformation:GetTemplate to let hanat deploy update such a stack.',
    ]);
    expect(names(cfnMock)).toEqual(['DescribeStacks', 'GetTemplate']);
    expect(h.cfn.stack('demo')!.tags).toEqual([]);
  });
});

describe('hanat deploy: failures', () => {
  it('prints the failed resource and its reason when a create rolls back, and exits 1', async () => {
    h.cfn.failResource('NatLaunchTemplate', 'The image id [ami-0a1b2c3d4e5f60718] is not supported for the instance type');
    const r = await h.hanat(...DEPLOY, '--yes');

    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      'error: Deploy of stack demo failed: ROLLBACK_COMPLETE.\n' +
        'Failed resources:\n' +
        '  NatLaunchTemplate (AWS::EC2::LaunchTemplate) CREATE_FAILED: The image id [ami-0a1b2c3d4e5f60718] is not supported for the instance type\n' +
        'The stack rolled back and cannot be updated. Fix the cause above, delete it with "hanat destroy --name demo --region eu-west-1", then deploy again.\n',
    );
    // NatGroupA was merely cancelled: streamed as progress, but not blamed.
    expect(r.stderr).toMatch(/CREATE_FAILED +AWS::AutoScaling::AutoScalingGroup +NatGroupA {2}Resource creation cancelled/);
    expect(r.stderr).not.toContain('  NatGroupA (AWS::AutoScaling::AutoScalingGroup) CREATE_FAILED');
  });

  it('prints the failed resource when an update rolls back, and says the old stack keeps serving', async () => {
    await existingStack();
    h.cfn.failResource('NatLaunchTemplate', 'Rate exceeded on CreateLaunchTemplateVersion');
    const r = await h.hanat(...DEPLOY, '--yes', '--instance-type', 't4g.micro');

    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error: Deploy of stack demo failed: UPDATE_ROLLBACK_COMPLETE.\n' +
        'Failed resources:\n' +
        '  NatLaunchTemplate (AWS::EC2::LaunchTemplate) UPDATE_FAILED: Rate exceeded on CreateLaunchTemplateVersion\n' +
        'The stack was rolled back to its previous configuration and keeps serving. Fix the cause above and run hanat deploy again.\n',
    );
    expect(h.cfn.stack('demo')!.parameters.InstanceType).toBe('t4g.nano');
  });

  it('refuses an arm64 image on a t3 before the stack is touched', async () => {
    const r = await h.hanat(...DEPLOY, '--yes', '--instance-type', 't3.micro', '--ami', ARM_AMI);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: AMI ${ARM_AMI} is built for arm64, but --instance-type t3.micro runs x86_64. Use an instance type that runs arm64 (Graviton families`);
    expect(names(cfnMock)).toEqual([]);
  });

  it('says how to build the image when /hanat/ami/<arch> does not exist', async () => {
    h.parameters.delete('/hanat/ami/x86_64');
    const r = await h.hanat(...DEPLOY, '--yes', '--instance-type', 'c7i.large');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: No hanat NAT image for x86_64 in eu-west-1: the SSM parameter /hanat/ami/x86_64 does not exist. ' +
        'Build and publish the NAT image with: scripts/build-ami --arch x86_64 --region eu-west-1 (README "Build the NAT image"), or pass --ami <ami-id>.\n',
    );
    expect(names(cfnMock)).toEqual([]);
  });

  it('reports a change set CloudFormation fails, deletes it and the empty stack, and exits 1', async () => {
    h.cfn.failNextChangeSet('Template error: instance of Fn::GetAtt references undefined resource NatEip');
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: CloudFormation could not create the change set for demo: Template error: instance of Fn::GetAtt references undefined resource NatEip\n');
    expect(names(cfnMock)).toEqual(['DescribeStacks', 'CreateChangeSet', 'DescribeChangeSet', 'DescribeChangeSet', 'DeleteChangeSet', 'DeleteStack']);
  });

  it('turns an AWS refusal of CreateChangeSet into exit 1 with AWS\'s words', async () => {
    h.deps.templateBody = () => smallTemplate().replace('"VpcName"', '"Name"');
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr.endsWith('\nerror: CreateChangeSet failed: ValidationError: Parameters: [VpcName] do not exist in the template\n')).toBe(true);
  });
});

describe('hanat deploy: the instance type is offered in every AZ the template uses', () => {
  const US_EAST_1 = ['deploy', '--name', 'demo', '--cidr-prefix', '10.20', '--region', 'us-east-1', '--yes'];
  /** us-east-1 as it is: six AZs, and us-east-1e offers no Graviton type. */
  function usEast1() {
    h.zones = zonesOf('us-east-1', 6);
    h.offered = (type, az) => !(az === 'us-east-1e' && /^(t4g|m7g|c7g)\./.test(type));
  }
  /** The one `error:` line; the progress lines before it are not what these tests are about. */
  const errorLine = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('error: '));
  const offeringsAsked = () => inputsOf(ec2Mock, 'DescribeInstanceTypeOfferings').map((i) => (i.Filters as { Name: string; Values: string[] }[]).find((f) => f.Name === 'location')!.Values);

  const azsParam = () => inputsOf(cfnMock, 'CreateChangeSet').map((i) => (i.Parameters as { ParameterKey: string; ParameterValue: string }[]).find((p) => p.ParameterKey === 'AvailabilityZones')?.ParameterValue);

  it('gives a new stack the first N AZs in alphabetical order, whatever order EC2 lists them in, as the AvailabilityZones parameter', async () => {
    h.zones = ['eu-west-1c', 'eu-west-1a', 'eu-west-1b'];
    const r = await h.hanat(...DEPLOY, '--yes', '--azs', '2');
    expect(r.code).toBe(0);
    expect(offeringsAsked()).toEqual([['eu-west-1a', 'eu-west-1b']]);
    expect(r.stderr).toContain('Availability Zones eu-west-1a, eu-west-1b (the first 2 of eu-west-1) all offer t4g.nano');
    expect(azsParam()).toEqual(['eu-west-1a,eu-west-1b']);
  });

  it('needs no default subnet: an account whose default VPC was deleted gets the region\'s AZs', async () => {
    h.zones = zonesOf('eu-west-1', 4);
    h.defaultSubnets = [];
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(0);
    expect(azsParam()).toEqual(['eu-west-1a,eu-west-1b,eu-west-1c']);
    expect(names(ec2Mock)).not.toContain('DescribeSubnets');
  });

  it('keeps an existing stack\'s AZs, in its order, after the region\'s AZ list changed, and adds only new ones when --azs grows', async () => {
    await existingStack();
    expect(h.cfn.stack('demo')!.parameters.AvailabilityZones).toBe('eu-west-1a,eu-west-1b,eu-west-1c');
    // AWS added eu-west-1d, and the account's default subnets changed: Fn::GetAZs would now
    // give eu-west-1b, eu-west-1c, eu-west-1d, and move every AZ of a stack built on it.
    h.zones = zonesOf('eu-west-1', 4);
    h.defaultSubnets = ['eu-west-1b', 'eu-west-1c', 'eu-west-1d'];
    const same = await h.hanat(...DEPLOY, '--yes', '--instance-type', 't4g.micro');
    expect(same.code).toBe(0);
    expect(same.stderr).toContain("Availability Zones eu-west-1a, eu-west-1b, eu-west-1c (the stack's own) all offer t4g.micro");
    expect(azsParam()).toEqual(['eu-west-1a,eu-west-1b,eu-west-1c']);
    expect(names(ec2Mock)).not.toContain('DescribeAvailabilityZones');
    cfnMock.resetHistory();
    const grown = await h.hanat(...DEPLOY, '--yes', '--azs', '4');
    expect(grown.code).toBe(0);
    expect(grown.stderr).toContain("Availability Zones eu-west-1a, eu-west-1b, eu-west-1c, eu-west-1d (the stack's eu-west-1a, eu-west-1b, eu-west-1c, and eu-west-1d added)");
    expect(azsParam()).toEqual(['eu-west-1a,eu-west-1b,eu-west-1c,eu-west-1d']);
    cfnMock.resetHistory();
    const shrunk = await h.hanat(...DEPLOY, '--yes', '--azs', '2');
    expect(shrunk.code).toBe(0);
    expect(shrunk.stderr).toContain('warning: --azs 2 removes Availability Zones eu-west-1c, eu-west-1d from stack demo: its subnets, private route table and NAT are deleted.');
    expect(azsParam()).toEqual(['eu-west-1a,eu-west-1b']);
  });

  it("keeps the AZs of a stack made by an earlier hanat from Fn::GetAZs, read from its Az<i>Name outputs", async () => {
    h.cfn.seedStack({
      name: 'demo',
      status: 'UPDATE_COMPLETE',
      outputs: { Az1Name: 'eu-west-1c', Az0Name: 'eu-west-1b', VpcId: 'vpc-0123456789abcdef0' },
    });
    const r = await h.hanat(...DEPLOY, '--yes', '--azs', '2');
    expect(r.code).toBe(0);
    expect(azsParam()).toEqual(['eu-west-1b,eu-west-1c']);
  });

  it('refuses --azs 6 in us-east-1 with the default t4g.nano before the stack is touched, naming us-east-1e and x86_64 types offered in all six', async () => {
    usEast1();
    const r = await h.hanat(...US_EAST_1, '--azs', '6');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(errorLine(r.stderr)).toEqual([
      'error: --instance-type t4g.nano is not offered in us-east-1e, among the 6 Availability Zones of us-east-1 ' +
        '(us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1e, us-east-1f) that --azs 6 puts NATs in; the NAT there could not launch and the stack would roll back. ' +
        'Pass --azs 4 or fewer, or an x86_64 instance type offered in all 6, e.g. t3.nano, t3a.nano, t2.nano, t3.micro ' +
        '(no arm64 type is; an x86_64 type needs an x86_64 image, and leaving out --ami picks /hanat/ami/x86_64).',
    ]);
    expect(names(cfnMock)).toEqual(['DescribeStacks']);
    // The second listing, for the suggestions, is of every type in the six AZs.
    expect(offeringsAsked()).toEqual([zonesOf('us-east-1', 6), zonesOf('us-east-1', 6)]);
  });

  it('passes --azs 6 in us-east-1 with an x86_64 type, and --azs 4 with the default', async () => {
    usEast1();
    h.eipQuota = 6;
    const x86 = await h.hanat(...US_EAST_1, '--azs', '6', '--instance-type', 't3.nano', '--ami', X86_AMI);
    expect(x86.code).toBe(0);
    expect(x86.stderr).toContain('(the first 6 of us-east-1) all offer t3.nano');
    const four = await h.hanat('deploy', '--name', 'other', '--cidr-prefix', '10.21', '--region', 'us-east-1', '--yes', '--azs', '4');
    expect(four.code).toBe(0);
  });

  it('suggests same-architecture types offered in all the AZs, cheapest-looking first', async () => {
    h.offered = (type, az) => !(az === 'eu-west-1c' && type === 't4g.nano');
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: --instance-type t4g.nano is not offered in eu-west-1c, among the 3 Availability Zones of eu-west-1 (eu-west-1a, eu-west-1b, eu-west-1c)');
    expect(r.stderr).toContain('. Pass --azs 2 or fewer, or an instance type offered in all 3, e.g. t4g.micro, t4g.small, m7g.medium, c7g.large.\n');
  });

  it('names every AZ that lacks the type, and does not suggest fewer AZs than hanat needs', async () => {
    h.offered = (type, az) => !(az !== 'eu-west-1a' && type === 'm7i.large');
    const r = await h.hanat(...DEPLOY, '--yes', '--instance-type', 'm7i.large');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not offered in eu-west-1b and eu-west-1c, among the 3 Availability Zones');
    expect(r.stderr).toContain('the NATs there could not launch and the stack would roll back. Pass an instance type offered in all 3, e.g. t3.nano, t3a.nano, t2.nano, t3.micro.\n');
  });

  it('refuses more AZs than the region has', async () => {
    const r = await h.hanat(...DEPLOY, '--yes', '--azs', '4');
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr)).toEqual(['error: --azs 4: eu-west-1 has only 3 Availability Zones (eu-west-1a, eu-west-1b, eu-west-1c). Pass --azs 3 or fewer.']);
    expect(names(cfnMock)).toEqual(['DescribeStacks']);
    expect(names(ec2Mock)).not.toContain('DescribeInstanceTypeOfferings');
  });

  it('refuses a region with fewer than two AZs the account can use', async () => {
    h.zones = ['eu-west-1a'];
    const r = await h.hanat(...DEPLOY, '--yes', '--azs', '2');
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr)).toEqual(['error: --azs 2: eu-west-1 has only 1 Availability Zone (eu-west-1a). hanat needs at least 2. Deploy to another region.']);
  });

  it('warns that the type check was skipped, and deploys, when DescribeInstanceTypeOfferings is denied', async () => {
    ec2Mock.on(DescribeInstanceTypeOfferingsCommand).rejects(ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.'));
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'warning: Did not check that t4g.nano is offered in each of the 3 Availability Zones the stack will use: AWS denied DescribeInstanceTypeOfferings (You are not authorized to perform this operation.). ' +
        'Allow ec2:DescribeAvailabilityZones, ec2:DescribeInstanceTypeOfferings to have it checked; an AZ that does not offer the type makes the stack roll back.\n',
    );
    expect(names(cfnMock)).toContain('ExecuteChangeSet');
    expect(h.cfn.stack('demo')!.status).toBe('CREATE_COMPLETE');
  });

  it('stops (exit 1) when DescribeAvailabilityZones is denied for a new stack, as it needs the list to choose the AZs, but keeps an existing stack\'s without it', async () => {
    await existingStack();
    ec2Mock.on(DescribeAvailabilityZonesCommand).rejects(ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.'));
    const kept = await h.hanat(...DEPLOY, '--yes', '--instance-type', 't4g.micro');
    expect(kept.code).toBe(0);
    const fresh = await h.hanat('deploy', '--name', 'fresh', '--cidr-prefix', '10.30', '--region', 'eu-west-1', '--yes');
    expect(fresh.code).toBe(1);
    expect(errorLine(fresh.stderr)).toEqual([
      "error: AWS denied DescribeAvailabilityZones (You are not authorized to perform this operation.). hanat deploy lists the region's Availability Zones to choose the stack's; allow ec2:DescribeAvailabilityZones.",
    ]);
    expect(h.cfn.stack('fresh')).toBeUndefined();
  });

  it('stops with exit 1 when the check fails for another reason than permission', async () => {
    ec2Mock.on(DescribeInstanceTypeOfferingsCommand).rejects(ec2Error('InternalError', 'An internal error has occurred', 500));
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(1);
    expect(errorLine(r.stderr)).toEqual(['error: DescribeInstanceTypeOfferings failed: InternalError: An internal error has occurred']);
    expect(names(cfnMock)).toEqual(['DescribeStacks']);
  });
});

describe('hanat deploy: the Elastic IP quota', () => {
  const errorLine = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('error: '));
  const eip = (n: number, stack: string | undefined, instance?: string) => ({
    AllocationId: `eipalloc-0000000000000000${n}`,
    PublicIp: `198.51.100.${n}`,
    ...(instance ? { InstanceId: instance } : {}),
    Tags: stack ? [{ Key: 'hanat:stack', Value: stack }] : [],
  });

  it('refuses --azs 6 against the default quota of 5 before the stack is touched, naming the quota and --no-eip', async () => {
    h.zones = zonesOf('eu-west-1', 6);
    const r = await h.hanat(...DEPLOY, '--yes', '--azs', '6');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(errorLine(r.stderr)).toEqual([
      'error: Not enough Elastic IPs in eu-west-1: the stack needs one per AZ, 6 new addresses for demo, but the account has 0 of its quota of 5 in use, so only 5 are left. ' +
        'Ask for a higher quota (Service Quotas: Amazon EC2 "EC2-VPC Elastic IPs" (L-0263D0A3), in eu-west-1), release addresses you no longer use (aws ec2 release-address --region eu-west-1), ' +
        'or pass --no-eip (each NAT then leaves through its own public IP, which changes when the NAT is replaced).',
    ]);
    expect(names(cfnMock)).not.toContain('CreateChangeSet');
    expect(h.cfn.stack('demo')).toBeUndefined();
  });

  it('refuses a second 3-AZ stack when another stack holds 3 of the 5, and says which addresses are in use', async () => {
    h.addresses.push(eip(1, 'prod', 'i-0123456789abcdef0'), eip(2, 'prod'), eip(3, undefined));
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr)[0]).toContain(
      'the stack needs one per AZ, 3 new addresses for demo, but the account has 3 of its quota of 5 in use, so only 2 are left: ' +
        '198.51.100.1 (stack prod, on i-0123456789abcdef0), 198.51.100.2 (stack prod, not associated), 198.51.100.3 (not associated). Ask for a higher quota',
    );
    expect(names(cfnMock)).not.toContain('CreateChangeSet');
  });

  it('deploys within the quota, and with a raised quota', async () => {
    h.addresses.push(eip(1, 'prod'), eip(2, 'prod'));
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Elastic IPs: 3 new, 2 of the quota of 5 in use in eu-west-1');
    h.zones = zonesOf('eu-west-1', 6);
    h.eipQuota = 8;
    const six = await h.hanat('deploy', '--name', 'six', '--cidr-prefix', '10.30', '--region', 'eu-west-1', '--yes', '--azs', '6');
    expect(six.code).toBe(0);
  });

  it('needs no new address for --no-eip, and does not ask', async () => {
    h.eipQuota = 0;
    const r = await h.hanat(...DEPLOY, '--yes', '--no-eip');
    expect(r.code).toBe(0);
    expect(names(ec2Mock)).not.toContain('DescribeAccountAttributes');
  });

  it('counts the addresses an existing stack keeps: an update of a full region goes on, one more AZ needs one more', async () => {
    h.addresses.push(eip(1, 'demo'), eip(2, 'demo'), eip(3, 'demo'), eip(4, 'prod'), eip(5, 'prod'));
    await existingStack();
    const same = await h.hanat(...DEPLOY, '--yes', '--instance-type', 't4g.micro');
    expect(same.code).toBe(0);
    h.zones = zonesOf('eu-west-1', 4);
    const more = await h.hanat(...DEPLOY, '--yes', '--azs', '4');
    expect(more.code).toBe(2);
    expect(errorLine(more.stderr)[0]).toContain('1 new address for demo (it holds 3 already), but the account has 5 of its quota of 5 in use: ');
  });

  it.each(['DescribeAccountAttributes', 'DescribeAddresses'] as const)('warns that the check was skipped, and deploys, when %s is denied', async (action) => {
    const command = { DescribeAccountAttributes: DescribeAccountAttributesCommand, DescribeAddresses: DescribeAddressesCommand }[action];
    ec2Mock.on(command).rejects(ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.'));
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `warning: Did not check the Elastic IP quota: AWS denied ${action} (You are not authorized to perform this operation.). Allow ec2:DescribeAccountAttributes, ec2:DescribeAddresses to have it checked; ` +
        'a stack that runs over the quota rolls back with AddressLimitExceeded.\n',
    );
  });
});

describe('hanat deploy: --tag', () => {
  const stackTags = () => inputsOf(cfnMock, 'CreateChangeSet').map((i) => (i as { Tags?: unknown }).Tags);

  it('gives the stack its tags besides hanat:stack', async () => {
    const r = await h.hanat(...DEPLOY, '--yes', '--tag', 'team=network', '--tag', 'CostCenter=42');
    expect(r.code).toBe(0);
    expect(stackTags()).toEqual([
      [
        { Key: 'hanat:stack', Value: 'demo' },
        { Key: 'team', Value: 'network' },
        { Key: 'CostCenter', Value: '42' },
      ],
    ]);
  });

  it('refuses a key with a space before any AWS call, naming the key and the rule', async () => {
    const r = await h.hanat(...DEPLOY, '--yes', '--tag', 'Cost Center=42');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: --tag "Cost Center=42": the key "Cost Center" has a space; the NATs read their tags from instance metadata');
    expect([...names(cfnMock), ...names(ec2Mock), ...names(ssmMock)]).toEqual([]);
  });

  it("warns that an existing stack's tag stops its NATs from launching, and that the update removes it", async () => {
    h.cfn.seedStack({ name: 'demo', status: 'CREATE_COMPLETE', tags: [{ Key: 'hanat:stack', Value: 'demo' }, { Key: 'Cost Center', Value: '42' }] });
    const r = await h.hanat(...DEPLOY, '--yes', '--tag', 'CostCenter=42');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: Stack demo carries the tag "Cost Center", which its NATs cannot launch with: the key "Cost Center" has a space;');
    expect(r.stderr).toContain('While the stack has it, no NAT can launch or be replaced. This deploy removes it (it is not among --tag).');
    expect(stackTags()).toEqual([
      [
        { Key: 'hanat:stack', Value: 'demo' },
        { Key: 'CostCenter', Value: '42' },
      ],
    ]);
  });

  it('says which stack tags an update without them removes, and how to keep them', async () => {
    await existingStack('--tag', 'team=network', '--tag', 'env=prod');
    const r = await h.hanat(...DEPLOY, '--yes', '--tag', 'env=prod');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning: This deploy removes the stack tag team=network (deploy is declarative: the stack gets hanat:stack and the --tag given). To keep it, pass --tag team=network.');
    const same = await h.hanat(...DEPLOY, '--yes', '--tag', 'env=prod');
    expect(same.stderr).not.toContain('removes the stack tag');
  });
});

describe('hanat deploy: polling survives throttling', () => {
  it('retries throttled polls with growing delays and still succeeds', async () => {
    h.cfn.throttle('DescribeChangeSet', 2);
    h.cfn.throttle('DescribeStackEvents', 3);
    const r = await h.hanat(...DEPLOY, '--yes');

    expect(r.code).toBe(0);
    expect(h.cfn.stack('demo')!.status).toBe('CREATE_COMPLETE');
    // Backoff: the third retry waits longer than a plain poll interval could.
    expect(Math.max(...h.clock.sleeps)).toBeGreaterThan(2_000);
    // Each retry says so on stderr: the attempt, the wait, and the time left before hanat gives up.
    const { retries } = retryLines(r.stderr);
    expect(retries.map((l) => l.replace(/: attempt (\d+) of 10 failed.*/, ' #$1'))).toEqual([
      'warning: AWS is throttling or failing DescribeChangeSet (Throttling) #1',
      'warning: AWS is throttling or failing DescribeChangeSet (Throttling) #2',
      'warning: AWS is throttling or failing DescribeStackEvents (Throttling) #1',
      'warning: AWS is throttling or failing DescribeStackEvents (Throttling) #2',
      'warning: AWS is throttling or failing DescribeStackEvents (Throttling) #3',
    ]);
  });

  it('announces each retry with the wait that follows and the longest time left, both shrinking to the end', async () => {
    h.cfn.throttle('DescribeChangeSet', MAX_POLL_RETRIES - 1);
    const before = h.clock.sleeps.length;
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(0);
    const retries = retryLines(r.stderr).retries;
    expect(retries).toHaveLength(MAX_POLL_RETRIES - 1);
    const seconds = (t: string) => (t.includes('min') ? Number(t.split(' min ')[0]) * 60 : 0) + Number(/(\d+) s$/.exec(t)![1]);
    const parsed = retries.map((l) => {
      const m = /attempt (\d+) of 10 failed; trying again in (\d+ s), giving up in at most ((?:\d+ min )?\d+ s) more/.exec(l)!;
      return { attempt: Number(m[1]), wait: seconds(m[2]!), left: seconds(m[3]!) };
    });
    expect(parsed.map((p) => p.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The wait announced is the wait slept (the harness polls every 2 s, so 1-2 s, then 2-4 s, ... up to 30 s).
    const slept = h.clock.sleeps.slice(before, before + parsed.length).map((ms) => Math.max(1, Math.round(ms / 1000)));
    expect(parsed.map((p) => p.wait)).toEqual(slept);
    // Time left only shrinks, and the last retry has only its own wait left.
    for (let i = 1; i < parsed.length; i++) expect(parsed[i]!.left).toBeLessThan(parsed[i - 1]!.left);
    expect(parsed.at(-1)!.left).toBe(parsed.at(-1)!.wait);
    // Before the first wait, at most 2 + 4 + 8 + 16 + 30 + 30 + 30 + 30 + 30 s (the bounds for a 2 s poll interval) are left.
    expect(parsed[0]!.left).toBeLessThanOrEqual(180);
    expect(parsed[0]!.left).toBeGreaterThanOrEqual(179);
  });

  it('gives up after repeated throttling with exit 1, not a crash', async () => {
    h.cfn.throttle('DescribeChangeSet', MAX_POLL_RETRIES + 5);
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: DescribeChangeSet kept failing (Throttling) after ${MAX_POLL_RETRIES} attempts; try again in a few minutes.`);
  });
});

describe('hanat deploy: confirmation, dry run, Ctrl-C', () => {
  it('--dry-run shows the changes, deletes the change set and the empty new stack, and executes nothing', async () => {
    const r = await h.hanat(...DEPLOY, '--dry-run');

    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/\+ Add +AWS::EC2::VPC +Vpc/);
    expect(r.stderr).toContain('Dry run: change set deleted, nothing was changed.');
    expect(names(cfnMock)).toEqual(['DescribeStacks', 'CreateChangeSet', 'DescribeChangeSet', 'DescribeChangeSet', 'DeleteChangeSet', 'DeleteStack']);
    const changeSetId = inputsOf(cfnMock, 'DeleteChangeSet')[0]!.ChangeSetName as string;
    expect(changeSetId).toMatch(/changeSet\/hanat-/);
    expect(inputsOf(cfnMock, 'DeleteStack')[0]!.StackName).toMatch(/:stack\/demo\//);
    expect(h.cfn.changeSets.size).toBe(0);
    expect(h.cfn.stack('demo')).toBeUndefined();
  });

  it('--dry-run on an existing stack deletes only the change set', async () => {
    await existingStack();
    const r = await h.hanat(...DEPLOY, '--dry-run', '--json', '--instance-type', 't4g.small');
    expect(r.code).toBe(0);
    expect(names(cfnMock)).not.toContain('DeleteStack');
    expect(names(cfnMock)).not.toContain('ExecuteChangeSet');
    expect(JSON.parse(r.stdout)).toMatchObject({
      outcome: 'dry-run',
      changes: [{ action: 'Modify', logicalId: 'NatLaunchTemplate', type: 'AWS::EC2::LaunchTemplate', replacement: 'False' }],
    });
  });

  it('--dry-run with --yes, as scripts that always pass --yes do, is a dry run: nothing to confirm, nothing executed', async () => {
    h.deps.stdinIsTTY = h.deps.stderrIsTTY = true;
    const r = await h.hanat(...DEPLOY, '--yes', '--dry-run');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('Dry run: change set deleted, nothing was changed.');
    expect(h.questions).toEqual([]);
    expect(names(cfnMock)).not.toContain('ExecuteChangeSet');
    expect(h.cfn.stack('demo')).toBeUndefined();
  });

  it('refuses to deploy without --yes when there is no terminal, before any AWS call', async () => {
    const r = await h.hanat(...DEPLOY);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: Refusing to deploy without confirmation: no terminal to ask on. Pass --yes to deploy without a prompt, or --dry-run to only see the changes.\n',
    );
    expect([...names(cfnMock), ...names(ec2Mock), ...names(ssmMock)]).toEqual([]);
  });

  it('asks on a terminal and deploys when the answer is yes', async () => {
    h.deps.stdinIsTTY = h.deps.stderrIsTTY = true;
    h.deps.env = { NO_COLOR: '1' };
    h.answers.push(true);
    const r = await h.hanat(...DEPLOY);
    expect(h.questions).toEqual(['Deploy these changes to stack demo in eu-west-1?']);
    expect(r.code).toBe(0);
    expect(names(cfnMock)).toContain('ExecuteChangeSet');
  });

  it('deletes the change set and exits 1 when the answer is no', async () => {
    h.deps.stdinIsTTY = h.deps.stderrIsTTY = true;
    h.answers.push(false);
    const r = await h.hanat(...DEPLOY);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Not deployed: the change set was declined and deleted; stack demo is unchanged.');
    expect(names(cfnMock)).not.toContain('ExecuteChangeSet');
    expect(names(cfnMock)).toContain('DeleteChangeSet');
  });

  it('Ctrl-C while the stack changes leaves it alone, says how to watch it, and exits 130', async () => {
    h.clock.onSleep = () => {
      if (names(cfnMock).includes('ExecuteChangeSet')) h.interrupt.abort();
    };
    const r = await h.hanat(...DEPLOY, '--yes');

    expect(r.code).toBe(130);
    expect(r.stderr).toContain(
      'interrupted: Stopped watching; the creation of stack demo goes on in CloudFormation. ' +
        'Watch it with: aws cloudformation describe-stack-events --stack-name demo --region eu-west-1 ' +
        '(or wait: aws cloudformation wait stack-create-complete --stack-name demo --region eu-west-1).',
    );
    const after = names(cfnMock).slice(names(cfnMock).indexOf('ExecuteChangeSet') + 1);
    expect(after.every((n) => n === 'DescribeStackEvents' || n === 'DescribeStacks')).toBe(true);
    expect(h.cfn.stack('demo')!.status).toBe('CREATE_IN_PROGRESS');
  });

  it('losing track of the stack while it changes (credentials expire) says the creation goes on and how to watch it, exit 1', async () => {
    h.clock.onSleep = () => {
      if (names(cfnMock).includes('ExecuteChangeSet')) {
        cfnMock.on(DescribeStacksCommand).rejects(awsError('ExpiredToken', 'The security token included in the request is expired'));
      }
    };
    const r = await h.hanat(...DEPLOY, '--yes');

    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error: AWS did not accept the credentials (ExpiredToken: The security token included in the request is expired). Pass --profile, set AWS_PROFILE, or refresh them (aws sso login / aws configure).\n' +
        'hanat stopped watching, but the creation of stack demo goes on in CloudFormation. ' +
        'Watch it with: aws cloudformation describe-stack-events --stack-name demo --region eu-west-1',
    );
    expect(h.cfn.stack('demo')!.status).toBe('CREATE_IN_PROGRESS');
  });

  it('Ctrl-C before the change set runs deletes it and changes nothing', async () => {
    h.clock.onSleep = () => h.interrupt.abort();
    const r = await h.hanat(...DEPLOY, '--yes');
    expect(r.code).toBe(130);
    expect(r.stderr).toContain('interrupted: Interrupted before deploying: the change set was deleted and stack demo is unchanged.');
    expect(names(cfnMock)).not.toContain('ExecuteChangeSet');
    expect(names(cfnMock)).toContain('DeleteChangeSet');
  });
});

describe('stdout and stderr', () => {
  it('--json puts exactly one JSON document on stdout and all progress on stderr', async () => {
    const r = await h.hanat(...DEPLOY, '--yes', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toEqual({
      stack: 'demo',
      stackId: h.cfn.stack('demo')!.id,
      region: 'eu-west-1',
      outcome: 'created',
      status: 'CREATE_COMPLETE',
      ami: ARM_AMI,
      changes: [
        { action: 'Add', logicalId: 'Vpc', type: 'AWS::EC2::VPC', replacement: null },
        { action: 'Add', logicalId: 'NatRole', type: 'AWS::IAM::Role', replacement: null },
        { action: 'Add', logicalId: 'NatLaunchTemplate', type: 'AWS::EC2::LaunchTemplate', replacement: null },
        { action: 'Add', logicalId: 'NatGroupA', type: 'AWS::AutoScaling::AutoScalingGroup', replacement: null },
      ],
      outputs: { NatGroupA: 'value-of-NatGroupA', VpcId: 'value-of-VpcId' },
    });
    expect(r.stderr).toContain('Creating change set');
    expect(r.stderr).toContain('CREATE_COMPLETE');
  });

  it('colours stderr on a terminal, never stdout, and never with NO_COLOR', async () => {
    h.deps.stderrIsTTY = true;
    const coloured = await h.hanat(...DEPLOY, '--yes');
    expect(coloured.stderr).toContain('\x1b[32mCREATE_COMPLETE');
    expect(coloured.stdout).not.toContain('\x1b[');

    h = harness({ env: { NO_COLOR: '1' } });
    h.deps.stderrIsTTY = true;
    h.deps.templateBody = () => smallTemplate();
    const plain = await h.hanat(...DEPLOY, '--yes');
    expect(plain.code).toBe(0);
    expect(plain.stderr).not.toContain('\x1b[');
  });
});
