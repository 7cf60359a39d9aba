import { afterEach, describe, expect, it, vi } from 'vitest';
import { VERSION } from '@hanat/core';
import { templateBody } from '../src/template/render.js';
import { names } from './support/calls.js';
import { cfnMock, harness } from './support/harness.js';

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('hanat (the program)', () => {
  it('--help documents the exit codes and teaches with examples', async () => {
    const r = await harness().hanat('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Exit codes:');
    expect(r.stdout).toMatch(/^ {2}0 +success/m);
    expect(r.stdout).toMatch(/^ {2}1 +the operation failed/m);
    expect(r.stdout).toMatch(/^ {2}2 +bad usage or input/m);
    expect(r.stdout).toMatch(/^ {2}130 +interrupted/m);
    expect(r.stdout).toContain('$ hanat deploy --name prod-vpc --cidr-prefix 10.20');
    expect(r.stderr).toBe('');
  });

  it('--version prints the version alone on stdout', async () => {
    const r = await harness().hanat('--version');
    expect(r).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('exits 2 on an unknown command or option, with commander\'s message on stderr', async () => {
    const h = harness();
    const unknown = await h.hanat('deploi');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("error: unknown command 'deploi'");
    expect(unknown.stdout).toBe('');
    const option = await h.hanat('template', '--az', '3');
    expect(option.code).toBe(2);
    expect(option.stderr).toContain("error: unknown option '--az'");
  });

  it('reports a misspelt option, with its suggestion, before a required option it leaves missing', async () => {
    const r = await harness().hanat('deploy', '--nmae', 'lab', '--cidr-prefix', '10.0');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("error: unknown option '--nmae'\n(Did you mean --name?)\n(run with --help for usage)\n");
  });

  it.each([
    ['deploy', ['deploy', '--name', 'lab', '--cidr-prefx', '10.0', '--yes'], '--cidr-prefx', '--cidr-prefix'],
    ['deploy', ['deploy', '--cidr-prefix', '10.0', '--nmae', 'lab'], '--nmae', '--name'],
    ['destroy', ['destroy', '--nmae', 'lab', '--yes'], '--nmae', '--name'],
    ['status', ['status', '--nam', 'lab'], '--nam', '--name'],
    ['status', ['status', '--name', 'lab', '--regoin', 'eu-west-1'], '--regoin', '--region'],
    ['failover', ['failover', '--name', 'lab', '--za', 'eu-west-1a'], '--za', '--az'],
    ['failover', ['failover', '--nmae', 'lab', '--az', 'eu-west-1a', '--restore'], '--nmae', '--name'],
    ['template', ['template', '--cidr-prefx', '10.0'], '--cidr-prefx', '--cidr-prefix'],
  ])('%s: a typo says which option is unknown and suggests the right one, exit 2, no AWS call (%s)', async (_cmd, args, typo, meant) => {
    const h = harness();
    const r = await h.hanat(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: unknown option '${typo}'\n(Did you mean ${meant}?)`);
    expect(r.stderr).not.toContain('required option');
    expect(r.stdout).toBe('');
    expect(names(cfnMock)).toEqual([]);
  });

  it.each([
    ['deploy', ['deploy', '--cidr-prefix', '10.0', '--yes'], '--name <stack>'],
    ['deploy', ['deploy', '--name', 'lab', '--yes'], '--cidr-prefix <x.y>'],
    ['destroy', ['destroy', '--yes'], '--name <stack>'],
    ['status', ['status'], '--name <stack>'],
    ['failover', ['failover', '--name', 'lab'], '--az <az>'],
  ])('%s still refuses a missing required option, exit 2, before any AWS call', async (_cmd, args, flags) => {
    const r = await harness().hanat(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error: required option '${flags}' not specified\n(run with --help for usage)\n`);
    expect(names(cfnMock)).toEqual([]);
  });

  it('exits 2 without a command, showing the help on stderr', async () => {
    const r = await harness().hanat();
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Usage: hanat');
  });

  it('reports a bug with the versions and without a stack trace, unless --debug', async () => {
    const broken = () => {
      throw new TypeError("Cannot read properties of undefined (reading 'StackId')");
    };
    const h = harness({ aws: broken });
    const r = await h.hanat('deploy', '--name', 'demo', '--cidr-prefix', '10.0', '--region', 'eu-west-1', '--yes');
    expect(r.code).toBe(70);
    expect(r.stderr).toBe(
      "error: internal error: Cannot read properties of undefined (reading 'StackId')\n" +
        'This is a bug in hanat. Please report it with the command you ran (without secrets) and these versions:\n' +
        `  hanat ${VERSION}, node v20.0.0, linux x64\n` +
        'Run the command again with --debug to include the stack trace.\n',
    );
    const debug = await h.hanat('deploy', '--name', 'demo', '--cidr-prefix', '10.0', '--region', 'eu-west-1', '--yes', '--debug');
    expect(debug.code).toBe(70);
    expect(debug.stderr).toMatch(/TypeError: Cannot read properties[^\n]*\n\s+at /);
  });

  it('shows the cause of an operation error only with --debug', async () => {
    const h = harness();
    const args = ['deploy', '--name', 'demo', '--cidr-prefix', '10.0', '--region', 'eu-west-1', '--yes', '--key', 'nope'];
    const plain = await h.hanat(...args);
    expect(plain.code).toBe(2);
    expect(plain.stderr).not.toMatch(/\n\s+at /);
    const debug = await h.hanat(...args, '--debug');
    expect(debug.stderr).toMatch(/UsageError: --key "nope"[^\n]*\n\s+at /);
  });

  it.each([
    ['0', false],
    ['false', false],
    ['no', false],
    ['', false],
    ['1', true],
    ['true', true],
  ] as const)('HANAT_DEBUG=%j shows stack traces: %s', async (value, on) => {
    // Both where main.ts puts the environment (deps.env) and where the SDK and commander read it.
    vi.stubEnv('HANAT_DEBUG', value);
    const h = harness({ env: { HANAT_DEBUG: value } });
    const r = await h.hanat('deploy', '--name', 'demo', '--cidr-prefix', '10.0', '--region', 'eu-west-1', '--yes', '--key', 'nope');
    expect(r.code).toBe(2);
    if (on) expect(r.stderr).toMatch(/UsageError: --key "nope"[^\n]*\n\s+at /);
    else expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('maps missing AWS credentials to exit 2 with the fix', async () => {
    const h = harness();
    cfnMock.reset();
    cfnMock.rejects(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }));
    const r = await h.hanat('destroy', '--name', 'demo', '--region', 'eu-west-1', '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'error: AWS did not accept the credentials (CredentialsProviderError: Could not load credentials from any providers). Pass --profile, set AWS_PROFILE, or refresh them (aws sso login / aws configure).\n',
    );
  });
});

describe('hanat template', () => {
  it('prints exactly the rendered template on stdout and nothing on stderr', async () => {
    const r = await harness().hanat('template');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(templateBody({ azs: 3, eip: true }));
    expect(r.stderr).toBe('');
    expect(names(cfnMock)).toEqual([]);
  });

  it('passes --azs, --no-eip and --cidr-prefix to the renderer', async () => {
    const r = await harness().hanat('template', '--azs', '6', '--no-eip', '--cidr-prefix', '172.20');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(templateBody({ azs: 6, eip: false, cidrPrefix: '172.20' }));
  });

  it('refuses a bad AZ count with exit 2', async () => {
    const r = await harness().hanat('template', '--azs', '7');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('error: --azs "7": hanat spreads NATs over 2 to 6 Availability Zones; pass a whole number from 2 to 6, e.g. --azs 3.\n');
  });

  it('warns on stderr about a public range but still prints the template', async () => {
    const r = await harness().hanat('template', '--cidr-prefix', '8.8');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('Resources');
    expect(r.stderr).toMatch(/^warning: 8\.8\.0\.0\/16 is a public range/);
  });
});
