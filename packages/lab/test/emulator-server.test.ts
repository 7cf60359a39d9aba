/**
 * The emulator's HTTP front: signatures required, routing by protocol rather
 * than host, injected throttling and server errors as the SDK sees them, call
 * counters, the admin endpoints, extra listeners, latency, and the NetworkView
 * the data plane follows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { AssociateRouteTableCommand, AttachInternetGatewayCommand, CreateInternetGatewayCommand, CreateRouteCommand, CreateRouteTableCommand, CreateSubnetCommand, CreateVpcCommand, DescribeVpcsCommand, EC2Client, ReplaceRouteCommand } from '@aws-sdk/client-ec2';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import type { NetworkSnapshot } from '../src/contract.js';
import { createEmulator, FaultSpecError } from '../src/emulator/index.js';
import { credentials, rejection, startLab, type Harness } from './emulator/helpers.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

function unixRequest(socketPath: string, path: string, method = 'GET', headers: Record<string, string> = {}, body = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, headers }, (res) => {
      let data = '';
      res.on('data', (c: Buffer) => (data += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('requests', () => {
  it('requires a SigV4 Authorization header but does not check the signature', async () => {
    h = await startLab();
    const unsigned = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=DescribeVpcs&Version=2016-11-15' });
    expect(unsigned.status).toBe(401);
    expect(await unsigned.text()).toContain('<Code>AuthFailure</Code>');
    const cfn = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'Action=DescribeStacks&Version=2010-05-15' });
    expect(cfn.status).toBe(403);
    expect(await cfn.text()).toContain('<Code>MissingAuthenticationToken</Code>');
    const forged = await fetch(h.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00' },
      body: 'Action=DescribeVpcs&Version=2016-11-15',
    });
    expect(forged.status).toBe(200);
    expect(await forged.text()).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<DescribeVpcsResponse xmlns="http:\/\/ec2.amazonaws.com\/doc\/2016-11-15\/"><requestId>[0-9a-f-]+<\/requestId><vpcSet><\/vpcSet><\/DescribeVpcsResponse>$/);
  });

  it('routes every service on one endpoint and refuses unknown actions', async () => {
    h = await startLab();
    await h.ec2.send(new DescribeVpcsCommand({}));
    await h.asg.send(new DescribeAutoScalingGroupsCommand({}));
    await h.cfn.send(new DescribeStacksCommand({}));
    await h.ssm.send(new GetParameterCommand({ Name: '/hanat/ami/x86_64' }));
    const unknown = await fetch(h.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00' },
      body: 'Action=RebootEverything&Version=2016-11-15',
    });
    expect(unknown.status).toBe(400);
    expect(await unknown.text()).toContain('<Code>InvalidAction</Code>');
    expect(h.emu.counters.snapshot().calls).toEqual({
      'ec2:DescribeVpcs': 1,
      'autoscaling:DescribeAutoScalingGroups': 1,
      'cloudformation:DescribeStacks': 1,
      'ssm:GetParameter': 1,
      'ec2:RebootEverything': 1,
    });
  });
});

describe('injected faults', () => {
  it('throttles EC2 with RequestLimitExceeded, which the SDK surfaces once retries run out', async () => {
    h = await startLab();
    const vpc = (await h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!;
    const rt = (await h.ec2.send(new CreateRouteTableCommand({ VpcId: vpc.VpcId }))).RouteTable!;
    h.emu.faults.add({ kind: 'throttle', service: 'ec2', action: 'ReplaceRoute' });
    const err = await rejection(h.ec2.send(new ReplaceRouteCommand({ RouteTableId: rt.RouteTableId, DestinationCidrBlock: '0.0.0.0/0', GatewayId: 'igw-0123456789abcdef0' })));
    expect(err.name).toBe('RequestLimitExceeded');
    expect(err.message).toBe('Request limit exceeded.');
    expect(err.$metadata?.httpStatusCode).toBe(503);
    // Other operations are not affected.
    await h.ec2.send(new DescribeVpcsCommand({}));
  });

  it('lets the SDK retry through a burst of throttling and counts every attempt', async () => {
    h = await startLab();
    const retrying = h.clients({ maxAttempts: 4 });
    h.emu.faults.add({ kind: 'throttle', service: 'ec2', action: 'DescribeVpcs', count: 2 });
    const out = await retrying.ec2.send(new DescribeVpcsCommand({}));
    expect(out.$metadata.attempts).toBe(3);
    expect(h.emu.counters.get('ec2:DescribeVpcs')).toBe(3);
    expect(h.emu.counters.injected('ec2:DescribeVpcs')).toBe(2);
    expect(h.emu.faults.list().api).toEqual([]);
  });

  it('throttles Auto Scaling and CloudFormation with Throttling, and fails SSM with ThrottlingException', async () => {
    h = await startLab();
    h.emu.faults.add({ kind: 'throttle', service: 'autoscaling' });
    h.emu.faults.add({ kind: 'throttle', service: 'cloudformation' });
    h.emu.faults.add({ kind: 'throttle', service: 'ssm' });
    const asg = await rejection(h.asg.send(new DescribeAutoScalingGroupsCommand({})));
    expect([asg.name, asg.message, asg.$metadata?.httpStatusCode]).toEqual(['Throttling', 'Rate exceeded', 400]);
    const cfn = await rejection(h.cfn.send(new DescribeStacksCommand({})));
    expect([cfn.name, cfn.$metadata?.httpStatusCode]).toEqual(['Throttling', 400]);
    const ssm = await rejection(h.ssm.send(new GetParameterCommand({ Name: '/hanat/ami/arm64' })));
    expect(ssm.name).toBe('ThrottlingException');
  });

  it('fails with server errors on demand, only for the named caller or at a rate', async () => {
    h = await startLab({ seed: 7 });
    const id = h.emu.faults.add({ kind: 'internal', service: 'ec2' });
    const e500 = await rejection(h.ec2.send(new DescribeVpcsCommand({})));
    expect([e500.name, e500.$metadata?.httpStatusCode, e500.$fault]).toEqual(['InternalError', 500, 'server']);
    h.emu.faults.remove(id);
    h.emu.faults.add({ kind: 'unavailable', service: 'ec2', caller: 'i-0123456789abcdef0' });
    await h.ec2.send(new DescribeVpcsCommand({}));
    h.emu.faults.clear();
    h.emu.faults.add({ kind: 'throttle', service: 'ec2', rate: 0.5 });
    let failures = 0;
    for (let i = 0; i < 40; i++) {
      try {
        await h.ec2.send(new DescribeVpcsCommand({}));
      } catch {
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(5);
    expect(failures).toBeLessThan(35);
  });
});

describe('admin endpoints', () => {
  it('serves counters and faults on loopback TCP', async () => {
    h = await startLab();
    await h.ec2.send(new DescribeVpcsCommand({}));
    const counters = (await (await fetch(`${h.url}/_lab/counters`)).json()) as { calls: Record<string, number>; byCaller: Record<string, Record<string, number>> };
    expect(counters.calls['ec2:DescribeVpcs']).toBe(1);
    expect(counters.byCaller.external!['ec2:DescribeVpcs']).toBe(1);
    const added = await fetch(`${h.url}/_lab/faults`, { method: 'POST', body: JSON.stringify({ kind: 'throttle', service: 'ec2', action: 'DescribeVpcs', count: 1 }) });
    expect(added.status).toBe(200);
    expect((await rejection(h.ec2.send(new DescribeVpcsCommand({})))).name).toBe('RequestLimitExceeded');
    await h.ec2.send(new DescribeVpcsCommand({}));
    await fetch(`${h.url}/_lab/faults/az`, { method: 'POST', body: JSON.stringify({ az: 'us-east-1c' }) });
    expect(h.emu.faults.isLaunchBlocked('us-east-1c')).toBe(true);
    expect((await fetch(`${h.url}/_lab/faults`, { method: 'DELETE' })).status).toBe(200);
    expect(h.emu.faults.isLaunchBlocked('us-east-1c')).toBe(false);
    expect((await fetch(`${h.url}/_lab/counters`, { method: 'DELETE' })).status).toBe(200);
    expect(h.emu.counters.snapshot().calls).toEqual({});
    const bad = await fetch(`${h.url}/_lab/faults`, { method: 'POST', body: JSON.stringify({ kind: 'meteor' }) });
    expect(bad.status).toBe(400);
  });

  it('refuses a fault that names an unknown service or action, or has a bad rate or count, naming the field', async () => {
    h = await startLab();
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${h!.url}/_lab/${path}`, { method: 'POST', body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as { error?: string; field?: string; id?: string } };
    };
    const refused: [string, unknown, string, RegExp][] = [
      ['faults', { kind: 'throttle', rate: 'abc' }, 'rate', /rate must be a number greater than 0 and at most 1, got "abc"/],
      ['faults', { kind: 'throttle', rate: 0 }, 'rate', /got 0/],
      ['faults', { kind: 'throttle', rate: 1.5 }, 'rate', /got 1\.5/],
      ['faults', { kind: 'throttle', service: 'ec3' }, 'service', /service must be one of ec2, autoscaling, cloudformation, ssm, got "ec3"/],
      ['faults', { kind: 'throttle', service: 'ec2', action: 'ReplaceRoutes' }, 'action', /ec2 has no emulated operation "ReplaceRoutes"/],
      ['faults', { kind: 'throttle', service: 'ec2', action: 'DescribeStacks' }, 'action', /ec2 has no emulated operation "DescribeStacks"/],
      ['faults', { kind: 'throttle', action: 'replaceRoute' }, 'action', /no emulated service has an operation "replaceRoute"/],
      ['faults', { kind: 'internal', count: 0 }, 'count', /count must be a positive integer, got 0/],
      ['faults', { kind: 'internal', count: 2.5 }, 'count', /got 2\.5/],
      ['faults', { kind: 'internal', count: '3' }, 'count', /got "3"/],
      ['faults', { kind: 'throttle', actoin: 'ReplaceRoute' }, 'actoin', /unknown field "actoin"/],
      ['faults/resource', { logicalId: 5 }, 'logicalId', /logicalId must be a non-empty string, got 5/],
      ['faults/resource', { logicalId: 'Vpc', phase: 'destroy' }, 'phase', /phase must be create, update, delete, got "destroy"/],
      ['faults/resource', { logicalId: 'Vpc', count: -1 }, 'count', /got -1/],
      ['faults/az', { az: 'us-east-1a', blocked: 'no' }, 'blocked', /blocked must be true or false, got "no"/],
    ];
    for (const [path, body, field, message] of refused) {
      const r = await post(path, body);
      expect([r.status, r.body.field], JSON.stringify(body)).toEqual([400, field]);
      expect(r.body.error).toMatch(message);
    }
    expect(h.emu.faults.list()).toEqual({ api: [], resources: [], blockedAzs: [] });
    // The same checks hold for faults added in code.
    expect(() => h!.emu.faults.add({ kind: 'throttle', service: 'ec2', action: 'ReplaceRoutes' })).toThrow(FaultSpecError);
    // Valid specs still work, an action without a service included.
    expect((await post('faults', { kind: 'throttle', action: 'ReplaceRoute', rate: 1, count: 2 })).status).toBe(200);
    expect((await post('faults/resource', { logicalId: 'Vpc', phase: 'delete', count: 1 })).status).toBe(200);
    expect(h.emu.faults.list().api).toMatchObject([{ kind: 'throttle', action: 'ReplaceRoute', rate: 1, count: 2 }]);
  });

  it('serves the API and IMDS, but not the admin endpoints, on a unix socket', async () => {
    const emu = createEmulator();
    const dir = mkdtempSync(join(tmpdir(), 'hanat-lab-'));
    try {
      const socketPath = join(dir, 'emulator.sock');
      await emu.listen({ path: socketPath });
      const tcp = await emu.listen({ host: '127.0.0.1', port: 0 });
      expect((await unixRequest(socketPath, '/_lab/counters')).status).toBe(403);
      const viaSocket = await unixRequest(socketPath, '/', 'POST', { 'content-type': 'application/x-www-form-urlencoded', authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00' }, 'Action=DescribeVpcs&Version=2016-11-15');
      expect(viaSocket.status).toBe(200);
      const ec2 = new EC2Client({ endpoint: tcp.url, region: 'us-east-1', credentials, maxAttempts: 1 });
      await ec2.send(new DescribeVpcsCommand({}));
      ec2.destroy();
      expect(emu.counters.get('ec2:DescribeVpcs')).toBe(2);
      const spoofed = await fetch(`${tcp.url}/_lab/counters`, { headers: { 'x-hanat-lab-source-ip': '10.0.0.10' } });
      expect(spoofed.status).toBe(403);
    } finally {
      await emu.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to listen on a non-loopback address', async () => {
    const emu = createEmulator();
    await expect(emu.listen({ host: '0.0.0.0', port: 0 })).rejects.toThrow(/loopback only/);
    await emu.close();
  });
});

describe('latency', () => {
  /** Wall-clock milliseconds of each of `n` calls. */
  async function timed(n: number, call: (i: number) => Promise<unknown>): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await call(i);
      out.push(performance.now() - t0);
    }
    return out;
  }

  it('answers at once with the zero profile', async () => {
    h = await startLab();
    await h.ec2.send(new DescribeVpcsCommand({})); // the SDK's first call sets itself up
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) {
      await h.ec2.send(new CreateVpcCommand({ CidrBlock: `10.${i}.0.0/16` }));
      await h.ec2.send(new DescribeVpcsCommand({}));
    }
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('answers describes faster than mutating calls with the aws profile, mutating ones taking 100 ms or more', async () => {
    h = await startLab({ latency: 'aws' });
    await h.ec2.send(new DescribeVpcsCommand({}));
    const mutating = await timed(4, (i) => h!.ec2.send(new CreateVpcCommand({ CidrBlock: `10.${i}.0.0/16` })));
    const describes = await timed(4, () => h!.ec2.send(new DescribeVpcsCommand({})));
    for (const ms of mutating) expect(ms).toBeGreaterThanOrEqual(100);
    for (const ms of describes) expect(ms).toBeGreaterThanOrEqual(30);
    // Load can only add time, so the fastest describe carries the least noise.
    expect(Math.min(...describes)).toBeLessThan(Math.min(...mutating));
    // And it holds for every draw, not just these: the two ranges do not overlap.
    const profile = h.emu.account.latency;
    const draws = (action: string) => Array.from({ length: 500 }, () => profile.api('ec2', action));
    expect(Math.max(...draws('DescribeRouteTables'))).toBeLessThan(Math.min(...draws('ReplaceRoute')));
    expect(Math.min(...draws('ReplaceRoute'))).toBeGreaterThanOrEqual(100);
    expect(Math.max(...draws('ReplaceRoute'))).toBeLessThanOrEqual(300);
  });

  it('gives single operations their own latency on top of the profile', async () => {
    h = await startLab({ latency: 'zero', opLatency: { 'ec2:DescribeVpcs': 300, 'ec2:CreateVpc': [20, 40] } });
    const [slow] = await timed(1, () => h!.ec2.send(new DescribeVpcsCommand({})));
    expect(slow).toBeGreaterThanOrEqual(300);
    const profile = h.emu.account.latency;
    expect(profile.api('ec2', 'CreateVpc')).toBeGreaterThanOrEqual(20);
    expect(profile.api('ec2', 'CreateVpc')).toBeLessThanOrEqual(40);
    expect(profile.api('ec2', 'DescribeSubnets')).toBe(0);
    const health = (await (await fetch(`${h.url}/_lab/health`)).json()) as { latency: string; opLatency: Record<string, unknown> };
    expect(health).toMatchObject({ latency: 'zero', opLatency: { 'ec2:DescribeVpcs': 300, 'ec2:CreateVpc': [20, 40] } });
    expect(() => createEmulator({ opLatency: { 'ec2:ReplaceRoutes': 5 } })).toThrow(/ec2 has no operation "ReplaceRoutes"/);
    expect(() => createEmulator({ opLatency: { ReplaceRoute: 5 } })).toThrow(/write it as ec2:ReplaceRoute/);
    expect(() => createEmulator({ opLatency: { 'ec2:ReplaceRoute': [50, 10] } })).toThrow(/whole milliseconds/);
  });
});

