/**
 * `hanat:owner-reason` through the whole agent with HA on (the route reconciler, the HA
 * runtime, an in-memory UDP network, a fake clock, EC2 mocked at send()): a takeover and
 * a hand-over write why in the same CreateTags as `hanat:owner`, with no call of their own.
 * `hanat status` shows that reason (packages/cli/test/status.test.ts).
 */
import {
  CreateRouteCommand,
  CreateTagsCommand,
  DescribeAddressesCommand,
  DescribeInstanceAttributeCommand,
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
import { Agent } from '../src/agent.js';
import { encode } from '../src/ha/heartbeat.js';
import type { HaSettings } from '../src/ha/runtime.js';
import type { SelfState } from '../src/ha/takeover.js';
import { Kernel } from '../src/kernel.js';
import { FakeHost } from './support/fake-host.js';
import { FakeClock, FakeUdpNetwork, fakeAwsEnv, logCapture } from './support/harness.js';
import { CONFIG as BASE_CONFIG, HA_SETTINGS, IDENTITY } from './support/fixtures.js';

const ME = IDENTITY;
/** The NAT of us-east-1c, whose successor (the next AZ, wrapping around) is us-east-1a: this agent. */
const PEER = { instanceId: 'i-0fedcba9876543210', az: 'us-east-1c', privateIp: '10.0.2.10', eniId: 'eni-0eeeeeeeeeeeeeee3' };
const MINE = 'rtb-0aaaaaaaaaaaaaaa1';
const THEIRS = 'rtb-0aaaaaaaaaaaaaaa3';

const CONFIG = BASE_CONFIG;
const SETTINGS: HaSettings = { ...HA_SETTINGS, rise: 1 };

function table(id: string, az: string, eni: string, owner: string): RouteTable {
  return {
    RouteTableId: id,
    VpcId: ME.vpcId,
    Tags: [
      { Key: 'hanat:stack', Value: 'prod' },
      { Key: 'network', Value: 'private' },
      { Key: 'hanat:az', Value: az },
      { Key: 'hanat:owner', Value: owner },
      { Key: 'hanat:owner-since', Value: '2029-12-31T00:00:00.000Z' },
      { Key: 'hanat:owner-reason', Value: 'own-az' },
    ],
    Routes: [
      { DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local', State: 'active' },
      { DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: eni, State: 'active' },
    ],
  };
}

const ec2Mock = mockClient(EC2Client);
let clock: FakeClock;
let net: FakeUdpNetwork;
let stop: AbortController;
let running: Promise<number> | undefined;
let seq = 0;

beforeAll(fakeAwsEnv);
beforeEach(() => {
  ec2Mock.reset();
  clock = new FakeClock();
  net = new FakeUdpNetwork();
  stop = new AbortController();
  running = undefined;
  seq = 0;
  ec2Mock.on(DescribeInstanceAttributeCommand).resolves({ SourceDestCheck: { Value: false } });
  ec2Mock.on(ModifyInstanceAttributeCommand).resolves({});
  ec2Mock.on(DescribeAddressesCommand).resolves({ Addresses: [] });
  ec2Mock.on(DescribeRouteTablesCommand).resolves({ RouteTables: [table(MINE, ME.az, ME.eniId, ME.instanceId), table(THEIRS, PEER.az, PEER.eniId, PEER.instanceId)] });
  ec2Mock.on(DescribeInstancesCommand).resolves({
    Reservations: [
      {
        Instances: [
          {
            InstanceId: PEER.instanceId,
            PrivateIpAddress: PEER.privateIp,
            State: { Name: 'running' },
            Tags: [{ Key: 'hanat:az', Value: PEER.az }],
            NetworkInterfaces: [{ NetworkInterfaceId: PEER.eniId, Attachment: { DeviceIndex: 0 } }],
          },
        ],
      },
    ],
  });
  ec2Mock.on(ReplaceRouteCommand).resolves({});
  ec2Mock.on(CreateRouteCommand).resolves({ Return: true });
  ec2Mock.on(CreateTagsCommand).resolves({});
});
afterEach(async () => {
  stop.abort();
  for (let i = 0; running && i < 200 && !(await settled(running)); i++) clock.tick(100);
});

async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

async function startAgent(): Promise<{ send: (state: SelfState, healthy: boolean) => void }> {
  const host = new FakeHost();
  const log = pino({ level: 'debug' }, logCapture().stream);
  const kernel = new Kernel({ exec: host.exec, fs: host.fs, log: log.child({ component: 'kernel' }) });
  const agent = new Agent(CONFIG, ME, {
    ec2: new EC2Client({ region: 'us-east-1' }),
    kernel,
    log,
    clock,
    random: () => 0,
    ha: { settings: SETTINGS, socket: net.factory, setUnhealthy: () => Promise.resolve(), drainMs: 8_000, lingerMs: 0 },
  });
  running = agent.run(stop.signal);
  const peer = await net.factory({ address: PEER.privateIp, port: SETTINGS.port }, () => {});
  const boot = clock.now();
  return {
    send: (state, healthy) =>
      peer.send(encode({ kind: 'hb', stack: 'prod', id: PEER.instanceId, az: PEER.az, boot, seq: ++seq, state, healthy, upstream: null, peers: [] }), SETTINGS.port, ME.privateIp),
  };
}

/** Moves the clock `ms` in heartbeat steps, the peer heartbeating `state` at each. */
async function run(ms: number, beat: () => void): Promise<void> {
  for (let t = 0; t < ms; t += 200) {
    beat();
    clock.tick(200);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  }
}

type Tagging = { Resources: string[]; Tags: { Key: string; Value: string }[] };
const tagCalls = () => ec2Mock.commandCalls(CreateTagsCommand).map((c) => c.args[0].input as Tagging);
const replaced = () => ec2Mock.commandCalls(ReplaceRouteCommand).map((c) => c.args[0].input as { RouteTableId: string; NetworkInterfaceId: string });

describe('hanat:owner-reason, written by the agent with HA on', () => {
  it("takes over the table of a NAT that stepped aside, and records stepped-aside with the owner, in the one CreateTags of the takeover", async () => {
    const peer = await startAgent();
    await run(3_000, () => peer.send('serving', true));
    expect(replaced()).toEqual([]);
    expect(tagCalls()).toEqual([]);

    await run(1_000, () => peer.send('stepped-aside', false));
    expect(replaced()).toEqual([{ RouteTableId: THEIRS, DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: ME.eniId }]);
    const tags = tagCalls();
    expect(tags).toHaveLength(1);
    expect(tags[0]!.Resources).toEqual([THEIRS]);
    expect(tags[0]!.Tags).toEqual([
      { Key: 'hanat:owner', Value: ME.instanceId },
      { Key: 'hanat:owner-since', Value: expect.stringMatching(/^2030-01-01T00:00:0\d\.\d{3}Z$/) },
      { Key: 'hanat:owner-reason', Value: 'stepped-aside' },
    ]);
  });

  it('hands its own table to the successor on SIGTERM, and records the successor as owner with shutdown', async () => {
    const peer = await startAgent();
    await run(3_000, () => peer.send('serving', true));
    stop.abort();
    await run(2_000, () => peer.send('serving', true));
    expect(replaced()).toEqual([{ RouteTableId: MINE, DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: PEER.eniId }]);
    expect(tagCalls()).toEqual([
      {
        Resources: [MINE],
        Tags: [
          { Key: 'hanat:owner', Value: PEER.instanceId },
          { Key: 'hanat:owner-since', Value: expect.any(String) },
          { Key: 'hanat:owner-reason', Value: 'shutdown' },
        ],
      },
    ]);
  });
});
