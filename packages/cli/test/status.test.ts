import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { names, retryLines } from './support/calls.js';
import { FakeNatWorld } from './support/fake-nat.js';
import { asgMock, cfnMock, ec2Mock, harness, smallTemplate, zonesOf, type Harness } from './support/harness.js';

const AZS = zonesOf('eu-west-1', 3);
const [A, B, C] = AZS as [string, string, string];
const STATUS = ['status', '--name', 'prod', '--region', 'eu-west-1'];

let h: Harness;
let w: FakeNatWorld;
beforeEach(() => {
  h = harness();
  h.cfn.seedStack({ name: 'prod', status: 'UPDATE_COMPLETE', tags: [{ Key: 'hanat:stack', Value: 'prod' }] });
  w = FakeNatWorld.healthy('prod', AZS);
  w.install(ec2Mock, asgMock);
});
afterEach(() => {
  vi.unstubAllEnvs();
});

/** The table row of an AZ in the human output. */
function row(stdout: string, az: string): string {
  return stdout.split('\n').find((l) => l.startsWith(`${az} `) && l.includes('rtb-'))!;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed JSON document, asserted field by field
async function json(): Promise<{ code: number; doc: any; stderr: string }> {
  const r = await h.hanat(...STATUS, '--json');
  return { code: r.code, doc: JSON.parse(r.stdout), stderr: r.stderr };
}

describe('hanat status', () => {
  it('says ok for every AZ served by its own NAT, lists the NATs, and exits 0 with Describe calls only', async () => {
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Stack prod in eu-west-1 \(UPDATE_COMPLETE\)\n/);
    expect(r.stdout).toMatch(/^AZ +VERDICT +ROUTE TABLE +DEFAULT ROUTE +SERVED BY +DETAIL$/m);
    for (const az of AZS) {
      expect(row(r.stdout, az)).toMatch(new RegExp(`^${az} +ok +${w.table(az).id} +${w.nat(az).eni} \\(active\\) +${w.nat(az).instanceId} \\(${az}\\) +served by its own NAT`));
    }
    expect(r.stdout).toContain('\nNAT instances\n');
    expect(r.stdout).toMatch(new RegExp(`^${A} +${w.nat(A).instanceId} +running +HEALTHY +InService +${w.nat(A).eni} +10\\.20\\.0\\.\\d+ +203\\.0\\.113\\.10 +off +2026-01-10T08:00:01\\.000Z$`, 'm'));
    expect(r.stdout).toContain('\nElastic IPs\n');
    expect(r.stdout).toMatch(new RegExp(`^${B} +203\\.0\\.113\\.11 +eipalloc-\\w+ +${w.nat(B).instanceId}$`, 'm'));
    expect(names(cfnMock)).toEqual(['DescribeStacks']);
    expect(names(ec2Mock)).toEqual(['DescribeRouteTables', 'DescribeInstances', 'DescribeInstanceStatus', 'DescribeAddresses']);
    expect(names(asgMock)).toEqual(['DescribeAutoScalingInstances']);
    expect(ec2Mock.calls().every((c) => /^Describe/.test((c.args[0] as object).constructor.name))).toBe(true);
  });

  it('scopes every lookup to the stack by its tags', async () => {
    await h.hanat(...STATUS);
    const inputs = ec2Mock.calls().map((c) => (c.args[0] as { input: { Filters?: unknown } }).input.Filters);
    expect(inputs[0]).toEqual([
      { Name: 'tag:hanat:stack', Values: ['prod'] },
      { Name: 'tag:network', Values: ['private'] },
    ]);
    expect(inputs[1]).toContainEqual({ Name: 'tag:hanat:stack', Values: ['prod'] });
    expect(inputs[1]).toContainEqual({ Name: 'instance-state-name', Values: ['pending', 'running', 'shutting-down', 'stopping', 'stopped'] });
    expect(inputs[3]).toEqual([{ Name: 'tag:hanat:stack', Values: ['prod'] }]);
    const statusInput = (ec2Mock.calls()[2]!.args[0] as { input: { InstanceIds: string[] } }).input;
    expect(statusInput.InstanceIds.sort()).toEqual(w.nats.map((n) => n.instanceId).sort());
    const asgInput = (asgMock.calls()[0]!.args[0] as { input: { InstanceIds: string[] } }).input;
    expect(asgInput.InstanceIds.sort()).toEqual(w.nats.map((n) => n.instanceId).sort());
  });

  /** A's table taken over by B's NAT at 11:58, for `reason` (hanat:owner-reason), as B's agent writes it. */
  function takenOver(reason: string | undefined): void {
    w.table(A).route = { eni: w.nat(B).eni };
    w.table(A).tags.set('hanat:owner', w.nat(B).instanceId);
    w.table(A).tags.set('hanat:owner-since', '2026-01-15T11:58:00.000Z');
    if (reason === undefined) w.table(A).tags.delete('hanat:owner-reason');
    else w.table(A).tags.set('hanat:owner-reason', reason);
  }

  it('flags a takeover with the NAT that serves the AZ, since when and why, and still exits 0', async () => {
    w.nat(A).state = 'stopped';
    takenOver('peer-down');
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(0);
    expect(row(r.stdout, A)).toMatch(
      new RegExp(
        `^${A} +TAKEOVER +.*taken over by ${B}'s NAT ${w.nat(B).instanceId} since 2026-01-15T11:58:00\\.000Z because its NAT failed: it stopped sending heartbeats, and another NAT missed it too \\(peer down\\)$`,
      ),
    );
    expect(r.stdout).toMatch(new RegExp(`^${A} +${w.nat(A).instanceId} +stopped `, 'm'));
    const { doc } = await json();
    const who = { servedBy: { instanceId: w.nat(B).instanceId, az: B }, since: '2026-01-15T11:58:00.000Z', reason: 'peer-down' };
    expect(doc.azs[0]).toMatchObject({ az: A, verdict: 'takeover', ...who, routeTables: [{ ...who, owner: { instanceId: w.nat(B).instanceId, since: '2026-01-15T11:58:00.000Z', reason: 'peer-down' } }] });
    expect(doc.azs[0].detail).toBe(doc.azs[0].routeTables[0].detail);
  });

  it.each([
    ['peer-down', 'because its NAT failed: it stopped sending heartbeats, and another NAT missed it too (peer down)'],
    ['stepped-aside', 'because its NAT failed its own checks and stepped aside (unhealthy)'],
    ['ec2-not-running', 'because its NAT failed: EC2 says it is not running'],
    ['ec2-impaired', "because its NAT failed: EC2's status checks say it is impaired"],
    ['shutdown', 'because its NAT handed its routes over as it shut down'],
    ['manual-failover', "by hanat failover, whose pin has been removed since: its NAT takes the routes back at its next route check"],
    [undefined, '(why is not recorded: no hanat:owner-reason for this NAT)'],
    ['own-az', '(why is not recorded: no hanat:owner-reason for this NAT)'],
    ['cosmic-rays', '(why is not recorded: no hanat:owner-reason for this NAT)'],
  ])('says why a takeover happened from hanat:owner-reason %s', async (reason, why) => {
    takenOver(reason);
    const { doc } = await json();
    expect(doc.azs[0].detail).toBe(`taken over by ${B}'s NAT ${w.nat(B).instanceId} since 2026-01-15T11:58:00.000Z ${why}`);
    expect(doc.azs[0].reason).toBe(reason === undefined || reason === 'cosmic-rays' ? null : reason);
  });

  it('trusts the owner tags only when hanat:owner names the NAT the route points at', async () => {
    takenOver('peer-down');
    w.table(A).tags.set('hanat:owner', w.nat(C).instanceId); // someone moved the route to B by hand, outside hanat
    const { doc } = await json();
    expect(doc.azs[0]).toMatchObject({ verdict: 'takeover', servedBy: { instanceId: w.nat(B).instanceId, az: B }, since: null, reason: null });
    expect(doc.azs[0].detail).toBe(`taken over by ${B}'s NAT ${w.nat(B).instanceId} (why is not recorded: no hanat:owner-reason for this NAT)`);
  });

  it('says since when its own NAT serves an AZ (its last claim: boot or failback)', async () => {
    const r = await h.hanat(...STATUS);
    expect(row(r.stdout, B)).toMatch(new RegExp(`served by its own NAT ${w.nat(B).instanceId} since 2026-01-10T08:01:00\\.000Z$`));
  });

  it('reports a pinned AZ with where it is pinned, exit 0', async () => {
    w.table(A).route = { eni: w.nat(C).eni };
    w.table(A).tags.set('hanat:override', C);
    w.table(A).tags.set('hanat:owner', w.nat(C).instanceId);
    w.table(A).tags.set('hanat:owner-since', '2026-01-15T11:00:00.000Z');
    w.table(A).tags.set('hanat:owner-reason', 'manual-failover');
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(0);
    expect(row(r.stdout, A)).toMatch(new RegExp(`^${A} +PINNED +.*pinned to ${C} by hanat failover \\(hanat:override\\): served by ${C}'s NAT ${w.nat(C).instanceId} since 2026-01-15T11:00:00\\.000Z$`));
    const { doc } = await json();
    expect(doc.azs[0]).toMatchObject({ verdict: 'pinned', servedBy: { instanceId: w.nat(C).instanceId, az: C }, since: '2026-01-15T11:00:00.000Z', reason: 'manual-failover', routeTables: [{ override: C }] });
  });

  it("says who serves a pinned AZ whose pinned-to AZ's NAT failed and was taken over, and why", async () => {
    // A pinned to B; B's NAT failed; C, B's successor, took A's table over (the agents do that for a pinned table).
    w.table(A).tags.set('hanat:override', B);
    w.table(A).route = { eni: w.nat(C).eni };
    w.table(A).tags.set('hanat:owner', w.nat(C).instanceId);
    w.table(A).tags.set('hanat:owner-since', '2026-01-15T11:59:00.000Z');
    w.table(A).tags.set('hanat:owner-reason', 'stepped-aside');
    const { doc } = await json();
    expect(doc.azs[0]).toMatchObject({ verdict: 'pinned', reason: 'stepped-aside' });
    expect(doc.azs[0].detail).toBe(
      `pinned to ${B} by hanat failover (hanat:override): taken over by ${C}'s NAT ${w.nat(C).instanceId} since 2026-01-15T11:59:00.000Z because ${B}'s NAT failed its own checks and stepped aside (unhealthy)`,
    );
  });

  it('says when a pinned AZ is not yet served by the AZ it is pinned to', async () => {
    w.table(A).tags.set('hanat:override', B);
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(0);
    expect(row(r.stdout, A)).toContain(`pinned to ${B} by hanat failover (hanat:override): still served by ${A}'s NAT ${w.nat(A).instanceId}, not yet by ${B}'s`);
  });

  it('exits 1 on a blackhole and names the AZ on stderr, with the table still on stdout', async () => {
    w.nat(B).state = 'stopped';
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(1);
    expect(row(r.stdout, B)).toMatch(new RegExp(`^${B} +BLACKHOLE +${w.table(B).id} +${w.nat(B).eni} \\(blackhole\\) +- +route to ${w.nat(B).eni} is a blackhole: ${B}'s NAT ${w.nat(B).instanceId} \\(stopped\\)$`));
    expect(r.stderr).toContain(`error: 1 AZ of stack prod cannot reach the internet: ${B}\n  ${B} blackhole: ${w.table(B).id} route to ${w.nat(B).eni} is a blackhole`);
    expect(r.stderr).toContain(`hanat failover --name prod --region eu-west-1 --az ${B}`);
  });

  it('flags a serving NAT whose EC2 status checks are impaired (crashed in place, still running, route active) and exits 1', async () => {
    w.nat(B).checks = 'impaired';
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(1);
    expect(row(r.stdout, B)).toMatch(
      new RegExp(`^${B} +IMPAIRED +${w.table(B).id} +${w.nat(B).eni} \\(active\\) +${w.nat(B).instanceId} \\(${B}\\) +route to its own NAT ${w.nat(B).instanceId}, whose EC2 status checks are impaired since 2026-01-15T12:01:00\\.000Z`),
    );
    expect(row(r.stdout, A)).toMatch(new RegExp(`^${A} +ok `));
    expect(r.stderr).toContain(`error: 1 AZ of stack prod cannot reach the internet: ${B}\n  ${B} impaired: ${w.table(B).id} route to its own NAT`);
    expect(r.stderr).toContain(`${B}: NAT ${w.nat(B).instanceId} fails EC2's status checks. Auto Scaling's EC2 health check replaces it`);
    expect(r.stderr).toContain(`hanat failover --name prod --region eu-west-1 --az ${B}`);
    const { doc } = await json();
    expect(doc.azs[1]).toMatchObject({ az: B, verdict: 'impaired' });
    expect(doc.nats.find((n: { instanceId: string }) => n.instanceId === w.nat(B).instanceId).statusChecks).toEqual({ instance: 'impaired', system: 'ok', impairedSince: '2026-01-15T12:01:00.000Z' });
  });

  it('says ok while a NAT\'s status checks are still initializing', async () => {
    w.nat(A).checks = 'initializing';
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(0);
    expect(row(r.stdout, A)).toMatch(new RegExp(`^${A} +ok `));
  });

  it("shows an AZ's most recent failed launch in AWS's words, with its time, and says to fix its cause", async () => {
    // B's NAT is gone and its group cannot launch another: the image was deregistered.
    w.nat(B).state = 'terminated';
    const reason = "The image id '[ami-0a1b2c3d4e5f60718]' does not exist. Launching EC2 instance failed.";
    w.activities.set(w.groupOf(B), [
      { ActivityId: 'a1', AutoScalingGroupName: w.groupOf(B), Cause: 'c', StartTime: new Date(Date.UTC(2026, 0, 10, 8, 0)), StatusCode: 'Successful', Description: 'Launching a new EC2 instance: i-0' },
      { ActivityId: 'a2', AutoScalingGroupName: w.groupOf(B), Cause: 'c', StartTime: new Date(Date.UTC(2026, 0, 15, 11, 58)), StatusCode: 'Failed', StatusMessage: reason, Description: 'Launching a new EC2 instance.  Status Reason: x' },
    ]);
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("\nFailed launches (the latest scaling activity of the AZ's group, in AWS's words)\n");
    expect(r.stdout).toMatch(new RegExp(`^${B} +2026-01-15T11:58:00\\.000Z +${w.groupOf(B)} +The image id '\\[ami-0a1b2c3d4e5f60718\\]' does not exist\\. Launching EC2 instance failed\\.$`, 'm'));
    expect(r.stderr).toContain(`${B}: its Auto Scaling group ${w.groupOf(B)} cannot launch a NAT; the latest attempt (2026-01-15T11:58:00.000Z) failed: ${reason} Fix that cause`);
    // One group listing and one activity listing, for the one AZ without a running NAT.
    expect(names(asgMock)).toEqual(['DescribeAutoScalingInstances', 'DescribeAutoScalingGroups', 'DescribeScalingActivities']);
    const { doc } = await json();
    expect(doc.failedLaunches).toEqual([{ az: B, group: w.groupOf(B), time: '2026-01-15T11:58:00.000Z', message: reason, description: 'Launching a new EC2 instance.  Status Reason: x' }]);
  });

  it('shows no failed launch once a later launch succeeded, and asks Auto Scaling nothing more while every AZ has a running NAT', async () => {
    w.activities.set(w.groupOf(C), [
      { ActivityId: 'a1', AutoScalingGroupName: w.groupOf(C), Cause: 'c', StartTime: new Date(Date.UTC(2026, 0, 10, 8, 0)), StatusCode: 'Failed', StatusMessage: 'We currently do not have sufficient t4g.nano capacity' },
      { ActivityId: 'a2', AutoScalingGroupName: w.groupOf(C), Cause: 'c', StartTime: new Date(Date.UTC(2026, 0, 10, 8, 5)), StatusCode: 'Successful' },
    ]);
    const healthy = await h.hanat(...STATUS);
    expect(healthy.stdout).not.toContain('Failed launches');
    expect(names(asgMock)).toEqual(['DescribeAutoScalingInstances']);
    asgMock.resetHistory();
    w.nat(C).state = 'stopped';
    const { doc } = await json();
    expect(doc.failedLaunches).toEqual([]);
    expect(names(asgMock)).toEqual(['DescribeAutoScalingInstances', 'DescribeAutoScalingGroups', 'DescribeScalingActivities']);
  });

  it('exits 1 when an AZ has no default route', async () => {
    w.table(C).route = undefined;
    const { code, doc, stderr } = await json();
    expect(code).toBe(1);
    expect(doc.azs[2]).toMatchObject({ az: C, verdict: 'no-route', routeTables: [{ route: null, servedBy: null, detail: 'no 0.0.0.0/0 route' }] });
    expect(doc).toMatchObject({ healthy: false, degraded: [C] });
    expect(stderr).toContain(`${C} no-route: ${w.table(C).id} no 0.0.0.0/0 route`);
  });

  it('calls a route stale when its target is not a running NAT of the stack, and exits 1', async () => {
    w.table(A).route = { eni: 'eni-0fffffffffffffff0' };
    w.nat(B).state = 'pending';
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(1);
    expect(row(r.stdout, A)).toMatch(/STALE .*route to eni-0fffffffffffffff0: not a NAT instance of this stack$/);
    expect(row(r.stdout, B)).toMatch(new RegExp(`STALE .*route to ${w.nat(B).eni}: ${B}'s NAT ${w.nat(B).instanceId}, which is pending$`));
    expect(r.stderr).toContain(`error: 2 AZs of stack prod cannot reach the internet: ${A}, ${B}\n`);
  });

  it('calls an AZ served by a NAT whose source/dest check is on CANNOT-FORWARD, exits 1, and says to check its agent or fail over', async () => {
    w.nat(A).sourceDestCheck = true;
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(1);
    expect(row(r.stdout, A)).toMatch(
      new RegExp(`^${A} +CANNOT-FORWARD +${w.table(A).id} .*route to its own NAT ${w.nat(A).instanceId}, which has source/dest check on, so EC2 drops the traffic it would forward$`),
    );
    expect(r.stdout).toMatch(new RegExp(`^${A} +${w.nat(A).instanceId} .* ON \\(cannot forward\\) `, 'm'));
    expect(r.stderr).toContain(`error: 1 AZ of stack prod cannot reach the internet: ${A}\n  ${A} cannot-forward: ${w.table(A).id} route to its own NAT`);
    expect(r.stderr).toContain(`${A}: NAT ${w.nat(A).instanceId} has source/dest check on; its agent turns the check off when it starts`);
    expect(r.stderr).toContain(`Check the agent on ${w.nat(A).instanceId} (systemctl status hanat-agent; journalctl -u hanat-agent), or move the traffic to another AZ: hanat failover --name prod --region eu-west-1 --az ${A}`);
    const { code, doc } = await json();
    expect(code).toBe(1);
    expect(doc).toMatchObject({ healthy: false, degraded: [A] });
    expect(doc.azs[0]).toMatchObject({ az: A, verdict: 'cannot-forward', routeTables: [{ verdict: 'cannot-forward', servedBy: { instanceId: w.nat(A).instanceId, az: A } }] });
  });

  it('also calls a takeover by a NAT with source/dest check on CANNOT-FORWARD', async () => {
    w.nat(A).state = 'stopped';
    w.table(A).route = { eni: w.nat(B).eni };
    w.nat(B).sourceDestCheck = true;
    const { code, doc } = await json();
    expect(code).toBe(1);
    expect(doc.azs.map((a: { verdict: string }) => a.verdict)).toEqual(['cannot-forward', 'cannot-forward', 'ok']);
    expect(doc.azs[0].routeTables[0].detail).toBe(`route to ${B}'s NAT ${w.nat(B).instanceId}, which has source/dest check on, so EC2 drops the traffic it would forward`);
  });

  it("suggests --restore, not another failover, for an AZ pinned to a dead NAT while its own NAT runs", async () => {
    w.table(A).tags.set('hanat:override', B);
    w.table(A).route = { eni: w.nat(B).eni };
    w.nat(B).state = 'stopped';
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `${A}: pinned to ${B}, whose NAT does not serve it, while its own NAT ${w.nat(A).instanceId} runs. Remove the pin and it takes its routes back: ` +
        `hanat failover --name prod --region eu-west-1 --az ${A} --restore\n`,
    );
    // B itself (not pinned, own NAT dead) still gets the failover advice.
    expect(r.stderr).toContain(`${B}: its NAT claims the route again once it runs`);
    expect(r.stderr).toContain(`hanat failover --name prod --region eu-west-1 --az ${B} (to the next AZ whose NAT can serve it).`);
  });

  it('reports a private table without hanat:az apart from the AZs, with a warning naming the table and the tag', async () => {
    const stray = w.addTable(A);
    stray.tags.delete('hanat:az');
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `warning: Private route table ${stray.id} of stack prod has no hanat:az tag, so no agent claims it and hanat leaves it out. ` +
        `Tag each with the AZ of its subnets: aws ec2 create-tags --region eu-west-1 --resources ${stray.id} --tags Key=hanat:az,Value=<AZ>\n`,
    );
    expect(r.stdout).not.toContain('(no hanat:az tag)');
    expect(r.stdout).toContain(`Private route tables without hanat:az (in no AZ): ${stray.id}\n`);
    const { doc } = await json();
    expect(doc.azs.map((a: { az: string }) => a.az)).toEqual(AZS);
    expect(doc.untaggedRouteTables).toEqual([stray.id]);
  });

  it('names a default route to a transit gateway or peering connection by its id, not "unknown"', async () => {
    w.table(A).route = { other: 'tgw-0123456789abcdef0' };
    w.table(B).route = { other: 'pcx-0123456789abcdef0' };
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(1);
    expect(row(r.stdout, A)).toMatch(/STALE .*tgw-0123456789abcdef0 \(active\) .*route to tgw-0123456789abcdef0: not a NAT instance of this stack$/);
    expect(row(r.stdout, B)).toContain('route to pcx-0123456789abcdef0: not a NAT instance of this stack');
    expect(r.stdout).not.toContain('unknown');
  });

  it('maps Ctrl-C during a retry pause to exit 130, not an internal error', async () => {
    w.throttle('DescribeInstances', 1);
    h.clock.onSleep = () => h.interrupt.abort();
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(130);
    const { retries, rest } = retryLines(r.stderr);
    expect(retries).toEqual([expect.stringContaining('AWS is throttling or failing DescribeInstances (RequestLimitExceeded): attempt 1 of 10 failed')]);
    expect(rest).toBe('interrupted: Interrupted: hanat status only reads, so nothing was changed.\n');
  });

  it('prints one JSON document with every AZ, NAT and Elastic IP', async () => {
    const { code, doc } = await json();
    expect(code).toBe(0);
    expect(Object.keys(doc)).toEqual(['stack', 'region', 'stackStatus', 'healthy', 'degraded', 'untaggedRouteTables', 'azs', 'nats', 'eips', 'failedLaunches']);
    expect(doc).toMatchObject({ stack: 'prod', region: 'eu-west-1', stackStatus: 'UPDATE_COMPLETE', healthy: true, degraded: [], untaggedRouteTables: [] });
    expect(doc.azs.map((a: { az: string; verdict: string }) => [a.az, a.verdict])).toEqual(AZS.map((az) => [az, 'ok']));
    const detail = `served by its own NAT ${w.nat(B).instanceId} since 2026-01-10T08:01:00.000Z`;
    expect(doc.azs[1].routeTables[0]).toEqual({
      routeTableId: w.table(B).id,
      verdict: 'ok',
      detail,
      route: { target: w.nat(B).eni, networkInterfaceId: w.nat(B).eni, instanceId: null, state: 'active' },
      servedBy: { instanceId: w.nat(B).instanceId, az: B },
      since: '2026-01-10T08:01:00.000Z',
      reason: 'own-az',
      override: null,
      owner: { instanceId: w.nat(B).instanceId, since: '2026-01-10T08:01:00.000Z', reason: 'own-az' },
    });
    const { routeTables: _, ...az } = doc.azs[1];
    expect(az).toEqual({ az: B, verdict: 'ok', servedBy: { instanceId: w.nat(B).instanceId, az: B }, since: '2026-01-10T08:01:00.000Z', reason: 'own-az', detail });
    expect(doc.nats[0]).toEqual({
      instanceId: w.nat(A).instanceId,
      az: A,
      state: 'running',
      networkInterfaceId: w.nat(A).eni,
      privateIp: w.nat(A).privateIp,
      publicIp: '203.0.113.10',
      sourceDestCheck: false,
      launchTime: '2026-01-10T08:00:01.000Z',
      autoScaling: { group: 'prod-Az1NatGroup', health: 'HEALTHY', lifecycle: 'InService' },
      statusChecks: { instance: 'ok', system: 'ok', impairedSince: null },
    });
    expect(doc.eips[2]).toEqual({ allocationId: w.eips[2]!.allocationId, publicIp: '203.0.113.12', az: C, instanceId: w.nat(C).instanceId, networkInterfaceId: w.nat(C).eni });
  });

  it('retries throttled Describe calls instead of failing', async () => {
    w.throttle('DescribeRouteTables', 2);
    w.throttle('DescribeInstances', 1);
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(0);
    expect(names(ec2Mock).filter((n) => n === 'DescribeRouteTables')).toHaveLength(3);
    expect(h.clock.sleeps).toHaveLength(3);
  });

  it('refuses a stack that does not exist with exit 2, before reading any route', async () => {
    const r = await h.hanat('status', '--name', 'nosuch', '--region', 'eu-west-1');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error: Stack nosuch does not exist in eu-west-1. hanat status works on a stack made by hanat deploy: check --name and --region');
    expect(names(ec2Mock)).toEqual([]);
  });

  it('refuses a stack that hanat did not create with exit 2', async () => {
    h.cfn.seedStack({ name: 'payments', status: 'CREATE_COMPLETE', tags: [] });
    const r = await h.hanat('status', '--name', 'payments', '--region', 'eu-west-1');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error: Stack payments in eu-west-1 was not created by hanat');
    expect(names(ec2Mock)).toEqual([]);
  });

  it("reads a stack made from hanat's template outside hanat (Metadata.hanat, no stack tag)", async () => {
    h.cfn.seedStack({ name: 'console', status: 'CREATE_COMPLETE', tags: [], templateBody: smallTemplate().replace('{', '{"Metadata":{"hanat":{"azs":3}},') });
    const console = FakeNatWorld.healthy('console', AZS);
    ec2Mock.reset();
    console.install(ec2Mock, asgMock);
    const r = await h.hanat('status', '--name', 'console', '--region', 'eu-west-1');
    expect(r.code).toBe(0);
    expect(names(cfnMock)).toEqual(['DescribeStacks', 'GetTemplate']);
  });

  it('checks --name and --region locally as deploy does', async () => {
    const bad = await h.hanat('status', '--name', 'prod_vpc', '--region', 'eu-west-1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--name "prod_vpc": a stack name may contain only letters, digits and hyphens');
    const region = await h.hanat('status', '--name', 'prod', '--region', 'Ireland');
    expect(region.code).toBe(2);
    expect(region.stderr).toContain('--region "Ireland"');
    expect(names(cfnMock)).toEqual([]);
  });

  it('exits 1 when the stack has no private route tables to report on', async () => {
    w.tables.length = 0;
    const r = await h.hanat(...STATUS);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: Stack prod in eu-west-1 (UPDATE_COMPLETE) has no private route tables tagged hanat:stack=prod and network=private.');
  });
});
