/**
 * A NAT that dies in place, end to end, as AWS shows it: the real CLI bundle, the real agent
 * bundle in every NAT namespace, private hosts probing the internet.
 *
 * `fault crash` freezes the NAT and drops its packets at the router. EC2 goes on reporting it
 * `running` and its route `active`; `hanat status` says `ok`. After the status-check delay its
 * status checks are `impaired` and `hanat status` says IMPAIRED with exit 1. After Auto Scaling's
 * health-check delay the group marks it Unhealthy, terminates it and launches a replacement,
 * whose agent claims the routes after the boot delay. The outage the private hosts see is
 * therefore about status-check delay + health check + boot (+ the agent's start-up).
 *
 * AWS's delays are shortened through the lab's settings so that the test takes seconds:
 * status checks 15 s (AWS: every minute), health check 10 s, boot 3 s, grace period 0 (the
 * template's 120 s). bench/replacement-outage measures with the real ones.
 */
import { AutoScalingClient, DescribeScalingActivitiesCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, DescribeInstanceStatusCommand, DescribeRouteTablesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { hostRoutes } from '../src/cli/probe.js';
import type { Lab } from '../src/dataplane/lab.js';
import { sleep, startE2eLab, type CliRun, type E2eLab } from './e2e-helpers.js';

const REGION = 'us-east-1';
const STACK = 'e2e-crash';
// Long enough for `hanat status` (a Node process and five API calls) to run inside each on a loaded machine.
const STATUS_CHECK_DELAY_MS = 15_000;
const HEALTH_CHECK_DELAY_MS = 10_000;
const BOOT_DELAY_MS = 3_000;

describe.runIf(requireRoot('lab crash e2e', ['ip', 'nft', 'iptables']))('a NAT that crashes in place, in the lab, with real traffic', { timeout: 120_000 }, () => {
  let e2e: E2eLab;
  let lab: Lab;
  let ec2: EC2Client;
  let asg: AutoScalingClient;
  let azA: string;
  let azB: string;
  let natA: string;

  const hanat = (...args: string[]): Promise<CliRun> => e2e.hanat(...args);
  const status = async () => {
    const run = await hanat('status', '--name', STACK, '--json');
    const json = JSON.parse(run.stdout) as { azs: { az: string; verdict: string; routeTables: { detail: string }[] }[] };
    return { run, verdicts: Object.fromEntries(json.azs.map((a) => [a.az, a.verdict])), json };
  };
  const until = async (condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> => {
    const t0 = Date.now();
    while (!(await condition())) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
      await sleep(100);
    }
  };
  const ec2View = async (id: string) => {
    const inst = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
    const tables = (await ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'route.instance-id', Values: [id] }] }))).RouteTables!;
    const routeStates = tables.flatMap((t) => t.Routes!.filter((r) => r.DestinationCidrBlock === '0.0.0.0/0').map((r) => r.State));
    const checks = (await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [id] }))).InstanceStatuses![0];
    return { state: inst.State!.Name, routeStates, checks: checks?.InstanceStatus?.Status, reachability: checks?.InstanceStatus?.Details?.[0] };
  };

  beforeAll(async () => {
    e2e = await startE2eLab({
      stack: STACK,
      azs: 2,
      cidrPrefix: '10.0',
      region: REGION,
      emulator: {
        latency: 'zero',
        bootDelayMs: BOOT_DELAY_MS,
        statusCheckDelayMs: STATUS_CHECK_DELAY_MS,
        healthCheckDelayMs: HEALTH_CHECK_DELAY_MS,
        healthCheckGracePeriodMs: 0,
      },
      // HA off (HANAT_HA=0): this file measures what EC2 and Auto Scaling alone do about a NAT
      // that crashes in place; e2e-ha.test.ts tests the takeover of one.
      agentEnv: { HANAT_HA: '0' },
      deployTimeoutMs: 60_000,
    });
    lab = e2e.lab;
    const env = e2e.env;
    const cfg = { endpoint: lab.apiEndpoint, region: REGION, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! }, maxAttempts: 1 };
    ec2 = new EC2Client(cfg);
    asg = new AutoScalingClient(cfg);
    const s = lab.status();
    [azA, azB] = [...new Set(s.hosts.map((h) => h.az))].sort() as [string, string];
    natA = s.instances.find((i) => i.az === azA && i.state === 'running')!.instanceId;
    // Past the first status check, so that the NATs' checks read ok rather than initializing.
    await until(async () => (await ec2View(natA)).checks === 'ok', STATUS_CHECK_DELAY_MS + 5_000, 'status checks ok');
  }, 120_000);

  afterAll(async () => {
    ec2?.destroy();
    asg?.destroy();
    await e2e?.stop();
  }, 60_000);

  it('cuts the AZ off while EC2 says running and the route active and status says ok; then status checks fail, status says IMPAIRED, and Auto Scaling replaces the NAT; the outage is about delay + health check + boot', async () => {
    const before = await status();
    expect(before.run.code, before.run.stderr).toBe(0);
    expect(before.verdicts).toEqual({ [azA]: 'ok', [azB]: 'ok' });

    const crashed = await lab.fault({ kind: 'crash', target: azA });
    const t0 = crashed.at;
    expect(crashed.instances).toEqual([natA]);
    const hostsA = hostRoutes(lab.status(), azA).map((h) => h.id);
    expect(crashed.affectedHosts.sort()).toEqual(hostsA.sort());

    // The AZ's private hosts lose the internet at once; B's keep it.
    await until(() => hostRoutes(lab.status(), azA).every((h) => h.tcp?.ok === false && h.udp?.ok === false), 3_000, `${azA}'s hosts cut off`);
    expect(hostRoutes(lab.status(), azB).every((h) => h.tcp?.ok && h.udp?.ok)).toBe(true);

    // Before the status-check delay: EC2 running, route active, checks ok; hanat status says ok.
    const early = await ec2View(natA);
    const during = await status();
    const checkedAt = Date.now();
    expect(checkedAt - t0, 'the early checks ran inside the status-check delay').toBeLessThan(STATUS_CHECK_DELAY_MS);
    expect(early).toMatchObject({ state: 'running', routeStates: ['active'], checks: 'ok' });
    expect(during.run.code, during.run.stderr).toBe(0);
    expect(during.verdicts[azA]).toBe('ok');

    // After it: impaired, with the time of the failure; the instance still running, the route still active.
    await until(async () => (await ec2View(natA)).checks === 'impaired', STATUS_CHECK_DELAY_MS + 3_000, 'status checks impaired');
    const impairedAt = Date.now();
    const late = await ec2View(natA);
    expect(late).toMatchObject({ state: 'running', routeStates: ['active'], reachability: { Name: 'reachability', Status: 'failed' } });
    const since = late.reachability!.ImpairedSince!.getTime();
    expect(since - t0).toBeGreaterThanOrEqual(STATUS_CHECK_DELAY_MS - 50);
    // t0 is when the fault was asked for; EC2 learns of the crash once the data plane has frozen it.
    expect(since - t0).toBeLessThan(STATUS_CHECK_DELAY_MS + 5_000);
    const after = await status();
    expect(Date.now() - impairedAt, 'status ran inside the health-check delay').toBeLessThan(HEALTH_CHECK_DELAY_MS);
    expect(after.run.code).toBe(1);
    expect(after.verdicts).toEqual({ [azA]: 'impaired', [azB]: 'ok' });
    expect(after.json.azs[0]!.routeTables[0]!.detail).toContain(`its own NAT ${natA}, whose EC2 status checks are impaired since`);
    expect(after.run.stderr).toContain(`${azA}: NAT ${natA} fails EC2's status checks`);

    // Auto Scaling replaces it; the new NAT's agent claims the routes and traffic returns.
    await until(() => hostRoutes(lab.status(), azA).every((h) => h.ownAz && h.tcp?.ok && h.udp?.ok && h.nat?.instanceId !== natA), 30_000, `${azA}'s hosts back through a replacement NAT`);
    const acts = (await asg.send(new DescribeScalingActivitiesCommand({}))).Activities!;
    const terminated = acts.find((a) => a.Description === `Terminating EC2 instance: ${natA}`);
    expect(terminated?.Cause).toMatch(/an instance was taken out of service in response to an EC2 instance status checks failure\.$/);
    expect((await ec2View(natA)).state).toBe('terminated');

    const outages = hostRoutes(lab.status(), azA).flatMap((h) => h.outages.filter((o) => o.start >= t0 - 200 && o.durationMs !== undefined));
    expect(outages).toHaveLength(4); // two hosts, tcp and udp
    const floor = STATUS_CHECK_DELAY_MS + HEALTH_CHECK_DELAY_MS + BOOT_DELAY_MS;
    console.log(
      `crash in place of ${natA}: outage of ${azA}'s hosts ${outages.map((o) => `${o.proto} ${o.durationMs} ms`).join(', ')}; ` +
        `status checks ${STATUS_CHECK_DELAY_MS} ms + health check ${HEALTH_CHECK_DELAY_MS} ms + boot ${BOOT_DELAY_MS} ms = ${floor} ms, the rest is the new agent's start-up`,
    );
    for (const o of outages) {
      expect(o.durationMs!).toBeGreaterThanOrEqual(floor - 200);
      // The agent's start-up (IMDS, kernel, source/dest check, EIP, route) takes ~1.5 s; a loaded machine gets a margin.
      expect(o.durationMs!).toBeLessThan(floor + 15_000);
    }
    // B never noticed.
    expect(hostRoutes(lab.status(), azB).every((h) => h.outages.every((o) => o.start < t0))).toBe(true);
  });
});
