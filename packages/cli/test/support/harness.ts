/**
 * Runs the real `hanat` program (run() with buildProgram) against mocked AWS
 * clients: a fake CloudFormation, and EC2/SSM answering from a small world of
 * key pairs, images and parameters. Time is a fake clock; stdout and stderr
 * are captured separately.
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import {
  DescribeAccountAttributesCommand,
  DescribeAddressesCommand,
  DescribeAvailabilityZonesCommand,
  DescribeImagesCommand,
  DescribeInstanceTypeOfferingsCommand,
  DescribeKeyPairsCommand,
  DescribeSubnetsCommand,
  EC2Client,
  EC2ServiceException,
  type DescribeAvailabilityZonesCommandInput,
  type DescribeInstanceTypeOfferingsCommandInput,
  type DescribeSubnetsCommandInput,
  type Address,
  type Image,
  type InstanceTypeOffering,
} from '@aws-sdk/client-ec2';
import { GetParameterCommand, SSMClient, SSMServiceException } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { vi } from 'vitest';
import { awsFactory } from '../../src/aws.js';
import type { AwsFactory, Clock } from '../../src/deps.js';
import { run, type RunDeps } from '../../src/run.js';
import { FakeCloudFormation } from './fake-cloudformation.js';

// Module-level mocks (the prototype's send is stubbed once); reset per harness.
export const cfnMock = mockClient(CloudFormationClient);
export const ec2Mock = mockClient(EC2Client);
export const ssmMock = mockClient(SSMClient);
export const asgMock = mockClient(AutoScalingClient);

/** A clock that never waits: sleep() moves time forward and runs the test's hook. */
export class FakeClock implements Clock {
  t = Date.UTC(2026, 0, 15, 12, 0, 0);
  readonly sleeps: number[] = [];
  onSleep: (() => void) | undefined;
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
    this.onSleep?.();
    if (signal?.aborted) return Promise.reject(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }));
    return Promise.resolve();
  }
}

export const ARM_AMI = 'ami-0a1b2c3d4e5f60718';
export const X86_AMI = 'ami-0123456789abcdef0';

/** A template with the six parameters of the contract, IAM, and an output. */
export function smallTemplate(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    AWSTemplateFormatVersion: '2010-09-09',
    Parameters: {
      VpcName: { Type: 'String' },
      CidrPrefix: { Type: 'String' },
      KeyName: { Type: 'String', Default: '' },
      NatAmi: { Type: 'String' },
      InstanceType: { Type: 'String', Default: 't4g.nano' },
      AvailabilityZones: { Type: 'List<AWS::EC2::AvailabilityZone::Name>' },
    },
    Resources: {
      Vpc: { Type: 'AWS::EC2::VPC', Properties: { CidrBlock: { 'Fn::Sub': '${CidrPrefix}.0.0/16' } } },
      NatRole: { Type: 'AWS::IAM::Role', Properties: { AssumeRolePolicyDocument: {} } },
      NatLaunchTemplate: { Type: 'AWS::EC2::LaunchTemplate', Properties: { LaunchTemplateData: { ImageId: { Ref: 'NatAmi' }, InstanceType: { Ref: 'InstanceType' } } } },
      NatGroupA: { Type: 'AWS::AutoScaling::AutoScalingGroup', Properties: { MinSize: '1' } },
      ...extra,
    },
    Outputs: { VpcId: { Value: { Ref: 'Vpc' } }, NatGroupA: { Value: { Ref: 'NatGroupA' } } },
  });
}

/** A few instance types of each architecture, for DescribeInstanceTypeOfferings. */
export const INSTANCE_TYPES = ['t4g.nano', 't4g.micro', 't4g.small', 'm7g.medium', 'c7g.large', 't3.nano', 't3.micro', 't3a.nano', 't2.nano', 'm7i.large', 'c7i.xlarge', 'mac2.metal'];

/** The AZs of a region as the harness's EC2 lists them: `<region>a` .. (count letters). */
export function zonesOf(region: string, count: number): string[] {
  return 'abcdef'.slice(0, count).split('').map((l) => `${region}${l}`);
}

