/**
 * The client factory on the wire: a real SDK client against a loopback server,
 * so what is asserted is the header AWS would receive, not the config object.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeRegionsCommand } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { VERSION, ec2Client, userAgent } from '../src/index.js';

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
