/**
 * Instance type offerings through the real SDK: DescribeInstanceTypeOfferings
 * (location types, filters, pagination), and launches of a type an AZ does not
 * offer, which fail with EC2's `Unsupported` as on AWS. The lab's `<region>e`
 * offers no Graviton types, as us-east-1e does not.
 */
import { CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand, DescribeScalingActivitiesCommand } from '@aws-sdk/client-auto-scaling';
import {
  CreateLaunchTemplateCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeInstanceTypeOfferingsCommand,
  RunInstancesCommand,
  paginateDescribeInstanceTypeOfferings,
  type DescribeInstanceTypeOfferingsCommandInput,
  type InstanceTypeOffering,
} from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LAB_IMAGES } from '../src/emulator/index.js';
import { eventually, rejection, startLab, type Harness } from './emulator/helpers.js';

const ARM_IMAGE = LAB_IMAGES.find((i) => i.architecture === 'arm64')!.id;
const X86_IMAGE = LAB_IMAGES.find((i) => i.architecture === 'x86_64')!.id;
const AZS = ['a', 'b', 'c', 'd', 'e', 'f'].map((l) => `us-east-1${l}`);

let h: Harness;
beforeEach(async () => {
  h = await startLab({ bootDelayMs: 0 });
});
afterEach(async () => {
  await h.close();
});

