/**
 * The real agent's start-up (in process, its kernel a fake host, its SDK talking
 * HTTP to the emulator) against what AWS does at boot:
 * - EC2's eventual consistency (EC2 Developer Guide, "Eventual consistency in the
 *   Amazon EC2 API"): right after an instance starts, calls naming it or its
 *   interface can answer NotFound. The emulator's propagationDelayMs models it; the
 *   agent must still get from boot to its routes within seconds, Elastic IP first.
 * - Associating the Elastic IP releases the instance's auto-assigned public IP, and
 *   with it every connection to AWS opened from that address: after `eip.associated`
 *   the agent's calls must go over new connections.
 * - EC2's request token buckets (EC2 Developer Guide, "Request throttling for the Amazon
 *   EC2 API"): an agent whose calls meet an empty bucket gets RequestLimitExceeded, and
 *   its SDK client's retries (then its loop's) get it through once the bucket refills.
 */
import { CreateStackCommand, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { CreateRouteCommand, DescribeInstanceAttributeCommand, DescribeNetworkInterfacesCommand, DescribeRouteTablesCommand, ReplaceRouteCommand } from '@aws-sdk/client-ec2';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectionPool, ec2Client, type Ec2 } from '@hanat/core';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../agent/src/agent.js';
import { agentEc2 } from '../../agent/src/cli.js';
import { systemClock } from '../../agent/src/clock.js';
import { HA_DEFAULTS, type Config } from '../../agent/src/config.js';
import { Kernel } from '../../agent/src/kernel.js';
import { createLogger } from '../../agent/src/log.js';
import { FakeHost } from '../../agent/test/support/fake-host.js';
import { logCapture } from '../../agent/test/support/harness.js';
import { DEFAULT_TEMPLATE_OPTIONS, templateBody } from '../../cli/src/template/index.js';
import { LAB_IMAGES } from '../src/emulator/index.js';
import { keepSdkEnv, pointSdkAt } from './emulator/cli.js';
import { rejection, startLab, type Harness } from './emulator/helpers.js';

keepSdkEnv();

const STACK = 'settle';
/** How long EC2 keeps answering NotFound once the agent has started. */
const NOT_FOUND_FOR_MS = 2_000;

let h: Harness;
afterEach(async () => {
  await h.close();
});

async function deployStack(): Promise<void> {
  await h.cfn.send(
    new CreateStackCommand({
      StackName: STACK,
      TemplateBody: templateBody(DEFAULT_TEMPLATE_OPTIONS),
      Parameters: [
        { ParameterKey: 'VpcName', ParameterValue: STACK },
        { ParameterKey: 'CidrPrefix', ParameterValue: '10.9' },
        { ParameterKey: 'NatAmi', ParameterValue: LAB_IMAGES.find((i) => i.architecture === 'arm64')!.id },
        { ParameterKey: 'AvailabilityZones', ParameterValue: 'us-east-1a,us-east-1b,us-east-1c' },
      ],
      Capabilities: ['CAPABILITY_IAM'],
      Tags: [{ Key: 'hanat:stack', Value: STACK }],
    }),
  );
  const deadline = Date.now() + 15_000;
  for (;;) {
    const status = (await h.cfn.send(new DescribeStacksCommand({ StackName: STACK }))).Stacks?.[0]?.StackStatus;
    if (status === 'CREATE_COMPLETE') return;
    if (Date.now() > deadline) throw new Error(`stack ${STACK} is ${status}`);
    await sleep(20);
  }
}


type EmulatedInstance = NonNullable<ReturnType<Harness['emu']['world']['ec2']['instances']['get']>>;

/** Starts the real agent for `inst`, in process, on a fake host; its log lines are captured. */
function runAgent(inst: EmulatedInstance, deps: { ec2: Ec2; freshConnections?: () => void; onLine?: (line: string) => void }) {
  const host = new FakeHost();
  host.links = [
    { ifname: 'lo', address: '00:00:00:00:00:00', link_type: 'loopback' },
    { ifname: 'eth0', address: inst.mac, link_type: 'ether' },
  ];
  const logs = logCapture();
  const write = logs.stream.write.bind(logs.stream);
  // Called synchronously as the agent logs, so it sees each line before the agent's next call.
  logs.stream.write = (line: string) => {
    deps.onLine?.(line);
    return write(line);
  };
  const log = createLogger('debug', logs.stream);
  const config: Config = {
    stack: STACK,
    az: inst.az,
    logLevel: 'debug',
    intervalMs: 5_000,
    routeIntervalMs: 30_000,
    recheckIntervalMs: 300_000,
    maxFailures: 5,
    skipSourceDest: false,
    // This test is about start-up; no peers to watch.
    ...HA_DEFAULTS,
    ha: false,
    from: {},
  };
  const identity = {
    instanceId: inst.id,
    region: 'us-east-1',
    az: inst.az,
    mac: inst.mac,
    eniId: inst.eniId,
    subnetId: inst.subnetId,
    vpcId: inst.vpcId,
    vpcCidrs: ['10.9.0.0/16'],
    privateIp: inst.privateIp,
    tags: { 'hanat:stack': STACK, 'hanat:az': inst.az },
  };
  const kernel = new Kernel({ exec: host.exec, fs: host.fs, log });
  const agent = new Agent(config, identity, { ec2: deps.ec2, kernel, log, clock: systemClock, freshConnections: deps.freshConnections });
  const stop = new AbortController();
  return { logs, stop, running: agent.run(stop.signal) };
}

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * A TCP relay in front of the emulator that numbers each client connection and
 * records, for every chunk the client sends, which connection carried it and when.
 */
