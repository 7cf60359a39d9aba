/**
 * Helpers for the data plane's root tests: the lab workers bundled to one file (the lab
 * bundle runs them as `hanat-lab _worker`; tests run the TypeScript source through esbuild),
 * and a fake NetworkView that a test drives by hand.
 */
import { build } from 'esbuild';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetworkSnapshot, NetworkView } from '../src/contract.js';

export async function buildWorkers(): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'hanat-lab-workers-'));
  const outfile = join(dir, 'workers.mjs');
  await build({
    entryPoints: [join(import.meta.dirname, '../src/dataplane/workers/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
  return [process.execPath, outfile];
}

export class FakeView implements NetworkView {
  private listeners = new Set<(s: NetworkSnapshot) => void>();
  constructor(private current: NetworkSnapshot) {}
  snapshot(): NetworkSnapshot {
    return structuredClone(this.current);
  }
  onChange(listener: (s: NetworkSnapshot) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** Changes the world and notifies, as the emulator does after every change. */
  update(change: (s: NetworkSnapshot) => void): number {
    const next = structuredClone(this.current);
    change(next);
    next.version = this.current.version + 1;
    this.current = next;
    for (const l of this.listeners) l(this.snapshot());
    return next.version;
  }
}
