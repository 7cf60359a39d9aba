import { DescribeRouteTablesCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { inputsOf, names, retryLines, sent } from './support/calls.js';
import { FakeNatWorld, ec2Error } from './support/fake-nat.js';
import { asgMock, cfnMock, ec2Mock, harness, zonesOf, type Harness } from './support/harness.js';

const AZS = zonesOf('eu-west-1', 3);
const [A, B, C] = AZS as [string, string, string];
const BASE = ['failover', '--name', 'prod', '--region', 'eu-west-1'];
const NOW = '2026-01-15T12:00:00.000Z';

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

/** The calls that change something, in order. */
const writes = () => sent(ec2Mock).filter(([n]) => !n.startsWith('Describe'));

describe('hanat failover', () => {
  it('pins, then moves the route, then records the owner: in that order', async () => {
    const r = await h.hanat(...BASE, '--az', A, '--to', C, '--yes');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const table = w.table(A).id;
    expect(writes()).toEqual([
      ['CreateTags', { Resources: [table], Tags: [{ Key: 'hanat:override', Value: C }] }],
      ['ReplaceRoute', { RouteTableId: table, DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: w.nat(C).eni }],
      ['CreateTags', { Resources: [table], Tags: [{ Key: 'hanat:owner', Value: w.nat(C).instanceId }, { Key: 'hanat:owner-since', Value: NOW }, { Key: 'hanat:owner-reason', Value: 'manual-failover' }] }],
    ]);
    expect(w.table(A).route).toEqual({ eni: w.nat(C).eni });
    expect(w.table(A).tags.get('hanat:override')).toBe(C);
    // Only A's table moved.
    expect(w.table(B).route).toEqual({ eni: w.nat(B).eni });
    // Auto Scaling is only read (health and lifecycle of the NATs), never changed.
    expect(names(asgMock)).toEqual(['DescribeAutoScalingInstances']);
    expect(r.stdout).toContain(`AZ ${A} now sends 0.0.0.0/0 through ${C}'s NAT ${w.nat(C).instanceId} (${w.nat(C).eni}), pinned with hanat:override=${C}.`);
    expect(r.stdout).toMatch(new RegExp(`^${table} +set +replaced +written$`, 'm'));
    expect(r.stdout).toContain(`Undo with: hanat failover --name prod --region eu-west-1 --az ${A} --restore`);
  });

  it('without --to, picks the next AZ in alphabetical order that has a running NAT', async () => {
    const r = await h.hanat(...BASE, '--az', A, '--yes');
    expect(r.code).toBe(0);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
    expect(w.table(A).tags.get('hanat:override')).toBe(B);
  });

  it('wraps around from the last AZ to the first', async () => {
    const r = await h.hanat(...BASE, '--az', C, '--yes');
    expect(r.code).toBe(0);
    expect(w.table(C).tags.get('hanat:override')).toBe(A);
    expect(w.table(C).route).toEqual({ eni: w.nat(A).eni });
  });

  it('skips AZs whose NAT is not running', async () => {
    w.nat(B).state = 'stopped';
    const r = await h.hanat(...BASE, '--az', A, '--yes', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ action: 'failover', az: A, to: C, instanceId: w.nat(C).instanceId, changed: true });
  });

  it('creates the route when the table has none (EC2 says "no route defined")', async () => {
    w.table(A).route = undefined;
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(0);
    expect(writes().map(([n]) => n)).toEqual(['CreateTags', 'CreateRoute', 'CreateTags']);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
  });

  it('falls back to CreateRoute when the route vanished after it was read', async () => {
    // The first look still sees the route; it is gone by the time ReplaceRoute arrives.
    ec2Mock.on(DescribeRouteTablesCommand).callsFakeOnce(() => {
      const out = {
        RouteTables: w.tables.map((t) => ({
          RouteTableId: t.id,
          Tags: [...t.tags].map(([Key, Value]) => ({ Key, Value })),
          Routes: t.route ? [{ DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: t.route.eni, State: 'active' as const }] : [],
        })),
      };
      w.table(A).route = undefined;
      return out;
    });
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(0);
    expect(writes().map(([n]) => n)).toEqual(['CreateTags', 'ReplaceRoute', 'CreateRoute', 'CreateTags']);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
  });

  it('changes nothing, and says so, when run again to the same AZ', async () => {
    expect((await h.hanat(...BASE, '--az', A, '--to', B, '--yes')).code).toBe(0);
    ec2Mock.resetHistory();
    const again = await h.hanat(...BASE, '--az', A, '--to', B);
    expect(again.code).toBe(0);
    expect(writes()).toEqual([]);
    expect(again.stdout).toContain(`Nothing to do: AZ ${A} already sends 0.0.0.0/0 through ${B}'s NAT ${w.nat(B).instanceId}`);
    expect(h.questions).toEqual([]);
  });

  it('finishes a failover that stopped after the pin', async () => {
    w.table(A).tags.set('hanat:override', B);
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(0);
    expect(writes().map(([n]) => n)).toEqual(['ReplaceRoute', 'CreateTags']);
    expect(w.table(A).tags.get('hanat:owner')).toBe(w.nat(B).instanceId);
  });

  it('retries throttled writes, keeping their order', async () => {
    w.throttle('CreateTags', 1);
    w.throttle('ReplaceRoute', 2);
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(0);
    expect(writes().map(([n]) => n)).toEqual(['CreateTags', 'CreateTags', 'ReplaceRoute', 'ReplaceRoute', 'ReplaceRoute', 'CreateTags']);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
    expect(h.clock.sleeps).toHaveLength(3);
  });

  it('asks on a terminal, warns that connections break, and changes nothing on no', async () => {
    h.deps.stdinIsTTY = h.deps.stderrIsTTY = true;
    h.answers.push(false);
    const r = await h.hanat(...BASE, '--az', A, '--to', B);
    expect(h.questions).toHaveLength(1);
    expect(h.questions[0]).toContain(`Move the internet traffic of ${A} (route table ${w.table(A).id}, now to ${w.nat(A).eni}) to ${B}'s NAT ${w.nat(B).instanceId}`);
    expect(h.questions[0]).toContain('Connections open through');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Not changed: the route tables of ${A} are unchanged.`);
    expect(writes()).toEqual([]);
  });

  it('refuses without --yes when there is no terminal, before any change', async () => {
    const r = await h.hanat(...BASE, '--az', A, '--to', B);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: Refusing to move traffic without confirmation: no terminal to ask on. Pass --yes to fail over without a prompt.\n');
    expect(writes()).toEqual([]);
  });

  it('refuses an AZ the stack does not have, naming its AZs', async () => {
    const r = await h.hanat(...BASE, '--az', 'eu-west-1d', '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: --az eu-west-1d is not an Availability Zone of stack prod in eu-west-1: its AZs are ${AZS.join(', ')}.\n`);
    expect(writes()).toEqual([]);
    const to = await h.hanat(...BASE, '--az', A, '--to', 'eu-west-1x', '--yes');
    expect(to.code).toBe(2);
    expect(to.stderr).toContain('--to eu-west-1x is not an Availability Zone of stack prod');
  });

  it('refuses --to equal to --az before any AWS call', async () => {
    const r = await h.hanat(...BASE, '--az', A, '--to', A, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: --to ${A} is the AZ being failed over (--az ${A})`);
    expect(r.stderr).toContain('To undo a failover, use --restore.');
    expect(names(cfnMock)).toEqual([]);
  });

  it('refuses a target AZ without a running NAT, naming what it found and what to do', async () => {
    w.nat(B).state = 'stopped';
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `error: ${B} has no running NAT to take over ${A} (found: ${w.nat(B).instanceId} (stopped)). Nothing was changed. ` +
        `Wait until its Auto Scaling group has replaced it (hanat status --name prod shows the NATs), or pass --to with an AZ whose NAT runs: ${C}.\n`,
    );
    expect(writes()).toEqual([]);
  });

  it('fails with exit 1 (not bad input) when no other AZ has a NAT that can serve, saying why for each', async () => {
    w.nat(B).state = 'stopped';
    w.nats.splice(w.nats.indexOf(w.nat(C)), 1);
    const r = await h.hanat(...BASE, '--az', A, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `error: No AZ can take over ${A}: no other AZ of stack prod has a NAT that can serve it (${B}: no running NAT (found: ${w.nat(B).instanceId} (stopped)); ${C}: no running NAT (found: no NAT instance)). Nothing was changed. Wait until`,
    );
    expect(writes()).toEqual([]);
  });

  it('without --to, skips an AZ whose own tables are pinned away', async () => {
    expect((await h.hanat(...BASE, '--az', B, '--to', C, '--yes')).code).toBe(0);
    const r = await h.hanat(...BASE, '--az', A, '--yes', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(w.table(A).tags.get('hanat:override')).toBe(C);
    expect(w.table(A).route).toEqual({ eni: w.nat(C).eni });
    expect(JSON.parse(r.stdout).notes).toContain(`Passed over: ${B} (its own tables are pinned to ${C} (undo with hanat failover --name prod --region eu-west-1 --az ${B} --restore)).`);
  });

  it('without --to, skips a NAT that Auto Scaling marks UNHEALTHY or Terminating', async () => {
    w.nat(B).health = 'UNHEALTHY';
    expect((await h.hanat(...BASE, '--az', A, '--yes')).code).toBe(0);
    expect(w.table(A).route).toEqual({ eni: w.nat(C).eni });
    w.nat(A).lifecycle = 'Terminating:Wait';
    expect((await h.hanat(...BASE, '--az', C, '--yes')).code).toBe(1);
    expect(w.table(C).route).toEqual({ eni: w.nat(C).eni });
  });

  it('without --to, takes a running NAT that no Auto Scaling group knows', async () => {
    w.nat(B).detached = true;
    const r = await h.hanat(...BASE, '--az', A, '--yes');
    expect(r.code, r.stderr).toBe(0);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
  });

  it('without --to, skips a NAT whose source/dest check is on and takes the next AZ', async () => {
    w.nat(B).sourceDestCheck = true;
    const r = await h.hanat(...BASE, '--az', A, '--yes');
    expect(r.code, r.stderr).toBe(0);
    expect(w.table(A).route).toEqual({ eni: w.nat(C).eni });
    expect(r.stdout).toContain(`Passed over: ${B} (${w.nat(B).instanceId} has source/dest check on, so it cannot forward).`);
  });

  it('refuses --to an AZ whose own tables are pinned away, saying to restore it first', async () => {
    expect((await h.hanat(...BASE, '--az', B, '--to', C, '--yes')).code).toBe(0);
    ec2Mock.resetHistory();
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${B}'s own route tables are pinned to ${C} (hanat:override: a failover moved them)`);
    expect(r.stderr).toContain(`Nothing was changed. Restore ${B} first: hanat failover --name prod --region eu-west-1 --az ${B} --restore, or pass --to with another AZ: ${C}.`);
    expect(writes()).toEqual([]);
  });

  it('refuses --to an AZ whose NAT Auto Scaling marks UNHEALTHY or Terminating', async () => {
    w.nat(B).health = 'UNHEALTHY';
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${B}'s NAT ${w.nat(B).instanceId} is UNHEALTHY and InService in its Auto Scaling group prod-Az2NatGroup: the group is replacing it`);
    expect(r.stderr).toContain(`or pass --to with another AZ: ${C}.`);
    w.nat(B).health = 'HEALTHY';
    w.nat(B).lifecycle = 'Terminating';
    const t = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(t.code).toBe(2);
    expect(t.stderr).toContain(`is HEALTHY and Terminating in its Auto Scaling group`);
    expect(writes()).toEqual([]);
  });

  it('says what to check when the target NAT has no primary network interface', async () => {
    w.nat(C).eni = '';
    const r = await h.hanat(...BASE, '--az', A, '--to', C, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: ${C}'s NAT ${w.nat(C).instanceId} has no primary network interface (device index 0) in DescribeInstances; routes must target one. Nothing was changed. `);
    expect(r.stderr).toContain(`Check the instance: aws ec2 describe-instances --region eu-west-1 --instance-ids ${w.nat(C).instanceId}`);
    expect(r.stderr).toContain(`or pass --to with another AZ: ${B}.`);
    expect(writes()).toEqual([]);
  });

  it('keeps an untagged private table out of the AZs, and warns about it', async () => {
    const stray = w.addTable(A);
    stray.tags.delete('hanat:az');
    const r = await h.hanat(...BASE, '--az', 'eu-west-1d', '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`warning: Private route table ${stray.id} of stack prod has no hanat:az tag`);
    expect(r.stderr).toContain(`its AZs are ${AZS.join(', ')}.\n`);
    const moved = await h.hanat(...BASE, '--az', C, '--yes');
    expect(moved.code).toBe(0);
    expect(w.table(C).tags.get('hanat:override')).toBe(A);
    expect(stray.tags.has('hanat:override')).toBe(false);
  });

  it('refuses a target NAT whose source/dest check is on: it cannot forward', async () => {
    w.nat(B).sourceDestCheck = true;
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${B}'s NAT ${w.nat(B).instanceId} has source/dest check on, so it would drop the traffic of ${A}`);
    expect(r.stderr).toContain(`or pass --to with another AZ: ${C}.`);
    expect(writes()).toEqual([]);
  });

  it('with two running NATs in the target AZ, uses the one that serves it', async () => {
    const newer = w.addNat(B, { launchTime: new Date(Date.UTC(2026, 0, 15, 11)) });
    expect((await h.hanat(...BASE, '--az', A, '--to', B, '--yes')).code).toBe(0);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
    w.table(B).route = { eni: newer.eni };
    w.table(A).tags.delete('hanat:override');
    expect((await h.hanat(...BASE, '--az', A, '--to', B, '--yes')).code).toBe(0);
    expect(w.table(A).route).toEqual({ eni: newer.eni });
  });

  it('with two running NATs in the target AZ, prefers one that can forward over the one its table routes to', async () => {
    const deaf = w.addNat(B, { sourceDestCheck: true, launchTime: new Date(Date.UTC(2026, 0, 15, 11)) });
    w.table(B).route = { eni: deaf.eni };
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code, r.stderr).toBe(0);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
    const sick = w.addNat(C, { health: 'UNHEALTHY', launchTime: new Date(Date.UTC(2026, 0, 15, 11)) });
    expect((await h.hanat(...BASE, '--az', B, '--to', C, '--yes')).code).toBe(0);
    expect(w.table(B).route).toEqual({ eni: w.nat(C).eni });
    expect(w.table(B).route).not.toEqual({ eni: sick.eni });
  });

  it('says what it wrote and how to go on when ReplaceRoute keeps failing after the pin', async () => {
    w.throttle('ReplaceRoute', 10);
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `error: ReplaceRoute kept failing (RequestLimitExceeded) after 10 attempts; try again in a few minutes.\n` +
        `The failover stopped part-way: ${A} is already pinned to ${B} (hanat:override), but its route in ${w.table(A).id} still points at ${w.nat(A).eni}, not at ${B}'s NAT ${w.nat(B).eni}. ` +
        `Run the same command again to finish: hanat failover --name prod --region eu-west-1 --az ${A} --to ${B} --yes; ` +
        `or undo it: hanat failover --name prod --region eu-west-1 --az ${A} --restore (${A}'s own NAT then takes its routes back).\n`,
    );
    expect(w.table(A).tags.get('hanat:override')).toBe(B);
    // As it says: running it again finishes it.
    const again = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(again.code).toBe(0);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
  });

  it('says what it wrote when AWS denies ReplaceRoute after the pin, and only the error when it denies the pin itself', async () => {
    w.fail('ReplaceRoute', ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));
    const denied = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('error: AWS denied ReplaceRoute');
    expect(denied.stderr).toContain(`The failover stopped part-way: ${A} is already pinned to ${B} (hanat:override), but its route in ${w.table(A).id} still points at ${w.nat(A).eni}`);
    expect(denied.stderr).toContain(`--az ${A} --restore`);

    w.heal('ReplaceRoute');
    w.fail('CreateTags', ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403));
    const owner = await h.hanat(...BASE, '--az', A, '--to', C, '--yes');
    expect(owner.code).toBe(1);
    expect(owner.stderr).toContain('error: AWS denied CreateTags');
    // The pin was refused here, so nothing changed, and the error says no more than that.
    expect(owner.stderr).not.toContain('stopped part-way');
  });

  it('says what it wrote when the owner tags fail after the route moved', async () => {
    w.fail('CreateTags', ec2Error('UnauthorizedOperation', 'You are not authorized to perform this operation.', 403), 1);
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`The failover stopped part-way: ${A} is pinned to ${B} and its route points at ${B}'s NAT ${w.nat(B).eni}, but the hanat:owner tags were not written.`);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
  });

  it('maps Ctrl-C during a retry pause after the pin to exit 130, saying what was written and how to go on', async () => {
    w.throttle('ReplaceRoute', 1);
    h.clock.onSleep = () => h.interrupt.abort();
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(130);
    expect(retryLines(r.stderr).retries).toEqual([expect.stringContaining('ReplaceRoute (RequestLimitExceeded): attempt 1 of 10 failed')]);
    expect(retryLines(r.stderr).rest).toBe(
      `interrupted: Stopped part-way: ${A} is already pinned to ${B} (hanat:override), but its route in ${w.table(A).id} still points at ${w.nat(A).eni}, not at ${B}'s NAT ${w.nat(B).eni}. ` +
        `Run the same command again to finish: hanat failover --name prod --region eu-west-1 --az ${A} --to ${B} --yes; ` +
        `or undo it: hanat failover --name prod --region eu-west-1 --az ${A} --restore (${A}'s own NAT then takes its routes back).\n`,
    );
  });

  it('maps Ctrl-C during a retry pause before any write to exit 130, saying nothing changed', async () => {
    w.throttle('DescribeInstances', 1);
    h.clock.onSleep = () => h.interrupt.abort();
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes');
    expect(r.code).toBe(130);
    expect(retryLines(r.stderr).retries).toHaveLength(1);
    expect(retryLines(r.stderr).rest).toBe(`interrupted: Interrupted before any change: the route tables of ${A} are unchanged.\n`);
    expect(writes()).toEqual([]);
  });

  it('works on a stack whose agents are all dead: nothing but EC2 calls', async () => {
    w.table(A).route = { eni: w.nat(A).eni, forceState: 'blackhole' };
    w.nat(A).state = 'stopped';
    const r = await h.hanat(...BASE, '--az', A, '--yes');
    expect(r.code).toBe(0);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
    expect(r.stdout).not.toContain('keeps running but serves nothing');
  });

  it('prints the result as JSON', async () => {
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--yes', '--json');
    expect(JSON.parse(r.stdout)).toEqual({
      stack: 'prod',
      region: 'eu-west-1',
      action: 'failover',
      az: A,
      to: B,
      instanceId: w.nat(B).instanceId,
      networkInterfaceId: w.nat(B).eni,
      changed: true,
      routeTables: [{ routeTableId: w.table(A).id, pin: 'set', pinnedTo: B, route: 'replaced', previousTarget: w.nat(A).eni, owner: 'written' }],
      notes: [
        `The pin stays until you remove it: no agent moves these routes while it is there (${A}'s own NAT ${w.nat(A).instanceId} keeps running but serves nothing).`,
        `Undo with: hanat failover --name prod --region eu-west-1 --az ${A} --restore (${A}'s own NAT then takes its routes back within 30 s).`,
      ],
      undo: `hanat failover --name prod --region eu-west-1 --az ${A} --restore`,
    });
  });

  it('refuses a stack that does not exist with exit 2', async () => {
    const r = await h.hanat('failover', '--name', 'nosuch', '--region', 'eu-west-1', '--az', A, '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Stack nosuch does not exist in eu-west-1. hanat failover works on a stack made by hanat deploy');
  });

  it('does not take --to with --restore', async () => {
    const r = await h.hanat(...BASE, '--az', A, '--to', B, '--restore');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/option '--to <az>' cannot be used with option '--restore'/);
  });
});

