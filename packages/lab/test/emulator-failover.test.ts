/**
 * `hanat status` and `hanat failover` through the real CLI (its program in
 * process, its own SDK clients reaching the emulator through AWS_ENDPOINT_URL),
 * on a stack `hanat deploy` made in the emulator. Without the namespace data
 * plane the emulator's Auto Scaling launches NATs that run no agent, so the
 * test does what each agent would do at start-up with SDK calls: source/dest
 * check off, the AZ's default route to its NAT, the owner tags.
 */
import {
  CreateRouteCommand,
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeRouteTablesCommand,
  ModifyInstanceAttributeCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import { hanatCli, keepSdkEnv, pointSdkAt } from './emulator/cli.js';
import { eventually, startLab, type Harness } from './emulator/helpers.js';

keepSdkEnv();
const hanat = (argv: string[]) => hanatCli(argv);

const tag = (i: { Tags?: { Key?: string; Value?: string }[] }, key: string) => i.Tags?.find((t) => t.Key === key)?.Value;

describe('hanat status and failover against the emulator', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  it('fails an AZ over to another, reports it pinned, and restores it', { timeout: 60_000 }, async () => {
    h = await startLab({ latency: 'zero', bootDelayMs: 10 });
    pointSdkAt(h.url);

    const deployed = await hanat(['deploy', '--name', 'lab', '--cidr-prefix', '10.0', '--yes']);
    expect(deployed.code, deployed.stderr).toBe(0);

    // The NATs Auto Scaling launched, one per AZ, running.
    const nats = await eventually(async () => {
      const out = await h.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: ['lab'] }, { Name: 'instance-state-name', Values: ['running'] }] }));
      const list = out.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
      return list.length === 3 ? list : undefined;
    }, 10_000, 'three running NATs');
    const natOf = new Map<string, Instance>(nats.map((i) => [tag(i, 'hanat:az')!, i]));
    const [a, b, c] = [...natOf.keys()].sort() as [string, string, string];
    const eniOf = (az: string) => natOf.get(az)!.NetworkInterfaces!.find((n) => n.Attachment?.DeviceIndex === 0)!.NetworkInterfaceId!;
    const tables = async () => (await h.ec2.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'tag:hanat:stack', Values: ['lab'] }, { Name: 'tag:network', Values: ['private'] }] }))).RouteTables!;
    const tableOf = async (az: string) => (await tables()).find((t) => tag(t, 'hanat:az') === az)!;

    // No agents run here: the template leaves the private tables without a default route.
    const before = await hanat(['status', '--name', 'lab']);
    expect(before.code).toBe(1);
    expect(before.stdout).toMatch(new RegExp(`^${a} +NO-ROUTE `, 'm'));
    expect(before.stderr).toContain(`3 AZs of stack lab cannot reach the internet: ${a}, ${b}, ${c}`);

    // What each agent does at start-up.
    for (const [az, nat] of natOf) {
      await h.ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: nat.InstanceId, SourceDestCheck: { Value: false } }));
      const t = await tableOf(az);
      await h.ec2.send(new CreateRouteCommand({ RouteTableId: t.RouteTableId, DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: eniOf(az) }));
      await h.ec2.send(new CreateTagsCommand({ Resources: [t.RouteTableId!], Tags: [{ Key: 'hanat:owner', Value: nat.InstanceId }, { Key: 'hanat:owner-since', Value: new Date().toISOString() }] }));
    }
    const healthy = await hanat(['status', '--name', 'lab', '--json']);
    expect(healthy.code, healthy.stderr).toBe(0);
    const doc = JSON.parse(healthy.stdout) as { azs: { az: string; verdict: string }[]; nats: { autoScaling: { lifecycle: string } | null }[] };
    expect(doc.azs.map((x) => x.verdict)).toEqual(['ok', 'ok', 'ok']);
    expect(doc.nats.map((n) => n.autoScaling?.lifecycle)).toEqual(['InService', 'InService', 'InService']);

    // Without a terminal and without --yes: refused, nothing changed.
    const refused = await hanat(['failover', '--name', 'lab', '--az', a, '--to', c]);
    expect(refused.code).toBe(2);
    expect(tag(await tableOf(a), 'hanat:override')).toBeUndefined();

    const moved = await hanat(['failover', '--name', 'lab', '--az', a, '--to', c, '--yes']);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout).toContain(`AZ ${a} now sends 0.0.0.0/0 through ${c}'s NAT ${natOf.get(c)!.InstanceId}`);
    const pinned = await tableOf(a);
    expect(pinned.Routes!.find((r) => r.DestinationCidrBlock === '0.0.0.0/0')).toMatchObject({ NetworkInterfaceId: eniOf(c), State: 'active' });
    expect(tag(pinned, 'hanat:override')).toBe(c);
    expect(tag(pinned, 'hanat:owner')).toBe(natOf.get(c)!.InstanceId);
    expect((await tableOf(b)).Routes!.find((r) => r.DestinationCidrBlock === '0.0.0.0/0')!.NetworkInterfaceId).toBe(eniOf(b));

    const again = await hanat(['failover', '--name', 'lab', '--az', a, '--to', c, '--yes']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Nothing to do');

    const shown = await hanat(['status', '--name', 'lab']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^${a} +PINNED +${pinned.RouteTableId} +${eniOf(c)} \\(active\\) +${natOf.get(c)!.InstanceId} \\(${c}\\) +pinned to ${c} by hanat failover`, 'm'));
    expect(shown.stdout).toMatch(new RegExp(`^${b} +ok `, 'm'));

    const restored = await hanat(['failover', '--name', 'lab', '--az', a, '--restore', '--yes']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`${a}'s NAT ${natOf.get(a)!.InstanceId} takes it back at its next route check (within 30 s)`);
    const unpinned = await tableOf(a);
    expect(tag(unpinned, 'hanat:override')).toBeUndefined();
    // The route itself is the agent's to move back; no agent runs here, so it stays, as a takeover.
    expect(unpinned.Routes!.find((r) => r.DestinationCidrBlock === '0.0.0.0/0')!.NetworkInterfaceId).toBe(eniOf(c));
    const after = await hanat(['status', '--name', 'lab', '--json']);
    expect((JSON.parse(after.stdout) as { azs: { verdict: string }[] }).azs[0]!.verdict).toBe('takeover');
  });
});
