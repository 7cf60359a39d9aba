/**
 * IMDSv2 on the emulator: tokens with a TTL, 401 without or with an expired
 * token, and per-instance answers for the paths the agent and the SDK read.
 */
import { AllocateAddressCommand, AssociateAddressCommand, CreateLaunchTemplateCommand, CreateSubnetCommand, CreateVpcCommand, DescribeInstancesCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LAB_INSTANCE_HEADER, LAB_SOURCE_IP_HEADER } from '../src/contract.js';
import { ManualClock } from '../src/emulator/index.js';
import { eventually, startLab, type Harness } from './emulator/helpers.js';

let h: Harness;
let clock: ManualClock;
let a: string;
let b: string;
let ipA: string;

async function imds(path: string, init: { method?: string; headers?: Record<string, string> } = {}) {
  const res = await fetch(`${h.url}${path}`, { method: init.method ?? 'GET', headers: init.headers ?? {} });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

async function token(instanceHeader: Record<string, string>, ttl = '60'): Promise<string> {
  const res = await imds('/latest/api/token', { method: 'PUT', headers: { ...instanceHeader, 'x-aws-ec2-metadata-token-ttl-seconds': ttl } });
  expect(res.status).toBe(200);
  return res.body;
}

beforeEach(async () => {
  clock = new ManualClock();
  h = await startLab({ clock });
  const role = h.emu.account.iam.createRole('nat-role', '/', {}, []);
  h.emu.account.iam.createInstanceProfile('nat-profile', '/', [role.name]);
  const vpc = (await h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!;
  const subnet = (await h.ec2.send(new CreateSubnetCommand({ VpcId: vpc.VpcId, CidrBlock: '10.0.0.0/24', AvailabilityZone: 'us-east-1a' }))).Subnet!;
  await h.ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: 'nat',
      LaunchTemplateData: {
        ImageId: 'ami-0a1b2c3d4e5f60001',
        InstanceType: 't4g.nano',
        IamInstanceProfile: { Name: 'nat-profile' },
        NetworkInterfaces: [{ DeviceIndex: 0, AssociatePublicIpAddress: true }],
        MetadataOptions: { HttpTokens: 'required', InstanceMetadataTags: 'enabled' },
        TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'hanat:stack', Value: 'lab' }, { Key: 'hanat:az', Value: 'us-east-1a' }] }],
        UserData: Buffer.from('#!/bin/sh\necho hi\n').toString('base64'),
      },
    }),
  );
  const run = () => h.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, SubnetId: subnet.SubnetId, LaunchTemplate: { LaunchTemplateName: 'nat' } }));
  a = (await run()).Instances![0]!.InstanceId!;
  b = (await run()).Instances![0]!.InstanceId!;
  await eventually(() => ([a, b].every((id) => h.emu.world.ec2.instances.get(id)!.state === 'running') ? true : undefined));
  ipA = h.emu.world.ec2.instances.get(a)!.privateIp;
});
afterEach(async () => {
  await h.close();
});