describe('hanat failover --restore', () => {
  beforeEach(async () => {
    expect((await h.hanat(...BASE, '--az', A, '--to', B, '--yes')).code).toBe(0);
    ec2Mock.resetHistory();
  });

  it('removes the pin and nothing else, and says when the AZ gets its route back', async () => {
    const r = await h.hanat(...BASE, '--az', A, '--restore', '--yes');
    expect(r.code).toBe(0);
    expect(writes()).toEqual([['DeleteTags', { Resources: [w.table(A).id], Tags: [{ Key: 'hanat:override' }] }]]);
    expect(w.table(A).tags.has('hanat:override')).toBe(false);
    expect(w.table(A).route).toEqual({ eni: w.nat(B).eni });
    expect(r.stdout).toContain(`Removed the pin hanat:override from AZ ${A}'s private route table(s).`);
    expect(r.stdout).toContain(
      `The route stays where it is until ${A}'s NAT ${w.nat(A).instanceId} takes it back at its next route check (within 30 s), after its own checks. ` +
        `hanat status --name prod --region eu-west-1 shows when: ${A} turns from TAKEOVER to ok.`,
    );
  });

  it('restores at once after a failover, with no warning: the agent takes back a table whose newer owner is not a NAT of its AZ', async () => {
    h.clock.t += 10_000;
    const r = await h.hanat(...BASE, '--az', A, '--restore', '--yes');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('says the route stays on the other NAT when the AZ has no running NAT', async () => {
    w.nat(A).state = 'stopped';
    const r = await h.hanat(...BASE, '--az', A, '--restore', '--yes', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ action: 'restore', az: A, to: null, changed: true, routeTables: [{ pin: 'removed', pinnedTo: B, route: 'unchanged' }] });
    expect(doc.notes[0]).toContain(`${A} has no running NAT (found: ${w.nat(A).instanceId} (stopped)): the route stays on ${B}'s NAT until ${A}'s NAT is replaced and claims it.`);
  });

  it('is a no-op with exit 0 on a table without a pin, even without a terminal', async () => {
    expect((await h.hanat(...BASE, '--az', A, '--restore', '--yes')).code).toBe(0);
    ec2Mock.resetHistory();
    const r = await h.hanat(...BASE, '--az', A, '--restore');
    expect(r.code).toBe(0);
    expect(writes()).toEqual([]);
    expect(r.stdout).toContain(`Nothing to do: AZ ${A}'s private route table(s) carry no hanat:override pin.`);
  });

  it('maps Ctrl-C during a retry pause of DeleteTags to exit 130, saying the pin stays', async () => {
    w.throttle('DeleteTags', 1);
    h.clock.onSleep = () => h.interrupt.abort();
    const r = await h.hanat(...BASE, '--az', A, '--restore', '--yes');
    expect(r.code).toBe(130);
    expect(retryLines(r.stderr).retries).toEqual([expect.stringContaining('DeleteTags (RequestLimitExceeded): attempt 1 of 10 failed')]);
    expect(retryLines(r.stderr).rest).toBe(`interrupted: Interrupted: the pin was not removed, ${A} stays pinned to ${B}. Run the same command again to remove it.\n`);
  });

  it('refuses without --yes when there is no terminal', async () => {
    const r = await h.hanat(...BASE, '--az', A, '--restore');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('error: Refusing to remove the failover pin without confirmation: no terminal to ask on. Pass --yes to restore without a prompt.\n');
    expect(inputsOf(ec2Mock, 'DeleteTags')).toEqual([]);
  });
});
