/**
 * What the lab's commands share with the shell: finding a running lab from another process,
 * and the exports that point the SDK at a lab.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVICE_ENDPOINT_VARS, envExports } from '../src/dataplane/cli-support.js';
import { NoLabError, findLab } from '../src/dataplane/client.js';
import { writeRunState } from '../src/dataplane/state.js';

const dir = mkdtempSync(join(tmpdir(), 'hanat-lab-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('findLab', () => {
  it('says no lab is running when the state directory does not exist', () => {
    expect(() => findLab(join(dir, 'absent'))).toThrow(new NoLabError('no lab is running; start one with `hanat-lab up`'));
  });

  const run = (prefix: string, pid: number, port: number) => ({
    prefix,
    pid,
    startedAt: new Date(0).toISOString(),
    runDir: dir,
    ready: true,
    region: 'us-east-1',
    apiEndpoint: `http://127.0.0.1:${port}`,
    admin: { url: `http://127.0.0.1:${port + 1}`, token: 't' },
  });

  it('picks the lab AWS_ENDPOINT_URL points at when several run, and lists them when nothing says which', () => {
    const state = join(dir, 'two');
    writeRunState(state, run('hl0001', process.pid, 4000));
    writeRunState(state, run('hl0002', process.pid, 5000));
    expect(findLab(state, undefined, 'http://127.0.0.1:5000/').prefix).toBe('hl0002');
    expect(findLab(state, undefined, 'http://127.0.0.1:4000').prefix).toBe('hl0001');
    expect(findLab(state, 'hl0001', 'http://127.0.0.1:5000').prefix).toBe('hl0001');
    expect(() => findLab(state)).toThrow(expect.objectContaining({ reason: 'ambiguous', message: expect.stringContaining('2 labs are running (hl0001 at http://127.0.0.1:4000, hl0002 at http://127.0.0.1:5000)') }));
    expect(() => findLab(state, undefined, 'http://127.0.0.1:9')).toThrow(/AWS_ENDPOINT_URL \(http:\/\/127\.0\.0\.1:9\) is none of them/);
  });

  it('names `hanat-lab cleanup` when no lab runs but a dead one left its run behind', () => {
    const state = join(dir, 'dead');
    writeRunState(state, run('hl0003', 0x3fffffff, 6000));
    expect(() => findLab(state)).toThrow(
      new NoLabError('no lab is running; lab hl0003 (pid 1073741823) stopped without cleaning up; its namespaces and processes may remain: `hanat-lab cleanup` removes them; start one with `hanat-lab up`'),
    );
  });

  it('says the state directory cannot be read (as for a user without root) instead of claiming no lab runs', () => {
    const notADir = join(dir, 'file');
    writeFileSync(notADir, '');
    expect(() => findLab(notADir)).toThrow(/cannot read .*file, where running labs publish how to reach them \(ENOTDIR\); run hanat-lab as root/);
  });
});

describe('envExports', () => {
  it('leaves the shell with only the lab endpoint, region and fake credentials, even when a profile, session token or other region was set', () => {
    const script = `${envExports('http://127.0.0.1:4566', 'us-east-1')}
echo "$AWS_ENDPOINT_URL $AWS_REGION $AWS_DEFAULT_REGION $AWS_ACCESS_KEY_ID \${AWS_PROFILE-none} \${AWS_DEFAULT_PROFILE-none} \${AWS_SESSION_TOKEN-none}"`;
    const out = execFileSync('sh', ['-c', script], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, AWS_DEFAULT_REGION: 'eu-west-1', AWS_PROFILE: 'production', AWS_DEFAULT_PROFILE: 'production', AWS_SESSION_TOKEN: 'real-looking-token' },
    });
    expect(out.trim()).toBe('http://127.0.0.1:4566 us-east-1 us-east-1 AKIAHANATLAB00000000 none none none');
  });

  it('clears per-service endpoints and the ignore-endpoints switch, which would send commands past the lab', () => {
    const script = `${envExports('http://127.0.0.1:4566', 'us-east-1')}
env | grep '^AWS_ENDPOINT_URL\\|^AWS_IGNORE' | sort`;
    const leftovers = Object.fromEntries(SERVICE_ENDPOINT_VARS.map((k) => [k, 'http://127.0.0.1:9']));
    const out = execFileSync('sh', ['-c', script], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, ...leftovers, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' },
    });
    expect(out.trim()).toBe('AWS_ENDPOINT_URL=http://127.0.0.1:4566');
  });
});