export interface Harness {
  clock: FakeClock;
  cfn: FakeCloudFormation;
  keyPairs: Set<string>;
  images: Image[];
  parameters: Map<string, string>;
  /** The region's Availability Zones, in the order DescribeAvailabilityZones lists them (not sorted). */
  zones: string[];
  /** AZs with a default subnet (none by default). */
  defaultSubnets: string[];
  /** The region's Elastic IP quota (vpc-max-elastic-ips; 5 as in a new account). */
  eipQuota: number;
  /** The Elastic IPs the account holds in the region (none by default). */
  addresses: Address[];
  /** Whether an AZ offers an instance type (every type everywhere by default). */
  offered: (type: string, az: string) => boolean;
  /** Answers the confirm prompt gives, in order; questions asked are recorded. */
  answers: boolean[];
  questions: string[];
  interrupt: AbortController;
  deps: RunDeps;
  hanat(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

export function harness(opts: { tty?: boolean; env?: Record<string, string>; aws?: AwsFactory; templateBody?: string } = {}): Harness {
  cfnMock.reset();
  ec2Mock.reset();
  ssmMock.reset();
  asgMock.reset();
  // Never real credentials, never a real region lookup from the host's files.
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDTESTONLY');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test-secret');
  vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/hanat-test-config');
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '/nonexistent/hanat-test-credentials');
  vi.stubEnv('AWS_REGION', '');
  vi.stubEnv('AWS_PROFILE', '');

  const clock = new FakeClock();
  const cfn = new FakeCloudFormation(clock);
  cfn.install(cfnMock);
  const keyPairs = new Set<string>(['ops-key']);
  const images: Image[] = [
    { ImageId: ARM_AMI, Architecture: 'arm64', State: 'available', Name: 'hanat-0.1.0-arm64' },
    { ImageId: X86_AMI, Architecture: 'x86_64', State: 'available', Name: 'hanat-0.1.0-x86_64' },
  ];
  const parameters = new Map<string, string>([
    ['/hanat/ami/arm64', ARM_AMI],
    ['/hanat/ami/x86_64', X86_AMI],
  ]);
  const world = { zones: zonesOf('eu-west-1', 3), defaultSubnets: [] as string[], offered: (_type: string, _az: string) => true, eipQuota: 5 };
  const addresses: Address[] = [];
  const filterValues = (filters: { Name?: string; Values?: string[] }[] | undefined, name: string) => filters?.find((f) => f.Name === name)?.Values;

