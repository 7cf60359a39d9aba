import {
  AssociateAddressCommand,
  AuthorizeSecurityGroupIngressCommand,
  CreateRouteCommand,
  CreateTagsCommand,
  DescribeAddressesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  ReplaceRouteCommand,
  type RouteTable,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import pino from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent, STARTUP_WINDOW_MS, decideRoute } from '../src/agent.js';
import type { Config } from '../src/config.js';
import { Kernel } from '../src/kernel.js';
import { FakeHost } from './support/fake-host.js';
import { FakeClock, awsError, fakeAwsEnv, logCapture } from './support/harness.js';
import { CONFIG as BASE_CONFIG, IDENTITY } from './support/fixtures.js';

const ME = IDENTITY;

const CONFIG: Config = { ...BASE_CONFIG, ha: false };

const OTHER_ENI = 'eni-0ddddddddddddddd2';

function table(id: string, opts: { az?: string; override?: string; route?: 'missing' | 'me' | 'other' | 'blackhole'; owner?: string; ownerSince?: string } = {}): RouteTable {
  const tags = [
    { Key: 'hanat:stack', Value: 'prod' },
    { Key: 'network', Value: 'private' },
    { Key: 'hanat:az', Value: opts.az ?? 'us-east-1a' },
    ...(opts.override ? [{ Key: 'hanat:override', Value: opts.override }] : []),
    ...(opts.owner ? [{ Key: 'hanat:owner', Value: opts.owner }] : []),
    ...(opts.ownerSince ? [{ Key: 'hanat:owner-since', Value: opts.ownerSince }] : []),
  ];
  const local = { DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local', State: 'active' as const };
  const route = opts.route ?? 'other';
  const def =
    route === 'missing'
      ? []
      : [
          {
            DestinationCidrBlock: '0.0.0.0/0',
            NetworkInterfaceId: route === 'me' ? ME.eniId : OTHER_ENI,
            State: route === 'blackhole' ? ('blackhole' as const) : ('active' as const),
          },
        ];
  return { RouteTableId: id, VpcId: ME.vpcId, Tags: tags, Routes: [local, ...def] };
}

const ec2Mock = mockClient(EC2Client);
let host: FakeHost;
let clock: FakeClock;
let logs: ReturnType<typeof logCapture>;
let stop: AbortController;
let running: Promise<number> | undefined;

beforeAll(fakeAwsEnv);
beforeEach(() => {
  ec2Mock.reset();
  host = new FakeHost();
  clock = new FakeClock();
  logs = logCapture();
  stop = new AbortController();
  running = undefined;
  // Defaults: source/dest check on, no EIP, one table pointing elsewhere; every mutation succeeds.
  ec2Mock.on(DescribeInstanceAttributeCommand).resolves({ SourceDestCheck: { Value: true } });
  ec2Mock.on(ModifyInstanceAttributeCommand).resolves({});
  ec2Mock.on(DescribeAddressesCommand).resolves({ Addresses: [] });
  ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1')] });
  ec2Mock.on(ReplaceRouteCommand).resolves({});
  ec2Mock.on(CreateRouteCommand).resolves({ Return: true });
  ec2Mock.on(CreateTagsCommand).resolves({});
  ec2Mock.on(AssociateAddressCommand).resolves({ AssociationId: 'eipassoc-0123456789abcdef0' });
});
afterEach(async () => {
  stop.abort();
  if (running) await running;
});

/** Starts the agent's loop; `running` resolves with its exit code. */
function startAgent(config: Partial<Config> = {}, freshConnections?: () => void): void {
  const log = pino({ level: 'debug' }, logs.stream);
  const kernel = new Kernel({ exec: host.exec, fs: host.fs, log: log.child({ component: 'kernel' }) });
  const ec2 = new EC2Client({ region: 'us-east-1' });
  const agent = new Agent({ ...CONFIG, ...config }, ME, { ec2, kernel, log, clock, random: () => 0, freshConnections });
  running = agent.run(stop.signal);
}

/** The EC2 commands sent so far, by name. */
function sent(): string[] {
  return ec2Mock.calls().map((c) => (c.args[0] as { constructor: { name: string } }).constructor.name.replace(/Command$/, ''));
}

function inputs<T>(cmd: new (...a: never[]) => unknown): T[] {
  return ec2Mock.commandCalls(cmd as never).map((c) => c.args[0].input as T);
}

describe('start-up', () => {
  it('makes the kernel a NAT, disables source/dest check, then claims routes, in that order', async () => {
    startAgent();
    await clock.idle();
    expect(sent()).toEqual(['DescribeInstanceAttribute', 'ModifyInstanceAttribute', 'DescribeAddresses', 'DescribeRouteTables', 'ReplaceRoute', 'CreateTags']);
    const events = logs.events();
    expect(events.indexOf('kernel.configured')).toBeLessThan(events.indexOf('srcdst.disabled'));
    expect(events.indexOf('srcdst.disabled')).toBeLessThan(events.indexOf('route.claimed'));
    expect(host.sysctls.get('net.ipv4.ip_forward')).toBe('1');
    expect(inputs(ModifyInstanceAttributeCommand)).toEqual([{ InstanceId: ME.instanceId, SourceDestCheck: { Value: false } }]);
    expect(events).toContain('agent.ready');
  });

  it('with --skip-srcdst (testing only) leaves source/dest check alone, warns, and still claims the routes', async () => {
    startAgent({ skipSourceDest: true });
    await clock.idle();
    expect(sent()).not.toContain('ModifyInstanceAttribute');
    expect(sent()).not.toContain('DescribeInstanceAttribute');
    expect(logs.lines.find((l) => l.event === 'srcdst.skipped')).toMatchObject({ level: 40, durationMs: expect.any(Number) });
    expect(sent()).toContain('ReplaceRoute');
  });

  it('gives every start-up step its durationMs, including the ones that change nothing', async () => {
    startAgent();
    await clock.idle();
    for (const event of ['kernel.configured', 'srcdst.disabled', 'eip.none', 'route.claimed', 'route.owner_tagged']) {
      expect(logs.lines.find((l) => l.event === event), event).toMatchObject({ durationMs: expect.any(Number) });
    }
  });

  it('skips ModifyInstanceAttribute when source/dest check is already off', async () => {
    ec2Mock.on(DescribeInstanceAttributeCommand).resolves({ SourceDestCheck: { Value: false } });
    startAgent();
    await clock.idle();
    expect(sent()).not.toContain('ModifyInstanceAttribute');
    expect(logs.events()).toContain('srcdst.already_disabled');
    expect(sent()).toContain('ReplaceRoute');
  });

  it('claims no route while the kernel is not a NAT', async () => {
    host.nftBroken = 'Error: Could not process rule: Operation not supported';
    startAgent();
    await clock.idle();
    expect(sent()).not.toContain('ReplaceRoute');
    expect(sent()).not.toContain('CreateRoute');
    expect(logs.events()).toContain('kernel.failed');
  });

  it('claims no route while source/dest check is still on', async () => {
    ec2Mock.on(ModifyInstanceAttributeCommand).rejects(awsError('UnauthorizedOperation', 403));
    startAgent();
    await clock.idle();
    await clock.advance(300_000);
    expect(sent().filter((s) => s.endsWith('Route'))).toEqual([]);
    expect(logs.lines.find((l) => l.event === 'aws.denied')).toMatchObject({ action: 'ModifyInstanceAttribute', resource: ME.instanceId });
  });

  it('replaces an existing default route, targeting the primary network interface', async () => {
    startAgent();
    await clock.idle();
    expect(inputs(ReplaceRouteCommand)).toEqual([{ RouteTableId: 'rtb-0aaaaaaaaaaaaaaa1', DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: ME.eniId }]);
    expect(sent()).not.toContain('CreateRoute');
    const claimed = logs.lines.find((l) => l.event === 'route.claimed')!;
    expect(claimed).toMatchObject({ routeTableId: 'rtb-0aaaaaaaaaaaaaaa1', action: 'replaced', previous: OTHER_ENI });
    expect(typeof claimed.durationMs).toBe('number');
  });

  it('creates the default route when the table has none', async () => {
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', { route: 'missing' })] });
    startAgent();
    await clock.idle();
    expect(inputs(CreateRouteCommand)).toEqual([{ RouteTableId: 'rtb-0aaaaaaaaaaaaaaa1', DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: ME.eniId }]);
    expect(sent()).not.toContain('ReplaceRoute');
    expect(logs.lines.find((l) => l.event === 'route.claimed')).toMatchObject({ action: 'created', reason: 'missing' });
  });

  it.each([
    ['InvalidRoute.NotFound', awsError('InvalidRoute.NotFound')],
    ['InvalidParameterValue "no route defined" (what EC2 really answers)', awsError('InvalidParameterValue', 400, "There is no route defined for '0.0.0.0/0' in the route table. Use CreateRoute instead.")],
  ])('falls back to CreateRoute when the route vanished between look and replace: %s', async (_what, err) => {
    ec2Mock.on(ReplaceRouteCommand).rejects(err);
    startAgent();
    await clock.idle();
    expect(sent().filter((s) => s.endsWith('Route'))).toEqual(['ReplaceRoute', 'CreateRoute']);
    expect(logs.lines.find((l) => l.event === 'route.claimed')).toMatchObject({ action: 'created' });
  });

  it('replaces after all when another NAT created the route first (RouteAlreadyExists)', async () => {
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', { route: 'missing' })] });
    ec2Mock.on(CreateRouteCommand).rejects(awsError('RouteAlreadyExists'));
    startAgent();
    await clock.idle();
    const routeCalls = sent().filter((s) => s.endsWith('Route'));
    expect(routeCalls).toEqual(['CreateRoute', 'ReplaceRoute']);
    expect(inputs(ReplaceRouteCommand)[0]).toMatchObject({ NetworkInterfaceId: ME.eniId });
    expect(logs.lines.find((l) => l.event === 'route.claimed')).toMatchObject({ action: 'replaced' });
  });

  it('leaves a table pinned with hanat:override to another AZ, and takes one pinned to its own', async () => {
    ec2Mock.on(DescribeRouteTablesCommand).resolves({
      RouteTables: [
        table('rtb-0aaaaaaaaaaaaaaa1', { override: 'us-east-1b' }),
        table('rtb-0aaaaaaaaaaaaaaa2'),
        table('rtb-0aaaaaaaaaaaaaaa3', { az: 'us-east-1c', override: 'us-east-1a' }),
        table('rtb-0aaaaaaaaaaaaaaa4', { az: 'us-east-1b' }),
      ],
    });
    startAgent();
    await clock.idle();
    expect(inputs<{ RouteTableId: string }>(ReplaceRouteCommand).map((i) => i.RouteTableId).sort()).toEqual(['rtb-0aaaaaaaaaaaaaaa2', 'rtb-0aaaaaaaaaaaaaaa3']);
    expect(logs.lines.find((l) => l.event === 'route.skipped_override')).toMatchObject({ routeTableId: 'rtb-0aaaaaaaaaaaaaaa1', override: 'us-east-1b' });
  });

  it('writes hanat:owner, hanat:owner-since and hanat:owner-reason own-az for the tables it claimed, in one call', async () => {
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1'), table('rtb-0aaaaaaaaaaaaaaa2', { route: 'missing' })] });
    startAgent();
    await clock.idle();
    expect(inputs(CreateTagsCommand)).toEqual([
      {
        Resources: ['rtb-0aaaaaaaaaaaaaaa1', 'rtb-0aaaaaaaaaaaaaaa2'],
        Tags: [
          { Key: 'hanat:owner', Value: ME.instanceId },
          { Key: 'hanat:owner-since', Value: new Date(clock.now()).toISOString() },
          { Key: 'hanat:owner-reason', Value: 'own-az' },
        ],
      },
    ]);
  });

  it('records manual-failover as the reason for another AZ\'s table pinned to its AZ', async () => {
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa3', { az: 'us-east-1c', override: 'us-east-1a' })] });
    startAgent();
    await clock.idle();
    expect(inputs<{ Resources: string[]; Tags: { Key: string; Value: string }[] }>(CreateTagsCommand)).toEqual([
      expect.objectContaining({ Resources: ['rtb-0aaaaaaaaaaaaaaa3'], Tags: expect.arrayContaining([{ Key: 'hanat:owner-reason', Value: 'manual-failover' }]) }),
    ]);
  });

  it('does not touch a route that already points at it, nor its owner tags', async () => {
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', { route: 'me', owner: ME.instanceId, ownerSince: '2029-01-01T00:00:00.000Z' })] });
    startAgent();
    await clock.idle();
    expect(sent()).not.toContain('ReplaceRoute');
    expect(sent()).not.toContain('CreateTags');
    expect(logs.events()).toContain('route.kept');
  });

  it('associates the AZ Elastic IP to the primary interface before claiming routes', async () => {
    ec2Mock.on(DescribeAddressesCommand).resolves({
      Addresses: [{ AllocationId: 'eipalloc-0123456789abcdef0', PublicIp: '198.51.100.7', AssociationId: 'eipassoc-0aaaaaaaaaaaaaaa1', NetworkInterfaceId: OTHER_ENI }],
    });
    startAgent();
    await clock.idle();
    expect(inputs(DescribeAddressesCommand)).toEqual([
      {
        Filters: [
          { Name: 'tag:hanat:stack', Values: ['prod'] },
          { Name: 'tag:hanat:az', Values: ['us-east-1a'] },
        ],
      },
    ]);
    expect(inputs(AssociateAddressCommand)).toEqual([
      { AllocationId: 'eipalloc-0123456789abcdef0', NetworkInterfaceId: ME.eniId, PrivateIpAddress: ME.privateIp, AllowReassociation: true },
    ]);
    expect(sent().indexOf('AssociateAddress')).toBeLessThan(sent().indexOf('ReplaceRoute'));
    expect(logs.lines.find((l) => l.event === 'eip.associated')).toMatchObject({ publicIp: '198.51.100.7', previous: OTHER_ENI });
  });

  it('drops the SDK connections right after associating the EIP (the public IP they came from is gone), and only then', async () => {
    ec2Mock.on(DescribeAddressesCommand).resolves({ Addresses: [{ AllocationId: 'eipalloc-0123456789abcdef0', PublicIp: '198.51.100.7' }] });
    const dropped: number[] = [];
    startAgent({}, () => dropped.push(sent().length));
    await clock.idle();
    expect(dropped).toEqual([sent().indexOf('AssociateAddress') + 1]);
    expect(sent().indexOf('ReplaceRoute')).toBeGreaterThan(dropped[0]! - 1);
    // Later checks find the EIP on this interface: nothing to associate, nothing to drop.
    ec2Mock.on(DescribeAddressesCommand).resolves({
      Addresses: [{ AllocationId: 'eipalloc-0123456789abcdef0', PublicIp: '198.51.100.7', AssociationId: 'eipassoc-0123456789abcdef0', NetworkInterfaceId: ME.eniId }],
    });
    for (let i = 0; i < 3; i++) await clock.advance(300_000);
    expect(dropped).toHaveLength(1);
  });

  it('skips AssociateAddress when the EIP is already on its interface', async () => {
    ec2Mock.on(DescribeAddressesCommand).resolves({
      Addresses: [{ AllocationId: 'eipalloc-0123456789abcdef0', PublicIp: '198.51.100.7', AssociationId: 'eipassoc-0aaaaaaaaaaaaaaa1', NetworkInterfaceId: ME.eniId }],
    });
    startAgent();
    await clock.idle();
    expect(sent()).not.toContain('AssociateAddress');
    expect(logs.events()).toContain('eip.kept');
  });
});

describe('failures', () => {
  it('retries throttling with backoff and claims the routes once EC2 answers', async () => {
    ec2Mock.on(DescribeRouteTablesCommand).rejectsOnce(awsError('RequestLimitExceeded')).rejectsOnce(awsError('InternalError', 500)).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1')] });
    startAgent();
    await clock.idle();
    expect(logs.lines.filter((l) => l.event === 'aws.retry').map((l) => l.code)).toEqual(['RequestLimitExceeded']);
    expect(sent()).not.toContain('ReplaceRoute');
    await clock.advance(clock.nextWakeIn()!);
    expect(logs.lines.filter((l) => l.event === 'aws.retry').map((l) => l.code)).toEqual(['RequestLimitExceeded', 'InternalError']);
    await clock.advance(clock.nextWakeIn()!);
    expect(sent()).toContain('ReplaceRoute');
    expect(logs.events()).toContain('route.claimed');
  });

  it('logs AccessDenied with action and resource, keeps running and retries slowly once the start-up window is over', async () => {
    ec2Mock.on(ReplaceRouteCommand).rejects(awsError('UnauthorizedOperation', 403));
    startAgent();
    await clock.idle();
    // Inside the start-up window a denial may be the new instance profile: retried fast.
    expect(logs.lines.find((l) => l.event === 'aws.not_yet')).toMatchObject({ action: 'ReplaceRoute', code: 'UnauthorizedOperation' });
    expect(logs.events()).not.toContain('aws.denied');
    await clock.advance(STARTUP_WINDOW_MS);
    while (!logs.events().includes('aws.denied')) await clock.advance(clock.nextWakeIn()!);
    const denied = logs.lines.find((l) => l.event === 'aws.denied')!;
    expect(denied).toMatchObject({ action: 'ReplaceRoute', resource: 'rtb-0aaaaaaaaaaaaaaa1', code: 'UnauthorizedOperation', level: 50 });
    expect(denied.retryInMs as number).toBeGreaterThanOrEqual(30_000);
    // Well past maxFailures identical denials: still running, still retrying.
    for (let i = 0; i < 6; i++) await clock.advance(300_000);
    expect(logs.lines.filter((l) => l.event === 'aws.denied').length).toBeGreaterThanOrEqual(6);
    expect(logs.events()).not.toContain('agent.giving_up');
    expect(ec2Mock.commandCalls(ReplaceRouteCommand).length).toBeGreaterThanOrEqual(6);
  });

  it.each([
    ['InvalidParameterValue on CreateTags', 'CreateTags', awsError('InvalidParameterValue', 400, 'Value (hanat:owner) for parameter key is invalid')],
    ['InvalidRouteTableID.NotFound on ReplaceRoute', 'ReplaceRoute', awsError('InvalidRouteTableID.NotFound', 400, "The routeTable ID 'rtb-0aaaaaaaaaaaaaaa1' does not exist")],
  ] as const)('logs any other error AWS answers (%s) with action and resource, keeps running and retries slowly', async (_what, action, err) => {
    if (action === 'CreateTags') ec2Mock.on(CreateTagsCommand).rejects(err);
    else ec2Mock.on(ReplaceRouteCommand).rejects(err);
    startAgent({ maxFailures: 3 });
    const exit = running!;
    let exited = false;
    void exit.then(() => (exited = true));
    await clock.idle();
    const rejected = logs.lines.find((l) => l.event === 'aws.rejected')!;
    expect(rejected).toMatchObject({ action, resource: 'rtb-0aaaaaaaaaaaaaaa1', code: err.name, level: 50 });
    expect(rejected.retryInMs as number).toBeGreaterThanOrEqual(30_000);
    expect(rejected.msg).toMatch(/would again after a restart; check the resource named/);
    // Well past maxFailures identical answers: still running, still retrying.
    for (let i = 0; i < 6; i++) await clock.advance(300_000);
    expect(logs.lines.filter((l) => l.event === 'aws.rejected').length).toBeGreaterThanOrEqual(6);
    expect(logs.events()).not.toContain('agent.giving_up');
    expect(logs.events()).not.toContain('routes.failed');
    expect(exited).toBe(false);
  });

  it('holds the routes while the EIP cannot be associated, then says so loudly and claims them when the start-up window ends', async () => {
    ec2Mock.on(DescribeAddressesCommand).resolves({ Addresses: [{ AllocationId: 'eipalloc-0123456789abcdef0', PublicIp: '198.51.100.7' }] });
    ec2Mock.on(AssociateAddressCommand).rejects(awsError('InvalidAllocationID.NotFound', 400, "The allocation ID 'eipalloc-0123456789abcdef0' does not exist"));
    startAgent();
    await clock.idle();
    expect(logs.lines.find((l) => l.event === 'aws.rejected')).toMatchObject({ action: 'AssociateAddress', resource: 'eipalloc-0123456789abcdef0' });
    await clock.advance(STARTUP_WINDOW_MS - 1_000);
    expect(sent()).not.toContain('ReplaceRoute');
    await clock.advance(1_000);
    const loud = logs.lines.find((l) => l.event === 'eip.unavailable')!;
    expect(loud).toMatchObject({ level: 50, az: 'us-east-1a' });
    expect(loud.msg).toContain("this AZ's traffic leaves from the instance's own public IP, not the Elastic IP");
    expect(sent()).toContain('ReplaceRoute');
  });

  it.each([
    ['InvalidInstanceID.NotFound on its own instance', DescribeInstanceAttributeCommand, awsError('InvalidInstanceID.NotFound', 400, "The instance ID 'i-0123456789abcdef0' does not exist")],
    ['UnauthorizedOperation from a new instance profile', DescribeInstanceAttributeCommand, awsError('UnauthorizedOperation', 403)],
    ['InvalidNetworkInterfaceID.NotFound on its own interface', ReplaceRouteCommand, awsError('InvalidNetworkInterfaceID.NotFound', 400, "The networkInterface ID 'eni-0ccccccccccccccc1' does not exist")],
  ] as const)('takes %s at start-up for eventual consistency: retries within a second and claims the routes', async (_what, command, err) => {
    ec2Mock.on(command as typeof ReplaceRouteCommand).rejectsOnce(err).rejectsOnce(err).resolves({ SourceDestCheck: { Value: true } } as never);
    startAgent();
    await clock.idle();
    const notYet = logs.lines.filter((l) => l.event === 'aws.not_yet');
    expect(notYet).toHaveLength(1);
    expect(notYet[0]).toMatchObject({ code: err.name, level: 40 });
    expect(notYet[0]!.retryInMs as number).toBeLessThanOrEqual(500);
    let waited = 0;
    while (!logs.events().includes('route.claimed')) {
      const next = clock.nextWakeIn()!;
      waited += next;
      await clock.advance(next);
    }
    expect(waited).toBeLessThan(2_000);
    expect(logs.events()).not.toContain('aws.denied');
    expect(logs.events()).not.toContain('aws.rejected');
  });

  it('claims no route before the EIP is associated: an association denied at first holds them, and they follow it', async () => {
    ec2Mock.on(DescribeAddressesCommand).resolves({ Addresses: [{ AllocationId: 'eipalloc-0123456789abcdef0', PublicIp: '198.51.100.7' }] });
    ec2Mock.on(AssociateAddressCommand).rejectsOnce(awsError('UnauthorizedOperation', 403)).rejectsOnce(awsError('UnauthorizedOperation', 403)).resolves({ AssociationId: 'eipassoc-0123456789abcdef0' });
    startAgent();
    await clock.idle();
    expect(sent()).toContain('AssociateAddress');
    expect(sent()).not.toContain('ReplaceRoute');
    while (!logs.events().includes('route.claimed')) await clock.advance(clock.nextWakeIn()!);
    expect(sent().lastIndexOf('AssociateAddress')).toBeLessThan(sent().indexOf('ReplaceRoute'));
    expect(logs.events().indexOf('eip.associated')).toBeLessThan(logs.events().indexOf('route.claimed'));
    expect(logs.events()).not.toContain('eip.unavailable');
  });

  it('exits 1 after maxFailures identical local failures (nft failing), so systemd restarts it', async () => {
    host.nftBroken = 'Error: Could not process rule: Operation not supported';
    startAgent({ maxFailures: 3 });
    const exit = running!;
    await clock.idle();
    await clock.advance(clock.nextWakeIn()!);
    clock.tick(clock.nextWakeIn()!);
    expect(await exit).toBe(1);
    expect(logs.lines.filter((l) => l.event === 'kernel.failed')).toHaveLength(3);
    expect(logs.events()).toContain('agent.giving_up');
  });

  it('stops cleanly on SIGTERM and says route handover is not done', async () => {
    startAgent();
    const exit = running!;
    await clock.idle();
    stop.abort();
    expect(await exit).toBe(0);
    expect(logs.lines.find((l) => l.event === 'agent.stopped')).toMatchObject({ handover: false });
  });
});

describe('the loop', () => {
  it('repairs a deleted NAT rule on the next tick and logs the drift', async () => {
    startAgent();
    await clock.idle();
    expect(clock.nextWakeIn()).toBe(CONFIG.intervalMs);
    host.hanat()!.rules = [];
    await clock.advance(CONFIG.intervalMs);
    expect(host.hanat()!.rules).toHaveLength(1);
    expect(logs.lines.find((l) => l.event === 'kernel.drift_repaired')).toMatchObject({ changes: ['nft: added the masquerade rule'] });
  });

  it('costs one DescribeRouteTables per route interval in steady state', async () => {
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', { route: 'me', owner: ME.instanceId })] });
    startAgent();
    await clock.idle();
    ec2Mock.resetHistory();
    for (let t = 0; t < 60_000; t += CONFIG.intervalMs) await clock.advance(CONFIG.intervalMs);
    expect(sent()).toEqual(['DescribeRouteTables', 'DescribeRouteTables']);
  });

  it('reclaims a route someone pointed elsewhere, and a blackholed one', async () => {
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', { route: 'me', owner: ME.instanceId })] });
    startAgent();
    await clock.idle();
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', { route: 'other', owner: ME.instanceId })] });
    await clock.advance(CONFIG.routeIntervalMs);
    expect(logs.lines.filter((l) => l.event === 'route.claimed').map((l) => l.reason)).toEqual(['elsewhere']);
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', { route: 'blackhole', owner: ME.instanceId })] });
    await clock.advance(CONFIG.routeIntervalMs);
    expect(logs.lines.filter((l) => l.event === 'route.claimed').map((l) => l.reason)).toEqual(['elsewhere', 'blackhole']);
  });

  it('takes its table back once a hanat:override pin to another AZ is removed, though the other NAT claimed it later', async () => {
    startAgent();
    await clock.idle();
    expect(logs.lines.filter((l) => l.event === 'route.claimed').map((l) => l.reason)).toEqual(['boot']);
    // A manual failover pins the table to us-east-1b and points it at that AZ's NAT.
    const peer = { route: 'other' as const, owner: 'i-0fffffffffffffff1', ownerSince: new Date(clock.now() + 1_000).toISOString() };
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', { ...peer, override: 'us-east-1b' })] });
    await clock.advance(CONFIG.routeIntervalMs);
    expect(logs.lines.find((l) => l.event === 'route.skipped_override')).toMatchObject({ routeTableId: 'rtb-0aaaaaaaaaaaaaaa1', override: 'us-east-1b' });
    expect(ec2Mock.commandCalls(ReplaceRouteCommand)).toHaveLength(1);
    // The pin is removed (hanat failover --restore): this AZ's NAT serves the table again.
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', peer)] });
    await clock.advance(CONFIG.routeIntervalMs);
    expect(logs.lines.filter((l) => l.event === 'route.claimed').map((l) => l.reason)).toEqual(['boot', 'unpinned']);
    expect(logs.events()).not.toContain('route.yielded');
    expect(inputs<{ NetworkInterfaceId: string }>(ReplaceRouteCommand).at(-1)?.NetworkInterfaceId).toBe(ME.eniId);
  });

  // hanat failover pinned the table to us-east-1b and hanat failover --restore unpinned it
  // before this agent's next route check: it never saw the pin, only a newer owner.
  it.each([
    ['a NAT of another AZ (a failover undone between two checks)', { az: 'us-east-1b', state: 'running' }, 'owner-elsewhere'],
    ['a NAT that is gone', { az: 'us-east-1a', state: 'terminated' }, 'owner-elsewhere'],
    ['a newer NAT of this AZ (a replacement)', { az: 'us-east-1a', state: 'running' }, undefined],
  ] as const)('takes its table back from a newer owner only when that owner is not a live NAT of its AZ: %s', async (_, owner, reclaim) => {
    startAgent();
    await clock.idle();
    const peer = { route: 'other' as const, owner: 'i-0fffffffffffffff1', ownerSince: new Date(clock.now() + 1_000).toISOString() };
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', peer)] });
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [{ InstanceId: peer.owner, State: { Name: owner.state }, Placement: { AvailabilityZone: owner.az } }] }],
    });
    await clock.advance(CONFIG.routeIntervalMs);
    expect(inputs<{ InstanceIds: string[] }>(DescribeInstancesCommand)).toEqual([{ InstanceIds: [peer.owner] }]);
    const reasons = logs.lines.filter((l) => l.event === 'route.claimed').map((l) => l.reason);
    if (reclaim) {
      expect(reasons).toEqual(['boot', reclaim]);
      expect(inputs<{ NetworkInterfaceId: string }>(ReplaceRouteCommand).at(-1)?.NetworkInterfaceId).toBe(ME.eniId);
    } else {
      expect(reasons).toEqual(['boot']);
      expect(logs.lines.find((l) => l.event === 'route.yielded')).toMatchObject({ routeTableId: 'rtb-0aaaaaaaaaaaaaaa1', owner: peer.owner });
    }
  });

  it("places the newer owner by its hanat:az tag before its placement, as its own AZ may come from that tag", async () => {
    startAgent();
    await clock.idle();
    const peer = { route: 'other' as const, owner: 'i-0fffffffffffffff1', ownerSince: new Date(clock.now() + 1_000).toISOString() };
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', peer)] });
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [
        { Instances: [{ InstanceId: peer.owner, State: { Name: 'running' }, Placement: { AvailabilityZone: 'us-east-1b' }, Tags: [{ Key: 'hanat:az', Value: 'us-east-1a' }] }] },
      ],
    });
    await clock.advance(CONFIG.routeIntervalMs);
    expect(logs.lines.filter((l) => l.event === 'route.claimed').map((l) => l.reason)).toEqual(['boot']);
    expect(logs.events()).toContain('route.yielded');
  });

  it('looks a newer owner up once per claim, not at every route check', async () => {
    startAgent();
    await clock.idle();
    const peer = { route: 'other' as const, owner: 'i-0fffffffffffffff1', ownerSince: new Date(clock.now() + 1_000).toISOString() };
    ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', peer)] });
    ec2Mock.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [{ InstanceId: peer.owner, State: { Name: 'running' }, Placement: { AvailabilityZone: 'us-east-1a' } }] }],
    });
    for (let i = 0; i < 4; i++) await clock.advance(CONFIG.routeIntervalMs);
    expect(ec2Mock.commandCalls(DescribeInstancesCommand)).toHaveLength(1);
    expect(logs.lines.filter((l) => l.event === 'route.claimed').map((l) => l.reason)).toEqual(['boot']);
  });

  it('leaves the route with a newer owner it cannot look up, and goes on serving its other tables', async () => {
    startAgent();
    await clock.idle();
    const peer = { route: 'other' as const, owner: 'i-0fffffffffffffff1', ownerSince: new Date(clock.now() + 1_000).toISOString() };
    ec2Mock.on(DescribeRouteTablesCommand).resolves({
      RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', peer), table('rtb-0aaaaaaaaaaaaaaa3', { az: 'us-east-1c', override: 'us-east-1a', route: 'blackhole' })],
    });
    ec2Mock.on(DescribeInstancesCommand).rejects(awsError('UnauthorizedOperation', 403));
    await clock.advance(CONFIG.routeIntervalMs);
    expect(logs.lines.find((l) => l.event === 'route.owner_unknown')).toMatchObject({ routeTableId: 'rtb-0aaaaaaaaaaaaaaa1', owner: peer.owner });
    expect(logs.events()).not.toContain('aws.denied');
    expect(logs.lines.filter((l) => l.event === 'route.claimed').map((l) => [l.routeTableId, l.reason])).toEqual([
      ['rtb-0aaaaaaaaaaaaaaa1', 'boot'],
      ['rtb-0aaaaaaaaaaaaaaa3', 'blackhole'],
    ]);
  });

  it('re-disables source/dest check when someone turns it back on', async () => {
    startAgent();
    await clock.idle();
    ec2Mock.resetHistory();
    for (let t = 0; t < CONFIG.recheckIntervalMs; t += CONFIG.routeIntervalMs) await clock.advance(CONFIG.routeIntervalMs);
    expect(sent()).toContain('ModifyInstanceAttribute');
    expect(logs.lines.filter((l) => l.event === 'srcdst.disabled').map((l) => l.drift)).toEqual([false, true]);
  });
});

