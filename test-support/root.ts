/**
 * Kernel and lab tests need root (network namespaces, netfilter).
 * Outside CI they skip with a printed reason; under CI=true a skip is a failure,
 * so a CI machine that cannot run them goes red instead of silently green.
 */
import { execFileSync } from 'node:child_process';

export interface RootCheck {
  ok: boolean;
  reason?: string;
}

export function canUseNetns(tools: string[] = ['ip']): RootCheck {
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (network namespaces and netfilter)' };
  for (const tool of tools) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return { ok: false, reason: `needs the '${tool}' command (run scripts/setup.sh)` };
    }
  }
  return { ok: true };
}

/**
 * Returns true when the suite may run. Call at module scope and pass the result
 * to `describe.runIf(...)`. Throws under CI=true when the suite cannot run.
 */
export function requireRoot(suite: string, tools?: string[]): boolean {
  const check = canUseNetns(tools);
  if (check.ok) return true;
  const msg = `${suite}: skipped, ${check.reason}`;
  if (process.env.CI === 'true') throw new Error(`${msg}; under CI=true a skipped kernel test is a failure`);
  console.warn(msg);
  return false;
}
