/**
 * Comments in the CLI's source point readers to other files ("`run` in
 * run.ts", "test/bad-input.test.ts runs each row"); a file that was renamed
 * or never existed sends them nowhere. Every `.ts` file a comment names must
 * exist in the package (src/ or the package root), and every docs/ or README
 * reference in the repository.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const repo = join(pkg, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The text of the comments of a TypeScript file: block comments and line comments. */
function comments(text: string): string {
  return [...text.matchAll(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g)].map((m) => m[0]).join('\n');
}

describe('file references in the CLI source comments', () => {
  const files = sources(join(pkg, 'src'));

  it.each(files.map((f) => [f.slice(pkg.length), f] as const))('%s names only files that exist', (_name, file) => {
    const text = comments(readFileSync(file, 'utf8'));
    const missing: string[] = [];
    for (const [ref] of text.matchAll(/[\w./-]+\.ts\b/g)) {
      if (!existsSync(join(pkg, ref)) && !existsSync(join(pkg, 'src', ref))) missing.push(ref);
    }
    for (const [ref] of text.matchAll(/\b(docs\/[\w./-]+\.md|README\.md)\b/g)) {
      if (!existsSync(join(repo, ref))) missing.push(ref);
    }
    expect(missing).toEqual([]);
  });
});
