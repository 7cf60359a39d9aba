/**
 * How long things take. `zero` makes every API call and stack step immediate
 * (unit tests); `aws` approximates AWS so that progress output, polling and
 * benchmarks see realistic timing. A custom profile can be passed in whole.
 */
export type Service = 'ec2' | 'autoscaling' | 'cloudformation' | 'ssm';

export interface LatencyProfile {
  readonly name: string;
  /** Milliseconds one API call of `service` `action` takes before it answers. */
  api(service: Service, action: string): number;
  /** Milliseconds CloudFormation takes to create, update or delete one resource of `type`. */
  resource(type: string, phase: 'create' | 'update' | 'delete'): number;
  /** Milliseconds a change set takes to compute (CREATE_PENDING → CREATE_COMPLETE). */
  changeSet(): number;
  /** Milliseconds an instance spends in shutting-down. */
  instanceShutdown(): number;
  /** Milliseconds before Auto Scaling notices an instance that died outside its control. */
  healthCheck(): number;
  /** Milliseconds Auto Scaling waits before retrying a failed launch. */
  launchRetry(): number;
}

export type LatencyName = 'zero' | 'aws';

const READ = /^(Describe|Get|List|Validate)/;

/** Rough AWS CloudFormation times per resource type, in ms, scaled to about a tenth so a lab deploy takes seconds. */
const RESOURCE_MS: Record<string, number> = {
  'AWS::EC2::VPC': 1500,
  'AWS::EC2::InternetGateway': 1200,
  'AWS::EC2::VPCGatewayAttachment': 1500,
  'AWS::EC2::Subnet': 600,
  'AWS::EC2::RouteTable': 300,
  'AWS::EC2::Route': 300,
  'AWS::EC2::SubnetRouteTableAssociation': 300,
  'AWS::EC2::SecurityGroup': 600,
  'AWS::EC2::SecurityGroupIngress': 200,
  'AWS::EC2::SecurityGroupEgress': 200,
  'AWS::EC2::EIP': 300,
  'AWS::EC2::EIPAssociation': 300,
  'AWS::EC2::LaunchTemplate': 300,
  'AWS::IAM::Role': 1500,
  'AWS::IAM::InstanceProfile': 3000,
  'AWS::IAM::Policy': 1000,
  'AWS::IAM::ManagedPolicy': 1000,
  'AWS::AutoScaling::AutoScalingGroup': 1000,
  'AWS::SSM::Parameter': 300,
};

export const zeroLatency: LatencyProfile = {
  name: 'zero',
  api: () => 0,
  resource: () => 0,
  changeSet: () => 0,
  instanceShutdown: () => 0,
  healthCheck: () => 0,
  launchRetry: () => 1000,
};

export function awsLatency(random: () => number = Math.random): LatencyProfile {
  const between = (lo: number, hi: number) => Math.round(lo + random() * (hi - lo));
  const jitter = (ms: number) => Math.round(ms * (0.75 + random() * 0.5));
  return {
    name: 'aws',
    api(service, action) {
      if (service === 'ssm') return between(20, 80);
      return READ.test(action) ? between(50, 150) : between(100, 300);
    },
    resource(type, phase) {
      const base = RESOURCE_MS[type] ?? 500;
      return jitter(phase === 'update' ? base / 2 : base);
    },
    changeSet: () => between(1000, 3000),
    instanceShutdown: () => between(1500, 3000),
    healthCheck: () => between(3000, 6000),
    launchRetry: () => 10_000,
  };
}

export function latencyProfile(spec: LatencyName | LatencyProfile | undefined, random: () => number): LatencyProfile {
  if (spec === undefined || spec === 'zero') return zeroLatency;
  if (spec === 'aws') return awsLatency(random);
  return spec;
}
