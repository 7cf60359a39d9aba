/**
 * The AWS SDK inside the agent gets its credentials from the instance profile
 * through IMDS, with its own IMDS client. That client falls back to IMDSv1 when a
 * token is refused unless told not to; the agent must never use IMDSv1. And it
 * must ask the same IMDS as the agent's own client, `--imds-endpoint` included.
 *
 * The real SDK client runs here (no send() mock): the environment holds no
 * credentials, so its default chain reaches the fake IMDS on loopback. Its AWS
 * endpoint is a closed loopback port, so nothing leaves the machine.
 */
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main, type MainDeps } from '../src/cli.js';
import { FakeHost } from './support/fake-host.js';
import { startFakeImds, type FakeImds } from './support/fake-imds.js';
import { FakeClock, FakeUdpNetwork, logCapture } from './support/harness.js';

const KEYS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
  'AWS_REGION',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_ENDPOINT_URL',
  'AWS_EC2_METADATA_SERVICE_ENDPOINT',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_EC2_METADATA_V1_DISABLED',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
];
let saved: Record<string, string | undefined>;
let imds: FakeImds;

beforeEach(async () => {
  saved = Object.fromEntries(KEYS.map((k) => [k, process.env[k]]));
  for (const k of KEYS) delete process.env[k];
  imds = await startFakeImds();
  Object.assign(process.env, {
    AWS_CONFIG_FILE: '/nonexistent/hanat-test/config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/hanat-test/credentials',
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
  });
});
afterEach(async () => {
  for (const k of KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  await imds.close();
});

/** Runs the agent until its first AWS call (source/dest check) has failed, then stops it; resolves with the exit code. */
async function runUntilFirstAwsFailure(argv: string[]): Promise<{ exit: number; logs: ReturnType<typeof logCapture> }> {
  const logs = logCapture();
  const host = new FakeHost();
  const stop = new AbortController();
  const deps: MainDeps = {
    exec: host.exec,
    fs: host.fs,
    ec2: (region) => new EC2Client({ region }),
    autoscaling: (region) => new AutoScalingClient({ region }),
    socket: new FakeUdpNetwork().factory,
    upstreamProbe: () => Promise.resolve(true),
    clock: new FakeClock(),
    stdout: { write: () => true },
    stderr: { write: () => true },
    logDest: logs.stream,
    signal: stop.signal,
    startedAt: Date.now(),
  };
  const exit = main(argv, process.env, deps);
  // The first AWS call (source/dest check) fails for want of credentials.
  const deadline = Date.now() + 10_000;
  while (!logs.lines.some((l) => l.component === 'srcdst' && l.level !== 'info' && l.level !== 'debug') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  stop.abort();
  return { exit: await exit, logs };
}

describe('AWS credentials from the instance profile', () => {
  it('never fall back to IMDSv1 when IMDS refuses the SDK a token', async () => {
    // The agent's own client gets the first token; every later token request (the SDK's) is refused.
    imds.maxTokens = 1;
    const { exit, logs } = await runUntilFirstAwsFailure(['run', '--stack', 'prod']);
    expect(exit).toBe(0);
    expect(logs.lines.some((l) => l.component === 'srcdst' && typeof l.err === 'object')).toBe(true);
    expect(imds.tokensIssued).toBe(1);
    expect(imds.v1Attempts).toBe(0);
  });

  it('are read from the IMDS that --imds-endpoint names, not from the one in the environment', async () => {
    // A closed loopback port in the environment: only the flag leads to the fake IMDS.
    process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = 'http://127.0.0.1:9';
    const { exit } = await runUntilFirstAwsFailure(['run', '--stack', 'prod', '--imds-endpoint', imds.url]);
    expect(exit).toBe(0);
    // The fake IMDS has no role, so the SDK fails, but it asked the fake for one, with a token of its own.
    expect(imds.gets.some((p) => p.startsWith('iam/security-credentials'))).toBe(true);
    expect(imds.tokensIssued).toBeGreaterThanOrEqual(2);
    expect(imds.v1Attempts).toBe(0);
  });
});
