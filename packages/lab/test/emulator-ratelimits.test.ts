/**
 * AWS's API rate limits in the emulator: token buckets per action (EC2) or per service,
 * per account and region, with the sizes and refill rates EMULATOR.md quotes. Driven with a
 * manual clock through the real SDK (no retries), so every refill is exact.
 */
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CreateTagsCommand, CreateVpcCommand, DescribeInstancesCommand, DescribeRouteTablesCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmulator, ManualClock } from '../src/emulator/index.js';
import { credentials, eventually, rejection, startLab, type Harness } from './emulator/helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Sends `n` calls one after the other; returns how many succeeded and the first error. */
async function burst(n: number, call: () => Promise<unknown>): Promise<{ ok: number; error?: Error & { name: string; $metadata?: { httpStatusCode?: number } } }> {
  let ok = 0;
  for (let i = 0; i < n; i++) {
    try {
      await call();
      ok++;
    } catch (err) {
      return { ok, error: err as Error & { name: string } };
    }
  }
  return { ok };
}

describe('API rate limits (token buckets)', () => {
  it('lets a burst of one EC2 action through up to its bucket, answers RequestLimitExceeded beyond it, and refills at the documented rate', async () => {
    const clock = new ManualClock();
    h = await startLab({ clock, rateLimits: true });
    const describeTables = () => h!.ec2.send(new DescribeRouteTablesCommand({}));
    // Non-mutating: 100 tokens, 20 a second.
    const first = await burst(101, describeTables);
    expect(first.ok).toBe(100);
    expect([first.error?.name, first.error?.message, first.error?.$metadata?.httpStatusCode]).toEqual(['RequestLimitExceeded', 'Request limit exceeded.', 503]);
    expect(h.emu.counters.snapshot().throttled).toEqual({ 'ec2:DescribeRouteTables': 1 });
    // Another action has a bucket of its own.
    await h.ec2.send(new DescribeVpcsCommand({}));
    await clock.advance(1_000);
    expect((await burst(21, describeTables)).ok).toBe(20);
    await clock.advance(250);
    expect((await burst(6, describeTables)).ok).toBe(5);
    // Never more than the capacity, however long the wait.
    await clock.advance(60_000);
    expect((await burst(101, describeTables)).ok).toBe(100);
    expect(h.emu.counters.throttled('ec2:DescribeRouteTables')).toBe(4);
  });

  it('shrinks every bucket by settings.rateLimitScale (tests), capacity and refill alike', async () => {
    const clock = new ManualClock();
    h = await startLab({ clock, rateLimits: true });
    h.emu.account.settings.rateLimitScale = 0.05;
    const describeTables = () => h!.ec2.send(new DescribeRouteTablesCommand({}));
    // 100 tokens and 20 a second become 5 and 1 a second; RunInstances' 5 would be 0.25: at least 1.
    expect((await burst(6, describeTables)).ok).toBe(5);
    await clock.advance(2_000);
    expect((await burst(3, describeTables)).ok).toBe(2);
  });

  it('gives unfiltered, unpaginated DescribeInstances the smaller bucket, and mutating actions theirs', async () => {
    const clock = new ManualClock();
    h = await startLab({ clock, rateLimits: true });
    expect((await burst(51, () => h!.ec2.send(new DescribeInstancesCommand({})))).ok).toBe(50);
    // With a filter it draws from the standard non-mutating bucket, still full.
    expect((await burst(100, () => h!.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['running'] }] })))).ok).toBe(100);
    // Mutating: 50 and 5 a second. CreateTags is uncategorized: 100 and 10 a second.
    const vpcs = await burst(51, () => h!.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' })));
    expect(vpcs.ok).toBe(50);
    expect(vpcs.error?.name).toBe('RequestLimitExceeded');
    const vpcId = (await h.ec2.send(new DescribeVpcsCommand({}))).Vpcs![0]!.VpcId!;
    expect((await burst(101, () => h!.ec2.send(new CreateTagsCommand({ Resources: [vpcId], Tags: [{ Key: 'k', Value: 'v' }] })))).ok).toBe(100);
    await clock.advance(1_000);
    expect((await burst(6, () => h!.ec2.send(new CreateVpcCommand({ CidrBlock: '10.1.0.0/16' })))).ok).toBe(5);
  });

  it('throttles Auto Scaling with one bucket for all its actions, answering Throttling', async () => {
    h = await startLab({ clock: new ManualClock(), rateLimits: true });
    const r = await burst(101, () => h!.asg.send(new DescribeAutoScalingGroupsCommand({})));
    expect(r.ok).toBe(100);
    expect([r.error?.name, r.error?.message, r.error?.$metadata?.httpStatusCode]).toEqual(['Throttling', 'Rate exceeded', 400]);
  });

  it('keeps a bucket per region', async () => {
    h = await startLab({ clock: new ManualClock(), rateLimits: true });
    expect((await burst(101, () => h!.ec2.send(new DescribeVpcsCommand({})))).ok).toBe(100);
    const other = h.clients({ region: 'eu-west-1' }).ec2;
    expect((await burst(100, () => other.send(new DescribeVpcsCommand({})))).ok).toBe(100);
  });

  it('is off by default with zero latency (unit tests), on by default with the aws profile', async () => {
    h = await startLab({ clock: new ManualClock() });
    expect((await burst(150, () => h!.ec2.send(new DescribeVpcsCommand({})))).ok).toBe(150);
    const aws = createEmulator({ latency: 'aws', clock: new ManualClock() });
    const zero = createEmulator({ latency: 'zero' });
    expect([aws.account.rateLimits !== undefined, zero.account.rateLimits !== undefined]).toEqual([true, false]);
    await aws.close();
    await zero.close();
  });

  it('keeps injected throttling working on top of the buckets', async () => {
    h = await startLab({ clock: new ManualClock(), rateLimits: true });
    h.emu.faults.add({ kind: 'throttle', service: 'ec2', action: 'DescribeVpcs', count: 1 });
    const err = await rejection(h.ec2.send(new DescribeVpcsCommand({})));
    expect(err.name).toBe('RequestLimitExceeded');
    expect(h.emu.counters.snapshot()).toMatchObject({ injected: { 'ec2:DescribeVpcs': 1 }, throttled: {} });
    await h.ec2.send(new DescribeVpcsCommand({}));
  });

  it("lets the SDK's retries through once the bucket refills", async () => {
    const clock = new ManualClock();
    h = await startLab({ clock, rateLimits: true });
    const patient = new EC2Client({ endpoint: h.url, region: h.region, credentials, maxAttempts: 5 });
    try {
      expect((await burst(101, () => h!.ec2.send(new DescribeVpcsCommand({})))).ok).toBe(100);
      // The SDK backs off and retries RequestLimitExceeded; meanwhile a second passes and 20 tokens come back.
      const sent = patient.send(new DescribeVpcsCommand({}));
      // The burst's last call and the SDK's first attempt are throttled; no time passes on this clock until we say so.
      await eventually(() => Promise.resolve(h!.emu.counters.throttled('ec2:DescribeVpcs') === 2 ? true : undefined), 5_000, "the SDK's first attempt");
      await clock.advance(1_000);
      await expect(sent).resolves.toMatchObject({ Vpcs: [] });
    } finally {
      patient.destroy();
    }
  });
});
