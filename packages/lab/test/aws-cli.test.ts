/**
 * The real AWS CLI against the emulator, as a new user would try the lab:
 * `aws cloudformation deploy --template-file templates/hanat.json` to create the
 * stack, again with nothing changed, again with a changed parameter, then
 * `delete-stack` and the `wait` commands.
 *
 * The CLI is the one scripts/setup.sh installs (Debian's `awscli`, AWS CLI v2 at
 * /usr/bin/aws), or another v2 on PATH. Under CI=true a missing one is a failure.
 * It never reaches AWS: it runs with fake static credentials, a HOME and config
 * files of its own (nothing of the user's is read), no instance metadata, and
 * `--endpoint-url` on every call (Debian 12's CLI, 2.9, predates the
 * AWS_ENDPOINT_URL setting, which is set too for newer ones). As a guard, HTTP(S)
 * proxies point at a closed loopback port with only 127.0.0.1 exempt, so a call
 * that escaped the endpoint would fail at once instead of leaving the machine.
 *
 * `deploy` polls the change set every 5 s and the stack every 30 s (fixed in the
 * CLI), so each create or update costs about 35 s however fast the lab is.
 */
import { execFile, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLab, type Harness } from './emulator/helpers.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const TEMPLATE = join(REPO, 'templates', 'hanat.json');

/** The AWS CLI v2 to use: Debian's first (what scripts/setup.sh installs), else the first v2 on PATH. */
function findAwsCliV2(): { path: string; version: string } | undefined {
  const candidates = ['/usr/bin/aws', ...(process.env.PATH ?? '').split(':').filter(Boolean).map((d) => join(d, 'aws'))];
  const seen = new Set<string>();
  for (const path of candidates) {
    let real: string;
    try {
      accessSync(path, constants.X_OK);
      real = realpathSync(path);
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: tmpdir() } });
    const version = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '';
    if (r.status === 0 && version.startsWith('aws-cli/2.')) return { path, version };
  }
  return undefined;
}

