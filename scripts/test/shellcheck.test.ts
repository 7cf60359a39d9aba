/** Every shell script in the repository passes shellcheck. */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, requireTools, run } from './support.js';

const canRun = requireTools('shellcheck', ['shellcheck']);

/** Files under dirs that are shell scripts: *.sh, or a sh/bash shebang. */
function shellScripts(dirs: string[]): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      if (e === 'node_modules' || e === 'dist' || e.startsWith('.git')) continue;
      const p = join(dir, e);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else if (e.endsWith('.sh') || /^#!.*\b(ba)?sh\b/.test(readFileSync(p, 'utf8').split('\n', 1)[0] ?? '')) found.push(p);
    }
  };
  dirs.forEach(walk);
  return found.sort();
}

describe.runIf(canRun)('shellcheck', () => {
  const scripts = shellScripts([join(REPO, 'scripts'), join(REPO, '.ci')]);

  it('finds the image scripts', () => {
    const rel = scripts.map((s) => relative(REPO, s));
    expect(rel).toContain('scripts/provision-nat.sh');
    expect(rel).toContain('scripts/build-ami');
  });

  it.each(scripts.map((s) => [relative(REPO, s), s]))('%s passes shellcheck', (_name, path) => {
    const r = run('shellcheck', ['--format=gcc', path]);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
