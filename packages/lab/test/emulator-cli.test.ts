/**
 * The real hanat CLI (its program, in process, with its own SDK clients from
 * @hanat/core reaching the emulator through AWS_ENDPOINT_URL) against the
 * emulator: deploy, deploy again (no changes), destroy, with live events and
 * through injected throttling; the refusal of an AZ that does not offer the
 * instance type; the destroy of a stack made from hanat's template without
 * hanat. Also `hanat-lab serve`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateStackCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeImagesCommand, DescribeInstancesCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DeleteParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_TEMPLATE_OPTIONS, templateBody } from '../../cli/src/template/index.js';
import { buildProgram } from '../src/cli/program.js';
import { envExports } from '../src/dataplane/cli-support.js';
import { LAB_IMAGES, type LatencyProfile } from '../src/emulator/index.js';
import { hanatCli, keepSdkEnv, pointSdkAt } from './emulator/cli.js';
import { credentials, rejection, startLab, type Harness } from './emulator/helpers.js';

keepSdkEnv();

interface Lines {
  text: string;
  /** Each stderr write, with the stack status at the moment it was written. */
  writes: { text: string; stackStatus: string | undefined }[];
}

async function hanat(h: Harness, argv: string[]): Promise<{ code: number; stdout: string; stderr: Lines }> {
  const writes: Lines['writes'] = [];
  const r = await hanatCli(argv, {
    confirm: true,
    onStderr: (s) => writes.push({ text: s, stackStatus: h.emu.world.cloudformation.findStack('lab')?.status }),
  });
  return { code: r.code, stdout: r.stdout, stderr: { text: r.stderr, writes } };
}

/** Resources take a little time, so progress is visible while the stack is in progress. */
const slowResources: LatencyProfile = { name: 'test', api: () => 0, resource: () => 15, changeSet: () => 30, instanceShutdown: () => 10, healthCheck: () => 0, launchRetry: () => 1000 };

