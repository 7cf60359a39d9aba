/**
 * The agent with HA on, against a mocked EC2 and one peer NAT (the HA runtime alone) on an
 * in-memory UDP network, all on one fake clock: what the agent asks EC2 and when.
 *
 * Two AZs: the peer in us-east-1b crashes in place (its heartbeats stop, EC2 still says
 * running). No third NAT can witness the silence, so the agent reads the peer's EC2 status
 * checks (DescribeInstanceStatus) while it is silent, and takes its table over once they
 * read impaired; never while every peer is heard.
 */
import {
  CreateTagsCommand,
  DescribeAddressesCommand,
  DescribeInstanceAttributeCommand,
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  ReplaceRouteCommand,
  type RouteTable,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import pino from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent, STATUS_POLL_MS } from '../src/agent.js';
import { Ha, type HaSettings } from '../src/ha/runtime.js';
import { Kernel } from '../src/kernel.js';
import { FakeHost } from './support/fake-host.js';
import { FakeClock, FakeUdpNetwork, fakeAwsEnv, logCapture } from './support/harness.js';
import { CONFIG as BASE_CONFIG, HA_SETTINGS, IDENTITY } from './support/fixtures.js';
import { probeAddress } from '../src/ha/peers.js';

const ME = IDENTITY;
const PEER = { instanceId: 'i-0fedcba9876543210', az: 'us-east-1b', privateIp: '10.0.1.10', eniId: 'eni-0ddddddddddddddd2' };

const CONFIG = BASE_CONFIG;

const SETTINGS = HA_SETTINGS;

function table(id: string, az: string, eni: string): RouteTable {
  return {
    RouteTableId: id,
    VpcId: ME.vpcId,
    Tags: [
      { Key: 'hanat:stack', Value: 'prod' },
      { Key: 'network', Value: 'private' },
      { Key: 'hanat:az', Value: az },
    ],
    Routes: [
      { DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local', State: 'active' },
      { DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: eni, State: 'active' },
    ],
  };
}

const instance = (n: { instanceId: string; az: string; privateIp: string; eniId: string }) => ({
  InstanceId: n.instanceId,
  PrivateIpAddress: n.privateIp,
  State: { Name: 'running' as const },
  Placement: { AvailabilityZone: n.az },
  Tags: [{ Key: 'hanat:az', Value: n.az }],
  NetworkInterfaces: [{ NetworkInterfaceId: n.eniId, Attachment: { DeviceIndex: 0 } }],
});

const ec2Mock = mockClient(EC2Client);
let clock: FakeClock;
let net: FakeUdpNetwork;
let logs: ReturnType<typeof logCapture>;
let stop: AbortController;
let running: Promise<number> | undefined;
let impaired: boolean;

beforeAll(fakeAwsEnv);
beforeEach(() => {
  ec2Mock.reset();
  clock = new FakeClock();
  net = new FakeUdpNetwork();
  logs = logCapture();
  stop = new AbortController();
  running = undefined;
  impaired = false;
  ec2Mock.on(DescribeInstanceAttributeCommand).resolves({ SourceDestCheck: { Value: false } });
  ec2Mock.on(DescribeAddressesCommand).resolves({ Addresses: [] });
  ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table('rtb-0aaaaaaaaaaaaaaa1', ME.az, ME.eniId), table('rtb-0aaaaaaaaaaaaaaa2', PEER.az, PEER.eniId)] });
  ec2Mock.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [instance({ ...ME, az: ME.az }), instance(PEER)] }] });
  ec2Mock.on(DescribeInstanceStatusCommand).callsFake(() => ({
    InstanceStatuses: [{ InstanceId: PEER.instanceId, InstanceState: { Name: 'running' }, InstanceStatus: { Status: impaired ? 'impaired' : 'ok' }, SystemStatus: { Status: 'ok' } }],
  }));
  ec2Mock.on(ReplaceRouteCommand).resolves({});
  ec2Mock.on(CreateTagsCommand).resolves({});
});
afterEach(async () => {
  stop.abort();
  if (!running) return;
  // With a successor the agent hands its routes over before it exits, on the fake clock.
  let done = false;
  void running.finally(() => (done = true));
  for (let i = 0; i < 400 && !done; i++) await run(50);
  await running;
});

const calls = (name: string) => ec2Mock.calls().filter((c) => (c.args[0] as { constructor: { name: string } }).constructor.name === `${name}Command`);

/** Moves the fake clock in 50 ms steps, letting datagrams, SDK promises and timers run between. */
async function run(ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 50) {
    clock.tick(50);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  }
}