describe('VPC CIDR refresh', () => {
  it('adds a new VPC CIDR to the NAT rule, and survives IMDS being unavailable', async () => {
    const { startFakeImds, defaultMetadata, MAC } = await import('./support/fake-imds.js');
    const { Imds } = await import('../src/imds.js');
    const fake = await startFakeImds(defaultMetadata());
    fake.metadata[`network/interfaces/macs/${MAC}/vpc-ipv4-cidr-blocks`] = '10.0.0.0/16';
    try {
      const log = pino({ level: 'debug' }, logs.stream);
      const kernel = new Kernel({ exec: host.exec, fs: host.fs, log });
      const imds = new Imds({ endpoint: fake.url, totalTimeoutMs: 200, maxAttempts: 1 });
      const agent = new Agent(CONFIG, { ...ME, mac: MAC }, { ec2: new EC2Client({ region: 'us-east-1' }), kernel, log, clock, imds, random: () => 0 });
      running = agent.run(stop.signal);
      await clock.idle();
      fake.metadata[`network/interfaces/macs/${MAC}/vpc-ipv4-cidr-blocks`] = '10.0.0.0/16\n100.64.0.0/16';
      fake.failNext(`/latest/meta-data/network/interfaces/macs/${MAC}/vpc-ipv4-cidr-blocks`, 404);
      await clock.advance(CONFIG.recheckIntervalMs);
      expect(logs.events()).toContain('imds.unavailable');
      expect(logs.events()).not.toContain('kernel.failed');
      expect(host.hanat()!.set!.elements).toEqual(['10.0.0.0/16']);
      await clock.advance(CONFIG.recheckIntervalMs);
      expect(logs.lines.find((l) => l.event === 'vpc.cidrs_changed')).toMatchObject({ to: ['10.0.0.0/16', '100.64.0.0/16'] });
      expect(host.hanat()!.set!.elements).toEqual(['10.0.0.0/16', '100.64.0.0/16']);
    } finally {
      stop.abort();
      await running;
      await fake.close();
    }
  });
});