describe('hanat against the emulator', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('deploys, finds nothing to change, and destroys, following live events', { timeout: 60_000 }, async () => {
    h = await startLab({ latency: slowResources, bootDelayMs: 50 });
    pointSdkAt(h.url);

    const first = await hanat(h, ['deploy', '--name', 'lab', '--cidr-prefix', '10.0', '--yes', '--region', 'us-east-1']);
    expect(first.stderr.text).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    const stack = h.emu.world.cloudformation.findStack('lab')!;
    expect(stack.status).toBe('CREATE_COMPLETE');
    // Events were shown while the stack was still being created, not only at the end.
    const live = first.stderr.writes.filter((w) => w.stackStatus === 'CREATE_IN_PROGRESS' && /CREATE_COMPLETE\s+AWS::EC2::/.test(w.text));
    expect(live.length).toBeGreaterThan(0);
    expect(first.stderr.text).toMatch(/CREATE_COMPLETE\s+AWS::AutoScaling::AutoScalingGroup\s+Az2NatGroup/);
    expect(first.stdout).toMatch(/VpcId\s+vpc-/);
    expect(h.emu.world.autoscaling.groups.size).toBe(3);

    const executes = h.emu.counters.get('cloudformation:ExecuteChangeSet');
    const second = await hanat(h, ['deploy', '--name', 'lab', '--cidr-prefix', '10.0', '--yes', '--region', 'us-east-1']);
    expect(second.code).toBe(0);
    expect(second.stderr.text).toContain('No changes');
    expect(h.emu.counters.get('cloudformation:ExecuteChangeSet')).toBe(executes);
    expect(h.emu.world.cloudformation.changeSets.size).toBe(0);

    // Destroy through a burst of throttling on the calls it polls with.
    h.emu.faults.add({ kind: 'throttle', service: 'cloudformation', action: 'DescribeStackEvents', count: 2 });
    h.emu.faults.add({ kind: 'throttle', service: 'cloudformation', action: 'DescribeStacks', count: 2 });
    h.emu.faults.add({ kind: 'throttle', service: 'cloudformation', action: 'DeleteStack', count: 1 });
    const destroyed = await hanat(h, ['destroy', '--name', 'lab', '--yes', '--region', 'us-east-1']);
    expect(destroyed.stderr.text).not.toMatch(/error/i);
    expect(destroyed.code).toBe(0);
    expect(h.emu.counters.injected('cloudformation:DescribeStackEvents') + h.emu.counters.injected('cloudformation:DescribeStacks') + h.emu.counters.injected('cloudformation:DeleteStack')).toBe(5);
    expect(destroyed.stderr.text).toMatch(/DELETE_COMPLETE\s+AWS::CloudFormation::Stack\s+lab/);
    const ec2 = h.emu.world.ec2;
    expect(ec2.vpcs.size + ec2.subnets.size + ec2.routeTables.size + ec2.addresses.size + ec2.launchTemplates.size).toBe(0);
    expect(h.emu.world.cloudformation.findStack('lab')).toBeUndefined();
  });

  it('without --ami, deploys the image published at /hanat/ami/<arch> for the instance type, and says how to build one when none is', async () => {
    h = await startLab({ latency: 'zero', bootDelayMs: 10 });
    pointSdkAt(h.url);
    const ec2 = new EC2Client({ endpoint: h.url, region: 'us-east-1', credentials });
    const ssm = new SSMClient({ endpoint: h.url, region: 'us-east-1', credentials });
    const x86 = await ec2.send(new DescribeImagesCommand({ Filters: [{ Name: 'architecture', Values: ['x86_64'] }] }));
    const x86Image = x86.Images?.[0]?.ImageId;
    expect(x86Image).toMatch(/^ami-/);

    const deployed = await hanat(h, ['deploy', '--name', 'lab', '--cidr-prefix', '10.0', '--instance-type', 't3.micro', '--yes', '--region', 'us-east-1']);
    expect(deployed.code).toBe(0);
    expect(h.emu.counters.get('ssm:GetParameter')).toBeGreaterThan(0);
    const nats = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: ['lab'] }] }));
    const images = new Set(nats.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => i.ImageId));
    expect(images).toEqual(new Set([x86Image]));

    await ssm.send(new DeleteParameterCommand({ Name: '/hanat/ami/arm64' }));
    const missing = await hanat(h, ['deploy', '--name', 'lab2', '--cidr-prefix', '10.1', '--yes', '--region', 'us-east-1']);
    expect(missing.code).toBe(2);
    expect(missing.stderr.text).toContain('scripts/build-ami --arch arm64 --region us-east-1');
    expect(h.emu.world.cloudformation.findStack('lab2')).toBeUndefined();
  });

  it('refuses a second 3-AZ stack over the Elastic IP quota of 5 before it exists, and deploys it with --no-eip', { timeout: 60_000 }, async () => {
    h = await startLab({ latency: 'zero', bootDelayMs: 10 });
    pointSdkAt(h.url);
    const first = await hanat(h, ['deploy', '--name', 'lab', '--cidr-prefix', '10.0', '--yes', '--region', 'us-east-1']);
    expect(first.code).toBe(0);
    expect(first.stderr.text).toContain('Elastic IPs: 3 new, 0 of the quota of 5 in use in us-east-1');
    const second = await hanat(h, ['deploy', '--name', 'lab2', '--cidr-prefix', '10.1', '--yes', '--region', 'us-east-1']);
    expect(second.code).toBe(2);
    expect(second.stderr.text).toContain('error: Not enough Elastic IPs in us-east-1: the stack needs one per AZ, 3 new addresses for lab2, but the account has 3 of its quota of 5 in use, so only 2 are left: 198.18.');
    expect(second.stderr.text).toContain('(stack lab, not associated)');
    expect(h.emu.world.cloudformation.findStack('lab2')).toBeUndefined();
    // An update of the first stack keeps its addresses and needs none.
    const again = await hanat(h, ['deploy', '--name', 'lab', '--cidr-prefix', '10.0', '--yes', '--region', 'us-east-1']);
    expect(again.code).toBe(0);
    const noEip = await hanat(h, ['deploy', '--name', 'lab2', '--cidr-prefix', '10.1', '--yes', '--region', 'us-east-1', '--no-eip']);
    expect(noEip.code).toBe(0);
    expect(h.emu.world.cloudformation.findStack('lab2')!.status).toBe('CREATE_COMPLETE');
  });

  it('refuses --azs 6 in us-east-1 with the default t4g.nano before any stack exists, and deploys six AZs with an x86_64 type', async () => {
    h = await startLab({ latency: 'zero', bootDelayMs: 10, settings: { eipQuota: 6 } });
    pointSdkAt(h.url);
    const x86Image = LAB_IMAGES.find((i) => i.architecture === 'x86_64')!.id;

    const refused = await hanat(h, ['deploy', '--name', 'lab', '--cidr-prefix', '10.0', '--azs', '6', '--yes', '--region', 'us-east-1']);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr.text).toContain(
      'error: --instance-type t4g.nano is not offered in us-east-1e, among the 6 Availability Zones of us-east-1 ' +
        '(us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1e, us-east-1f) that --azs 6 puts NATs in;',
    );
    expect(refused.stderr.text).toContain('Pass --azs 4 or fewer, or an x86_64 instance type offered in all 6, e.g. t3.nano, t3a.nano, t2.nano, t3.micro');
    expect(h.emu.counters.get('ec2:DescribeInstanceTypeOfferings')).toBeGreaterThan(0);
    // Only read: whether the stack exists (its AZs would be kept).
    expect(h.emu.counters.get('cloudformation:*')).toBe(h.emu.counters.get('cloudformation:DescribeStacks'));
    expect(h.emu.world.cloudformation.findStack('lab')).toBeUndefined();

    const x86 = await hanat(h, ['deploy', '--name', 'lab', '--cidr-prefix', '10.0', '--azs', '6', '--instance-type', 't3.nano', '--ami', x86Image, '--yes', '--region', 'us-east-1']);
    expect(x86.stderr.text).toContain('Availability Zones us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1e, us-east-1f (the first 6 of us-east-1) all offer t3.nano');
    expect(x86.code).toBe(0);
    expect(h.emu.world.cloudformation.findStack('lab')!.status).toBe('CREATE_COMPLETE');
    const nats = [...h.emu.world.ec2.instances.values()].filter((i) => i.state !== 'terminated');
    expect(nats.map((i) => i.az).sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f'].map((l) => `us-east-1${l}`));
  });

  it("destroys a stack made from hanat's template with CreateStack, which has no hanat:stack tag", async () => {
    h = await startLab({ latency: 'zero', bootDelayMs: 10 });
    pointSdkAt(h.url);
    const arm = LAB_IMAGES.find((i) => i.architecture === 'arm64')!.id;
    await h.cfn.send(
      new CreateStackCommand({
        StackName: 'console',
        TemplateBody: templateBody(DEFAULT_TEMPLATE_OPTIONS),
        Parameters: [
          { ParameterKey: 'VpcName', ParameterValue: 'console' },
          { ParameterKey: 'CidrPrefix', ParameterValue: '10.7' },
          { ParameterKey: 'NatAmi', ParameterValue: arm },
          { ParameterKey: 'AvailabilityZones', ParameterValue: 'us-east-1a,us-east-1b,us-east-1c' },
        ],
        Capabilities: ['CAPABILITY_IAM'],
      }),
    );
    const deadline = Date.now() + 10_000;
    while (h.emu.world.cloudformation.findStack('console')?.status !== 'CREATE_COMPLETE' && Date.now() < deadline) await sleep(10);
    const created = (await h.cfn.send(new DescribeStacksCommand({ StackName: 'console' }))).Stacks![0]!;
    expect(created.StackStatus).toBe('CREATE_COMPLETE');
    expect(created.Tags ?? []).not.toContainEqual(expect.objectContaining({ Key: 'hanat:stack' }));
    expect(h.emu.world.ec2.vpcs.size).toBe(1);

    const destroyed = await hanat(h, ['destroy', '--name', 'console', '--yes', '--region', 'us-east-1']);
    expect(destroyed.stderr.text).not.toMatch(/error/i);
    expect(destroyed.code).toBe(0);
    expect(destroyed.stderr.text).toContain("Stack console in us-east-1 has no hanat:stack tag but was made from hanat's template outside hanat");
    expect(h.emu.counters.get('cloudformation:GetTemplate')).toBe(1);
    expect(destroyed.stderr.text).toMatch(/DELETE_COMPLETE\s+AWS::CloudFormation::Stack\s+console/);
    const ec2 = h.emu.world.ec2;
    expect(ec2.vpcs.size + ec2.subnets.size + ec2.routeTables.size + ec2.addresses.size + ec2.launchTemplates.size).toBe(0);
    expect(h.emu.world.cloudformation.findStack('console')).toBeUndefined();
  });

  it('reports a failed deploy with the failing resource and its reason', async () => {
    h = await startLab();
    pointSdkAt(h.url);
    h.emu.faults.failResource({ logicalId: 'Az1NatGroup', message: 'Instance failed to launch (injected by the test)' });
    const failed = await hanat(h, ['deploy', '--name', 'lab', '--cidr-prefix', '10.0', '--yes', '--region', 'us-east-1']);
    expect(failed.code).toBe(1);
    expect(failed.stderr.text).toContain('Az1NatGroup');
    expect(failed.stderr.text).toContain('Instance failed to launch (injected by the test)');
    expect(h.emu.world.cloudformation.findStack('lab')!.status).toBe('ROLLBACK_COMPLETE');
  });
});

