import { DescribeRouteTablesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main, type MainDeps } from '../src/cli.js';
import { USAGE, didYouMean, parseCommandLine } from '../src/config.js';
import { Kernel, conntrackMaxFor } from '../src/kernel.js';
import { FakeHost } from './support/fake-host.js';
import { defaultMetadata, startFakeImds, type FakeImds } from './support/fake-imds.js';
import { FakeClock, FakeUdpNetwork, fakeAwsEnv, logCapture } from './support/harness.js';
import pino from 'pino';

const ec2Mock = mockClient(EC2Client);
let imds: FakeImds;
let host: FakeHost;
let out: string;
let err: string;
let logs: ReturnType<typeof logCapture>;

beforeAll(fakeAwsEnv);
beforeEach(() => {
  ec2Mock.reset();
  host = new FakeHost();
  out = '';
  err = '';
  logs = logCapture();
});
afterEach(async () => {
  await imds?.close();
});

function deps(extra: Partial<MainDeps> = {}): MainDeps {
  return {
    exec: host.exec,
    fs: host.fs,
    ec2: (region) => new EC2Client({ region }),
    autoscaling: (region) => new AutoScalingClient({ region }),
    socket: new FakeUdpNetwork().factory,
    upstreamProbe: () => Promise.resolve(true),
    clock: new FakeClock(),
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    logDest: logs.stream,
    signal: AbortSignal.abort(),
    startedAt: Date.now(),
    ...extra,
  };
}