describe('route decision', () => {
  const me = { instanceId: ME.instanceId, eniId: ME.eniId };
  const claimedAt = Date.parse('2030-01-01T00:00:00Z');

  it('takes every table at boot, even from a healthy peer', () => {
    expect(decideRoute(table('rtb-1', { route: 'other', owner: 'i-0fffffffffffffff1', ownerSince: '2030-01-02T00:00:00Z' }), me, undefined)).toMatchObject({ kind: 'claim', reason: 'boot' });
  });

  it('yields to a NAT of the same AZ that claimed the table after it did (a replacement)', () => {
    expect(decideRoute(table('rtb-1', { route: 'other', owner: 'i-0fffffffffffffff1', ownerSince: '2030-01-01T00:05:00Z' }), me, claimedAt)).toEqual({ kind: 'yield', owner: 'i-0fffffffffffffff1' });
  });

  it('reclaims when the recorded owner is older than its own claim', () => {
    expect(decideRoute(table('rtb-1', { route: 'other', owner: 'i-0fffffffffffffff1', ownerSince: '2029-12-31T00:00:00Z' }), me, claimedAt)).toMatchObject({ kind: 'claim', reason: 'elsewhere' });
  });

  it('keeps a route pointing at it and fixes a stale owner tag', () => {
    expect(decideRoute(table('rtb-1', { route: 'me', owner: 'i-0fffffffffffffff1' }), me, claimedAt)).toEqual({ kind: 'keep', fixOwnerTag: true });
  });
});

