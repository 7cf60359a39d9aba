/**
 * Shared helpers for the image tests: which host tools a suite needs, and
 * running the repository's shell scripts.
 *
 * Like test-support/root.ts: outside CI a suite whose tools are missing skips
 * with a printed reason; under CI=true that is a failure, so a CI machine
 * without packer, shellcheck or systemd goes red instead of silently green.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function hasCommand(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * True when the suite may run: every tool is on PATH (and we are root when
 * `root` is set). Call at module scope and pass to `describe.runIf(...)`.
 */
export function requireTools(suite: string, tools: string[], opts: { root?: boolean } = {}): boolean {
  let reason: string | undefined;
  if (opts.root && process.getuid?.() !== 0) reason = 'needs root (it creates root-owned files)';
  const missing = tools.filter((t) => !hasCommand(t));
  if (!reason && missing.length) reason = `needs ${missing.map((t) => `'${t}'`).join(', ')} (run scripts/setup.sh)`;
  if (!reason) return true;
  const msg = `${suite}: skipped, ${reason}`;
  if (process.env.CI === 'true') throw new Error(`${msg}; under CI=true a skipped suite is a failure`);
  console.warn(msg);
  return false;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Environment for scripts under test: fake AWS credentials, so nothing can find real ones. */
export function testEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'test-secret-not-real',
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_REGION: 'eu-west-1',
    AWS_DEFAULT_REGION: 'eu-west-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    HANAT_PKG_INSTALL: undefined,
    ...extra,
  };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = testEnv(), cwd = REPO): RunResult {
  const r = spawnSync(cmd, args, { env, cwd, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