const cli = findAwsCliV2();
if (!cli) {
  const msg = 'the AWS CLI against the lab: skipped, no AWS CLI v2 found (/usr/bin/aws or on PATH; scripts/setup.sh installs Debian\'s awscli)';
  if (process.env.CI === 'true') throw new Error(`${msg}; under CI=true a skipped suite is a failure`);
  console.warn(msg);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe.runIf(cli)(`the AWS CLI (${cli?.version ?? 'missing'}) against the emulator`, () => {
  let h: Harness;
  let home: string;
  let env: NodeJS.ProcessEnv;

  /** Runs the CLI asynchronously: the emulator answers from this same process. */
  const aws = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(cli!.path, ['--endpoint-url', h.url, ...args], { env, cwd: REPO, encoding: 'utf8', timeout: 150_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });

  beforeAll(async () => {
    h = await startLab();
    home = mkdtempSync(join(tmpdir(), 'hanat-aws-cli-'));
    writeFileSync(join(home, 'config'), '');
    writeFileSync(join(home, 'credentials'), '');
    env = {
      PATH: process.env.PATH,
      LANG: 'C.UTF-8',
      HOME: home,
      AWS_CONFIG_FILE: join(home, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
      AWS_ACCESS_KEY_ID: 'AKIAHANATLABCLI00000',
      AWS_SECRET_ACCESS_KEY: 'hanat-lab-cli-fake-secret',
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: h.url,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
      AWS_CLI_AUTO_PROMPT: 'off',
      HTTP_PROXY: 'http://127.0.0.1:9',
      HTTPS_PROXY: 'http://127.0.0.1:9',
      NO_PROXY: '127.0.0.1',
    };
  });

  afterAll(async () => {
    await h?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  /**
   * The CLI names its change set `awscli-cloudformation-package-deploy-<unix seconds>` and
   * leaves an empty one behind, so a second deploy within the same second gets
   * AlreadyExistsException, from AWS as from the lab. A deploy with nothing to change can end
   * within a second when the lab has the change set ready at the CLI's first poll. A person
   * typing never hits it; the test starts a deploy only in a second after the previous one
   * ended (the name is taken while it runs, so any earlier second would not do).
   */
  let lastDeployEndSecond = 0;
  const deploy = async (extra: string[]) => {
    while (Math.floor(Date.now() / 1000) <= lastDeployEndSecond) await new Promise((r) => setTimeout(r, 50));
    const run = await aws(['cloudformation', 'deploy', '--template-file', TEMPLATE, '--stack-name', 'cli-lab', '--capabilities', 'CAPABILITY_IAM', ...extra]);
    lastDeployEndSecond = Math.floor(Date.now() / 1000);
    return run;
  };

  it('creates, finds nothing to change, updates and deletes hanat\'s stack with `cloudformation deploy`', { timeout: 300_000 }, async () => {
    const created = await deploy(['--parameter-overrides', 'CidrPrefix=10.0', 'AvailabilityZones=us-east-1a,us-east-1b,us-east-1c']);
    expect(created.stderr).toBe('');
    expect(created.stdout).toContain('Successfully created/updated stack - cli-lab');
    expect(created.code).toBe(0);
    const stack = h.emu.world.cloudformation.findStack('cli-lab')!;
    expect(stack.status).toBe('CREATE_COMPLETE');
    expect(h.emu.world.autoscaling.groups.size).toBe(3);
    expect((await aws(['cloudformation', 'wait', 'stack-create-complete', '--stack-name', 'cli-lab'])).code).toBe(0);

    // The same again: the CLI's normal "no changes" outcome, exit 0; nothing executed.
    const executes = h.emu.counters.get('cloudformation:ExecuteChangeSet');
    const same = await deploy(['--parameter-overrides', 'CidrPrefix=10.0', 'AvailabilityZones=us-east-1a,us-east-1b,us-east-1c']);
    expect(same.stdout).toContain('No changes to deploy. Stack cli-lab is up to date');
    expect(same.code).toBe(0);
    // No parameters given: the CLI sends UsePreviousValue for each, after asking GetTemplateSummary which the stack has.
    const summaries = h.emu.counters.get('cloudformation:GetTemplateSummary');
    const previous = await deploy(['--fail-on-empty-changeset']);
    expect(previous.code).not.toBe(0);
    expect(previous.stderr).toContain('No changes to deploy. Stack cli-lab is up to date');
    expect(h.emu.counters.get('cloudformation:GetTemplateSummary')).toBe(summaries + 1);
    expect(h.emu.counters.get('cloudformation:ExecuteChangeSet')).toBe(executes);
    expect(stack.status).toBe('CREATE_COMPLETE');

    // A real update: one parameter changed, the others kept from the stack.
    const updated = await deploy(['--parameter-overrides', 'InstanceType=t4g.micro']);
    expect(updated.stderr).toBe('');
    expect(updated.stdout).toContain('Successfully created/updated stack - cli-lab');
    expect(updated.code).toBe(0);
    expect(stack.status).toBe('UPDATE_COMPLETE');
    expect(stack.params.given).toMatchObject({ InstanceType: 't4g.micro', CidrPrefix: '10.0', AvailabilityZones: 'us-east-1a,us-east-1b,us-east-1c' });
    const templates = [...h.emu.world.ec2.launchTemplates.values()];
    expect(templates).toHaveLength(1);
    const current = templates[0]!.versions.find((v) => v.number === templates[0]!.defaultVersion)!;
    expect(current.data.InstanceType).toBe('t4g.micro');
    expect((await aws(['cloudformation', 'wait', 'stack-update-complete', '--stack-name', 'cli-lab'])).code).toBe(0);

    const described = await aws(['cloudformation', 'describe-stacks', '--stack-name', 'cli-lab', '--query', 'Stacks[0].StackStatus', '--output', 'text']);
    expect(described.stdout.trim()).toBe('UPDATE_COMPLETE');

    const deleted = await aws(['cloudformation', 'delete-stack', '--stack-name', 'cli-lab']);
    expect(deleted.code).toBe(0);
    const waited = await aws(['cloudformation', 'wait', 'stack-delete-complete', '--stack-name', 'cli-lab']);
    expect(waited.stderr).toBe('');
    expect(waited.code).toBe(0);
    expect(stack.status).toBe('DELETE_COMPLETE');
    expect(h.emu.world.ec2.vpcs.size).toBe(0);
    expect(h.emu.world.autoscaling.groups.size).toBe(0);
  });
});
