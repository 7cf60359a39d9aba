/**
 * scripts/build-ami with stand-ins for the AWS CLI and Packer on PATH: the
 * calls it makes, in order, and what it prints. Nothing reaches AWS. The
 * stand-in Packer hands `validate` to the real Packer, so the variables
 * build-ami passes are checked against the real template. The last suites
 * run the real AWS CLIs found on PATH against a recorder on loopback: one that
 * knows ImdsSupport, to check what its calls put on the wire, and one that does
 * not (Debian 12's awscli 2.9.19), to check that build-ami refuses it before
 * anything is built.
 */
import { execFile } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO, hasCommand, requireTools, run, testEnv } from './support.js';

const SCRIPT = join(REPO, 'scripts/build-ami');
const SOURCE_AMI = 'ami-0123456789abcdef0';
const BUILT_AMI = 'ami-0fedcba9876543210';
const canRun = requireTools('build-ami', ['packer', 'bash', 'ssh-keygen']);
/** What build-ami asks the AWS CLI first, to learn whether it knows ImdsSupport (a local call). */
const PREFLIGHT = 'aws ec2 modify-image-attribute --generate-cli-skeleton';

/** "aws ssm get-parameter", "packer build": the command without its options (the preflight keeps its flag). */
function verb(argv: string[]): string {
  if (argv[0] === 'aws') {
    const i = argv.findIndex((a) => a === 'ssm' || a === 'ec2');
    if (i < 0) return argv.join(' ');
    const v = `aws ${argv[i]} ${argv[i + 1]}`;
    return argv.includes('--generate-cli-skeleton') ? `${v} --generate-cli-skeleton` : v;
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
  --version) echo "aws-cli/\${FAKE_AWS_VERSION:-2.31.0} Python/3.11.2 Linux/6.1 fake" ;;
  *"ec2 modify-image-attribute --generate-cli-skeleton"*)
    echo '{ "Attribute": "", "ImageId": "", "Value": "",'
    [ -z "$FAKE_NO_IMDS_SUPPORT" ] && echo '  "ImdsSupport": { "Value": "" },'
    echo '  "DryRun": true }' ;;
  *"ssm get-parameter"*"/hanat/ami/"*) echo "\${FAKE_PUBLISHED_AMI:-${BUILT_AMI}}" ;;
  *"ssm get-parameter"*) [ -n "$FAKE_SSM_FAIL" ] && { echo "An error occurred (ParameterNotFound)" >&2; exit 254; }; echo "\${FAKE_SOURCE_AMI:-${SOURCE_AMI}}" ;;
  *"ec2 modify-image-attribute"*) ;;
  *"ec2 import-key-pair"*)
    for a; do case "$a" in fileb://*) cut -d' ' -f1 "\${a#fileb://}" > "\${FAKE_KEY_TYPE_FILE:-/dev/null}" ;; esac; done
    echo '{"KeyName": "k", "KeyPairId": "key-0123456789abcdef0"}' ;;
  *"ec2 delete-key-pair"*) ;;
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
    [ -z "$FAKE_KEY_TYPE_FILE" ] || for a; do case "$a" in ssh_private_key_file=*) head -n 1 "\${a#ssh_private_key_file=}" > "$FAKE_KEY_TYPE_FILE.private" ;; esac; done
    echo "1700000000,,ui,say,==> amazon-ebs.nat: Using SSH key pair..." 
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
      PREFLIGHT,
      'packer version',
      'aws ssm get-parameter',
      'packer validate',
      'aws ec2 import-key-pair',
      'packer build',
      'aws ec2 modify-image-attribute',
      'aws ssm put-parameter',
      'aws ssm get-parameter',
      'aws ec2 delete-key-pair',
    ]);
    const [get, , , build, modify, put, check] = c.slice(2);
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

  it('logs in to the build instance with its own ed25519 key (AL2023 refuses ssh-rsa signatures of old Packer), imported for the build and deleted after, even when the build fails', () => {
    const keyType = join(work, 'key-type');
    const r = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle], { FAKE_KEY_TYPE_FILE: keyType });
    expect(r.status).toBe(0);
    expect(readFileSync(keyType, 'utf8').trim()).toBe('ssh-ed25519');
    expect(readFileSync(`${keyType}.private`, 'utf8').trim()).toBe('-----BEGIN OPENSSH PRIVATE KEY-----');
    const c = calls();
    const imported = c.find((a) => a.includes('import-key-pair'))!;
    const name = imported[imported.indexOf('--key-name') + 1]!;
    expect(name).toMatch(/^hanat-build-ami-\d{8}T\d{6}Z-\d+$/);
    const build = c.find((a) => a[1] === 'build')!;
    expect(build).toContain(`ssh_keypair_name=${name}`);
    expect(build.find((a) => a.startsWith('ssh_private_key_file='))).toMatch(/id_ed25519$/);
    expect(c.find((a) => a.includes('delete-key-pair'))).toEqual(expect.arrayContaining(['--key-name', name]));
    // The private key does not outlive the run.
    expect(existsSync(build.find((a) => a.startsWith('ssh_private_key_file='))!.slice('ssh_private_key_file='.length))).toBe(false);

    rmSync(callLog, { force: true });
    const failed = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle], { FAKE_BUILD_FAIL: '1' });
    expect(failed.status).not.toBe(0);
    expect(calls().map(verb)).toContain('aws ec2 delete-key-pair');
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
    expect(calls().map(verb)).toEqual([PREFLIGHT, 'packer version', 'aws ssm get-parameter', 'packer validate']);
  });

  it('refuses an AWS CLI that does not know ImdsSupport before packer or AWS is called, and names its version', () => {
    const r = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle], {
      FAKE_NO_IMDS_SUPPORT: '1',
      FAKE_AWS_VERSION: '2.9.19',
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`the AWS CLI at ${join(bin, 'aws')} (aws-cli/2.9.19 `);
    expect(r.stderr).toContain("does not know ImdsSupport for 'ec2 modify-image-attribute'");
    expect(r.stderr).toContain('Nothing was built.');
    expect(r.stderr).toContain('https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html');
    expect(r.stderr).toContain('pip install awscli');
    expect(r.stderr).toContain("Debian 12's awscli package (2.9.19) is too old");
    // Only the two local questions to the CLI: no packer at all, no AWS request.
    expect(calls().map(verb)).toEqual([PREFLIGHT, 'aws --version']);
  });

  it('refuses an AWS CLI that does not know ImdsSupport in --dry-run too', () => {
    const r = buildAmi(['--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle, '--dry-run'], { FAKE_NO_IMDS_SUPPORT: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('does not know ImdsSupport');
    expect(calls().some((a) => a[0] === 'packer')).toBe(false);
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
      if (target === 'ImportKeyPair') {
        const name = new URLSearchParams(body).get('KeyName') ?? '';
        res.setHeader('content-type', 'text/xml');
        res.end(
          `<?xml version="1.0" encoding="UTF-8"?><ImportKeyPairResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-2</requestId><keyName>${name}</keyName><keyFingerprint>fp</keyFingerprint><keyPairId>key-0123456789abcdef0</keyPairId></ImportKeyPairResponse>`,
        );
        return;
      }
      if (target === 'DeleteKeyPair') {
        res.setHeader('content-type', 'text/xml');
        res.end('<?xml version="1.0" encoding="UTF-8"?><DeleteKeyPairResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r-3</requestId><return>true</return></DeleteKeyPairResponse>');
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

interface AwsCli {
  /** The absolute path of the executable, as found on PATH. */
  path: string;
  /** The first line of `aws --version`. */
  version: string;
  /** Whether its `ec2 modify-image-attribute` knows ImdsSupport, per its own (local) skeleton. */
  imdsSupport: boolean;
}

/**
 * Every distinct AWS CLI on PATH (by real path: /bin/aws and /usr/bin/aws are
 * one on a merged /usr), with its version and whether it knows ImdsSupport.
 * Both questions are answered from the CLI's own model, with no AWS call.
 */
function awsClisOnPath(): AwsCli[] {
  const seen = new Set<string>();
  const clis: AwsCli[] = [];
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const path = join(dir, 'aws');
    let real: string;
    try {
      accessSync(path, constants.X_OK);
      real = realpathSync(path);
    } catch {
      continue;
    }
    if (seen.has(real)) continue;
    seen.add(real);
    const version = run(path, ['--version']);
    const skeleton = run(path, ['ec2', 'modify-image-attribute', '--generate-cli-skeleton']);
    if (version.status !== 0 || skeleton.status !== 0) {
      console.warn(`build-ami with the real AWS CLI: ignoring ${path}, which does not run: ${(version.stderr || skeleton.stderr).trim()}`);
      continue;
    }
    clis.push({ path, version: `${version.stdout}${version.stderr}`.trim().split('\n')[0]!, imdsSupport: skeleton.stdout.includes('"ImdsSupport"') });
  }
  return clis;
}

const realAws = canRun && requireTools('build-ami with the real AWS CLI', ['aws']);
const clis = realAws ? awsClisOnPath() : [];
const knowsImds = clis.find((c) => c.imdsSupport);
// Debian 12's package first: it is the CLI scripts/setup.sh installs.
const debianAws = existsSync('/usr/bin/aws') ? realpathSync('/usr/bin/aws') : undefined;
const lacksImds = clis.find((c) => !c.imdsSupport && realpathSync(c.path) === debianAws) ?? clis.find((c) => !c.imdsSupport);
if (realAws && !knowsImds) {
  // Not a failure under CI=true: the refusal suite below then runs with this
  // machine's CLI instead, so a regression in build-ami still shows.
  console.warn(
    `build-ami with a real AWS CLI that knows ImdsSupport: skipped, none on PATH does (${clis.map((c) => `${c.path}: ${c.version}`).join('; ') || 'none runs'}); ` +
      'install AWS CLI v2 from AWS or `pip install awscli` to run it',
  );
}

/** The recorder on loopback, a work directory, and build-ami run with the given CLI pinned to the recorder. */
function withRecorder(): {
  requests: () => Recorded[];
  buildAmi: (cli: AwsCli) => Promise<{ code: number; stdout: string; stderr: string; packerCalls: string[] }>;
} {
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

  const buildAmi = async (cli: AwsCli) => {
    const bin = join(work, 'bin');
    mkdirSync(bin);
    const bundle = join(work, 'hanat-agent.cjs');
    writeFileSync(bundle, '"use strict";\n');
    const packerLog = join(work, 'packer.log');
    // This CLI by its absolute path, pinned to the recorder whatever its version does with AWS_ENDPOINT_URL.
    writeFileSync(join(bin, 'aws'), `#!/bin/sh\nexec '${cli.path}' --endpoint-url http://127.0.0.1:${port} "$@"\n`);
    writeFileSync(
      join(bin, 'packer'),
      `#!/bin/sh
echo "$1" >> '${packerLog}'
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
    // Asynchronous: the recorder answers from this process's event loop.
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile('bash', [SCRIPT, '--arch', 'arm64', '--region', 'eu-west-1', '--bundle', bundle], { env, cwd: REPO }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
      );
    });
    const packerCalls = existsSync(packerLog) ? readFileSync(packerLog, 'utf8').trim().split('\n') : [];
    return { ...result, packerCalls };
  };
  return { requests: () => recorder.requests, buildAmi };
}

describe.runIf(knowsImds)(`scripts/build-ami with a real AWS CLI that knows ImdsSupport (${knowsImds?.path}: ${knowsImds?.version})`, { timeout: 120_000 }, () => {
  const { requests, buildAmi } = withRecorder();

  it('sends the source lookup, ImdsSupport v2.0 and the aws:ec2:image parameter with the right fields', async () => {
    const result = await buildAmi(knowsImds!);
    expect(result.stderr).toContain(`published ${BUILT_AMI}`);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${BUILT_AMI}\n`);

    expect(result.packerCalls).toEqual(['version', 'validate', 'build']);
    const reqs = requests();
    expect(reqs.map((r) => r.target)).toEqual(['AmazonSSM.GetParameter', 'ImportKeyPair', 'ModifyImageAttribute', 'AmazonSSM.PutParameter', 'AmazonSSM.GetParameter', 'DeleteKeyPair']);
    expect(reqs.every((r) => r.region === 'eu-west-1')).toBe(true);
    expect(JSON.parse(reqs[0]!.body)).toEqual({ Name: '/aws/service/ami-amazon-linux-latest/al2023-ami-minimal-kernel-default-arm64' });
    const imported = new URLSearchParams(reqs[1]!.body);
    expect(Buffer.from(imported.get('PublicKeyMaterial')!, 'base64').toString('utf8')).toMatch(/^ssh-ed25519 /);
    expect(new URLSearchParams(reqs[5]!.body).get('KeyName')).toBe(imported.get('KeyName'));
    const modify = new URLSearchParams(reqs[2]!.body);
    expect(modify.get('ImageId')).toBe(BUILT_AMI);
    expect(modify.get('ImdsSupport.Value')).toBe('v2.0');
    expect(JSON.parse(reqs[3]!.body)).toMatchObject({ Name: '/hanat/ami/arm64', Type: 'String', DataType: 'aws:ec2:image', Overwrite: true, Value: BUILT_AMI });
    expect(JSON.parse(reqs[4]!.body)).toEqual({ Name: '/hanat/ami/arm64' });
  });
});

describe.runIf(lacksImds)(`scripts/build-ami with a real AWS CLI that does not know ImdsSupport (${lacksImds?.path}: ${lacksImds?.version})`, { timeout: 120_000 }, () => {
  const { requests, buildAmi } = withRecorder();

  it('refuses it before packer runs or any AWS request is made, and names its version', async () => {
    const result = await buildAmi(lacksImds!);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`(${lacksImds!.version}) does not know ImdsSupport for 'ec2 modify-image-attribute'`);
    expect(result.stderr).toContain('pip install awscli');
    expect(result.packerCalls).toEqual([]);
    expect(requests()).toEqual([]);
  });
});
