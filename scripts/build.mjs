#!/usr/bin/env node
// Bundles the CLI, the agent and the lab with esbuild, each into one file,
// then smoke-runs each bundle (its --version). Usage: node scripts/build.mjs [cli|agent|lab ...]
// (`lab` includes lab-worker, the namespace workers' own bundle).
import { build } from 'esbuild';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const version = JSON.parse(readFileSync(join(root, 'packages/cli/package.json'), 'utf8')).version;

/** @type {Record<string, {entry: string, outfile: string, format: 'esm'|'cjs', options?: string, smoke?: {args: string[], status: number, stderr: RegExp}}>} */
const targets = {
  cli: { entry: 'packages/cli/src/main.ts', outfile: 'packages/cli/dist/hanat.mjs', format: 'esm' },
  agent: {
    entry: 'packages/agent/src/main.ts',
    outfile: 'packages/agent/dist/hanat-agent.cjs',
    format: 'cjs',
    // Size and memory tuning of the agent bundle (why: see the file).
    options: 'packages/agent/esbuild.config.mjs',
  },
  lab: { entry: 'packages/lab/src/main.ts', outfile: 'packages/lab/dist/hanat-lab.mjs', format: 'esm' },
  // The lab's namespace workers (probers, echo, proxy) on their own: hanat-lab starts them from
  // here when it exists, a few kB instead of the whole lab bundle per process.
  'lab-worker': {
    entry: 'packages/lab/src/dataplane/workers/main.ts',
    outfile: 'packages/lab/dist/hanat-lab-worker.mjs',
    format: 'esm',
    smoke: { args: ['echo'], status: 2, stderr: /echo needs at least one --address/ },
  },
};

// ESM bundles of CommonJS dependencies need a real `require`.
const esmBanner = "import { createRequire as __hanatCreateRequire } from 'node:module'; const require = __hanatCreateRequire(import.meta.url);";

const wanted = process.argv.slice(2);
for (const [name, t] of Object.entries(targets)) {
  // `lab` builds its workers too: a stale worker bundle beside a new lab would be run as is.
  if (wanted.length && !wanted.includes(name) && !(name === 'lab-worker' && wanted.includes('lab'))) continue;
  if (!existsSync(join(root, t.entry))) {
    console.error(`build: ${name}: ${t.entry} does not exist yet, skipped`);
    continue;
  }
  const extra = t.options ? (await import(pathToFileURL(join(root, t.options)).href)).default : {};
  await build({
    entryPoints: [join(root, t.entry)],
    outfile: join(root, t.outfile),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: t.format,
    minify: name === 'agent',
    legalComments: 'none',
    sourcemap: false,
    define: { __HANAT_VERSION__: JSON.stringify(version) },
    banner: t.format === 'esm' ? { js: esmBanner } : {},
    logLevel: 'warning',
    ...extra,
  });
  const out = join(root, t.outfile);
  if (t.smoke) {
    // No --version: run it with arguments it must refuse, which proves that it loads and parses.
    const r = spawnSync(process.execPath, [out, ...t.smoke.args], { encoding: 'utf8', cwd: '/' });
    if (r.status !== t.smoke.status || !t.smoke.stderr.test(r.stderr)) throw new Error(`build: ${name}: smoke run of ${t.outfile} ${t.smoke.args.join(' ')} exited ${r.status}: ${r.stderr}`);
    console.error(`build: ${name}: ${t.outfile} ${(statSync(out).size / 1024).toFixed(0)} KiB, loads`);
    continue;
  }
  const smoke = execFileSync(process.execPath, [out, '--version'], { encoding: 'utf8', cwd: '/' }).trim();
  console.error(`build: ${name}: ${t.outfile} ${(statSync(out).size / 1024).toFixed(0)} KiB, --version: ${smoke}`);
}
