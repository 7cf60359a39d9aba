/**
 * A small, stateful fake of a deployed stack's NAT side, for `hanat status`
 * and `hanat failover`: private route tables with tags and a default route,
 * NAT instances, their Auto Scaling rows, Elastic IPs. Wired into the
 * aws-sdk-client-mock stubs of EC2 and Auto Scaling, so the real SDK client
 * and command objects are used up to send(). Route states follow EC2: a route
 * to a NAT that is stopped or gone is a blackhole.
 */
import {
  DescribeAutoScalingGroupsCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeScalingActivitiesCommand,
  type Activity,
  type AutoScalingClientResolvedConfig,
  type DescribeScalingActivitiesCommandInput,
  type DescribeAutoScalingInstancesCommandInput,
  type ServiceInputTypes as AsgInput,
  type ServiceOutputTypes as AsgOutput,
} from '@aws-sdk/client-auto-scaling';
import {
  CreateRouteCommand,
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeAddressesCommand,
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  EC2ServiceException,
  ReplaceRouteCommand,
  type CreateRouteCommandInput,
  type CreateTagsCommandInput,
  type DeleteTagsCommandInput,
  type DescribeInstanceStatusCommandInput,
  type DescribeInstancesCommandInput,
  type DescribeRouteTablesCommandInput,
  type EC2ClientResolvedConfig,
  type Filter,
  type ServiceInputTypes as Ec2Input,
  type ServiceOutputTypes as Ec2Output,
} from '@aws-sdk/client-ec2';
import type { AwsStub } from 'aws-sdk-client-mock';

type Ec2Stub = AwsStub<Ec2Input, Ec2Output, EC2ClientResolvedConfig>;
type AsgStub = AwsStub<AsgInput, AsgOutput, AutoScalingClientResolvedConfig>;

export interface FakeNat {
  instanceId: string;
  az: string;
  state: 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';
  eni: string;
  privateIp: string;
  publicIp: string | undefined;
  sourceDestCheck: boolean;
  launchTime: Date;
  health: 'HEALTHY' | 'UNHEALTHY';
  lifecycle: string;
  group: string;
  /** EC2's instance status check (DescribeInstanceStatus); `ok` unless set. */
  checks?: 'ok' | 'impaired' | 'initializing';
  /** True: no Auto Scaling group knows the instance (DescribeAutoScalingInstances leaves it out). */
  detached?: boolean;
}

export interface FakeTable {
  id: string;
  tags: Map<string, string>;
  /** The default route: a network interface, or another target id (igw-, tgw-, pcx-, eigw-), in the field EC2 uses for it; none when undefined. */
  route: { eni?: string; other?: string; forceState?: 'active' | 'blackhole' } | undefined;
}

