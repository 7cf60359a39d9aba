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

const dir = mkdtempSync(join(tmpdir(), 'hanat-lab-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('findLab', () => {
  it('says no lab is running when the state directory does not exist', () => {
    expect(() => findLab(join(dir, 'absent'))).toThrow(new NoLabError('no lab is running; start one with `hanat-lab up`'));
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
