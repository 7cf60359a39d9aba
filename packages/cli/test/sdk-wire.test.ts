/**
 * The real SDK clients over HTTP against a loopback server that answers like
 * AWS does on the wire: proves that the error names hanat relies on
 * (ValidationError, InvalidKeyPair.NotFound, ParameterNotFound) survive the
 * SDK's deserialisation, that AWS_ENDPOINT_URL is honoured through the
 * factory, and that requests carry the hanat user agent. No mocks here.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { VERSION } from '@hanat/core';
import { awsFactory } from '../src/aws.js';
import { run, type RunDeps } from '../src/run.js';

interface Seen {
  target: string;
  action: string;
  /** The `User-Agent` header, and the `x-amz-user-agent` header the SDK sends besides it. */
  userAgent: string;
  amzUserAgent: string;
}

let server: Server;
let endpoint: string;
const seen: Seen[] = [];
/** What the factory's --debug sink received (main.ts writes it to stderr). */
const debugLines: string[] = [];

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => resolve(data));
  });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    void body(req).then((text) => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const action = new URLSearchParams(text).get('Action') ?? '';
      seen.push({ target, action, userAgent: String(req.headers['user-agent'] ?? ''), amzUserAgent: String(req.headers['x-amz-user-agent'] ?? '') });
      if (target === 'AmazonSSM.GetParameter') {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ __type: 'ParameterNotFound', message: '' }));
      } else if (action === 'DescribeKeyPairs') {
        res.writeHead(400, { 'content-type': 'text/xml' });
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>InvalidKeyPair.NotFound</Code><Message>The key pair 'laptop' does not exist</Message></Error></Errors><RequestID>r1</RequestID></Response>`,
        );
      } else if (action === 'DescribeStacks') {
        res.writeHead(400, { 'content-type': 'text/xml' });
        res.end(
          `<ErrorResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id demo does not exist</Message></Error><RequestId>r2</RequestId></ErrorResponse>`,
        );
      } else {
        res.writeHead(500);
        res.end();
      }
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
  seen.length = 0;
  debugLines.length = 0;
});

async function hanat(...argv: string[]) {
  return hanatIn({}, ...argv);
}

/** Runs hanat with `env` as its environment (what process.env would hold). */
async function hanatIn(env: Record<string, string>, ...argv: string[]) {
  for (const [k, v] of Object.entries(env)) vi.stubEnv(k, v);
  vi.stubEnv('AWS_ENDPOINT_URL', endpoint);
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDTESTONLY');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test-secret');
  vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/hanat-test-config');
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '/nonexistent/hanat-test-credentials');
  vi.stubEnv('AWS_REGION', '');
  vi.stubEnv('AWS_PROFILE', '');
  let stdout = '';
  let stderr = '';
  const deps: RunDeps = {
    aws: awsFactory((line) => debugLines.push(line)),
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    stdinIsTTY: false,
    stderrIsTTY: false,
    env,
    confirm: () => Promise.resolve(false),
    clock: { now: () => Date.now(), sleep: () => Promise.resolve() },
    signal: new AbortController().signal,
  };
  const code = await run(argv, deps);
  return { code, stdout, stderr };
}

describe('real SDK on the wire (loopback)', () => {
  it('destroy of a stack that does not exist: CloudFormation ValidationError → exit 0', async () => {
    const r = await hanat('destroy', '--name', 'demo', '--region', 'eu-west-1', '--yes');
    expect(r).toEqual({ code: 0, stdout: '', stderr: 'Stack demo does not exist in eu-west-1; nothing to delete.\n' });
    expect(seen.map((s) => s.action)).toEqual(['DescribeStacks']);
  });

  it('sends the user agent hanat/<version> as a token of its own, with hanat-cli beside it', async () => {
    await hanat('destroy', '--name', 'demo', '--region', 'eu-west-1', '--yes');
    expect(seen).toHaveLength(1);
    for (const header of [seen[0]!.userAgent, seen[0]!.amzUserAgent]) {
      const tokens = header.split(' ');
      expect(tokens, header).toContain(`hanat/${VERSION}`);
      expect(tokens, header).toContain('hanat-cli');
    }
  });

  it('a key pair missing in the region: EC2 InvalidKeyPair.NotFound → exit 2', async () => {
    const r = await hanat('deploy', '--name', 'demo', '--cidr-prefix', '10.0', '--region', 'eu-west-1', '--key', 'laptop', '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: --key "laptop": there is no key pair named "laptop" in eu-west-1\./);
  });

  it('no published image: SSM ParameterNotFound → exit 2 with how to build one', async () => {
    const r = await hanat('deploy', '--name', 'demo', '--cidr-prefix', '10.0', '--region', 'eu-west-1', '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('the SSM parameter /hanat/ami/arm64 does not exist. Build and publish the NAT image with: scripts/build-ami --arch arm64 --region eu-west-1');
    expect(seen.map((s) => s.target)).toEqual(['AmazonSSM.GetParameter']);
  });
});

describe('--debug on the wire', () => {
  it('prints what the SDK logs as readable text, not [object Object]', async () => {
    const r = await hanat('deploy', '--name', 'demo', '--cidr-prefix', '10.0', '--region', 'eu-west-1', '--key', 'laptop', '--yes', '--debug');
    expect(r.code).toBe(2);
    expect(debugLines.length).toBeGreaterThan(0);
    expect(debugLines.join('\n')).toContain('InvalidKeyPair.NotFound');
    expect(debugLines.join('\n')).not.toContain('[object Object]');
  });

  it('HANAT_DEBUG=1 turns it on like --debug', async () => {
    const r = await hanatIn({ HANAT_DEBUG: '1' }, 'deploy', '--name', 'demo', '--cidr-prefix', '10.0', '--region', 'eu-west-1', '--key', 'laptop', '--yes');
    expect(r.code).toBe(2);
    expect(debugLines.join('\n')).toContain('InvalidKeyPair.NotFound');
  });

  it.each(['0', 'false', 'no', 'NO', ''])('HANAT_DEBUG=%j leaves it off', async (value) => {
    const r = await hanatIn({ HANAT_DEBUG: value }, 'deploy', '--name', 'demo', '--cidr-prefix', '10.0', '--region', 'eu-west-1', '--key', 'laptop', '--yes');
    expect(r.code).toBe(2);
    expect(debugLines).toEqual([]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('prints nothing of the SDK without --debug', async () => {
    const r = await hanat('deploy', '--name', 'demo', '--cidr-prefix', '10.0', '--region', 'eu-west-1', '--key', 'laptop', '--yes');
    expect(r.code).toBe(2);
    expect(debugLines).toEqual([]);
  });
});

describe('an endpoint where nothing listens (a stopped lab), real SDK', () => {
  it('status fails at once, exit 1: one connection attempt, no retry pause, the endpoint and what to do in the message', async () => {
    const dead = await new Promise<number>((resolve) => {
      const tcp = createTcpServer();
      tcp.listen(0, '127.0.0.1', () => {
        const port = (tcp.address() as AddressInfo).port;
        tcp.close(() => resolve(port));
      });
    });
    const url = `http://127.0.0.1:${dead}`;
    vi.stubEnv('AWS_ENDPOINT_URL', url);
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIDTESTONLY');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test-secret');
    vi.stubEnv('AWS_CONFIG_FILE', '/nonexistent/hanat-test-config');
    vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '/nonexistent/hanat-test-credentials');
    vi.stubEnv('AWS_PROFILE', '');
    const sleeps: number[] = [];
    let stderr = '';
    const code = await run(['status', '--name', 'lab', '--region', 'us-east-1'], {
      aws: awsFactory(() => {}),
      stdout: () => {},
      stderr: (s) => (stderr += s),
      stdinIsTTY: false,
      stderrIsTTY: false,
      env: {},
      confirm: () => Promise.resolve(false),
      clock: { now: () => Date.now(), sleep: (ms) => (sleeps.push(ms), Promise.resolve()) },
      signal: new AbortController().signal,
    });
    expect(code).toBe(1);
    expect(sleeps).toEqual([]);
    expect(stderr).toBe(
      `error: Could not reach AWS for DescribeStacks: nothing listens at AWS_ENDPOINT_URL=${url} (ECONNREFUSED). ` +
        'If that is a hanat lab, it is not running any more: hanat-lab status shows the labs that run, and hanat-lab up starts one (then use its exports). ' +
        'To use real AWS, unset AWS_ENDPOINT_URL.\n',
    );
  });
});
