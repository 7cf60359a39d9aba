/**
 * The published package: `npm install @hanat/cli` must give a working `hanat`.
 * The bin runs the esbuild bundle, which carries commander, the AWS SDK and
 * @hanat/core inside it, so the package must not ask npm for any of them
 * (@hanat/core is private and never published: an install would fail with 404).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  bin?: Record<string, string>;
  files?: string[];
  dependencies?: Record<string, string>;
  scripts?: Record<string, string>;
};

describe('the published @hanat/cli package', () => {
  it('installs without fetching anything: every runtime module is in the bundle', () => {
    expect(pkg.dependencies ?? {}).toEqual({});
  });

  it('ships the bin and the bundle it runs, and builds the bundle when packed', () => {
    expect(pkg.bin).toEqual({ hanat: './bin/hanat.mjs' });
    expect(readFileSync(new URL('../bin/hanat.mjs', import.meta.url), 'utf8')).toContain("import '../dist/hanat.mjs'");
    expect(pkg.files).toEqual(expect.arrayContaining(['bin', 'dist']));
    expect(pkg.scripts?.prepack).toContain('scripts/build.mjs cli');
  });
});