describe('VPC CIDR blocks in the security group', () => {
  const SG = 'sg-0123456789abcdef0';
  const group = (...cidrs: string[]) => ({
    GroupId: SG,
    IpPermissions: [{ IpProtocol: '-1', IpRanges: cidrs.map((CidrIp) => ({ CidrIp })) }],
    Tags: [{ Key: 'hanat:stack', Value: 'prod' }],
  });

  function startWithGroups(id: Partial<typeof ME>, imds?: unknown): void {
    const log = pino({ level: 'debug' }, logs.stream);
    const kernel = new Kernel({ exec: host.exec, fs: host.fs, log });
    const agent = new Agent(CONFIG, { ...ME, securityGroupIds: [SG], ...id }, { ec2: new EC2Client({ region: 'us-east-1' }), kernel, log, clock, random: () => 0, ...(imds ? { imds: imds as never } : {}) });
    running = agent.run(stop.signal);
  }

  it('admits a VPC block the stack group lacks, after the routes are claimed, and only that one', async () => {
    ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [group('10.0.0.0/16')] });
    ec2Mock.on(AuthorizeSecurityGroupIngressCommand).resolves({ Return: true });
    startWithGroups({ vpcCidrs: ['10.0.0.0/16', '100.64.0.0/16'] });
    await clock.idle();
    expect(sent().slice(-2)).toEqual(['DescribeSecurityGroups', 'AuthorizeSecurityGroupIngress']);
    expect(sent().indexOf('ReplaceRoute')).toBeLessThan(sent().indexOf('DescribeSecurityGroups'));
    expect(inputs(DescribeSecurityGroupsCommand)).toEqual([
      { Filters: [{ Name: 'group-id', Values: [SG] }, { Name: 'tag:hanat:stack', Values: ['prod'] }] },
    ]);
    expect(inputs(AuthorizeSecurityGroupIngressCommand)).toEqual([
      { GroupId: SG, IpPermissions: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '100.64.0.0/16', Description: 'hanat agent: a VPC CIDR block added after deploy' }] }] },
    ]);
    expect(logs.lines.find((l) => l.event === 'ingress.admitted')).toMatchObject({ groupId: SG, cidr: '100.64.0.0/16', already: false });
    expect(logs.events().indexOf('agent.ready')).toBeLessThan(logs.events().indexOf('ingress.admitted'));
  });

  it('writes nothing when the group already admits every block (a wider rule counts), and checks again each recheck interval', async () => {
    ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [group('10.0.0.0/8')] });
    startWithGroups({ vpcCidrs: ['10.0.0.0/16', '10.1.0.0/16'] });
    await clock.idle();
    await clock.advance(CONFIG.recheckIntervalMs);
    expect(sent().filter((c) => c === 'DescribeSecurityGroups')).toHaveLength(2);
    expect(sent()).not.toContain('AuthorizeSecurityGroupIngress');
  });

  it('takes a rule another NAT added first (InvalidPermission.Duplicate) as done', async () => {
    ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [group('10.0.0.0/16')] });
    ec2Mock.on(AuthorizeSecurityGroupIngressCommand).rejects(awsError('InvalidPermission.Duplicate', 400));
    startWithGroups({ vpcCidrs: ['10.0.0.0/16', '100.64.0.0/16'] });
    await clock.idle();
    expect(logs.lines.find((l) => l.event === 'ingress.admitted')).toMatchObject({ cidr: '100.64.0.0/16', already: true });
    expect(logs.events()).not.toContain('aws.rejected');
  });

  it('admits a block at once when instance metadata first lists it, not a recheck interval later', async () => {
    const { startFakeImds, defaultMetadata, MAC } = await import('./support/fake-imds.js');
    const { Imds } = await import('../src/imds.js');
    const fake = await startFakeImds(defaultMetadata());
    fake.metadata[`network/interfaces/macs/${MAC}/vpc-ipv4-cidr-blocks`] = '10.0.0.0/16';
    // Throttled once at boot, so its own next run falls due after the kernel re-reads the blocks.
    ec2Mock.on(DescribeSecurityGroupsCommand).rejectsOnce(awsError('RequestLimitExceeded', 503)).resolves({ SecurityGroups: [group('10.0.0.0/16')] });
    ec2Mock.on(AuthorizeSecurityGroupIngressCommand).resolves({ Return: true });
    try {
      startWithGroups({ mac: MAC }, new Imds({ endpoint: fake.url, totalTimeoutMs: 200, maxAttempts: 1 }));
      await clock.idle();
      await clock.advance(1_000);
      expect(sent().filter((c) => c === 'DescribeSecurityGroups')).toHaveLength(2);
      expect(sent()).not.toContain('AuthorizeSecurityGroupIngress');
      fake.metadata[`network/interfaces/macs/${MAC}/vpc-ipv4-cidr-blocks`] = '10.0.0.0/16\n100.64.0.0/16';
      // The kernel task re-reads the blocks one recheck interval after start; the ingress
      // task's own run is due later than that, so only being woken makes it run now.
      await clock.advance(CONFIG.recheckIntervalMs - 1_000);
      expect(inputs<{ IpPermissions: { IpRanges: { CidrIp: string }[] }[] }>(AuthorizeSecurityGroupIngressCommand).map((i) => i.IpPermissions[0]!.IpRanges[0]!.CidrIp)).toEqual(['100.64.0.0/16']);
      expect(logs.events().indexOf('vpc.cidrs_changed')).toBeLessThan(logs.events().indexOf('ingress.admitted'));
    } finally {
      stop.abort();
      await running;
      await fake.close();
    }
  });

  it('warns once, and writes nothing, when none of its groups is the stack\'s', async () => {
    ec2Mock.on(DescribeSecurityGroupsCommand).resolves({ SecurityGroups: [] });
    startWithGroups({ vpcCidrs: ['10.0.0.0/16', '100.64.0.0/16'] });
    await clock.idle();
    await clock.advance(CONFIG.recheckIntervalMs);
    expect(logs.events().filter((e) => e === 'ingress.no_group')).toHaveLength(1);
    expect(sent()).not.toContain('AuthorizeSecurityGroupIngress');
  });
});
