/**
 * The IAM tables of docs/agent.md (by action) and docs/template.md (by
 * statement) against the code: together they list exactly the calls the agent
 * makes (read from its source) and exactly the grants of the template's
 * `hanat-agent` policy, each with a reason; a grant the agent does not use yet
 * must say so ("not built yet").
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { agentPolicyDocument } from '../src/template/iam.js';

/** The SDK commands the agent's source files (and core's shared route code) import, as IAM actions. */
function agentCalls(): string[] {
  const agentSrc = new URL('../../agent/src/', import.meta.url);
  const files = [
    ...readdirSync(agentSrc, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => new URL(f, agentSrc)),
    new URL('../../core/src/routes.ts', import.meta.url),
  ];
  const services = { 'client-ec2': 'ec2', 'client-auto-scaling': 'autoscaling' } as const;
  const calls = new Set<string>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'@aws-sdk\/(client-ec2|client-auto-scaling)'/g)) {
      const service = services[m[2] as keyof typeof services];
      for (const name of m[1]!.matchAll(/\b([A-Z][A-Za-z0-9]+)Command\b/g)) calls.add(`${service}:${name[1]}`);
    }
  }
  return [...calls].sort();
}

interface PolicyStatement {
  Sid: string;
  Action: string | string[];
}

function statements(): PolicyStatement[] {
  return (agentPolicyDocument({ privateRouteTables: ['Az0PrivateRouteTable'], eip: true }) as unknown as { Statement: PolicyStatement[] }).Statement;
}

const actionsOf = (s: PolicyStatement): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

function granted(): string[] {
  return [...new Set(statements().flatMap(actionsOf))].sort();
}

interface Row {
  actions: string[];
  text: string;
}

/** The rows of the table under "## IAM" in docs/agent.md. */
function documented(): Row[] {
  const doc = readFileSync(new URL('../../../docs/agent.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('\n## IAM'), doc.indexOf('\n## ', doc.indexOf('\n## IAM') + 5));
  return section
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => {
      const first = l.split('|')[1]!;
      return { actions: [...first.matchAll(/`((?:ec2|autoscaling):[A-Za-z]+)`/g)].map((m) => m[1]!), text: l };
    });
}

/** The rows of the table under "## IAM: what the NATs may do" in docs/template.md: Sid, actions, and the whole line. */
function templateRows(): { sid: string; actions: string[]; text: string }[] {
  const doc = readFileSync(new URL('../../../docs/template.md', import.meta.url), 'utf8');
  const at = doc.indexOf('\n## IAM: what the NATs may do');
  expect(at).toBeGreaterThan(0);
  const section = doc.slice(at, doc.indexOf('\n## ', at + 5));
  return section
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => {
      const cells = l.split('|').slice(1, -1);
      return {
        sid: /`([A-Za-z]+)`/.exec(cells[0]!)![1]!,
        actions: [...cells[1]!.matchAll(/`((?:ec2|autoscaling):[A-Za-z]+)`/g)].map((m) => m[1]!),
        text: l,
      };
    });
}

describe('docs/template.md IAM', () => {
  const rows = templateRows();
  const calls = agentCalls();

  it('has one row per statement of the hanat-agent policy, with exactly its actions and a reason', () => {
    const policy = statements();
    expect(rows.map((r) => r.sid).sort()).toEqual(policy.map((s) => s.Sid).sort());
    for (const s of policy) {
      const row = rows.find((r) => r.sid === s.Sid)!;
      expect(row.actions.sort(), s.Sid).toEqual(actionsOf(s).sort());
      expect(row.text.split('|').at(-2)?.trim().length ?? 0, s.Sid).toBeGreaterThan(20);
    }
  });

  it('covers every call the agent makes, and marks a grant the agent does not call', () => {
    const listed = rows.flatMap((r) => r.actions);
    for (const c of calls) expect(listed, `${c} is called by the agent`).toContain(c);
    for (const r of rows) {
      const unused = r.actions.filter((a) => !calls.includes(a));
      if (unused.length) expect(r.text, `${unused.join(', ')}: granted, not called`).toMatch(/not built yet/);
    }
  });
});

describe('docs/agent.md IAM', () => {
  const rows = documented();
  const calls = agentCalls();
  const grants = granted();

  it('lists every call the agent makes, each granted by the template', () => {
    expect(calls.length).toBeGreaterThanOrEqual(8);
    const listed = rows.flatMap((r) => r.actions);
    for (const c of calls) expect(listed, `${c} is called by the agent`).toContain(c);
    for (const c of calls) expect(grants, `${c} is called by the agent`).toContain(c);
  });

  it('lists exactly the grants of the hanat-agent policy, and marks those the agent does not call yet', () => {
    expect(new Set(rows.flatMap((r) => r.actions))).toEqual(new Set(grants));
    for (const r of rows) {
      const unused = r.actions.filter((a) => !calls.includes(a));
      if (unused.length) expect(r.text, `${unused.join(', ')}: granted, not called`).toMatch(/not built yet/);
      else expect(r.text).not.toMatch(/not built yet/);
      // Every row says why: a third column with text.
      expect(r.text.split('|')[3]?.trim().length ?? 0).toBeGreaterThan(10);
    }
  });
});
