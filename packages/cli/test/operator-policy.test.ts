/**
 * The minimal IAM policy docs/cli.md gives operators for `hanat status` and
 * `hanat failover`: checked against AWS's Service Authorization Reference (every
 * action, ARN and condition key is one IAM evaluates), and shown to allow every
 * call the two commands make, read from their source.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkStatements, grants, type Statement } from './template/iam-reference.js';

function documentedPolicy(): Statement[] {
  const doc = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');
  const block = /<!-- operator-policy:status-failover -->\s*```json\n([\s\S]*?)```\s*<!-- \/operator-policy:status-failover -->/.exec(doc);
  expect(block, 'the policy block in docs/cli.md').not.toBeNull();
  return (JSON.parse(block![1]!) as { Statement: Statement[] }).Statement;
}

/** The SDK commands a source file imports, as IAM actions. */
function callsOf(files: string[]): string[] {
  const prefix: Record<string, string> = { 'client-ec2': 'ec2', 'client-auto-scaling': 'autoscaling', 'client-cloudformation': 'cloudformation' };
  const calls = new Set<string>();
  for (const file of files) {
    const text = readFileSync(new URL(file, import.meta.url), 'utf8');
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'@aws-sdk\/(client-ec2|client-auto-scaling|client-cloudformation)'/g)) {
      for (const name of m[1]!.matchAll(/\b([A-Z][A-Za-z0-9]+)Command\b/g)) calls.add(`${prefix[m[2]!]}:${name[1]}`);
    }
  }
  return [...calls].sort();
}

/** The resource types those calls put in their request, where an ARN is needed. */
const REQUEST_TYPES: Record<string, string[]> = {
  'ec2:CreateTags': ['route-table'],
  'ec2:DeleteTags': ['route-table'],
  'ec2:CreateRoute': ['route-table'],
  'ec2:ReplaceRoute': ['route-table'],
};

describe('the operator policy for status and failover in docs/cli.md', () => {
  it('grants only what IAM can evaluate', async () => {
    expect(await checkStatements(documentedPolicy())).toEqual([]);
  });

  it('allows every call status and failover make', async () => {
    const calls = callsOf(['../src/observe.ts', '../src/failover.ts', '../src/cfn.ts', '../../core/src/routes.ts']).filter(
      // cfn.ts also serves deploy and destroy; status and failover read stacks only.
      (c) => !c.startsWith('cloudformation:') || ['cloudformation:DescribeStacks', 'cloudformation:GetTemplate'].includes(c),
    );
    expect(calls).toEqual(
      expect.arrayContaining(['ec2:DescribeRouteTables', 'ec2:ReplaceRoute', 'ec2:CreateRoute', 'ec2:CreateTags', 'ec2:DeleteTags', 'autoscaling:DescribeAutoScalingInstances']),
    );
    const statements = documentedPolicy();
    const denied: string[] = [];
    for (const call of calls) if (!(await grants(statements, call, REQUEST_TYPES[call] ?? []))) denied.push(call);
    expect(denied).toEqual([]);
  });
});
