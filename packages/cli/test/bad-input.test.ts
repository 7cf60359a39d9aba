/**
 * Runs every row of the "Bad input of `hanat deploy`" table in the README,
 * so the documented messages and exit codes cannot drift from the code.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { archOfFamily } from '../src/validate.js';
import { names } from './support/calls.js';
import { cfnMock, ec2Mock, harness, smallTemplate, ssmMock, zonesOf, type Harness } from './support/harness.js';

const doc = readFileSync(fileURLToPath(new URL('../../../README.md', import.meta.url)), 'utf8');

interface Row {
  what: string;
  command: string;
  world: string;
  checked: string;
  exit: number;
  message: string;
}

function code(cell: string): string {
  const m = /^`(.*)`$/.exec(cell.trim());
  return m ? m[1]! : cell.trim();
}

/** `{129×a}` in the doc stands for 129 letters a. */
function expand(text: string): string {
  return text.replace(/\{(\d+)×(.)\}/g, (_, n: string, c: string) => c.repeat(Number(n)));
}

function rows(): Row[] {
  const start = doc.indexOf('<!-- bad-input-table:start -->');
  const end = doc.indexOf('<!-- bad-input-table:end -->');
  expect(start).toBeGreaterThan(0);
  return doc
    .slice(start, end)
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| bad input'))
    .map((line) => {
      const cells = line.split('|').slice(1, -1).map((c) => c.trim());
      expect(cells, line).toHaveLength(6);
      const [what, command, world, checked, exit, message] = cells as [string, string, string, string, string, string];
      return { what, command: expand(code(command)), world, checked, exit: Number(exit), message: expand(code(message)) };
    });
}

/** Splits a command line as a shell would, for the quoting the table uses ('…'). */
function argv(command: string): string[] {
  const words = command.match(/'[^']*'|\S+/g) ?? [];
  return words.map((w) => (w.startsWith("'") ? w.slice(1, -1) : w));
}

/** What the "world" column means; every entry must be used by a row. */
const worlds: Record<string, (h: Harness) => void> = {
  '': () => {},
  'no `AWS_REGION`, no config': () => vi.stubEnv('AWS_REGION', ''),
  '`AWS_REGION=Ireland`': () => vi.stubEnv('AWS_REGION', 'Ireland'),
  'stdin not a terminal': (h) => {
    h.deps.stdinIsTTY = false;
  },
  'that image is `pending`': (h) => {
    h.images.push({ ImageId: 'ami-0fedcba9876543210', Architecture: 'arm64', State: 'pending' });
  },
  'no `/hanat/ami/x86_64`': (h) => {
    h.parameters.delete('/hanat/ami/x86_64');
  },
  '`/team/latest` = `latest`': (h) => {
    h.parameters.set('/team/latest', 'latest');
  },
  '`us-east-1` with six AZs; `us-east-1e` offers no Graviton type': (h) => {
    h.zones = zonesOf('us-east-1', 6);
    h.offered = (type, az) => !(az === 'us-east-1e' && archOfFamily(type.split('.')[0]!) === 'arm64');
  },
  '`eu-west-1` with only `eu-west-1a`': (h) => {
    h.zones = ['eu-west-1a'];
  },
  'three of the five Elastic IPs in use by stack `prod`': (h) => {
    for (const n of [1, 2, 3]) {
      h.addresses.push({ AllocationId: `eipalloc-0000000000000000${n}`, PublicIp: `198.51.100.${n}`, InstanceId: `i-000000000000000${n}0`, Tags: [{ Key: 'hanat:stack', Value: 'prod' }] });
    }
  },
  'stack `payments` without the `hanat:stack` tag': (h) => {
    h.cfn.seedStack({ name: 'payments', status: 'CREATE_COMPLETE', tags: [{ Key: 'owner', Value: 'payments-team' }] });
  },
  'stack `broken` in `ROLLBACK_COMPLETE`': (h) => {
    h.cfn.seedStack({ name: 'broken', status: 'ROLLBACK_COMPLETE' });
  },
  'stack `leftover` in `DELETE_FAILED`': (h) => {
    h.cfn.seedStack({ name: 'leftover', status: 'DELETE_FAILED' });
  },
  'stack `busy` in `UPDATE_IN_PROGRESS`': (h) => {
    h.cfn.seedStack({ name: 'busy', status: 'UPDATE_IN_PROGRESS' });
  },
};

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('README bad-input table', () => {
  const table = rows();

  it('has a row for every documented kind of bad input, and every world is used', () => {
    expect(table.length).toBeGreaterThanOrEqual(35);
    expect(new Set(table.map((r) => r.world))).toEqual(new Set(Object.keys(worlds)));
    for (const r of table) expect(['locally', 'in AWS']).toContain(r.checked);
  });

  it.each(table.map((r) => [r.what, r] as const))('%s', async (_what, row) => {
    const h = harness();
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    h.deps.templateBody = () => smallTemplate();
    worlds[row.world]!(h);
    // Seeding the world is not part of the command's calls.
    cfnMock.resetHistory();

    const [bin, ...args] = argv(row.command);
    expect(bin).toBe('hanat');
    const r = await h.hanat(...args);

    expect(r.code).toBe(row.exit);
    expect(r.stderr.split('\n')).toContain(row.message);
    if (row.exit !== 0) expect(r.stdout).toBe('');
    if (row.checked === 'locally' && row.exit !== 0) {
      expect([...names(cfnMock), ...names(ec2Mock), ...names(ssmMock)]).toEqual([]);
    }
    if (row.exit !== 0) expect(names(cfnMock)).not.toContain('CreateChangeSet');
  });
});
