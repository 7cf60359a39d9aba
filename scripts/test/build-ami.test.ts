/**
 * scripts/build-ami with stand-ins for the AWS CLI and Packer on PATH: the
 * calls it makes, in order, and what it prints. Nothing reaches AWS. The
 * stand-in Packer hands `validate` to the real Packer, so the variables
 * build-ami passes are checked against the real template. A last suite runs
 * the real AWS CLI against a recorder on loopback, to check what its calls
 * put on the wire.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO, hasCommand, requireTools, run, testEnv } from './support.js';

const SCRIPT = join(REPO, 'scripts/build-ami');
const SOURCE_AMI = 'ami-0123456789abcdef0';
const BUILT_AMI = 'ami-0fedcba9876543210';
const canRun = requireTools('build-ami', ['packer', 'bash']);

/** "aws ssm get-parameter", "packer build": the command without its options. */
function verb(argv: string[]): string {
  if (argv[0] === 'aws') {
    const i = argv.findIndex((a) => a === 'ssm' || a === 'ec2');
    return `aws ${argv[i]} ${argv[i + 1]}`;
  }
  return `${argv[0]} ${argv[1]}`;
}

describe.runIf(canRun)('scripts/build-ami', { timeout: 60_000 }, () => {
  let work: string;
  let bin: string;
  let callLog: string;
  let bundle: string;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'hanat-build-ami-'));
    bin = join(work, 'bin');
    mkdirSync(bin);
    callLog = join(work, 'calls.log');
    bundle = join(work, 'hanat-agent.cjs');
    writeFileSync(bundle, '"use strict";// stand-in bundle\n');
    const record = `{ printf '%s' "$(basename "$0")"; for a; do printf '\\t%s' "$a"; done; echo; } >> '${callLog}'`;
    writeFileSync(
      join(bin, 'aws'),
      `#!/bin/sh
${record}
case "$*" in
  *"ssm get-parameter"*"/hanat/ami/"*) echo "\${FAKE_PUBLISHED_AMI:-${BUILT_AMI}}" ;;
  *"ssm get-parameter"*) [ -n "$FAKE_SSM_FAIL" ] && { echo "An error occurred (ParameterNotFound)" >&2; exit 254; }; echo "\${FAKE_SOURCE_AMI:-${SOURCE_AMI}}" ;;
  *"ec2 modify-image-attribute"*) ;;
  *"ssm put-parameter"*) echo '{"Version": 3, "Tier": "Standard"}' ;;
  *) echo "fake aws: unexpected call: $*" >&2; exit 99 ;;
esac
`,
    );
    writeFileSync(
      join(bin, 'packer'),
      `#!/bin/sh
${record}
case "$1" in
  version) echo "Packer v1.6.6" ;;
  validate) exec /usr/bin/packer "$@" ;;
  build)
    echo "1700000000,,ui,say,==> amazon-ebs.nat: Creating temporary keypair..."
    [ -n "$FAKE_BUILD_FAIL" ] && { echo "1700000001,,ui,error,Build 'amazon-ebs.nat' errored"; exit 1; }
    echo "1700000002,amazon-ebs.nat,artifact-count,1"
    echo "1700000002,amazon-ebs.nat,artifact,0,id,eu-west-1:${BUILT_AMI}"
    ;;
  *) echo "fake packer: unexpected call: $*" >&2; exit 99 ;;
esac
`,
    );
    chmodSync(join(bin, 'aws'), 0o755);
    chmodSync(join(bin, 'packer'), 0o755);
  });

  afterEach(() => {
    rmSync(work, { recursive: true, force: true });
  });

  const calls = (): string[][] => (existsSync(callLog) ? readFileSync(callLog, 'utf8').trim().split('\n').map((l) => l.split('\t')) : []);
  const buildAmi = (args: string[], env: Record<string, string | undefined> = {}) =>
    run('bash', [SCRIPT, ...args], testEnv({ PATH: `${bin}:${process.env.PATH}`, ...env }));

  it('builds from the AL2023 minimal image in SSM, requires IMDSv2 and publishes /hanat/ami/<arch>', () => {
    const r = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle]);
    expect(r.stderr).toContain(`published ${BUILT_AMI} as /hanat/ami/arm64`);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${BUILT_AMI}\n`);

    const c = calls();
    expect(c.map(verb)).toEqual([
      'packer version',
      'aws ssm get-parameter',
      'packer validate',
      'packer build',
      'aws ec2 modify-image-attribute',
      'aws ssm put-parameter',
      'aws ssm get-parameter',
    ]);
    const [get, , build, modify, put, check] = c.slice(1);
    expect(get).toContain('/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-arm64');
    expect(get!.join(' ')).toContain('--region eu-west-1');
    expect(build).toContain(`source_ami=${SOURCE_AMI}`);
    expect(build).toContain(`agent_bundle=${bundle}`);
    expect(build).toContain('region=eu-west-1');
    expect(build).toContain('-machine-readable');
    expect(build!.at(-1)).toBe(join(REPO, 'templates/packer/hanat-nat.pkr.hcl'));
    expect(modify!.join(' ')).toContain(`--image-id ${BUILT_AMI} --imds-support Value=v2.0`);
    expect(put!.join(' ')).toContain(`--name /hanat/ami/arm64 --type String --data-type aws:ec2:image --overwrite --value ${BUILT_AMI}`);
    expect(check).toContain('/hanat/ami/arm64');
  });

  it('fails when SSM does not take the new value before the deadline', () => {
    const r = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle], {
      FAKE_PUBLISHED_AMI: 'ami-0000000000000000a',
      HANAT_PUBLISH_WAIT_SECONDS: '0',
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`wrote ${BUILT_AMI} to /hanat/ami/arm64, but SSM has not accepted it yet`);
  });

  it('uses the x86_64 source image and parameter for --arch x86_64, and passes --profile on', () => {
    const r = buildAmi(['--arch', 'x86_64', '--region', 'us-east-2', '--profile', 'ops', '--bundle', bundle]);
    expect(r.status).toBe(0);
    const c = calls();
    expect(c.map(verb)).toContain('aws ssm put-parameter');
    const get = c.find((a) => a.includes('get-parameter'))!;
    expect(get).not.toContain('/hanat/ami/x86_64');
    expect(get).toContain('/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-x86_64');
    expect(get.join(' ')).toContain('--profile ops');
    expect(c.find((a) => a[1] === 'build')).toContain('arch=x86_64');
    expect(c.find((a) => a.includes('put-parameter'))!.join(' ')).toContain('--name /hanat/ami/x86_64');
  });

  it('--dry-run validates the template but builds and publishes nothing', () => {
    const r = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle, '--dry-run']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('dry run: would run packer build');
    expect(calls().map(verb)).toEqual(['packer version', 'aws ssm get-parameter', 'packer validate']);
  });

  it('publishes nothing when the build fails', () => {
    const r = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle], { FAKE_BUILD_FAIL: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('packer build failed');
    expect(r.stderr).toContain("Build 'amazon-ebs.nat' errored");
    expect(calls().some((a) => a.includes('put-parameter'))).toBe(false);
  });

  it('stops before building when the source image parameter cannot be read', () => {
    const r = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle], { FAKE_SSM_FAIL: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('could not read /aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-arm64');
    expect(calls().some((a) => a[0] === 'packer' && a[1] === 'build')).toBe(false);
  });

  it('rejects a source image value that is not an AMI id', () => {
    const r = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle], { FAKE_SOURCE_AMI: 'None' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("returned 'None', which is not an AMI id");
  });

  it('rejects a missing or unknown --arch with exit code 2', () => {
    const none = buildAmi(['--region', 'eu-west-1', '--bundle', bundle]);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('--arch is required');
    const bad = buildAmi(['--arch', 'aarch64', '--region', 'eu-west-1', '--bundle', bundle]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--arch 'aarch64' is not supported: use arm64 or x86_64");
    expect(calls()).toEqual([]);
  });

  it('rejects a missing region with exit code 2', () => {
    const r = buildAmi(['--arch', 'arm64', '--bundle', bundle], { AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--region is required');
  });

  it('fails clearly when the given bundle does not exist', () => {
    const r = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', join(work, 'nope.cjs')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('node scripts/build.mjs agent');
  });

  it('explains --help and exits 0', () => {
    const r = buildAmi(['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: scripts/build-ami --arch arm64|x86_64 --region REGION');
    expect(r.stdout).toContain('/hanat/ami/<arch>');
  });

  it('says how to install packer when it is not on PATH', () => {
    // A PATH with every usual tool except packer, and the test's stand-in aws.
    const noPacker = join(work, 'no-packer-bin');
    mkdirSync(noPacker);
    for (const dir of ['/usr/local/bin', '/usr/bin', '/bin']) {
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        if (f === 'packer' || f === 'aws' || existsSync(join(noPacker, f))) continue;
        symlinkSync(join(dir, f), join(noPacker, f));
      }
    }
    symlinkSync(join(bin, 'aws'), join(noPacker, 'aws'), 'file');
    const env = testEnv({ PATH: noPacker });
    const r = run('bash', [SCRIPT, '--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle], env);
    expect(hasCommand('packer')).toBe(true); // the host has it; the script must not see it
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('packer is not installed');
    expect(r.stderr).toContain('apt-get install packer');
    expect(r.stderr).toContain('https://developer.hashicorp.com/packer/install');
    expect(calls()).toEqual([]);
  });
});

interface Recorded {
  target: string;
  region: string | undefined;
  body: string;
}

/** Answers EC2 (query/XML) and SSM (JSON) calls on loopback and records them. */
function awsRecorder(published: string): { server: Server; requests: Recorded[] } {
  const requests: Recorded[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const region = /Credential=[^/]+\/\d+\/([^/]+)\//.exec(req.headers.authorization ?? '')?.[1];
      const target = String(req.headers['x-amz-target'] ?? new URLSearchParams(body).get('Action') ?? '?');
      requests.push({ target, region, body });
      if (target === 'ModifyImageAttribute') {
        res.setHeader('content-type', 'text/xml');
        res.end('<?xml version="1.0" encoding="UTF-8"?><ModifyImageAttributeResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-1</requestId><return>true</return></ModifyImageAttributeResponse>');
        return;
      }
      res.setHeader('content-type', 'application/x-amz-json-1.1');
      if (target === 'AmazonSSM.PutParameter') return res.end('{"Version":2,"Tier":"Standard"}');
      if (target === 'AmazonSSM.GetParameter') {
        const name = (JSON.parse(body) as { Name: string }).Name;
        const value = name.startsWith('/hanat/ami/') ? published : SOURCE_AMI;
        return res.end(JSON.stringify({ Parameter: { Name: name, Type: 'String', Value: value, Version: 1, DataType: 'aws:ec2:image' } }));
      }
      res.statusCode = 400;
      res.end('{"__type":"UnknownOperationException"}');
    });
  });
  return { server, requests };
}

const realAws = canRun && requireTools('build-ami with the real AWS CLI', ['aws']);

describe.runIf(realAws)('scripts/build-ami with the real AWS CLI against a loopback recorder', { timeout: 120_000 }, () => {
  let work: string;
  let recorder: ReturnType<typeof awsRecorder>;
  let port: number;

  beforeEach(async () => {
    work = mkdtempSync(join(tmpdir(), 'hanat-build-ami-cli-'));
    recorder = awsRecorder(BUILT_AMI);
    await new Promise<void>((resolve) => recorder.server.listen(0, '127.0.0.1', resolve));
    port = (recorder.server.address() as AddressInfo).port;
  });

  afterEach(async () => {
    await new Promise((resolve) => recorder.server.close(resolve));
    rmSync(work, { recursive: true, force: true });
  });

  it('sends the source lookup, ImdsSupport v2.0 and the aws:ec2:image parameter with the right fields', async () => {
    const bin = join(work, 'bin');
    mkdirSync(bin);
    const bundle = join(work, 'hanat-agent.cjs');
    writeFileSync(bundle, '"use strict";\n');
    // The real CLI, pinned to the recorder whatever its version does with AWS_ENDPOINT_URL.
    const aws = run('sh', ['-c', 'command -v aws']).stdout.trim();
    writeFileSync(join(bin, 'aws'), `#!/bin/sh\nexec '${aws}' --endpoint-url http://127.0.0.1:${port} "$@"\n`);
    writeFileSync(
      join(bin, 'packer'),
      `#!/bin/sh
case "$1" in
  version) echo "Packer v1.6.6" ;;
  validate) exec /usr/bin/packer "$@" ;;
  build) echo "1700000002,amazon-ebs.nat,artifact,0,id,eu-west-1:${BUILT_AMI}" ;;
esac
`,
    );
    chmodSync(join(bin, 'aws'), 0o755);
    chmodSync(join(bin, 'packer'), 0o755);

    const env = testEnv({ PATH: `${bin}:${process.env.PATH}`, AWS_MAX_ATTEMPTS: '1', AWS_PAGER: '' });
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('bash', [SCRIPT, '--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle], { env, cwd: REPO }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
    });
    expect(result.stderr).toContain(`published ${BUILT_AMI}`);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${BUILT_AMI}\n`);

    const reqs = recorder.requests;
    expect(reqs.map((r) => r.target)).toEqual(['AmazonSSM.GetParameter', 'ModifyImageAttribute', 'AmazonSSM.PutParameter', 'AmazonSSM.GetParameter']);
    expect(reqs.every((r) => r.region === 'eu-west-1')).toBe(true);
    expect(JSON.parse(reqs[0]!.body)).toEqual({ Name: '/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-arm64' });
    const modify = new URLSearchParams(reqs[1]!.body);
    expect(modify.get('ImageId')).toBe(BUILT_AMI);
    expect(modify.get('ImdsSupport.Value')).toBe('v2.0');
    expect(JSON.parse(reqs[2]!.body)).toMatchObject({ Name: '/hanat/ami/arm64', Type: 'String', DataType: 'aws:ec2:image', Overwrite: true, Value: BUILT_AMI });
    expect(JSON.parse(reqs[3]!.body)).toEqual({ Name: '/hanat/ami/arm64' });
  });
});