  ec2Mock.on(DescribeKeyPairsCommand).callsFake((input: { KeyNames?: string[] }) => {
    const missing = (input.KeyNames ?? []).filter((k) => !keyPairs.has(k));
    if (missing.length) {
      throw new EC2ServiceException({ name: 'InvalidKeyPair.NotFound', message: `The key pair '${missing[0]}' does not exist`, $fault: 'client', $metadata: { httpStatusCode: 400 } });
    }
    return { KeyPairs: (input.KeyNames ?? []).map((KeyName) => ({ KeyName })) };
  });
  ec2Mock.on(DescribeImagesCommand).callsFake((input: { ImageIds?: string[] }) => {
    const found = images.filter((i) => input.ImageIds?.includes(i.ImageId!));
    if (found.length === 0) {
      throw new EC2ServiceException({ name: 'InvalidAMIID.NotFound', message: `The image id '[${input.ImageIds?.join(',')}]' does not exist`, $fault: 'client', $metadata: { httpStatusCode: 400 } });
    }
    return { Images: found };
  });
  ec2Mock.on(DescribeAvailabilityZonesCommand).callsFake((input: DescribeAvailabilityZonesCommandInput) => {
    const types = filterValues(input.Filters, 'zone-type');
    const zones = types && !types.includes('availability-zone') ? [] : world.zones;
    return { AvailabilityZones: zones.map((ZoneName) => ({ ZoneName, ZoneType: 'availability-zone', State: 'available' })) };
  });
  ec2Mock.on(DescribeSubnetsCommand).callsFake((input: DescribeSubnetsCommandInput) => {
    const wanted = filterValues(input.Filters, 'default-for-az');
    if (!wanted?.includes('true')) throw new Error('the harness answers DescribeSubnets only for default-for-az=true');
    return { Subnets: world.defaultSubnets.map((AvailabilityZone, i) => ({ SubnetId: `subnet-0000000000000000${i}`, AvailabilityZone, DefaultForAz: true })) };
  });
  // Pages of MaxResults (default 1000), with the offset as the token, as EC2 pages.
  ec2Mock.on(DescribeInstanceTypeOfferingsCommand).callsFake((input: DescribeInstanceTypeOfferingsCommandInput) => {
    if (input.LocationType !== 'availability-zone') throw new Error('the harness answers DescribeInstanceTypeOfferings only by availability-zone');
    const locations = filterValues(input.Filters, 'location');
    const types = filterValues(input.Filters, 'instance-type');
    const rows: InstanceTypeOffering[] = world.zones
      .filter((az) => !locations || locations.includes(az))
      .flatMap((az) => INSTANCE_TYPES.filter((t) => (!types || types.includes(t)) && world.offered(t, az)).map((t) => ({ InstanceType: t as InstanceTypeOffering['InstanceType'], LocationType: 'availability-zone' as const, Location: az })));
    const start = Number(input.NextToken ?? 0);
    const end = start + (input.MaxResults ?? 1000);
    return { InstanceTypeOfferings: rows.slice(start, end), NextToken: end < rows.length ? String(end) : undefined };
  });
  ec2Mock.on(DescribeAccountAttributesCommand).callsFake(() => ({
    AccountAttributes: [
      { AttributeName: 'max-instances', AttributeValues: [{ AttributeValue: '20' }] },
      { AttributeName: 'vpc-max-elastic-ips', AttributeValues: [{ AttributeValue: String(world.eipQuota) }] },
      { AttributeName: 'max-elastic-ips', AttributeValues: [{ AttributeValue: String(world.eipQuota) }] },
    ],
  }));
  ec2Mock.on(DescribeAddressesCommand).callsFake(() => ({ Addresses: addresses }));
  ssmMock.on(GetParameterCommand).callsFake((input: { Name?: string }) => {
    const value = parameters.get(input.Name ?? '');
    if (value === undefined) {
      throw new SSMServiceException({ name: 'ParameterNotFound', message: '', $fault: 'client', $metadata: { httpStatusCode: 400 } });
    }
    return { Parameter: { Name: input.Name, Type: 'String', Value: value } };
  });

  const answers: boolean[] = [];
  const questions: string[] = [];
  const interrupt = new AbortController();
  let stdout = '';
  let stderr = '';
  const deps: RunDeps = {
    aws: opts.aws ?? awsFactory(() => {}),
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    stdinIsTTY: opts.tty ?? false,
    stderrIsTTY: opts.tty ?? false,
    env: opts.env ?? {},
    confirm: (q) => {
      questions.push(q);
      return Promise.resolve(answers.shift() ?? false);
    },
    clock,
    signal: interrupt.signal,
    pollIntervalMs: 2_000,
    platform: { node: 'v20.0.0', os: 'linux', arch: 'x64' },
  };
  const h: Harness = {
    clock,
    cfn,
    keyPairs,
    images,
    parameters,
    get zones() {
      return world.zones;
    },
    set zones(z) {
      world.zones = z;
    },
    get defaultSubnets() {
      return world.defaultSubnets;
    },
    set defaultSubnets(d) {
      world.defaultSubnets = d;
    },
    get eipQuota() {
      return world.eipQuota;
    },
    set eipQuota(q) {
      world.eipQuota = q;
    },
    addresses,
    get offered() {
      return world.offered;
    },
    set offered(f) {
      world.offered = f;
    },
    answers,
    questions,
    interrupt,
    deps,
    async hanat(...argv) {
      stdout = '';
      stderr = '';
      const code = await run(argv, deps);
      return { code, stdout, stderr };
    },
  };
  return h;
}
