/**
 * For tests that run the built bundles as separate processes, the way users and the demo
 * do: where the bundles are, and what a lab run left behind in the kernel and the process
 * table (its namespaces, its links in the root namespace, its processes).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execCommand } from '../src/dataplane/exec.js';
import { namespacePids } from '../src/dataplane/processes.js';
import { pidAlive, runNamespaces } from '../src/dataplane/state.js';

export const REPO = join(import.meta.dirname, '../../..');
export const LAB_BIN = join(REPO, 'packages/lab/bin/hanat-lab.mjs');

/**
 * Throws unless the bundles exist. `pnpm test` builds them first; these tests do not build
 * them, because rebuilding a bundle while another test file runs it would race.
 */
export function requireBundles(...names: ('lab' | 'lab-worker' | 'cli' | 'agent')[]): void {
  const files = { lab: 'packages/lab/dist/hanat-lab.mjs', 'lab-worker': 'packages/lab/dist/hanat-lab-worker.mjs', cli: 'packages/cli/dist/hanat.mjs', agent: 'packages/agent/dist/hanat-agent.cjs' };
  const missing = names.map((n) => files[n]).filter((f) => !existsSync(join(REPO, f)));
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: run \`pnpm build\` first (\`pnpm test\` does)`);
}


/** The pids now inside the run's namespaces. */
export async function runPids(prefix: string): Promise<number[]> {
  const pids: number[] = [];
  for (const ns of await runNamespaces(execCommand, prefix)) pids.push(...(await namespacePids(execCommand, ns)));
  return pids;
}

export interface Leftovers {
  /** `ip netns list` entries of the run. */
  namespaces: string[];
  /** `ip link` entries in the root namespace named after the run. */
  links: string[];
  /** `ps` lines that mention the run's prefix. */
  processes: string[];
  /** Which of the given pids still run (a killed process may linger briefly as a zombie). */
  pids: number[];
}

/** What of run `prefix` is still there, waiting up to `graceMs` for killed processes to be reaped. */
export async function leftovers(prefix: string, pids: Iterable<number>, graceMs = 5_000): Promise<Leftovers> {
  const known = [...pids];
  for (const deadline = Date.now() + graceMs; known.some(pidAlive) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
  const namespaces = (await execCommand(['ip', 'netns', 'list']))
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((ns) => ns.startsWith(`${prefix}-`));
  const links = (JSON.parse(await execCommand(['ip', '-j', 'link', 'show'])) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n.startsWith(prefix));
  const processes = (await execCommand(['ps', '-eo', 'pid=,args='])).split('\n').filter((l) => l.includes(prefix));
  return { namespaces, links, processes, pids: known.filter(pidAlive) };
}

export const NOTHING_LEFT: Leftovers = { namespaces: [], links: [], processes: [], pids: [] };