describe('configuration', () => {
  it('exits 2 and names the fix when the instance has no hanat:stack tag and no override', async () => {
    imds = await startFakeImds(defaultMetadata({ 'hanat:az': 'us-east-1a' }));
    const code = await main(['run', '--imds-endpoint', imds.url], {}, deps());
    expect(code).toBe(2);
    const fatal = logs.lines.find((l) => l.event === 'config.invalid')!;
    expect(fatal.msg).toMatch(/no hanat:stack tag.*set --stack \/ HANAT_STACK/);
    expect(host.writes()).toEqual([]);
  });

  it('exits 2 for a bad flag value before touching anything', async () => {
    expect(await main(['run', '--interval', 'soon'], {}, deps())).toBe(2);
    expect(err).toMatch(/--interval 'soon' must be a number of seconds/);
    expect(await main(['run'], { HANAT_LOG_LEVEL: 'loud' }, deps())).toBe(2);
    expect(err).toMatch(/HANAT_LOG_LEVEL 'loud' is not a log level/);
    expect(await main(['run', '--stack', 'my_stack!'], {}, deps())).toBe(2);
    expect(err).toMatch(/--stack 'my_stack!' is not a stack name/);
    expect(await main(['start'], {}, deps())).toBe(2);
    expect(err).toMatch(/unknown command 'start'/);
    expect(await main(['run', '--nope'], {}, deps())).toBe(2);
    expect(host.calls).toEqual([]);
  });

  it('answers a misspelt option with its own message, a did-you-mean and the usage, exit 2, not node\'s parser text', async () => {
    expect(await main(['check', '--stak', 'prod'], {}, deps())).toBe(2);
    expect(err).toBe(`hanat-agent: unknown option '--stak' (did you mean --stack?)\n${USAGE}\n`);
    expect(err).not.toMatch(/positional argument|ERR_PARSE_ARGS/);
    err = '';
    expect(await main(['run', '--route-intervall=10'], {}, deps())).toBe(2);
    expect(err).toBe(`hanat-agent: unknown option '--route-intervall' (did you mean --route-interval?)\n${USAGE}\n`);
    err = '';
    expect(await main(['run', '--bogus'], {}, deps())).toBe(2);
    expect(err).toBe(`hanat-agent: unknown option '--bogus'\n${USAGE}\n`);
    err = '';
    expect(await main(['chek'], {}, deps())).toBe(2);
    expect(err).toBe(`hanat-agent: unknown command 'chek' (did you mean check?); the commands are run and check\n${USAGE}\n`);
    err = '';
    expect(await main(['check', '--stack'], {}, deps())).toBe(2);
    expect(err).toBe(`hanat-agent: option '--stack' needs a value: --stack <value>, or --stack=<value> for a value that starts with '-'\n${USAGE}\n`);
    err = '';
    expect(await main(['check', '--version=1'], {}, deps())).toBe(2);
    expect(err).toBe(`hanat-agent: option '--version' takes no value\n${USAGE}\n`);
    expect(host.calls).toEqual([]);
  });

  it('didYouMean suggests a near option, not a far one', () => {
    const flags = ['--stack', '--az', '--log-level', '--interval', '--route-interval'];
    expect(didYouMean('--stak', flags)).toBe('--stack');
    expect(didYouMean('--tsack', flags)).toBe('--stack');
    expect(didYouMean('--loglevel', flags)).toBe('--log-level');
    expect(didYouMean('--verbose', flags)).toBeUndefined();
    expect(didYouMean('--s', flags)).toBeUndefined();
  });

  it('exits 2 for an IMDS endpoint that is not an http:// URL, from the environment or the flag, and says what to set', async () => {
    expect(await main(['run', '--stack', 'x'], { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'notaurl' }, deps())).toBe(2);
    expect(err).toMatch(/AWS_EC2_METADATA_SERVICE_ENDPOINT 'notaurl' is not a URL; set it to IMDS's http:\/\/ address, such as http:\/\/169\.254\.169\.254/);
    err = '';
    expect(await main(['check', '--imds-endpoint', 'https://169.254.169.254'], {}, deps())).toBe(2);
    expect(err).toMatch(/--imds-endpoint 'https:\/\/169\.254\.169\.254' must be an http:\/\/ URL/);
    expect(logs.events()).not.toContain('agent.failed');
    expect(host.calls).toEqual([]);
  });

  it('hands --imds-endpoint to the SDK as AWS_EC2_METADATA_SERVICE_ENDPOINT, over the environment', async () => {
    imds = await startFakeImds();
    const env: NodeJS.ProcessEnv = { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9' };
    expect(await main(['run', '--imds-endpoint', `${imds.url}/`], env, deps())).toBe(0);
    expect(env.AWS_EC2_METADATA_SERVICE_ENDPOINT).toBe(imds.url);
    expect(env.AWS_EC2_METADATA_V1_DISABLED).toBe('true');
  });

  it('exits 2 when the hanat:az tag is not an AZ name', async () => {
    imds = await startFakeImds(defaultMetadata({ 'hanat:stack': 'prod', 'hanat:az': 'Zone A' }));
    expect(await main(['run', '--imds-endpoint', imds.url], {}, deps())).toBe(2);
    expect(logs.lines.find((l) => l.event === 'config.invalid')!.msg).toMatch(/instance tag hanat:az 'Zone A' is not an availability zone/);
  });

  it('lets flags beat environment variables beat tags, and logs the effective configuration', async () => {
    imds = await startFakeImds(defaultMetadata({ 'hanat:stack': 'from-tag', 'hanat:az': 'us-east-1a' }));
    const code = await main(['run', '--imds-endpoint', imds.url, '--az', 'us-east-1b'], { HANAT_STACK: 'from-env', HANAT_AZ: 'us-east-1c', HANAT_ROUTE_INTERVAL: '15' }, deps());
    expect(code).toBe(0);
    const eff = logs.lines.find((l) => l.event === 'config.effective')!;
    expect(eff.config).toMatchObject({ stack: 'from-env', az: 'us-east-1b', routeIntervalS: 15 });
    expect(eff.from).toMatchObject({ stack: 'HANAT_STACK', az: '--az', routeInterval: 'HANAT_ROUTE_INTERVAL' });
  });

  it('logs the conntrack size it will set and whether source/dest check is skipped', async () => {
    imds = await startFakeImds();
    expect(await main(['run', '--imds-endpoint', imds.url], {}, deps())).toBe(0);
    let eff = logs.lines.find((l) => l.event === 'config.effective')!;
    expect(eff.config).toMatchObject({ conntrackMax: conntrackMaxFor(host.memTotalKb * 1024), skipSourceDest: false });
    expect(eff.from).toMatchObject({ conntrackMax: '/proc/meminfo MemTotal' });
    logs.lines.length = 0;
    expect(await main(['run', '--imds-endpoint', imds.url, '--conntrack-max', '300000'], { HANAT_SKIP_SRCDST: '1' }, deps())).toBe(0);
    eff = logs.lines.find((l) => l.event === 'config.effective')!;
    expect(eff.config).toMatchObject({ conntrackMax: 300_000, skipSourceDest: true });
    expect(eff.from).toMatchObject({ conntrackMax: '--conntrack-max', skipSourceDest: 'HANAT_SKIP_SRCDST' });
  });

  it('falls back to the instance AZ when there is no hanat:az tag', async () => {
    imds = await startFakeImds(defaultMetadata({ 'hanat:stack': 'prod' }));
    imds.metadata['placement/availability-zone'] = 'us-east-1f';
    expect(await main(['run', '--imds-endpoint', imds.url], {}, deps())).toBe(0);
    const eff = logs.lines.find((l) => l.event === 'config.effective')!;
    expect(eff.config).toMatchObject({ stack: 'prod', az: 'us-east-1f' });
    expect(eff.from).toMatchObject({ stack: 'instance tag hanat:stack', az: 'IMDS placement/availability-zone' });
  });

  it('reads every setting from its environment variable', () => {
    const { options } = parseCommandLine(['run'], {
      HANAT_STACK: 's1',
      HANAT_AZ: 'eu-west-1b',
      HANAT_LOG_LEVEL: 'debug',
      HANAT_INTERVAL: '2.5',
      HANAT_ROUTE_INTERVAL: '10',
      HANAT_RECHECK_INTERVAL: '60',
      HANAT_MAX_FAILURES: '7',
      HANAT_CONNTRACK_MAX: '131072',
      AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:1',
      HANAT_SKIP_SRCDST: '1',
    });
    expect(options).toMatchObject({
      skipSourceDest: true,
      stack: 's1',
      az: 'eu-west-1b',
      logLevel: 'debug',
      intervalMs: 2500,
      routeIntervalMs: 10_000,
      recheckIntervalMs: 60_000,
      maxFailures: 7,
      conntrackMax: 131072,
      imdsEndpoint: 'http://127.0.0.1:1',
    });
  });

  it('refuses a --skip-srcdst value that is not 1 or 0, and defaults to doing the step', () => {
    expect(() => parseCommandLine(['run', '--skip-srcdst', 'yes'], {})).toThrow(/--skip-srcdst 'yes' must be 1 or 0/);
    expect(parseCommandLine(['run'], {}).options.skipSourceDest).toBe(false);
  });

  it('prints the version', async () => {
    expect(await main(['--version'], {}, deps())).toBe(0);
    expect(out).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('exits 1 when IMDS cannot be reached', async () => {
    imds = await startFakeImds();
    imds.failNext('/latest/api/token', 503, 100);
    expect(await main(['run', '--imds-endpoint', imds.url], {}, deps())).toBe(1);
    expect(logs.events()).toContain('agent.failed');
  });
});

describe('check', () => {
  async function configuredHost() {
    const k = new Kernel({ exec: host.exec, fs: host.fs, log: pino({ level: 'silent' }) });
    await k.reconcile({ vpcCidrs: ['10.0.0.0/16', '10.1.0.0/16'], mac: '02:00:00:00:00:01' });
    host.calls.length = 0;
  }
  const routeTables = (target: string, state: 'active' | 'blackhole' = 'active') => ({
    RouteTables: [
      {
        RouteTableId: 'rtb-0aaaaaaaaaaaaaaa1',
        Tags: [
          { Key: 'hanat:stack', Value: 'prod' },
          { Key: 'network', Value: 'private' },
          { Key: 'hanat:az', Value: 'us-east-1a' },
        ],
        Routes: [{ DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: target, State: state }],
      },
    ],
  });

  it('prints a healthy verdict and exits 0 when the NAT is configured and the routes point at it', async () => {
    imds = await startFakeImds();
    await configuredHost();
    ec2Mock.on(DescribeRouteTablesCommand).resolves(routeTables('eni-0ccccccccccccccc1'));
    const code = await main(['check', '--imds-endpoint', imds.url], {}, deps());
    const verdict = JSON.parse(out);
    expect(verdict).toMatchObject({
      healthy: true,
      instanceId: 'i-0123456789abcdef0',
      checks: { forwarding: { ok: true }, natRule: { ok: true }, conntrack: { ok: true, count: 10 }, routes: { ok: true } },
    });
    expect(code).toBe(0);
    expect(host.writes()).toEqual([]);
  });

  it('is unhealthy (exit 1) when forwarding is off or the route is blackholed', async () => {
    imds = await startFakeImds();
    await configuredHost();
    host.sysctls.set('net.ipv4.ip_forward', '0');
    ec2Mock.on(DescribeRouteTablesCommand).resolves(routeTables('eni-0ccccccccccccccc1', 'blackhole'));
    expect(await main(['check', '--imds-endpoint', imds.url], {}, deps())).toBe(1);
    const verdict = JSON.parse(out);
    expect(verdict.healthy).toBe(false);
    expect(verdict.checks.forwarding.ok).toBe(false);
    expect(verdict.checks.routes.ok).toBe(false);
  });

  it('is unhealthy when the NAT rule is gone, or conntrack is nearly full', async () => {
    imds = await startFakeImds();
    await configuredHost();
    host.hanat()!.rules = [];
    host.sysctls.set('net.netfilter.nf_conntrack_count', String(Number(host.sysctls.get('net.netfilter.nf_conntrack_max')) - 1));
    ec2Mock.on(DescribeRouteTablesCommand).resolves(routeTables('eni-0ccccccccccccccc1'));
    expect(await main(['check', '--imds-endpoint', imds.url], {}, deps())).toBe(1);
    const verdict = JSON.parse(out);
    expect(verdict.checks.natRule).toMatchObject({ ok: false, rule: false });
    expect(verdict.checks.conntrack.ok).toBe(false);
  });

  it('is unhealthy (exit 1), and says why, when AWS is unreachable and the routes cannot be verified', async () => {
    imds = await startFakeImds();
    await configuredHost();
    ec2Mock.on(DescribeRouteTablesCommand).rejects(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    expect(await main(['check', '--imds-endpoint', imds.url], {}, deps())).toBe(1);
    const verdict = JSON.parse(out);
    expect(verdict).toMatchObject({ healthy: false, reason: expect.stringMatching(/^routes not verified: DescribeRouteTables .*ECONNREFUSED/) });
    expect(verdict.checks.routes).toMatchObject({ ok: null, reason: expect.stringMatching(/DescribeRouteTables/) });
    expect(verdict.checks.forwarding.ok).toBe(true);
  });

  it('is unhealthy (exit 1) when IMDS cannot be reached, so no route can be checked', async () => {
    imds = await startFakeImds();
    await configuredHost();
    imds.failNext('/latest/api/token', 503, 100);
    expect(await main(['check', '--imds-endpoint', imds.url], {}, deps())).toBe(1);
    expect(JSON.parse(out)).toMatchObject({ healthy: false, reason: expect.stringMatching(/^routes not verified: IMDS: /) });
  });

  it('exits 2, with no verdict, when no stack is known: a configuration error', async () => {
    imds = await startFakeImds(defaultMetadata({ 'hanat:az': 'us-east-1a' }));
    await configuredHost();
    expect(await main(['check', '--imds-endpoint', imds.url], {}, deps())).toBe(2);
    expect(out).toBe('');
    expect(logs.lines.find((l) => l.event === 'config.invalid')!.msg).toMatch(/no hanat:stack tag.*set --stack \/ HANAT_STACK/);
    expect(host.calls).toEqual([]);
  });
});