/** Starts the agent (HA on) and the peer NAT's HA runtime on the same network and clock. */
async function start(settings: HaSettings = SETTINGS): Promise<Agent> {
  const host = new FakeHost();
  const log = pino({ level: 'debug' }, logs.stream);
  const kernel = new Kernel({ exec: host.exec, fs: host.fs, log: log.child({ component: 'kernel' }) });
  const agent = new Agent(CONFIG, ME, {
    ec2: new EC2Client({ region: 'us-east-1' }),
    kernel,
    log,
    clock,
    random: () => 0,
    ha: { settings, socket: net.factory, setUnhealthy: () => Promise.resolve(), drainMs: 8_000, lingerMs: 0 },
  });
  const peer = new Ha({ ...PEER, stack: 'prod' }, settings, {
    clock,
    log: pino({ level: 'silent' }),
    socket: net.factory,
    kernelOk: () => true,
    onRoutes: () => {},
    onDescribe: () => {},
    setUnhealthy: () => Promise.resolve(),
  });
  peer.updatePeers([{ ...ME, az: ME.az, state: 'running' }]);
  peer.setAzs([ME.az, PEER.az]);
  await peer.start(stop.signal);
  running = agent.run(stop.signal);
  return agent;
}

describe('the agent with HA, two AZs: EC2 status checks as the witness of a silent peer', () => {
  it('reads no status check while the peer is heard; reads them while it is silent; takes its table over once they read impaired', async () => {
    const agent = await start();
    await run(10_000);
    expect(agent.haRuntime!.peers.get(PEER.instanceId)!.machine).toMatchObject({ status: 'alive', state: 'serving' });
    expect(calls('DescribeInstanceStatus')).toHaveLength(0);
    expect(calls('ReplaceRoute').map((c) => (c.args[0].input as { RouteTableId: string }).RouteTableId)).not.toContain('rtb-0aaaaaaaaaaaaaaa2');

    // The peer crashes in place: no more heartbeats; EC2 still lists it running, its checks read ok.
    net.drop = (from) => from === PEER.privateIp;
    await run(1_500);
    expect(agent.haRuntime!.suspects()).toEqual([PEER.instanceId]);
    expect(calls('DescribeInstanceStatus')).toHaveLength(1);
    expect(calls('DescribeInstanceStatus')[0]!.args[0].input).toEqual({ InstanceIds: [PEER.instanceId] });
    await run(STATUS_POLL_MS * 2);
    // Every poll interval while it stays silent, and nothing moves while its checks read ok.
    expect(calls('DescribeInstanceStatus')).toHaveLength(3);
    expect(agent.haRuntime!.takeoverAzs()).toEqual([]);

    impaired = true;
    await run(STATUS_POLL_MS);
    expect(calls('DescribeInstanceStatus')).toHaveLength(4);
    expect(logs.lines.find((l) => l.event === 'peer.down')).toMatchObject({ peer: PEER.instanceId, by: 'ec2' });
    expect(agent.haRuntime!.takeoverAzs()).toEqual([PEER.az]);
    expect(calls('ReplaceRoute').map((c) => c.args[0].input)).toContainEqual({ RouteTableId: 'rtb-0aaaaaaaaaaaaaaa2', DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: ME.eniId });
    // Failed: no more status reads.
    await run(STATUS_POLL_MS * 2);
    expect(calls('DescribeInstanceStatus')).toHaveLength(4);
  });
});

describe('the agent with HA: the self-watchdog', () => {
  it('source/dest check turned back on: the forward probe fails, the agent re-checks it at once and turns it off again; the NAT never steps aside', async () => {
    let srcdstOn = false;
    let repairedAt = 0;
    ec2Mock.on(DescribeInstanceAttributeCommand).callsFake(() => ({ SourceDestCheck: { Value: srcdstOn } }));
    ec2Mock.on(ModifyInstanceAttributeCommand).callsFake(() => {
      srcdstOn = false;
      repairedAt = clock.now();
      return {};
    });
    // With the check on, EC2 drops what does not carry the NAT's own address: its forward probes.
    net.drop = (from) => srcdstOn && from === probeAddress(ME.privateIp);
    const agent = await start({ ...SETTINGS, forwardProbe: true });
    // The re-check is rate-limited (15 s) from the last source/dest check: boot, or a forward probe lost while the peers started.
    await run(40_000);
    expect(agent.haRuntime!.state).toBe('serving');
    const modifiesBefore = calls('ModifyInstanceAttribute').length;
    srcdstOn = true;
    const t0 = clock.now();
    await run(3_000);
    const repaired = logs.lines.find((l) => l.event === 'srcdst.disabled' && l.drift === true);
    expect(repaired, 'source/dest check repaired').toBeDefined();
    expect(repairedAt - t0).toBeLessThanOrEqual(SETTINGS.healthIntervalMs * 2); // before `fall` (3) failed rounds
    expect(calls('ModifyInstanceAttribute').length).toBe(modifiesBefore + 1);
    await run(5_000);
    expect(logs.lines.filter((l) => l.event === 'self.unhealthy' || l.event === 'self.step_aside')).toEqual([]);
    expect(agent.haRuntime!.state).toBe('serving');
  });
});
