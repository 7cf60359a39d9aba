/**
 * The built agent bundle, as systemd or an operator runs it, given a typo:
 * its own message with a did-you-mean and the usage line on stderr, exit 2
 * (RestartPreventExitStatus=2: systemd does not restart it), never node's
 * parser text. `pnpm test` builds the bundle first.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { USAGE } from '../src/config.js';

const BUNDLE = join(import.meta.dirname, '../dist/hanat-agent.cjs');

beforeAll(() => {
  if (!existsSync(BUNDLE)) throw new Error('missing packages/agent/dist/hanat-agent.cjs: run `pnpm build` first (`pnpm test` does)');
});

function agent(...args: string[]) {
  return spawnSync(process.execPath, [BUNDLE, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, encoding: 'utf8', timeout: 15_000 });
}

describe('hanat-agent (the bundle) with a typo', () => {
  it('check --stak prod: unknown option, did you mean --stack, the usage, exit 2', () => {
    const r = agent('check', '--stak', 'prod');
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`hanat-agent: unknown option '--stak' (did you mean --stack?)\n${USAGE}\n`);
  });

  it('a misspelt command: did you mean, the usage, exit 2', () => {
    const r = agent('rnu');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`hanat-agent: unknown command 'rnu' (did you mean run?); the commands are run and check\n${USAGE}\n`);
  });
});
