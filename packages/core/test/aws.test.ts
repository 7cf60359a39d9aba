/**
 * The client factory on the wire: a real SDK client against a loopback server,
 * so what is asserted is the header AWS would receive, not the config object.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { DescribeRegionsCommand } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { VERSION, cloudFormationClient, ec2Client, endpointOf, endpointSetting, unreachableCode, userAgent } from '../src/index.js';
import { DescribeStacksCommand } from '@aws-sdk/client-cloudformation';

let server: Server;
let endpoint: string;
const received: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    received.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      res.end('<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r1</requestId><regionInfo/></DescribeRegionsResponse>');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

afterEach(() => {
  vi.unstubAllEnvs();
  received.length = 0;
});

/** One call through the factory's EC2 client; the headers the server saw. */
async function headersOf(component: string | undefined): Promise<IncomingHttpHeaders> {
  vi.stubEnv('AWS_ENDPOINT_URL', endpoint);
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDTESTONLY');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test-secret');
  vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/hanat-test-config');
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '/nonexistent/hanat-test-credentials');
  const client = ec2Client({ region: 'eu-west-1', component, maxAttempts: 1 });
  try {
    await client.send(new DescribeRegionsCommand({}));
  } finally {
    client.destroy();
  }
  expect(received).toHaveLength(1);
  return received[0]!;
}

function tokens(header: string | string[] | undefined): string[] {
  return String(header ?? '').split(' ');
}

describe('user agent', () => {
  it('the agent sends hanat/<version> and hanat-agent as tokens of their own', async () => {
    const headers = await headersOf('agent');
    for (const name of ['user-agent', 'x-amz-user-agent']) {
      expect(tokens(headers[name]), name).toContain(`hanat/${VERSION}`);
      expect(tokens(headers[name]), name).toContain('hanat-agent');
    }
  });

  it('without a component only hanat/<version> is added', async () => {
    const headers = await headersOf(undefined);
    const ours = tokens(headers['user-agent']).filter((t) => t.startsWith('hanat'));
    expect(ours).toEqual([`hanat/${VERSION}`]);
  });

  it('gives the SDK separate pairs, never one string with a space in it', () => {
    expect(userAgent('cli')).toEqual([['hanat', VERSION], ['hanat-cli']]);
    expect(userAgent()).toEqual([['hanat', VERSION]]);
  });
});

/** A loopback port nothing listens on: bound, then closed. */
function deadPort(): Promise<number> {
  return new Promise((resolve) => {
    const tcp = createTcpServer();
    tcp.listen(0, '127.0.0.1', () => {
      const port = (tcp.address() as AddressInfo).port;
      tcp.close(() => resolve(port));
    });
  });
}

const credentials = { accessKeyId: 'AKIDTESTONLY', secretAccessKey: 'test-secret' };

describe('an endpoint that cannot be reached', () => {
  it('is not retried: one attempt, at once, with the endpoint and the setting it came from on the error', async () => {
    const url = `http://127.0.0.1:${await deadPort()}`;
    vi.stubEnv('AWS_ENDPOINT_URL', url);
    const client = cloudFormationClient({ region: 'us-east-1', maxAttempts: 6, env: { AWS_ENDPOINT_URL: url } });
    Object.assign(client.config, { credentials: () => Promise.resolve(credentials) });
    const start = performance.now();
    const err: unknown = await client.send(new DescribeStacksCommand({ StackName: 'lab' })).catch((e: unknown) => e);
    client.destroy();
    expect(unreachableCode(err)).toBe('ECONNREFUSED');
    expect((err as { $metadata?: { attempts?: number } }).$metadata?.attempts).toBe(1);
    // The SDK's standard retries would wait 100 ms and more between attempts, five times.
    expect(performance.now() - start).toBeLessThan(1_000);
    expect(endpointOf(err)).toEqual({ url, setting: `AWS_ENDPOINT_URL=${url}` });
  });

  it('an endpoint that answers 503 is still retried up to maxAttempts', async () => {
    let requests = 0;
    const busy = createServer((req, res) => {
      requests++;
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'text/xml' });
        res.end('<Response><Errors><Error><Code>Unavailable</Code><Message>busy</Message></Error></Errors><RequestID>r</RequestID></Response>');
      });
    });
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(busy.address() as AddressInfo).port}`;
    vi.stubEnv('AWS_ENDPOINT_URL', url);
    const client = ec2Client({ region: 'eu-west-1', maxAttempts: 3, env: {} });
    Object.assign(client.config, { credentials: () => Promise.resolve(credentials) });
    try {
      const err: unknown = await client.send(new DescribeRegionsCommand({})).catch((e: unknown) => e);
      expect((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).toBe(503);
      expect(requests).toBe(3);
      // Marked with where it went; no AWS_ENDPOINT_URL* in the env given, so no setting is named.
      expect(endpointOf(err)).toEqual({ url, setting: undefined });
    } finally {
      client.destroy();
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('unreachableCode finds the code on the error or on an error it wraps, and only the unreachable ones', () => {
    expect(unreachableCode(Object.assign(new Error('getaddrinfo ENOTFOUND x.invalid'), { code: 'ENOTFOUND' }))).toBe('ENOTFOUND');
    expect(unreachableCode(new Error('wrapped', { cause: Object.assign(new Error('no route'), { code: 'EHOSTUNREACH' }) }))).toBe('EHOSTUNREACH');
    expect(unreachableCode(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))).toBeUndefined();
    expect(unreachableCode(Object.assign(new Error('dns'), { code: 'EAI_AGAIN' }))).toBeUndefined();
    expect(unreachableCode(undefined)).toBeUndefined();
  });

  it('endpointSetting names the per-service variable first, then AWS_ENDPOINT_URL, none when they are ignored', () => {
    const env = { AWS_ENDPOINT_URL: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_EC2: 'http://127.0.0.1:2' };
    expect(endpointSetting('EC2', env)).toBe('AWS_ENDPOINT_URL_EC2=http://127.0.0.1:2');
    expect(endpointSetting('CLOUDFORMATION', env)).toBe('AWS_ENDPOINT_URL=http://127.0.0.1:1');
    expect(endpointSetting('SSM', {})).toBeUndefined();
    expect(endpointSetting('EC2', { ...env, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' })).toBeUndefined();
  });
});
