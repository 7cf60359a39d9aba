/** Finding a running lab from another process: what `hanat-lab status` and friends say when they cannot. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NoLabError, findLab } from '../src/dataplane/client.js';

const dir = mkdtempSync(join(tmpdir(), 'hanat-lab-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('findLab', () => {
  it('says no lab is running when the state directory does not exist', () => {
    expect(() => findLab(join(dir, 'absent'))).toThrow(new NoLabError('no lab is running; start one with `hanat-lab up`'));
  });

  it('says the state directory cannot be read (as for a user without root) instead of claiming no lab runs', () => {
    const notADir = join(dir, 'file');
    writeFileSync(notADir, '');
    expect(() => findLab(notADir)).toThrow(/cannot read .*file, where running labs publish how to reach them \(ENOTDIR\); run hanat-lab as root/);
  });
});