describe('tokens', () => {
  it('issues a token only for a TTL from 1 to 21600 seconds', async () => {
    const me = { [LAB_SOURCE_IP_HEADER]: ipA };
    expect((await imds('/latest/api/token', { method: 'PUT', headers: me })).status).toBe(400);
    expect((await imds('/latest/api/token', { method: 'PUT', headers: { ...me, 'x-aws-ec2-metadata-token-ttl-seconds': '0' } })).status).toBe(400);
    expect((await imds('/latest/api/token', { method: 'PUT', headers: { ...me, 'x-aws-ec2-metadata-token-ttl-seconds': '21601' } })).status).toBe(400);
    const ok = await imds('/latest/api/token', { method: 'PUT', headers: { ...me, 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-aws-ec2-metadata-token-ttl-seconds')).toBe('21600');
    expect(ok.body.length).toBeGreaterThan(20);
    expect((await imds('/latest/api/token', { method: 'PUT', headers: { ...me, 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '1.2.3.4' } })).status).toBe(403);
  });

  it('answers 401 without a token, with a wrong one, another instance\'s, or an expired one', async () => {
    const me = { [LAB_SOURCE_IP_HEADER]: ipA };
    expect((await imds('/latest/meta-data/instance-id', { headers: me })).status).toBe(401);
    expect((await imds('/latest/meta-data/instance-id', { headers: { ...me, 'x-aws-ec2-metadata-token': 'not-a-token' } })).status).toBe(401);
    const other = await token({ [LAB_INSTANCE_HEADER]: b });
    expect((await imds('/latest/meta-data/instance-id', { headers: { ...me, 'x-aws-ec2-metadata-token': other } })).status).toBe(401);
    const t = await token(me, '60');
    expect((await imds('/latest/meta-data/instance-id', { headers: { ...me, 'x-aws-ec2-metadata-token': t } })).body).toBe(a);
    await clock.advance(59_000);
    expect((await imds('/latest/meta-data/instance-id', { headers: { ...me, 'x-aws-ec2-metadata-token': t } })).status).toBe(200);
    await clock.advance(1_000);
    expect((await imds('/latest/meta-data/instance-id', { headers: { ...me, 'x-aws-ec2-metadata-token': t } })).status).toBe(401);
  });

  it('does not answer for an address no instance has', async () => {
    const res = await imds('/latest/api/token', { method: 'PUT', headers: { [LAB_SOURCE_IP_HEADER]: '10.0.0.250', 'x-aws-ec2-metadata-token-ttl-seconds': '60' } });
    expect(res.status).toBe(404);
  });
});

describe('metadata', () => {
  it('answers each instance with its own identity and network', async () => {
    const me = { [LAB_SOURCE_IP_HEADER]: ipA };
    const t = await token(me);
    const get = async (path: string) => {
      const r = await imds(`/latest/${path}`, { headers: { ...me, 'x-aws-ec2-metadata-token': t } });
      expect(r.status, path).toBe(200);
      return r.body;
    };
    const inst = h.emu.world.ec2.instances.get(a)!;
    const eip = await h.ec2.send(new AllocateAddressCommand({}));
    await h.ec2.send(new AssociateAddressCommand({ AllocationId: eip.AllocationId, InstanceId: a }));
    expect(await get('meta-data/instance-id')).toBe(a);
    expect(await get('meta-data/placement/region')).toBe('us-east-1');
    expect(await get('meta-data/placement/availability-zone')).toBe('us-east-1a');
    expect(await get('meta-data/local-ipv4')).toBe(ipA);
    expect(await get('meta-data/public-ipv4')).toBe(eip.PublicIp);
    const mac = await get('meta-data/mac');
    expect(mac).toBe(inst.mac);
    expect(await get('meta-data/network/interfaces/macs/')).toBe(`${mac}/`);
    const base = `meta-data/network/interfaces/macs/${mac}`;
    expect(await get(`${base}/subnet-id`)).toBe(inst.subnetId);
    expect(await get(`${base}/vpc-id`)).toBe(inst.vpcId);
    expect(await get(`${base}/vpc-ipv4-cidr-blocks`)).toBe('10.0.0.0/16');
    expect(await get(`${base}/vpc-ipv4-cidr-block`)).toBe('10.0.0.0/16');
    expect(await get(`${base}/interface-id`)).toBe(inst.eniId);
    expect(await get(`${base}/local-ipv4s`)).toBe(ipA);
    // A key with a space cannot be shown in IMDS and is left out.
    expect((await get('meta-data/tags/instance')).split('\n')).toEqual(['hanat:stack', 'hanat:az', 'aws:ec2launchtemplate:id', 'aws:ec2launchtemplate:version']);
    expect(await get(`meta-data/tags/instance/${encodeURIComponent('hanat:az')}`)).toBe('us-east-1a');
    expect(await get('meta-data/iam/security-credentials/')).toBe('nat-role');
    const creds = JSON.parse(await get('meta-data/iam/security-credentials/nat-role')) as Record<string, string>;
    expect(creds).toMatchObject({ Code: 'Success', Type: 'AWS-HMAC', AccessKeyId: expect.stringMatching(/^ASIA/), SecretAccessKey: expect.any(String), Token: expect.any(String) });
    expect(Date.parse(creds.Expiration!)).toBeGreaterThan(clock.now());
    const doc = JSON.parse(await get('dynamic/instance-identity/document')) as Record<string, string>;
    expect(doc).toMatchObject({ instanceId: a, region: 'us-east-1', availabilityZone: 'us-east-1a', accountId: '123456789012', privateIp: ipA, architecture: 'arm64' });
    expect(await get('user-data')).toBe('#!/bin/sh\necho hi\n');
    expect((await get('meta-data/')).split('\n')).toEqual(expect.arrayContaining(['instance-id', 'placement/', 'network/', 'tags/', 'iam/']));
    const missing = await imds('/latest/meta-data/nope', { headers: { ...me, 'x-aws-ec2-metadata-token': t } });
    expect(missing.status).toBe(404);

    const tb = await token({ [LAB_INSTANCE_HEADER]: b });
    const other = await imds('/latest/meta-data/local-ipv4', { headers: { [LAB_INSTANCE_HEADER]: b, 'x-aws-ec2-metadata-token': tb } });
    expect(other.body).toBe(h.emu.world.ec2.instances.get(b)!.privateIp);
    expect(other.body).not.toBe(ipA);
  });

  it('names the instance as EC2 does in its region: compute-1 in us-east-1, <region>.compute elsewhere', async () => {
    const read = async (instance: string, path: string) => {
      const me = { [LAB_INSTANCE_HEADER]: instance };
      const r = await imds(`/latest/meta-data/${path}`, { headers: { ...me, 'x-aws-ec2-metadata-token': await token(me) } });
      expect(r.status, path).toBe(200);
      return r.body;
    };
    const dashed = (ip: string) => ip.replace(/\./g, '-');
    const eastIp = await read(a, 'public-ipv4');
    expect(await read(a, 'hostname')).toBe(`ip-${dashed(ipA)}.ec2.internal`);
    expect(await read(a, 'public-hostname')).toBe(`ec2-${dashed(eastIp)}.compute-1.amazonaws.com`);

    const west = h.clients({ region: 'eu-west-1' }).ec2;
    const vpc = (await west.send(new CreateVpcCommand({ CidrBlock: '10.5.0.0/16' }))).Vpc!;
    const subnet = (await west.send(new CreateSubnetCommand({ VpcId: vpc.VpcId, CidrBlock: '10.5.0.0/24', AvailabilityZone: 'eu-west-1b' }))).Subnet!;
    const run = await west.send(
      new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: 'ami-0a1b2c3d4e5f60001', InstanceType: 't4g.nano', NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: subnet.SubnetId, AssociatePublicIpAddress: true }] }),
    );
    const w = run.Instances![0]!.InstanceId!;
    await eventually(() => (h.emu.account.instanceById(w)?.instance.state === 'running' ? true : undefined));
    const westIp = await read(w, 'public-ipv4');
    expect(await read(w, 'hostname')).toBe(`ip-${dashed(await read(w, 'local-ipv4'))}.eu-west-1.compute.internal`);
    expect(await read(w, 'public-hostname')).toBe(`ec2-${dashed(westIp)}.eu-west-1.compute.amazonaws.com`);
    // The same name DescribeInstances gives.
    const described = (await west.send(new DescribeInstancesCommand({ InstanceIds: [w] }))).Reservations![0]!.Instances![0]!;
    expect(described.PublicDnsName).toBe(await read(w, 'public-hostname'));
  });

  it('hides instance tags when the instance was not launched with metadata tags enabled', async () => {
    const inst = h.emu.world.ec2.instances.get(a)!;
    inst.metadata.instanceMetadataTags = 'disabled';
    const me = { [LAB_SOURCE_IP_HEADER]: ipA };
    const t = await token(me);
    expect((await imds('/latest/meta-data/tags/instance', { headers: { ...me, 'x-aws-ec2-metadata-token': t } })).status).toBe(404);
  });

  it('stops answering for an instance once it is terminated', async () => {
    const me = { [LAB_SOURCE_IP_HEADER]: ipA };
    const t = await token(me);
    await h.emu.terminateInstance(a);
    expect((await imds('/latest/meta-data/instance-id', { headers: { ...me, 'x-aws-ec2-metadata-token': t } })).status).toBe(404);
  });
});
