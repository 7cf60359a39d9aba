/**
 * How long things take. `zero` makes every API call and stack step immediate
 * (unit tests); `aws` approximates AWS so that progress output, polling and
 * benchmarks see realistic timing. A custom profile can be passed in whole, and
 * single operations can be given their own API latency on top of either
 * (`withOpLatency`).
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

/** Milliseconds: a fixed figure, or a `[min, max]` range drawn uniformly for each call. */
export type OpLatencyMs = number | readonly [min: number, max: number];

/** API latency for single operations, keyed `service:Action` (`ec2:CreateRoute`), overriding the profile's. */
export type OpLatency = Readonly<Record<string, OpLatencyMs>>;

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
      // Disjoint ranges: every describe answers faster than any mutating call.
      return READ.test(action) ? between(30, 80) : between(100, 300);
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

function checkMs(key: string, ms: OpLatencyMs): void {
  const ok = (n: number) => Number.isInteger(n) && n >= 0 && n <= 600_000;
  const valid = typeof ms === 'number' ? ok(ms) : ms.length === 2 && ok(ms[0]) && ok(ms[1]) && ms[0] <= ms[1];
  if (!valid) throw new RangeError(`latency for ${key} must be whole milliseconds from 0 to 600000, or a [min, max] range of them; got ${JSON.stringify(ms)}`);
}

/** `base`, except that the operations in `overrides` take the latency given there. */
export function withOpLatency(base: LatencyProfile, overrides: OpLatency, random: () => number): LatencyProfile {
  const entries = Object.entries(overrides);
  if (entries.length === 0) return base;
  for (const [key, ms] of entries) checkMs(key, ms);
  const table = new Map(entries);
  return {
    name: base.name,
    api(service, action) {
      const ms = table.get(`${service}:${action}`);
      if (ms === undefined) return base.api(service, action);
      return typeof ms === 'number' ? ms : Math.round(ms[0] + random() * (ms[1] - ms[0]));
    },
    resource: (type, phase) => base.resource(type, phase),
    changeSet: () => base.changeSet(),
    instanceShutdown: () => base.instanceShutdown(),
    healthCheck: () => base.healthCheck(),
    launchRetry: () => base.launchRetry(),
  };
}