async function subnetsIn(...azs: string[]): Promise<Record<string, string>> {
  const vpcId = (await h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!.VpcId!;
  const out: Record<string, string> = {};
  for (const [i, az] of azs.entries()) {
    out[az] = (await h.ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.0.${i}.0/24`, AvailabilityZone: az }))).Subnet!.SubnetId!;
  }
  return out;
}

/** Every offering, through the SDK's own paginator. */
async function allOfferings(input: DescribeInstanceTypeOfferingsCommandInput): Promise<InstanceTypeOffering[]> {
  const rows: InstanceTypeOffering[] = [];
  for await (const page of paginateDescribeInstanceTypeOfferings({ client: h.ec2, pageSize: input.MaxResults ?? 100 }, input)) rows.push(...(page.InstanceTypeOfferings ?? []));
  return rows;
}

describe('DescribeInstanceTypeOfferings', () => {
  it('offers t4g.nano in every AZ but us-east-1e, and t3.nano in all six', async () => {
    const out = await h.ec2.send(
      new DescribeInstanceTypeOfferingsCommand({ LocationType: 'availability-zone', Filters: [{ Name: 'instance-type', Values: ['t4g.nano', 't3.nano'] }] }),
    );
    const where = (type: string) => out.InstanceTypeOfferings!.filter((o) => o.InstanceType === type).map((o) => o.Location);
    expect(where('t4g.nano')).toEqual(AZS.filter((az) => az !== 'us-east-1e'));
    expect(where('t3.nano')).toEqual(AZS);
    expect(out.InstanceTypeOfferings![0]).toEqual({ InstanceType: 't4g.nano', LocationType: 'availability-zone', Location: 'us-east-1a' });
    expect(out.NextToken).toBeUndefined();
  });

  it('lists no arm64 type at all in us-east-1e, and filters by location with wildcards', async () => {
    const e = await allOfferings({ LocationType: 'availability-zone', Filters: [{ Name: 'location', Values: ['us-east-1e'] }] });
    expect(e.length).toBeGreaterThan(20);
    expect(e.every((o) => o.Location === 'us-east-1e')).toBe(true);
    expect(e.map((o) => o.InstanceType)).not.toContain('t4g.nano');
    expect(e.map((o) => o.InstanceType)).toContain('t3a.nano');
    expect(e.some((o) => /^(t4g|m[678]g|c[67]gn?|r[67]g|a1)\./.test(o.InstanceType!))).toBe(false);
    const graviton = await allOfferings({ LocationType: 'availability-zone', Filters: [{ Name: 'instance-type', Values: ['t4g.*'] }, { Name: 'location', Values: ['us-east-1?'] }] });
    expect(new Set(graviton.map((o) => o.Location))).toEqual(new Set(AZS.filter((az) => az !== 'us-east-1e')));
  });

  it('answers for the region by default, and by AZ id', async () => {
    const region = await h.ec2.send(new DescribeInstanceTypeOfferingsCommand({ Filters: [{ Name: 'instance-type', Values: ['t4g.nano'] }] }));
    expect(region.InstanceTypeOfferings).toEqual([{ InstanceType: 't4g.nano', LocationType: 'region', Location: 'us-east-1' }]);
    const byId = await h.ec2.send(new DescribeInstanceTypeOfferingsCommand({ LocationType: 'availability-zone-id', Filters: [{ Name: 'instance-type', Values: ['t4g.nano'] }] }));
    expect(byId.InstanceTypeOfferings!.map((o) => o.Location)).toEqual(['use1-az1', 'use1-az2', 'use1-az3', 'use1-az4', 'use1-az6']);
  });

  it('pages with MaxResults and NextToken, and refuses page sizes outside 5 to 1000 and unknown filters', async () => {
    const all = await allOfferings({ LocationType: 'availability-zone' });
    const paged = await allOfferings({ LocationType: 'availability-zone', MaxResults: 50 });
    expect(paged).toEqual(all);
    expect(all.length).toBeGreaterThan(100);
    const first = await h.ec2.send(new DescribeInstanceTypeOfferingsCommand({ LocationType: 'availability-zone', MaxResults: 50 }));
    expect(first.InstanceTypeOfferings).toHaveLength(50);
    expect(first.NextToken).toBeTruthy();
    expect(await rejection(h.ec2.send(new DescribeInstanceTypeOfferingsCommand({ MaxResults: 4 })))).toMatchObject({ name: 'InvalidParameterValue' });
    expect(await rejection(h.ec2.send(new DescribeInstanceTypeOfferingsCommand({ MaxResults: 1001 })))).toMatchObject({ name: 'InvalidParameterValue' });
    expect(await rejection(h.ec2.send(new DescribeInstanceTypeOfferingsCommand({ NextToken: 'bogus' })))).toMatchObject({ name: 'InvalidNextToken' });
    expect(await rejection(h.ec2.send(new DescribeInstanceTypeOfferingsCommand({ Filters: [{ Name: 'instance-family', Values: ['t4g'] }] })))).toMatchObject({
      name: 'InvalidParameterValue',
      message: "The filter 'instance-family' is invalid",
    });
  });
});

describe('launching a type the AZ does not offer', () => {
  it('fails RunInstances in us-east-1e with Unsupported, naming the AZs that offer it; x86 launches there', async () => {
    const subnets = await subnetsIn('us-east-1e');
    const err = await rejection(h.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: ARM_IMAGE, InstanceType: 't4g.nano', SubnetId: subnets['us-east-1e'] })));
    expect(err.name).toBe('Unsupported');
    expect(err.$metadata?.httpStatusCode).toBe(400);
    expect(err.message).toBe(
      'Your requested instance type (t4g.nano) is not supported in your requested Availability Zone (us-east-1e). ' +
        'Please retry your request by not specifying an Availability Zone or choosing us-east-1a, us-east-1b, us-east-1c, us-east-1d, us-east-1f.',
    );
    expect(h.emu.world.ec2.instances.size).toBe(0);
    const ok = await h.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: X86_IMAGE, InstanceType: 't3.nano', SubnetId: subnets['us-east-1e'] }));
    expect(ok.Instances![0]!.Placement?.AvailabilityZone).toBe('us-east-1e');
  });

  it('fails an Auto Scaling launch in us-east-1e with the same reason, and a group that also has another AZ launches there', async () => {
    const subnets = await subnetsIn('us-east-1a', 'us-east-1e');
    await h.ec2.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: 'nat', LaunchTemplateData: { ImageId: ARM_IMAGE, InstanceType: 't4g.nano' } }));
    const create = (name: string, subnetIds: string[]) =>
      h.asg.send(new CreateAutoScalingGroupCommand({ AutoScalingGroupName: name, LaunchTemplate: { LaunchTemplateName: 'nat' }, MinSize: 1, MaxSize: 1, DesiredCapacity: 1, VPCZoneIdentifier: subnetIds.join(',') }));

    await create('only-e', [subnets['us-east-1e']!]);
    const failed = await eventually(async () => {
      const acts = (await h.asg.send(new DescribeScalingActivitiesCommand({ AutoScalingGroupName: 'only-e' }))).Activities!;
      return acts.find((a) => a.StatusCode === 'Failed');
    }, 3000, 'failed launch');
    expect(failed.StatusMessage).toContain('Your requested instance type (t4g.nano) is not supported in your requested Availability Zone (us-east-1e).');

    await create('e-and-a', [subnets['us-east-1e']!, subnets['us-east-1a']!]);
    const placed = await eventually(async () => {
      const g = (await h.asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ['e-and-a'] }))).AutoScalingGroups![0]!;
      return g.Instances?.[0]?.AvailabilityZone;
    }, 3000, 'instance in e-and-a');
    expect(placed).toBe('us-east-1a');
  });
});
