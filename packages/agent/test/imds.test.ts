import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImdsError, UsageError } from '../src/errors.js';
import { readIdentity } from '../src/identity.js';
import { DEFAULT_IMDS_ENDPOINT, Imds, imdsEndpoint } from '../src/imds.js';
import { MAC, defaultMetadata, startFakeImds, type FakeImds } from './support/fake-imds.js';
import { FakeClock } from './support/harness.js';

let imds: FakeImds;
beforeEach(async () => {
  imds = await startFakeImds();
});
afterEach(async () => {
  await imds.close();
});

describe('IMDSv2 client', () => {
  it('fetches one session token and reuses it for every read', async () => {
    const client = new Imds({ endpoint: imds.url });
    expect(await client.get('instance-id')).toBe('i-0123456789abcdef0');
    expect(await client.get('placement/region')).toBe('us-east-1');
    await Promise.all([client.get('mac'), client.get('local-ipv4'), client.get('instance-id')]);
    expect(imds.tokensIssued).toBe(1);
    expect(imds.v1Attempts).toBe(0);
  });

  it('fetches a new token when IMDS answers 401 for an expired one, then succeeds', async () => {
    const client = new Imds({ endpoint: imds.url });
    await client.get('instance-id');
    imds.expireTokens();
    expect(await client.get('placement/availability-zone')).toBe('us-east-1a');
    expect(imds.tokensIssued).toBe(2);
  });

  it('fetches a new token shortly before the old one expires, without waiting for IMDS to refuse it', async () => {
    const clock = new FakeClock();
    const client = new Imds({ endpoint: imds.url, clock, tokenTtlSeconds: 300 });
    await client.get('instance-id');
    clock.tick(239_000);
    await client.get('mac');
    expect(imds.tokensIssued).toBe(1);
    // A minute before the 300 s TTL runs out, the next read takes a new token first
    // (the fake IMDS still accepts the old one: no 401 is involved).
    clock.tick(2_000);
    await client.get('placement/region');
    expect(imds.tokensIssued).toBe(2);
  });

  it('never falls back to IMDSv1 when the token is refused', async () => {
    imds.failNext('/latest/api/token', 403, 100);
    const client = new Imds({ endpoint: imds.url });
    await expect(client.get('instance-id')).rejects.toThrow(/IMDSv2/);
    expect(imds.gets).toEqual([]);
    expect(imds.v1Attempts).toBe(0);
  });

  it('retries a 500 with backoff and then succeeds', async () => {
    imds.failNext('/latest/meta-data/instance-id', 500, 2);
    const client = new Imds({ endpoint: imds.url, random: () => 0 });
    expect(await client.get('instance-id')).toBe('i-0123456789abcdef0');
  });

  it('gives up after its bounded attempts and says which path failed', async () => {
    imds.failNext('/latest/meta-data/instance-id', 503, 100);
    const client = new Imds({ endpoint: imds.url, random: () => 0, maxAttempts: 3 });
    const err = await client.get('instance-id').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImdsError);
    expect((err as Error).message).toMatch(/instance-id after 3 attempts/);
    // ... and what to check.
    expect((err as Error).message).toMatch(/HttpEndpoint=enabled.*hop limit.*--imds-endpoint or AWS_EC2_METADATA_SERVICE_ENDPOINT/);
  });

  it('bounds the total time of a call when IMDS does not answer', async () => {
    imds.hang('/latest/meta-data/instance-id');
    const client = new Imds({ endpoint: imds.url, attemptTimeoutMs: 100, totalTimeoutMs: 400, random: () => 0 });
    const t0 = Date.now();
    await expect(client.get('instance-id')).rejects.toThrow(/no answer within/);
    expect(Date.now() - t0).toBeLessThan(1_500);
  });

  it('answers undefined for a path IMDS does not have, when asked optionally', async () => {
    const client = new Imds({ endpoint: imds.url });
    expect(await client.getOptional('tags/instance/nope')).toBeUndefined();
    await expect(client.get('tags/instance/nope')).rejects.toMatchObject({ status: 404 });
  });

  it('honours AWS_EC2_METADATA_SERVICE_ENDPOINT and refuses a bad endpoint', () => {
    expect(imdsEndpoint(undefined, { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:8111/' })).toBe('http://127.0.0.1:8111');
    expect(imdsEndpoint(undefined, {})).toBe(DEFAULT_IMDS_ENDPOINT);
    expect(imdsEndpoint('http://127.0.0.2:1', { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:8111' })).toBe('http://127.0.0.2:1');
    expect(() => imdsEndpoint('not a url', {})).toThrow(/not a URL/);
    expect(() => imdsEndpoint('ftp://169.254.169.254', {})).toThrow(/http/);
    // A bad endpoint is the operator's to fix: a configuration error (exit 2), not an IMDS failure.
    expect(() => imdsEndpoint(undefined, { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'notaurl' })).toThrow(UsageError);
    expect(() => imdsEndpoint(undefined, { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'notaurl' })).toThrow(/AWS_EC2_METADATA_SERVICE_ENDPOINT 'notaurl'/);
  });
});

describe('instance identity', () => {
  it('reads id, region, AZ, interface, subnet, VPC, every VPC CIDR, private IP and hanat tags', async () => {
    const id = await readIdentity(new Imds({ endpoint: imds.url }));
    expect(id).toEqual({
      instanceId: 'i-0123456789abcdef0',
      region: 'us-east-1',
      az: 'us-east-1a',
      mac: MAC,
      eniId: 'eni-0ccccccccccccccc1',
      subnetId: 'subnet-0aaaaaaaaaaaaaaa1',
      vpcId: 'vpc-0bbbbbbbbbbbbbbb1',
      vpcCidrs: ['10.0.0.0/16', '10.1.0.0/16'],
      privateIp: '10.0.0.10',
      tags: { 'hanat:stack': 'prod', 'hanat:az': 'us-east-1a' },
    });
  });

  it("reads the primary interface's security groups when IMDS lists them, and rejects a malformed one", async () => {
    imds.metadata[`network/interfaces/macs/${MAC}/security-group-ids`] = 'sg-0123456789abcdef0\nsg-0fedcba9876543210';
    expect((await readIdentity(new Imds({ endpoint: imds.url }))).securityGroupIds).toEqual(['sg-0123456789abcdef0', 'sg-0fedcba9876543210']);
    imds.metadata[`network/interfaces/macs/${MAC}/security-group-ids`] = 'default';
    await expect(readIdentity(new Imds({ endpoint: imds.url }))).rejects.toThrow(/security-group-ids = 'default' is not valid/);
  });

  it('reads only hanat: tag values', async () => {
    await imds.close();
    imds = await startFakeImds(defaultMetadata({ 'hanat:stack': 'prod', Name: 'nat-a', team: 'net' }));
    const id = await readIdentity(new Imds({ endpoint: imds.url }));
    expect(id.tags).toEqual({ 'hanat:stack': 'prod' });
    expect(imds.gets.filter((p) => p.startsWith('tags/instance/'))).toEqual(['tags/instance/hanat:stack']);
  });

  it('works with instance tags in metadata turned off', async () => {
    delete imds.metadata['tags/instance'];
    const id = await readIdentity(new Imds({ endpoint: imds.url }));
    expect(id.tags).toEqual({});
  });

  it('rejects a malformed answer instead of using it', async () => {
    imds.metadata[`network/interfaces/macs/${MAC}/vpc-ipv4-cidr-blocks`] = '10.0.0.0/16\n10.0.0.300/16';
    await expect(readIdentity(new Imds({ endpoint: imds.url }))).rejects.toThrow(/vpc-ipv4-cidr-blocks = '10.0.0.300\/16' is not valid/);
    imds.metadata[`network/interfaces/macs/${MAC}/vpc-ipv4-cidr-blocks`] = '10.0.0.0/16';
    imds.metadata['instance-id'] = 'i-123; rm -rf /';
    await expect(readIdentity(new Imds({ endpoint: imds.url }))).rejects.toThrow(/instance-id/);
  });
});