async function relay(target: string): Promise<{ url: string; chunks: { conn: number; at: number }[]; opened: number[]; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const chunks: { conn: number; at: number }[] = [];
  const opened: number[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const conn = opened.push(Date.now()) - 1;
    const upstream = connect(Number(port), hostname);
    sockets.add(client).add(upstream);
    client.on('data', (d) => {
      chunks.push({ conn, at: Date.now() });
      upstream.write(d);
    });
    upstream.on('data', (d) => client.write(d));
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    chunks,
    opened,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('eventual consistency at boot', () => {
  it('answers NotFound for a just-booted instance and its interface while propagationDelayMs lasts', async () => {
    h = await startLab({ latency: 'zero', bootDelayMs: 0 });
    await deployStack();
    const inst = [...h.emu.world.ec2.instances.values()].find((i) => i.state === 'running')!;
    h.emu.account.settings.propagationDelayMs = Date.now() - inst.bootedAt! + 60_000;
    expect(await rejection(h.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: inst.id, Attribute: 'sourceDestCheck' })))).toMatchObject({
      name: 'InvalidInstanceID.NotFound',
      message: `The instance ID '${inst.id}' does not exist`,
    });
    expect(await rejection(h.ec2.send(new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [inst.eniId] })))).toMatchObject({
      name: 'InvalidNetworkInterfaceID.NotFound',
    });
    h.emu.account.settings.propagationDelayMs = 0;
    await h.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: inst.id, Attribute: 'sourceDestCheck' }));
  });

  it('gets a new NAT from boot to its routes within seconds, Elastic IP first, while EC2 answers NotFound for it', { timeout: 30_000 }, async () => {
    h = await startLab({ latency: 'zero', bootDelayMs: 0 });
    await deployStack();
    const ec2 = h.emu.world.ec2;
    const inst = [...ec2.instances.values()].find((i) => i.state === 'running' && i.az === 'us-east-1a')!;
    // EC2 does not know the instance for NOT_FOUND_FOR_MS more from now.
    h.emu.account.settings.propagationDelayMs = Date.now() - inst.bootedAt! + NOT_FOUND_FOR_MS;

    const { logs, stop, running } = runAgent(inst, { ec2: h.ec2 });
    const t0 = Date.now();
    try {
      while (!logs.events().includes('route.claimed') && Date.now() - t0 < 20_000) await sleep(20);
      const bootToRoutes = Date.now() - t0;
      console.log(`boot to route.claimed with EC2 answering NotFound for the first ${NOT_FOUND_FOR_MS} ms: ${bootToRoutes} ms`);
      expect(logs.events()).toContain('route.claimed');
      // Not the 30-60 s a refused call waits: NotFound on its own ids was retried within seconds.
      expect(bootToRoutes).toBeLessThan(NOT_FOUND_FOR_MS + 5_000);
      expect(logs.lines.filter((l) => l.event === 'aws.not_yet').map((l) => l.code)).toContain('InvalidInstanceID.NotFound');
      expect(logs.events()).not.toContain('aws.rejected');
      const events = logs.events();
      expect(events.indexOf('eip.associated')).toBeGreaterThanOrEqual(0);
      expect(events.indexOf('eip.associated')).toBeLessThan(events.indexOf('route.claimed'));
      expect(ec2.addressOn(inst.eniId)?.association?.networkInterfaceId).toBe(inst.eniId);
      h.emu.account.settings.propagationDelayMs = 0;
      const tables = await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'tag:hanat:az', Values: ['us-east-1a'] }, { Name: 'tag:network', Values: ['private'] }] }));
      const route = tables.RouteTables![0]!.Routes!.find((r) => r.DestinationCidrBlock === '0.0.0.0/0');
      expect(route?.NetworkInterfaceId).toBe(inst.eniId);
    } finally {
      stop.abort();
      await running;
    }
  });
});