export function ec2Error(name: string, message: string, status = 400): EC2ServiceException {
  return new EC2ServiceException({ name, message, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

/** The field of EC2's Route that holds a non-interface target, by the id's prefix. */
function otherTarget(id: string): Record<string, string> {
  if (id.startsWith('tgw-')) return { TransitGatewayId: id };
  if (id.startsWith('pcx-')) return { VpcPeeringConnectionId: id };
  if (id.startsWith('eigw-')) return { EgressOnlyInternetGatewayId: id };
  return { GatewayId: id };
}

export class FakeNatWorld {
  readonly nats: FakeNat[] = [];
  readonly tables: FakeTable[] = [];
  readonly eips: { allocationId: string; publicIp: string; az: string; eni?: string }[] = [];
  /** Scaling activities by group name, in any order (DescribeScalingActivities returns them newest first). */
  readonly activities = new Map<string, Activity[]>();
  private readonly throttled = new Map<string, number>();
  private readonly failing = new Map<string, { pass: number; err: Error }>();
  private seq = 0;

  constructor(
    readonly stack: string,
    readonly azs: string[],
  ) {}

  /** A healthy stack: one running NAT per AZ, each AZ's table routed to its own NAT and tagged as the agent tags it. */
  static healthy(stack: string, azs: string[]): FakeNatWorld {
    const w = new FakeNatWorld(stack, azs);
    azs.forEach((az, i) => {
      const nat = w.addNat(az);
      const t = w.addTable(az);
      t.route = { eni: nat.eni };
      t.tags.set('hanat:owner', nat.instanceId);
      t.tags.set('hanat:owner-since', new Date(Date.UTC(2026, 0, 10, 8, i)).toISOString());
      t.tags.set('hanat:owner-reason', 'own-az');
      w.eips.push({ allocationId: `eipalloc-${hex(i + 1, 17)}`, publicIp: `203.0.113.${10 + i}`, az, eni: nat.eni });
      nat.publicIp = `203.0.113.${10 + i}`;
    });
    return w;
  }

  addNat(az: string, o: Partial<FakeNat> = {}): FakeNat {
    const n = ++this.seq;
    const nat: FakeNat = {
      instanceId: `i-${hex(n, 17)}`,
      az,
      state: 'running',
      eni: `eni-${hex(n, 17)}`,
      privateIp: `10.20.${this.azs.indexOf(az)}.${10 + n}`,
      publicIp: undefined,
      sourceDestCheck: false,
      launchTime: new Date(Date.UTC(2026, 0, 10, 8, 0, n)),
      health: 'HEALTHY',
      lifecycle: 'InService',
      group: this.groupOf(az),
      ...o,
    };
    this.nats.push(nat);
    return nat;
  }

  /** The Auto Scaling group of an AZ's NAT. */
  groupOf(az: string): string {
    return `${this.stack}-Az${this.azs.indexOf(az) + 1}NatGroup`;
  }

  addTable(az: string): FakeTable {
    const t: FakeTable = {
      id: `rtb-${hex(this.tables.length + 1, 17)}`,
      tags: new Map([
        ['hanat:stack', this.stack],
        ['network', 'private'],
        ['hanat:az', az],
        ['Name', `${this.stack}-private-${az}`],
      ]),
      route: undefined,
    };
    this.tables.push(t);
    return t;
  }

  nat(az: string): FakeNat {
    return this.nats.find((n) => n.az === az)!;
  }

  table(az: string): FakeTable {
    return this.tables.find((t) => t.tags.get('hanat:az') === az)!;
  }

  /** The next `times` calls of `command` (e.g. `ReplaceRoute`) fail with EC2's throttling error. */
  throttle(command: string, times: number): void {
    this.throttled.set(command, times);
  }

  /** After `pass` more calls of `command` succeed, every later one fails with `err` (e.g. AccessDenied). */
  fail(command: string, err: Error, pass = 0): void {
    this.failing.set(command, { pass, err });
  }

  /** Undoes `fail`. */
  heal(command: string): void {
    this.failing.delete(command);
  }

  private gate(command: string): void {
    const failing = this.failing.get(command);
    if (failing && failing.pass-- <= 0) throw failing.err;
    const left = this.throttled.get(command) ?? 0;
    if (left > 0) {
      this.throttled.set(command, left - 1);
      throw ec2Error('RequestLimitExceeded', 'Request limit exceeded.', 503);
    }
  }

  private routeState(route: NonNullable<FakeTable['route']>): 'active' | 'blackhole' {
    if (route.forceState) return route.forceState;
    if (!route.eni) return 'active';
    const nat = this.nats.find((n) => n.eni === route.eni);
    return !nat || nat.state === 'running' || nat.state === 'pending' ? 'active' : 'blackhole';
  }

  private matches(tags: Map<string, string>, filters: Filter[] | undefined): boolean {
    return (filters ?? []).every((f) => !f.Name?.startsWith('tag:') || (f.Values ?? []).includes(tags.get(f.Name.slice(4)) ?? '\0'));
  }

  private tableById(id: string | undefined): FakeTable {
    const t = this.tables.find((x) => x.id === id);
    if (!t) throw ec2Error('InvalidRouteTableID.NotFound', `The routeTable ID '${id}' does not exist`);
    return t;
  }

  install(ec2: Ec2Stub, asg: AsgStub): void {
    ec2.on(DescribeRouteTablesCommand).callsFake((input: DescribeRouteTablesCommandInput) => {
      this.gate('DescribeRouteTables');
      return {
        RouteTables: this.tables
          .filter((t) => this.matches(t.tags, input.Filters))
          .map((t) => ({
            RouteTableId: t.id,
            VpcId: 'vpc-0aaaaaaaaaaaaaaa1',
            Tags: [...t.tags].map(([Key, Value]) => ({ Key, Value })),
            Routes: [
              { DestinationCidrBlock: '10.20.0.0/16', GatewayId: 'local', State: 'active', Origin: 'CreateRouteTable' },
              ...(t.route
                ? [{ DestinationCidrBlock: '0.0.0.0/0', ...(t.route.eni ? { NetworkInterfaceId: t.route.eni } : otherTarget(t.route.other ?? '')), State: this.routeState(t.route), Origin: 'CreateRoute' }]
                : []),
            ],
          })),
      };
    });
    ec2.on(DescribeInstancesCommand).callsFake((input: DescribeInstancesCommandInput) => {
      this.gate('DescribeInstances');
      const states = input.Filters?.find((f) => f.Name === 'instance-state-name')?.Values;
      const rows = this.nats.filter(
        (n) => this.matches(new Map([['hanat:stack', this.stack], ['hanat:az', n.az]]), input.Filters) && (!states || states.includes(n.state)),
      );
      return {
        Reservations: rows.map((n) => ({
          Instances: [
            {
              InstanceId: n.instanceId,
              State: { Name: n.state },
              Placement: { AvailabilityZone: n.az },
              PrivateIpAddress: n.privateIp,
              PublicIpAddress: n.publicIp,
              SourceDestCheck: n.sourceDestCheck,
              LaunchTime: n.launchTime,
              NetworkInterfaces: n.eni ? [{ NetworkInterfaceId: n.eni, Attachment: { DeviceIndex: 0 } }] : [],
              Tags: [
                { Key: 'hanat:stack', Value: this.stack },
                { Key: 'hanat:az', Value: n.az },
              ],
            },
          ],
        })),
      };
    });
    ec2.on(DescribeInstanceStatusCommand).callsFake((input: DescribeInstanceStatusCommandInput) => {
      this.gate('DescribeInstanceStatus');
      // Running instances only, as without IncludeAllInstances.
      const rows = this.nats.filter((n) => n.state === 'running' && (input.InstanceIds?.includes(n.instanceId) ?? true));
      return {
        InstanceStatuses: rows.map((n) => {
          const checks = n.checks ?? 'ok';
          const reach = { ok: 'passed', impaired: 'failed', initializing: 'initializing' }[checks];
          return {
            InstanceId: n.instanceId,
            AvailabilityZone: n.az,
            InstanceState: { Code: 16, Name: 'running' },
            InstanceStatus: { Status: checks, Details: [{ Name: 'reachability', Status: reach, ...(checks === 'impaired' ? { ImpairedSince: new Date(Date.UTC(2026, 0, 15, 12, 1)) } : {}) }] },
            SystemStatus: { Status: checks === 'initializing' ? 'initializing' : 'ok', Details: [{ Name: 'reachability', Status: checks === 'initializing' ? 'initializing' : 'passed' }] },
          };
        }),
      };
    });
    ec2.on(DescribeAddressesCommand).callsFake(() => {
      this.gate('DescribeAddresses');
      return {
        Addresses: this.eips.map((e) => ({
          AllocationId: e.allocationId,
          PublicIp: e.publicIp,
          NetworkInterfaceId: e.eni,
          InstanceId: this.nats.find((n) => n.eni === e.eni)?.instanceId,
          Tags: [
            { Key: 'hanat:stack', Value: this.stack },
            { Key: 'hanat:az', Value: e.az },
          ],
        })),
      };
    });
    ec2.on(CreateTagsCommand).callsFake((input: CreateTagsCommandInput) => {
      this.gate('CreateTags');
      for (const id of input.Resources ?? []) {
        const t = this.tableById(id);
        for (const tag of input.Tags ?? []) t.tags.set(tag.Key!, tag.Value ?? '');
      }
      return {};
    });
    ec2.on(DeleteTagsCommand).callsFake((input: DeleteTagsCommandInput) => {
      this.gate('DeleteTags');
      for (const id of input.Resources ?? []) {
        const t = this.tableById(id);
        for (const tag of input.Tags ?? []) if (tag.Value === undefined || t.tags.get(tag.Key!) === tag.Value) t.tags.delete(tag.Key!);
      }
      return {};
    });
    ec2.on(ReplaceRouteCommand).callsFake((input: CreateRouteCommandInput) => {
      this.gate('ReplaceRoute');
      const t = this.tableById(input.RouteTableId);
      if (!t.route) throw ec2Error('InvalidParameterValue', `There is no route defined for '${input.DestinationCidrBlock}' in the route table. Use CreateRoute instead.`);
      t.route = { eni: input.NetworkInterfaceId };
      return {};
    });
    ec2.on(CreateRouteCommand).callsFake((input: CreateRouteCommandInput) => {
      this.gate('CreateRoute');
      const t = this.tableById(input.RouteTableId);
      if (t.route) throw ec2Error('RouteAlreadyExists', `The route identified by ${input.DestinationCidrBlock} already exists.`);
      t.route = { eni: input.NetworkInterfaceId };
      return { Return: true };
    });
    asg.on(DescribeAutoScalingGroupsCommand).callsFake((input: { Filters?: Filter[] }) => {
      this.gate('DescribeAutoScalingGroups');
      const stack = input.Filters?.find((f) => f.Name === 'tag:hanat:stack')?.Values;
      const groups = stack && !stack.includes(this.stack) ? [] : this.azs;
      return {
        AutoScalingGroups: groups.map((az) => ({
          AutoScalingGroupName: this.groupOf(az),
          MinSize: 1,
          MaxSize: 1,
          DesiredCapacity: 1,
          DefaultCooldown: 300,
          AvailabilityZones: [az],
          HealthCheckType: 'EC2',
          CreatedTime: new Date(Date.UTC(2026, 0, 10)),
          Tags: [
            { Key: 'hanat:stack', Value: this.stack, PropagateAtLaunch: true, ResourceId: this.groupOf(az), ResourceType: 'auto-scaling-group' },
            { Key: 'hanat:az', Value: az, PropagateAtLaunch: true, ResourceId: this.groupOf(az), ResourceType: 'auto-scaling-group' },
          ],
        })),
      };
    });
    asg.on(DescribeScalingActivitiesCommand).callsFake((input: DescribeScalingActivitiesCommandInput) => {
      this.gate('DescribeScalingActivities');
      const all = [...(this.activities.get(input.AutoScalingGroupName ?? '') ?? [])].sort((a, b) => b.StartTime!.getTime() - a.StartTime!.getTime());
      return { Activities: all.slice(0, input.MaxRecords ?? 100) };
    });
    asg.on(DescribeAutoScalingInstancesCommand).callsFake((input: DescribeAutoScalingInstancesCommandInput) => {
      this.gate('DescribeAutoScalingInstances');
      return {
        AutoScalingInstances: this.nats
          .filter((n) => !n.detached && (input.InstanceIds?.includes(n.instanceId) ?? true))
          .map((n) => ({
            InstanceId: n.instanceId,
            AutoScalingGroupName: n.group,
            AvailabilityZone: n.az,
            HealthStatus: n.health,
            LifecycleState: n.lifecycle,
            ProtectedFromScaleIn: false,
          })),
      };
    });
  }
}
