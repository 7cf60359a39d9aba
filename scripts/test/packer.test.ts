/**
 * The Packer template, checked offline with the installed Packer (Debian's
 * 1.6.6 in CI): `packer validate` evaluates the variables and their
 * validation rules, decodes the amazon-ebs builder configuration and checks
 * that every file the provisioners upload exists. It makes no AWS call; what
 * only a real build can show is listed in docs/ami.md.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, requireTools, run } from './support.js';

const TEMPLATE = join(REPO, 'templates/packer/hanat-nat.pkr.hcl');
const canRun = requireTools('packer template', ['packer']);

describe.runIf(canRun)('templates/packer/hanat-nat.pkr.hcl', { timeout: 60_000 }, () => {
  let work: string;
  let bundle: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'hanat-packer-'));
    bundle = join(work, 'hanat-agent.cjs');
    writeFileSync(bundle, '"use strict";// stand-in bundle\n');
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const validate = (vars: Record<string, string>) =>
    run('packer', ['validate', ...Object.entries({ region: 'eu-west-1', source_ami: 'ami-0123456789abcdef0', agent_bundle: bundle, ...vars }).flatMap(([k, v]) => ['-var', `${k}=${v}`]), TEMPLATE]);

  it('is formatted (packer fmt -check)', () => {
    const r = run('packer', ['fmt', '-check', '-diff', join(REPO, 'templates/packer')]);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.each(['arm64', 'x86_64'])('validates for %s', (arch) => {
    const r = validate({ arch });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('accepts both 8- and 17-digit AMI ids', () => {
    expect(validate({ source_ami: 'ami-0123abcd' }).status).toBe(0);
    expect(validate({ source_ami: 'ami-0123456789abcdef0' }).status).toBe(0);
  });

  it.each(['ami-123', 'ami-0123456789ABCDEF0', 'resolve:ssm:/aws/service/x', ''])('rejects source_ami %j', (source_ami) => {
    const r = validate({ source_ami });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('The source_ami value must be an AMI id');
  });

  it('rejects an unknown architecture', () => {
    const r = validate({ arch: 'aarch64' });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('The arch value must be arm64 or x86_64');
  });

  it('fails when the agent bundle it would upload does not exist', () => {
    const r = validate({ agent_bundle: join(work, 'missing.cjs') });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('missing.cjs');
  });

  it('uploads the provisioning script and unit from this checkout', () => {
    // Validation stats each upload source; these must resolve from path.root.
    const r = validate({});
    expect(r.status).toBe(0);
    const hcl = run('sh', ['-c', `grep -E 'source +=' '${TEMPLATE}'`]).stdout;
    expect(hcl).toContain('${local.repo_root}/scripts/provision-nat.sh');
    expect(hcl).toContain('${local.repo_root}/scripts/systemd');
  });
});