describe('network view', () => {
  it('announces every route, association and instance change to the data plane', async () => {
    h = await startLab();
    const seen: NetworkSnapshot[] = [];
    const stop = h.emu.network.onChange((s) => seen.push(s));
    const vpc = (await h.ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!;
    const subnet = (await h.ec2.send(new CreateSubnetCommand({ VpcId: vpc.VpcId, CidrBlock: '10.0.1.0/24', AvailabilityZone: 'us-east-1b' }))).Subnet!;
    const main = h.emu.network.snapshot().subnets.find((s) => s.subnetId === subnet.SubnetId)!;
    expect(main.routeTableId).toMatch(/^rtb-/);
    const rt = (await h.ec2.send(new CreateRouteTableCommand({ VpcId: vpc.VpcId }))).RouteTable!;
    const before = seen.length;
    await h.ec2.send(new AssociateRouteTableCommand({ RouteTableId: rt.RouteTableId, SubnetId: subnet.SubnetId }));
    expect(seen.length).toBe(before + 1);
    expect(seen.at(-1)!.subnets.find((s) => s.subnetId === subnet.SubnetId)).toEqual({ subnetId: subnet.SubnetId, vpcId: vpc.VpcId, cidr: '10.0.1.0/24', az: 'us-east-1b', routeTableId: rt.RouteTableId });
    const igw = (await h.ec2.send(new CreateInternetGatewayCommand({}))).InternetGateway!;
    await h.ec2.send(new AttachInternetGatewayCommand({ InternetGatewayId: igw.InternetGatewayId, VpcId: vpc.VpcId }));
    const beforeRoute = seen.length;
    await h.ec2.send(new CreateRouteCommand({ RouteTableId: rt.RouteTableId, DestinationCidrBlock: '0.0.0.0/0', GatewayId: igw.InternetGatewayId }));
    expect(seen.length).toBe(beforeRoute + 1);
    expect(seen.at(-1)!.routeTables.find((t) => t.routeTableId === rt.RouteTableId)!.routes).toEqual([
      { destinationCidr: '10.0.0.0/16', target: { kind: 'local' } },
      { destinationCidr: '0.0.0.0/0', target: { kind: 'igw', gatewayId: igw.InternetGatewayId } },
    ]);
    const versions = seen.map((s) => s.version);
    expect([...versions].sort((x, y) => x - y)).toEqual(versions);
    stop();
    const n = seen.length;
    await h.ec2.send(new CreateSubnetCommand({ VpcId: vpc.VpcId, CidrBlock: '10.0.2.0/24' }));
    expect(seen.length).toBe(n);
  });
});