describe('the Elastic IP and the SDK\'s connections', () => {
  it('opens new connections to AWS after eip.associated, never reusing one opened from the released public IP', { timeout: 30_000 }, async () => {
    h = await startLab({ latency: 'zero', bootDelayMs: 0 });
    await deployStack();
    const inst = [...h.emu.world.ec2.instances.values()].find((i) => i.state === 'running' && i.az === 'us-east-1b')!;
    const tap = await relay(h.url);
    pointSdkAt(tap.url);
    const connections = connectionPool();
    // The agent's own client: hanat's factory, keep-alive connections from the pool.
    const ec2 = ec2Client({ region: 'us-east-1', component: 'agent', maxAttempts: 2, connections });
    // How many request chunks the relay had seen when the agent logged eip.associated.
    let mark = -1;
    const onLine = (line: string) => {
      if (mark < 0 && line.includes('"event":"eip.associated"')) mark = tap.chunks.length;
    };
    const { logs, stop, running } = runAgent(inst, { ec2, freshConnections: () => connections.reset(), onLine });
    try {
      await until('route.owner_tagged', () => logs.events().includes('route.owner_tagged'));
      expect(mark).toBeGreaterThan(0);
      const before = new Set(tap.chunks.slice(0, mark).map((c) => c.conn));
      const after = tap.chunks.slice(mark).map((c) => c.conn);
      // Keep-alive is on: the calls before the association shared connections.
      expect(before.size).toBeLessThan(mark);
      expect(after.length).toBeGreaterThan(0);
      // DescribeRouteTables, ReplaceRoute, CreateTags: none on a connection from before.
      expect(after.filter((c) => before.has(c))).toEqual([]);
    } finally {
      stop.abort();
      await running;
      ec2.destroy();
      await tap.close();
    }
  });
});

describe("AWS's rate limits at boot", () => {
  it("gets the agent from boot to its routes through EC2's token buckets, shrunk so that its own calls empty them, thanks to its SDK client's retries", { timeout: 60_000 }, async () => {
    h = await startLab({ latency: 'zero', bootDelayMs: 0, rateLimits: true });
    await deployStack();
    const inst = [...h.emu.world.ec2.instances.values()].find((i) => i.state === 'running' && i.az === 'us-east-1c')!;
    // A twentieth of AWS's buckets: non-mutating actions 5 tokens and 1 a second, mutating
    // ones 2.5 tokens and 0.25 a second (one token every 4 s), CreateTags 5 and 0.5 a second.
    h.emu.account.settings.rateLimitScale = 0.05;
    // Empty the buckets of calls every agent makes at boot, as the other NATs of the account
    // would in an AZ outage: a describe, and the route calls (a refused call takes its token too).
    const drain = async (send: () => Promise<unknown>) => {
      for (let i = 0; i < 10; i++) await send().catch(() => undefined);
    };
    await drain(() => h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: [STACK] }] })));
    await drain(() => h.ec2.send(new CreateRouteCommand({ RouteTableId: 'rtb-00000000000000000', DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: inst.eniId })));
    await drain(() => h.ec2.send(new ReplaceRouteCommand({ RouteTableId: 'rtb-00000000000000000', DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: inst.eniId })));
    h.emu.counters.reset();

    pointSdkAt(h.url);
    const connections = connectionPool();
    // The agent's own EC2 client, as its CLI makes it: two SDK attempts a call, standard retry mode.
    const ec2 = agentEc2('us-east-1', connections);
    const { logs, stop, running } = runAgent(inst, { ec2, freshConnections: () => connections.reset() });
    const t0 = Date.now();
    try {
      await until('route.owner_tagged', () => logs.events().includes('route.owner_tagged'), 45_000);
      const snapshot = h.emu.counters.snapshot();
      const throttled = Object.entries(snapshot.throttled).filter(([op]) => op.startsWith('ec2:'));
      console.log(`boot to routes through shrunk rate limits: ${Date.now() - t0} ms; throttled: ${JSON.stringify(Object.fromEntries(throttled))}`);
      // The agent's calls met empty buckets and were answered RequestLimitExceeded, and were
      // sent again until one got through: each throttled action was also answered.
      expect(throttled.map(([op]) => op)).toEqual(expect.arrayContaining(['ec2:DescribeRouteTables']));
      expect(throttled.some(([op]) => op === 'ec2:CreateRoute' || op === 'ec2:ReplaceRoute')).toBe(true);
      for (const [op, n] of throttled) expect(snapshot.calls[op], op).toBeGreaterThan(n);
      // Retried without the agent counting a failure toward giving up (retryable: aws.retry at most).
      const retried = logs.lines.filter((l) => l.event === 'aws.retry').map((l) => l.code);
      expect(retried.every((c) => c === 'RequestLimitExceeded'), JSON.stringify(retried)).toBe(true);
      // ...and it got through: its routes, its Elastic IP, no error logged.
      const events = logs.events();
      expect(events).toContain('eip.associated');
      expect(events).toContain('route.claimed');
      expect(events).not.toContain('agent.giving_up');
      expect(logs.lines.filter((l) => l.level === 'error' || l.level === 'fatal').map((l) => l.event)).toEqual([]);
      expect(h.emu.world.ec2.addressOn(inst.eniId)?.association?.networkInterfaceId).toBe(inst.eniId);
      // Read from the world, not through the API: the test's own calls would meet the shrunk buckets too.
      const served = h.emu.network.snapshot().routeTables.filter((t) => t.routes.some((r) => r.destinationCidr === '0.0.0.0/0' && r.target.kind === 'eni' && r.target.networkInterfaceId === inst.eniId));
      expect(served).toHaveLength(1);
    } finally {
      stop.abort();
      await running;
      ec2.destroy();
    }
  });
});
