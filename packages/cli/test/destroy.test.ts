import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DescribeStackEventsCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { MAX_POLL_RETRIES } from '../src/cfn.js';
import { DEFAULT_TEMPLATE_OPTIONS, templateBody } from '../src/template/render.js';
import { inputsOf, names, retryLines } from './support/calls.js';
import { awsError } from './support/fake-cloudformation.js';
import { cfnMock, harness, smallTemplate, type Harness } from './support/harness.js';

const DESTROY = ['destroy', '--name', 'demo', '--region', 'eu-west-1'];

let h: Harness;
beforeEach(async () => {
  h = harness();
  h.deps.templateBody = () => smallTemplate();
  const created = await h.hanat('deploy', '--name', 'demo', '--cidr-prefix', '10.20', '--region', 'eu-west-1', '--yes');
  expect(created.code).toBe(0);
  cfnMock.resetHistory();
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('hanat destroy', () => {
  it('deletes the stack and streams its events to DELETE_COMPLETE', async () => {
    const id = h.cfn.stack('demo')!.id;
    const r = await h.hanat(...DESTROY, '--yes');

    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    const calls = names(cfnMock);
    expect(calls.slice(0, 3)).toEqual(['DescribeStacks', 'DescribeStackEvents', 'DeleteStack']);
    expect(inputsOf(cfnMock, 'DeleteStack')).toEqual([{ StackName: id }]);
    expect(r.stderr).toMatch(/DELETE_COMPLETE +AWS::EC2::VPC +Vpc/);
    expect(r.stderr).toMatch(/DELETE_COMPLETE +AWS::CloudFormation::Stack +demo/);
    expect(r.stderr).not.toMatch(/CREATE_COMPLETE/);
    expect(r.stderr).toContain('Stack demo deleted from eu-west-1.');
    expect(h.cfn.stack('demo')).toBeUndefined();
  });

  it('says so and exits 0 when there is no such stack, so scripts can re-run it', async () => {
    const r = await h.hanat('destroy', '--name', 'other', '--region', 'eu-west-1', '--yes');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('Stack other does not exist in eu-west-1; nothing to delete.\n');
    expect(names(cfnMock)).toEqual(['DescribeStacks']);
  });

  it('prints the resources that could not be deleted and exits 1 on DELETE_FAILED', async () => {
    h.cfn.failResource('Vpc', "The vpc 'vpc-0abc' has dependencies and cannot be deleted.");
    const r = await h.hanat(...DESTROY, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error: Destroy of stack demo failed: DELETE_FAILED.\n' +
        'Failed resources:\n' +
        "  Vpc (AWS::EC2::VPC) DELETE_FAILED: The vpc 'vpc-0abc' has dependencies and cannot be deleted.\n" +
        'Remove what blocks them',
    );
  });

  it('asks on a terminal, warns that the Elastic IPs are released, and deletes nothing on no', async () => {
    h.deps.stdinIsTTY = h.deps.stderrIsTTY = true;
    h.answers.push(false);
    const r = await h.hanat(...DESTROY);
    expect(h.questions).toEqual([
      'Delete stack demo in eu-west-1 with its VPC, subnets and NAT instances, and release its Elastic IPs (the egress addresses are lost)?',
    ]);
    expect(r.code).toBe(1);
    expect(names(cfnMock)).not.toContain('DeleteStack');
  });

  it('refuses without --yes when there is no terminal, before any AWS call', async () => {
    const r = await h.hanat(...DESTROY);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: Refusing to destroy without confirmation: no terminal to ask on. Pass --yes to delete the stack without a prompt.\n');
    expect(names(cfnMock)).toEqual([]);
  });

  it('will not delete a stack that hanat did not create', async () => {
    h.cfn.seedStack({ name: 'payments', status: 'CREATE_COMPLETE', tags: [] });
    const r = await h.hanat('destroy', '--name', 'payments', '--region', 'eu-west-1', '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: Stack payments in eu-west-1 was not created by hanat (it has no hanat:stack tag), so hanat will not delete it: ' +
        'destroy deletes everything in a stack, and this one may belong to someone else. ' +
        'If you really mean to delete it, use CloudFormation directly: aws cloudformation delete-stack --stack-name payments --region eu-west-1.\n',
    );
    expect(names(cfnMock)).not.toContain('DeleteStack');
  });

  const CONSOLE = ['destroy', '--name', 'console-vpc', '--region', 'eu-west-1'];
  const NOT_HANAT =
    'error: Stack console-vpc in eu-west-1 was not created by hanat (it has no hanat:stack tag), so hanat will not delete it: ' +
    'destroy deletes everything in a stack, and this one may belong to someone else. ' +
    'If you really mean to delete it, use CloudFormation directly: aws cloudformation delete-stack --stack-name console-vpc --region eu-west-1.';
  /** A stack made with `aws cloudformation deploy` from a template body: no hanat:stack tag. */
  const seedUntagged = (templateBody: string) =>
    h.cfn.seedStack({ name: 'console-vpc', status: 'UPDATE_COMPLETE', tags: [], templateBody, template: { Resources: { Vpc: { Type: 'AWS::EC2::VPC' } } } });

  it("deletes a stack made from hanat's template outside hanat (Metadata.hanat), after the same confirmation", async () => {
    const id = seedUntagged(templateBody(DEFAULT_TEMPLATE_OPTIONS)).id;
    h.deps.stdinIsTTY = h.deps.stderrIsTTY = true;
    h.answers.push(true);
    const r = await h.hanat(...CONSOLE);

    expect(r.code).toBe(0);
    expect(h.questions).toEqual([
      'Delete stack console-vpc in eu-west-1 with its VPC, subnets and NAT instances, and release its Elastic IPs (the egress addresses are lost)?',
    ]);
    expect(names(cfnMock).slice(0, 4)).toEqual(['DescribeStacks', 'GetTemplate', 'DescribeStackEvents', 'DeleteStack']);
    expect(inputsOf(cfnMock, 'GetTemplate')).toEqual([{ StackName: id, TemplateStage: 'Original' }]);
    expect(inputsOf(cfnMock, 'DeleteStack')).toEqual([{ StackName: id }]);
    expect(r.stderr).toContain(
      "Stack console-vpc in eu-west-1 has no hanat:stack tag but was made from hanat's template outside hanat (its template carries Metadata.hanat); destroy treats it as a hanat stack.",
    );
    expect(h.cfn.stack('console-vpc')).toBeUndefined();
  });

  it.each([
    ['no Metadata at all', JSON.stringify({ Resources: {} })],
    ['other Metadata only', JSON.stringify({ Metadata: { 'cfn-lint': {} }, Resources: {} })],
    ['Metadata.hanat that is not an object', JSON.stringify({ Metadata: { hanat: 'yes' }, Resources: {} })],
    ['Metadata.hanat that is a list', JSON.stringify({ Metadata: { hanat: [3] }, Resources: {} })],
    ['a YAML template carrying Metadata.hanat', "AWSTemplateFormatVersion: '2010-09-09'\nMetadata:\n  hanat:\n    azs: 3\nResources: {}\n"],
    ['an unparsable body', '{"Metadata": {"hanat": {}'],
  ])('refuses an untagged stack whose template has %s, as before', async (_what, body) => {
    seedUntagged(body);
    const r = await h.hanat(...CONSOLE, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`${NOT_HANAT}\n`);
    expect(names(cfnMock)).toEqual(['DescribeStacks', 'GetTemplate']);
    expect(h.cfn.stack('console-vpc')!.status).toBe('UPDATE_COMPLETE');
  });

  it('refuses as before, adding that the template could not be read, when GetTemplate is denied', async () => {
    seedUntagged(templateBody(DEFAULT_TEMPLATE_OPTIONS));
    h.cfn.deny('GetTemplate');
    const r = await h.hanat(...CONSOLE, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `${NOT_HANAT} hanat could not check whether the stack was made from hanat's template outside hanat: AWS denied cloudformation:GetTemplate. ` +
        'Allow cloudformation:GetTemplate to let hanat destroy delete such a stack.\n',
    );
    expect(names(cfnMock)).not.toContain('DeleteStack');
  });

  it('retries throttled polls while deleting', async () => {
    h.cfn.throttle('DescribeStacks', 2);
    const r = await h.hanat(...DESTROY, '--yes');
    expect(r.code).toBe(0);
    expect(h.cfn.stack('demo')).toBeUndefined();
  });

  it('fails at once with exit 1 on a refused connection, naming the address, without retrying', async () => {
    // The shape the SDK throws for a refused connection: a Node error with a code, the address, and $metadata.
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED', address: '127.0.0.1', port: 9, $metadata: { attempts: 1 } });
    cfnMock.on(DescribeStacksCommand).rejects(refused);
    const slept = h.clock.sleeps.length;
    const r = await h.hanat(...DESTROY, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'error: Could not reach AWS for DescribeStacks: nothing listens at 127.0.0.1:9 (ECONNREFUSED). ' +
        'Check the network (a firewall, a proxy, a VPN), or an endpoint_url in your AWS profile.\n',
    );
    expect(names(cfnMock)).toEqual(['DescribeStacks']);
    expect(h.clock.sleeps.slice(slept)).toEqual([]);
  });

  it('fails at once on a host name that does not resolve, pointing at the region and DNS', async () => {
    const unknown = Object.assign(new Error('getaddrinfo ENOTFOUND cloudformation.eu-west-9.amazonaws.com'), {
      code: 'ENOTFOUND',
      hostname: 'cloudformation.eu-west-9.amazonaws.com',
      $metadata: { attempts: 1 },
    });
    cfnMock.on(DescribeStacksCommand).rejects(unknown);
    const r = await h.hanat(...DESTROY, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'error: Could not reach AWS for DescribeStacks: the host name of cloudformation.eu-west-9.amazonaws.com does not resolve (ENOTFOUND). ' +
        'Check the region (--region, AWS_REGION) and that this machine can resolve AWS host names (DNS, a proxy).\n',
    );
    expect(names(cfnMock)).toEqual(['DescribeStacks']);
  });

  it('retries a connection that broke (ECONNRESET), saying so each time, and exits 1 after the retries', async () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', $metadata: { attempts: 6 } });
    cfnMock.on(DescribeStacksCommand).rejects(reset);
    const r = await h.hanat(...DESTROY, '--yes');
    expect(r.code).toBe(1);
    const { retries, rest } = retryLines(r.stderr);
    expect(retries).toHaveLength(MAX_POLL_RETRIES - 1);
    expect(retries[0]).toMatch(/^warning: Could not reach AWS for DescribeStacks \(ECONNRESET\): attempt 1 of 10 failed; trying again in [12] s/);
    expect(rest).toBe(`error: Could not reach AWS for DescribeStacks (ECONNRESET) after ${MAX_POLL_RETRIES} attempts. Check the network, or AWS_ENDPOINT_URL if you set it.\n`);
    expect(names(cfnMock)).toEqual(Array<string>(MAX_POLL_RETRIES).fill('DescribeStacks'));
  });

  it('losing track of the stack while it is deleted says the deletion goes on and how to watch it, exit 1', async () => {
    h.clock.onSleep = () => {
      cfnMock.on(DescribeStackEventsCommand).rejects(awsError('AccessDenied', 'User is not authorized to perform: cloudformation:DescribeStackEvents'));
    };
    const r = await h.hanat(...DESTROY, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'error: AWS denied DescribeStackEvents: User is not authorized to perform: cloudformation:DescribeStackEvents. The identity running hanat needs permission for it.\n' +
        'hanat stopped watching, but the deletion of stack demo goes on in CloudFormation.',
    );
    expect(h.cfn.stack('demo')!.status).toBe('DELETE_IN_PROGRESS');
  });

  it('Ctrl-C while deleting stops watching and exits 130; the deletion goes on', async () => {
    h.clock.onSleep = () => h.interrupt.abort();
    const r = await h.hanat(...DESTROY, '--yes');
    expect(r.code).toBe(130);
    expect(r.stderr).toContain('interrupted: Stopped watching; the deletion of stack demo goes on in CloudFormation.');
    expect(h.cfn.stack('demo')!.status).toBe('DELETE_IN_PROGRESS');
  });
});
