/**
 * Runs the real `hanat` program (run() with buildProgram) against mocked AWS
 * clients: a fake CloudFormation, and EC2/SSM answering from a small world of
 * key pairs, images and parameters. Time is a fake clock; stdout and stderr
 * are captured separately.
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { DescribeImagesCommand, DescribeKeyPairsCommand, EC2Client, EC2ServiceException, type Image } from '@aws-sdk/client-ec2';
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

/** A template with the five parameters of the contract, IAM, and an output. */
export function smallTemplate(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    AWSTemplateFormatVersion: '2010-09-09',
    Parameters: {
      VpcName: { Type: 'String' },
      CidrPrefix: { Type: 'String' },
      KeyName: { Type: 'String', Default: '' },
      NatAmi: { Type: 'String' },
      InstanceType: { Type: 'String', Default: 't4g.nano' },
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

export interface Harness {
  clock: FakeClock;
  cfn: FakeCloudFormation;
  keyPairs: Set<string>;
  images: Image[];
  parameters: Map<string, string>;
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
