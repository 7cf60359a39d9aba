/**
 * A stopped lab, as a user meets it: its exports still in the shell, so
 * AWS_ENDPOINT_URL points at a loopback port where nothing listens any more.
 * The built `hanat` binary, run as a separate process on the wall clock: every
 * command fails within seconds, exit 1, naming the endpoint and what to do.
 * (Issue 12: status and failover used to retry in silence for 150 s.)
 */
import { createServer } from 'node:net';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireCliBundle, runHanat as hanat } from './support/binary.js';

/** A loopback port nothing listens on: bound, then closed. */
function deadPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

let port: number;
let labExports: Record<string, string>;

beforeAll(async () => {
  requireCliBundle();
  port = await deadPort();
  // What `hanat-lab up` exports (LAB.md), with a lab that has since stopped.
  labExports = {
    AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDLABONLY',
    AWS_SECRET_ACCESS_KEY: 'lab-secret',
    AWS_CONFIG_FILE: '/nonexistent/hanat-test-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/hanat-test-credentials',
    HOME: '/nonexistent',
  };
});

/**
 * Within 5 s, as issue 12 asks. On a machine so loaded that starting node and
 * loading the bundle alone takes seconds (`hanat --version`, just before), no
 * more than 2 s beyond that start. The old code took 150 s either way.
 */
async function expectFast(ms: number): Promise<void> {
  if (ms < 5_000) return;
  const bare = await hanat(['--version'], {});
  expect(ms - bare.ms, `took ${Math.round(ms)} ms; hanat --version alone took ${Math.round(bare.ms)} ms`).toBeLessThan(2_000);
}

describe('hanat with the exports of a stopped lab', () => {
  const commands: [string, string[]][] = [
    ['status', ['status', '--name', 'lab']],
    ['status --json', ['status', '--name', 'lab', '--json']],
    ['failover', ['failover', '--name', 'lab', '--az', 'us-east-1a', '--yes']],
    ['failover --restore', ['failover', '--name', 'lab', '--az', 'us-east-1a', '--restore', '--yes']],
    ['destroy', ['destroy', '--name', 'lab', '--yes']],
    ['deploy', ['deploy', '--name', 'lab', '--cidr-prefix', '10.0', '--yes']],
  ];

  it.each(commands)('%s exits 1 within 5 s, naming the endpoint and what to do', async (_name, args) => {
    const r = await hanat(args, labExports);
    expect(r.code, r.stderr).toBe(1);
    await expectFast(r.ms);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`AWS_ENDPOINT_URL=http://127.0.0.1:${port}`);
    expect(r.stderr).toContain('ECONNREFUSED');
    expect(r.stderr).toContain('hanat-lab status');
    expect(r.stderr).toContain('unset AWS_ENDPOINT_URL');
    // One message, no retry chatter before it.
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: /);
  }, 15_000);

  it('names the per-service variable when that is where the endpoint came from', async () => {
    const { AWS_ENDPOINT_URL: _unused, ...rest } = labExports;
    const r = await hanat(['status', '--name', 'lab'], { ...rest, AWS_ENDPOINT_URL_CLOUDFORMATION: `http://localhost:${port}` });
    expect(r.code, r.stderr).toBe(1);
    await expectFast(r.ms);
    expect(r.stderr).toContain(`AWS_ENDPOINT_URL_CLOUDFORMATION=http://localhost:${port}`);
    expect(r.stderr).toContain('unset AWS_ENDPOINT_URL_CLOUDFORMATION');
  }, 15_000);
});
