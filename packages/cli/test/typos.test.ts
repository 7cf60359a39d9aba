/**
 * Typos on the command line of the built `hanat` binary: the unknown option is
 * reported, with commander's suggestion, even when the typo also leaves a
 * required option missing (issue 12: `--nmae` used to be reported as a missing
 * `--name`). Exit 2, nothing on stdout, before any AWS call: the environment
 * names no endpoint and no credentials, so a call would fail differently.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { requireCliBundle, runHanat } from './support/binary.js';

beforeAll(requireCliBundle);

const env = { HOME: '/nonexistent', AWS_CONFIG_FILE: '/nonexistent/config', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials', AWS_REGION: 'eu-west-1' };

describe('hanat with a misspelt option', () => {
  it.each([
    [['deploy', '--nmae', 'lab', '--cidr-prefix', '10.0'], '--nmae', '--name'],
    [['destroy', '--nmae', 'lab', '--yes'], '--nmae', '--name'],
    [['status', '--nmae', 'lab'], '--nmae', '--name'],
    [['failover', '--name', 'lab', '--za', 'eu-west-1a'], '--za', '--az'],
    [['template', '--azz', '3'], '--azz', '--azs'],
  ])('hanat %j: exit 2, the unknown option and its suggestion', async (args, typo, meant) => {
    const r = await runHanat(args, env);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`error: unknown option '${typo}'\n(Did you mean ${meant}?)\n(run with --help for usage)\n`);
  }, 15_000);
});