describe('hanat-lab serve', () => {
  it('serves on loopback, prints the environment, and stops on the signal', async () => {
    const stop = new AbortController();
    let out = '';
    let err = '';
    const program = buildProgram({ stdout: (s) => (out += s), stderr: (s) => (err += s), env: {}, signal: stop.signal }).exitOverride();
    const running = program.parseAsync(['node', 'hanat-lab', 'serve', '--port', '0', '--region', 'eu-west-1']);
    const deadline = Date.now() + 5000;
    while (!out.includes('AWS_ENDPOINT_URL') && Date.now() < deadline) await sleep(5);
    const url = /AWS_ENDPOINT_URL=(\S+)/.exec(out)![1]!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(out).toBe(envExports(url, 'eu-west-1'));
    expect(err).toContain('listening on');
    // AWS-like latency unless told otherwise.
    expect(err).toContain('latency aws,');
    expect(await (await fetch(`${url}/_lab/health`)).json()).toMatchObject({ latency: 'aws', opLatency: {} });
    const ec2 = new EC2Client({ endpoint: url, region: 'eu-west-1', credentials, maxAttempts: 1 });
    expect((await ec2.send(new DescribeVpcsCommand({}))).Vpcs).toEqual([]);
    ec2.destroy();
    stop.abort();
    await running;
    expect(err).toContain('emulator stopped');
  });

  it("prints what EMULATOR.md's sample shows", async () => {
    const doc = readFileSync(join(import.meta.dirname, '../EMULATOR.md'), 'utf8');
    const sample = /# prints, on stdout:\n([\s\S]*?)# and, on stderr:\n([\s\S]*?)```/.exec(doc);
    expect(sample, 'the sample in EMULATOR.md, "Running it"').not.toBeNull();
    const stop = new AbortController();
    let out = '';
    let err = '';
    const program = buildProgram({ stdout: (s) => (out += s), stderr: (s) => (err += s), env: {}, signal: stop.signal }).exitOverride();
    const running = program.parseAsync(['node', 'hanat-lab', 'serve', '--port', '0']);
    const deadline = Date.now() + 5000;
    while (!err.includes('\n') && Date.now() < deadline) await sleep(5);
    stop.abort();
    await running;
    // The sample uses the default port, 4566; this test took any free one.
    const asDocumented = (text: string) => text.replaceAll(/127\.0\.0\.1:\d+/g, '127.0.0.1:4566');
    expect(asDocumented(out)).toBe(sample![1]);
    expect(asDocumented(err).split('\n')[0]).toBe(sample![2]!.trimEnd());
  });

  it('takes single operations\' latency from --op-latency', async () => {
    const stop = new AbortController();
    let out = '';
    let err = '';
    const program = buildProgram({ stdout: (s) => (out += s), stderr: (s) => (err += s), env: {}, signal: stop.signal }).exitOverride();
    const running = program.parseAsync(['node', 'hanat-lab', 'serve', '--port', '0', '--latency', 'zero', '--op-latency', 'CreateRoute=250', '--op-latency', 'ec2:DescribeRouteTables=20-60']);
    const deadline = Date.now() + 5000;
    while (!out.includes('AWS_ENDPOINT_URL') && Date.now() < deadline) await sleep(5);
    const url = /AWS_ENDPOINT_URL=(\S+)/.exec(out)![1]!;
    expect(err).toContain('latency zero, ec2:CreateRoute 250 ms, ec2:DescribeRouteTables 20-60 ms');
    expect(await (await fetch(`${url}/_lab/health`)).json()).toMatchObject({ latency: 'zero', opLatency: { 'ec2:CreateRoute': 250, 'ec2:DescribeRouteTables': [20, 60] } });
    stop.abort();
    await running;
  });

  it('refuses a bad --op-latency with exit code 2, naming the value', async () => {
    const refused: [string, RegExp][] = [
      ['CreateRoute', /expected <operation>=<ms>/],
      ['CreateRoute=fast', /whole milliseconds from 0 to 600000, or a range like 100-300, got "fast"/],
      ['CreateRoute=-5', /got "-5"/],
      ['CreateRoute=300-100', /got "300-100"/],
      ['CreateRoute=600001', /got "600001"/],
      ['CreateRoutes=250', /no emulated service has an operation "CreateRoutes"/],
      ['ec3:CreateRoute=250', /unknown service "ec3"/],
      ['ssm:CreateRoute=250', /ssm has no operation "CreateRoute"/],
      ['=250', /expected <operation>=<ms>/],
    ];
    for (const [value, why] of refused) {
      const program = buildProgram({ stdout: () => {}, stderr: () => {}, env: {}, signal: new AbortController().signal }).exitOverride();
      const err = await rejection(program.parseAsync(['node', 'hanat-lab', 'serve', '--port', '0', '--op-latency', value]));
      expect((err as Error & { exitCode?: number }).exitCode, value).toBe(2);
      expect(err.message).toContain(`--op-latency ${JSON.stringify(value)}: `);
      expect(err.message).toMatch(why);
    }
    const twice = buildProgram({ stdout: () => {}, stderr: () => {}, env: {}, signal: new AbortController().signal }).exitOverride();
    await expect(twice.parseAsync(['node', 'hanat-lab', 'serve', '--op-latency', 'CreateRoute=1', '--op-latency', 'ec2:CreateRoute=2'])).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('ec2:CreateRoute is given twice') });
  });

  it('refuses a non-loopback host with exit code 2', async () => {
    const program = buildProgram({ stdout: () => {}, stderr: () => {}, env: {}, signal: new AbortController().signal }).exitOverride();
    await expect(program.parseAsync(['node', 'hanat-lab', 'serve', '--host', '0.0.0.0'])).rejects.toMatchObject({ exitCode: 2, message: expect.stringContaining('loopback only') });
    await expect(program.parseAsync(['node', 'hanat-lab', 'serve', '--port', 'http'])).rejects.toMatchObject({ exitCode: 2 });
  });
});
