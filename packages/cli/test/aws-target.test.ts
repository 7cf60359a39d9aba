/**
 * Where the AWS calls go: a profile that does not exist, and a malformed
 * region from the environment or the profile's config, are refused before any
 * AWS call, with messages that name where the bad value came from.
 * Every test writes its own files under a fresh temporary directory (the
 * SDK caches what it read by path) and points HOME or AWS_CONFIG_FILE there.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { profileNames } from '../src/profiles.js';
import { names } from './support/calls.js';
import { cfnMock, ec2Mock, harness, smallTemplate, ssmMock, type Harness } from './support/harness.js';

let h: Harness;
let home: string;

beforeEach(() => {
  h = harness();
  h.deps.templateBody = () => smallTemplate();
  home = mkdtempSync(join(tmpdir(), 'hanat-profiles-'));
});
afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(home, { recursive: true, force: true });
});

/** ~/.aws/config and ~/.aws/credentials under a fresh HOME, found through the default paths. */
function awsHome(files: { config?: string; credentials?: string }) {
  mkdirSync(join(home, '.aws'));
  if (files.config !== undefined) writeFileSync(join(home, '.aws', 'config'), files.config);
  if (files.credentials !== undefined) writeFileSync(join(home, '.aws', 'credentials'), files.credentials);
  vi.stubEnv('HOME', home);
  vi.stubEnv('AWS_CONFIG_FILE', '');
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', '');
  // Unset, not empty: the SDK takes an empty AWS_REGION as the region and never reads the profile's.
  vi.stubEnv('AWS_REGION', undefined);
}

function awsCalls(): string[] {
  return [...names(cfnMock), ...names(ec2Mock), ...names(ssmMock)];
}

const DEPLOY = ['deploy', '--name', 'demo', '--cidr-prefix', '10.20', '--yes'];

describe('a profile that does not exist', () => {
  it('--profile nosuch names both files and how to fix it, before any AWS call', async () => {
    awsHome({ config: '[default]\nregion = eu-west-1\n\n[profile ops]\nregion = eu-west-1\n', credentials: '[default]\naws_access_key_id = AKIDTESTONLY\n' });
    const r = await h.hanat(...DEPLOY, '--region', 'eu-west-1', '--profile', 'nosuch');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: profile "nosuch" was not found in ~/.aws/config or ~/.aws/credentials. ' +
        'Create it with: aws configure --profile nosuch, or pass another --profile. Profiles there: default, ops.\n',
    );
    expect(awsCalls()).toEqual([]);
  });

  it('names the files AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE point to', async () => {
    const config = join(home, 'team-config');
    writeFileSync(config, '[profile ops]\nregion = eu-west-1\n');
    vi.stubEnv('AWS_CONFIG_FILE', config);
    vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', join(home, 'no-credentials'));
    const r = await h.hanat('destroy', '--name', 'demo', '--region', 'eu-west-1', '--yes', '--profile', 'nosuch');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `error: profile "nosuch" was not found in ${config} or ${join(home, 'no-credentials')}. ` +
        'Create it with: aws configure --profile nosuch, or pass another --profile. Profiles there: ops.\n',
    );
    expect(awsCalls()).toEqual([]);
  });

  it('says that AWS_PROFILE named it when no --profile was given', async () => {
    awsHome({});
    vi.stubEnv('AWS_PROFILE', 'nosuch');
    const r = await h.hanat(...DEPLOY, '--region', 'eu-west-1');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: profile "nosuch" was not found in ~/.aws/config or ~/.aws/credentials (AWS_PROFILE names it; no --profile was given). ' +
        'Create it with: aws configure --profile nosuch, or set AWS_PROFILE to another profile (or unset it). Neither file defines a profile.\n',
    );
    expect(awsCalls()).toEqual([]);
  });

  it('accepts a profile defined only in the credentials file, and takes the region from the profile', async () => {
    awsHome({ config: '[profile ops]\nregion = eu-west-1\n', credentials: '[ci]\naws_access_key_id = AKIDTESTONLY\naws_secret_access_key = test-secret\n' });
    const ci = await h.hanat(...DEPLOY, '--region', 'eu-west-1', '--profile', 'ci');
    expect(ci.code).toBe(0);
    const ops = await h.hanat(...DEPLOY, '--profile', 'ops');
    expect(ops.code).toBe(0);
    expect(ops.stderr).toContain('for stack demo in eu-west-1');
  });
});

describe('a malformed region names where it came from', () => {
  it('AWS_REGION, when no --region was given', async () => {
    vi.stubEnv('AWS_REGION', 'Ireland');
    const r = await h.hanat(...DEPLOY);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: AWS_REGION "Ireland" (from the environment; no --region was given): a region looks like eu-west-1 or us-east-1. ' +
        'Correct AWS_REGION (e.g. export AWS_REGION=eu-west-1), or pass --region.\n',
    );
    expect(awsCalls()).toEqual([]);
  });

  it('AWS_REGION holding an Availability Zone, for destroy too', async () => {
    vi.stubEnv('AWS_REGION', 'eu-west-1a');
    const r = await h.hanat('destroy', '--name', 'demo', '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: AWS_REGION "eu-west-1a" (from the environment; no --region was given) is an Availability Zone; ' +
        'set AWS_REGION to its region (export AWS_REGION=eu-west-1), or pass --region eu-west-1.\n',
    );
  });

  it('the flag still wins over a bad AWS_REGION', async () => {
    vi.stubEnv('AWS_REGION', 'Ireland');
    const r = await h.hanat(...DEPLOY, '--region', 'eu-west-1');
    expect(r.code).toBe(0);
  });

  it('AWS_DEFAULT_REGION', async () => {
    h.deps.env = { AWS_DEFAULT_REGION: 'Ireland' };
    const r = await h.hanat(...DEPLOY);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: AWS_DEFAULT_REGION "Ireland" (from the environment; no --region or AWS_REGION was given): a region looks like eu-west-1 or us-east-1. ' +
        'Correct AWS_DEFAULT_REGION (e.g. export AWS_DEFAULT_REGION=eu-west-1), or pass --region.\n',
    );
  });

  it("the profile's region in the config file", async () => {
    awsHome({ config: '[profile ops]\nregion = Ireland\n' });
    const r = await h.hanat(...DEPLOY, '--profile', 'ops');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: region "Ireland" of profile "ops" in ~/.aws/config (no --region, AWS_REGION or AWS_DEFAULT_REGION was given): ' +
        'a region looks like eu-west-1 or us-east-1. Correct it (e.g. aws configure set region eu-west-1 --profile ops), or pass --region.\n',
    );
    expect(awsCalls()).toEqual([]);
  });
});

describe('profileNames (the SDK rules for the shared files)', () => {
  it('reads [default] and [profile x] from the config file, and not sections without a setting', () => {
    const config = [
      '# comment',
      '[default]',
      'region = eu-west-1',
      '[profile ops]   ; trailing comment',
      'sso_session = corp',
      '[profile empty]',
      '[sso-session corp]',
      'sso_region = eu-west-1',
      '[plain]',
      'region = eu-west-1',
    ].join('\n');
    expect(profileNames(config, 'config')).toEqual(['default', 'ops']);
  });

  it('reads plain [x] sections from the credentials file, not [profile x]', () => {
    const credentials = '[ci]\naws_access_key_id = A\r\n[profile ops]\naws_access_key_id = B\n';
    expect(profileNames(credentials, 'credentials')).toEqual(['ci']);
  });
});
