/**
 * `hanat deploy`: validate locally, check against AWS (key pair, image, and
 * that the instance type is offered in every AZ the template will use), then
 * create or update the stack through a change set, streaming its events until
 * it settles. An existing stack is updated only if it is hanat's: tagged
 * hanat:stack, or made from hanat's template outside hanat (Metadata.hanat),
 * which the update then tags.
 * A plain action: it reports progress through deps.reporter, returns the
 * result, and throws typed errors; it never prints or exits.
 */
import {
  CreateChangeSetCommand,
  DeleteChangeSetCommand,
  DeleteStackCommand,
  ExecuteChangeSetCommand,
  type Capability,
  type ResourceChange,
  type Stack,
} from '@aws-sdk/client-cloudformation';
import { TAG, type CloudFormation } from '@hanat/core';
import { resolveAmi, checkKeyPairExists } from './ami.js';
import { awsFailure, checkTarget, localRegion, type ProfileFrom, type RegionFrom } from './aws.js';
import {
  describeStack,
  failedResources,
  formatFailures,
  isInProgress,
  isNoChanges,
  ownershipOf,
  StackEventStream,
  templateUnreadable,
  waitForChangeSet,
  waitForStack,
  type Ownership,
} from './cfn.js';
import type { ActionDeps } from './deps.js';
import { HanatError, InterruptedError, OperationError, UsageError, isAbort } from './errors.js';
import { DEFAULT_INSTANCE_TYPE, DEFAULT_TEMPLATE_OPTIONS, PARAM, templateBody, type TemplateOptions } from './template/render.js';
import {
  checkAmi,
  checkCidrPrefix,
  checkInstanceType,
  checkKeyName,
  checkStackName,
  checkTags,
  imdsTagKeyProblem,
  IMDS_TAG_RULE,
  parseAzs,
  type AmiRef,
  type InstanceType,
  type StackTag,
} from './validate.js';
import { checkEipQuota, EIP_QUOTA_ACTIONS } from './quota.js';
import { checkZones, ZONE_CHECK_ACTIONS } from './zones.js';

export interface DeployOptions {
  name: string;
  cidrPrefix: string;
  key?: string | undefined;
  ami?: string | undefined;
  azs?: number | string | undefined;
  instanceType?: string | undefined;
  eip?: boolean | undefined;
  /** `--tag key=value`, repeatable: the stack's tags besides hanat:stack. */
  tag?: string[] | undefined;
  region?: string | undefined;
  /** Where `region` came from, for messages: the flag (default) or AWS_REGION. */
  regionFrom?: RegionFrom | undefined;
  profile?: string | undefined;
  /** Where `profile` came from, for messages: the flag (default) or AWS_PROFILE. */
  profileFrom?: ProfileFrom | undefined;
  yes?: boolean | undefined;
  dryRun?: boolean | undefined;
  debug?: boolean | undefined;
}

export interface DeployInput {
  name: string;
  cidrPrefix: string;
  cidrWarning: string | undefined;
  key: string | undefined;
  ami: AmiRef | undefined;
  azs: number;
  instanceType: InstanceType;
  eip: boolean;
  tags: StackTag[];
  region: string | undefined;
}

/** Every local check of `hanat deploy`, in flag order; throws the first UsageError. */
export function checkDeployOptions(opts: DeployOptions, env: Readonly<Record<string, string | undefined>> = {}): DeployInput {
  const name = checkStackName(opts.name);
  const cidr = checkCidrPrefix(opts.cidrPrefix);
  const key = opts.key === undefined ? undefined : checkKeyName(opts.key);
  const ami = opts.ami === undefined ? undefined : checkAmi(opts.ami);
  const azs = opts.azs === undefined ? DEFAULT_TEMPLATE_OPTIONS.azs : parseAzs(String(opts.azs));
  const instanceType = checkInstanceType(opts.instanceType ?? DEFAULT_INSTANCE_TYPE);
  const tags = checkTags(opts.tag ?? []);
  const region = localRegion(opts, env);
  return { name, cidrPrefix: cidr.prefix, cidrWarning: cidr.warning, key, ami, azs, instanceType, eip: opts.eip ?? true, tags, region };
}

export const NOT_INTERACTIVE_MESSAGE =
  'Refusing to deploy without confirmation: no terminal to ask on. Pass --yes to deploy without a prompt, or --dry-run to only see the changes.';

export type DeployOutcome = 'created' | 'updated' | 'no-changes' | 'dry-run';

export interface DeployResult {
  outcome: DeployOutcome;
  stack: string;
  stackId: string | undefined;
  region: string;
  ami: string;
  status: string | undefined;
  changes: ResourceChange[];
  /** Stack outputs, key → value, sorted by key. */
  outputs: Record<string, string>;
}

export interface DeployDeps extends ActionDeps {
  /** The template text to deploy; the renderer unless a test injects another. */
  templateBody?: (opts: TemplateOptions) => string;
}

type ChangeSetType = 'CREATE' | 'UPDATE';

const UPDATABLE = new Set(['CREATE_COMPLETE', 'UPDATE_COMPLETE', 'UPDATE_ROLLBACK_COMPLETE', 'IMPORT_COMPLETE', 'IMPORT_ROLLBACK_COMPLETE']);

/**
 * CREATE or UPDATE for an existing stack (or none); refuses a stack that is
 * not hanat's (`owner`, from ownershipOf) and states a change set cannot act on.
 */
export function changeSetTypeFor(stack: Stack | undefined, owner: Ownership | undefined, name: string, region: string): ChangeSetType {
  if (!stack) return 'CREATE';
  const status = stack.StackStatus ?? 'UNKNOWN';
  // A stack whose only change sets were never executed is still being created;
  // it holds no resources, so whoever made it, nothing can be overwritten.
  if (status === 'REVIEW_IN_PROGRESS') return 'CREATE';
  if (owner !== 'tagged' && owner !== 'template') {
    throw new UsageError(
      `Stack ${name} in ${region} exists but was not created by hanat (it has no ${TAG.stack} tag); hanat will not overwrite it. Choose another --name.` +
        (owner === 'unreadable' ? templateUnreadable('deploy') : ''),
    );
  }
  if (UPDATABLE.has(status)) return 'UPDATE';
  if (isInProgress(status)) {
    throw new OperationError(
      `Stack ${name} is busy (${status}): another operation is running on it. Wait until it finishes (aws cloudformation describe-stack-events --stack-name ${name} --region ${region}), then run hanat deploy again.`,
    );
  }
  if (status === 'DELETE_FAILED') {
    throw new OperationError(
      `Stack ${name} is DELETE_FAILED: an earlier delete stopped part-way. Finish it with "hanat destroy --name ${name} --region ${region}", then deploy again.`,
    );
  }
  if (status === 'ROLLBACK_COMPLETE' || status === 'ROLLBACK_FAILED' || status === 'CREATE_FAILED') {
    throw new OperationError(
      `Stack ${name} is ${status}: its creation failed and it cannot be updated. Delete it with "hanat destroy --name ${name} --region ${region}", then deploy again.`,
    );
  }
  if (status === 'UPDATE_ROLLBACK_FAILED') {
    throw new OperationError(
      `Stack ${name} is UPDATE_ROLLBACK_FAILED. Finish the rollback first: aws cloudformation continue-update-rollback --stack-name ${name} --region ${region}, then deploy again.`,
    );
  }
  throw new OperationError(`Stack ${name} is ${status}, which hanat cannot update. Look at it in the CloudFormation console.`);
}

/** The IAM capabilities a template needs: CAPABILITY_IAM for IAM resources, NAMED_IAM when they carry names. */
export function capabilitiesFor(body: string): Capability[] {
  const resources = (JSON.parse(body) as { Resources?: Record<string, { Type?: string; Properties?: Record<string, unknown> }> }).Resources ?? {};
  const iam = Object.values(resources).filter((r) => r.Type?.startsWith('AWS::IAM::'));
  if (iam.length === 0) return [];
  const named = iam.some((r) => Object.keys(r.Properties ?? {}).some((p) => /^(RoleName|InstanceProfileName|ManagedPolicyName|UserName|GroupName)$/.test(p)));
  return named ? ['CAPABILITY_IAM', 'CAPABILITY_NAMED_IAM'] : ['CAPABILITY_IAM'];
}

function changeSetName(now: number): string {
  return `hanat-${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
}

function outputsOf(stack: Stack | undefined): Record<string, string> {
  const pairs = (stack?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? ''] as const);
  return Object.fromEntries(pairs.sort(([a], [b]) => a.localeCompare(b)));
}

function summarise(changes: readonly ResourceChange[]): string {
  const count = (a: string) => changes.filter((c) => c.Action === a).length;
  const replaced = changes.filter((c) => c.Replacement === 'True').length;
  const parts = [`${count('Add')} to add`, `${count('Modify')} to modify`, `${count('Remove')} to remove`];
  if (replaced) parts.push(`${replaced} replaced`);
  return parts.join(', ');
}

export async function deploy(opts: DeployOptions, deps: DeployDeps): Promise<DeployResult> {
  const input = checkDeployOptions(opts, deps.env);
  if (!opts.yes && !opts.dryRun && !deps.interactive) throw new UsageError(NOT_INTERACTIVE_MESSAGE);
  if (input.cidrWarning) deps.reporter.warn(input.cidrWarning);

  const clients = deps.aws({ region: input.region, profile: opts.profile, debug: opts.debug });
  try {
    const region = await checkTarget(clients, { profile: opts.profile, profileFrom: opts.profileFrom, region: input.region });
    const cfn = clients.cloudFormation;
    const { name } = input;

    if (input.key !== undefined) await checkKeyPairExists(clients.ec2, input.key, region);
    const ami = await resolveAmi(clients, input.ami, opts.ami, input.instanceType, region);
    deps.reporter.step(`NAT image ${ami.id}${ami.name ? ` (${ami.name})` : ''}, ${ami.arch}, from ${ami.source}`);
    const existing = await describeStack(cfn, name, deps);
    const owner = existing ? await ownershipOf(cfn, existing, deps) : undefined;
    const type = changeSetTypeFor(existing, owner, name, region);

    const keep = type === 'UPDATE' && existing ? stackAzs(existing) : [];
    const zones = await checkZones(clients.ec2, { azs: input.azs, instanceType: input.instanceType, region, keep });
    const which =
      zones.kept === 0
        ? `the first ${input.azs} of ${region}`
        : zones.kept === zones.azs.length
          ? `the stack's own`
          : `the stack's ${zones.azs.slice(0, zones.kept).join(', ')}, and ${zones.azs.slice(zones.kept).join(', ')} added`;
    if (keep.length > zones.kept) {
      deps.reporter.warn(`--azs ${input.azs} removes Availability Zone${keep.length - zones.kept === 1 ? '' : 's'} ${keep.slice(zones.kept).join(', ')} from stack ${name}: its subnets, private route table and NAT are deleted.`);
    }
    if (zones.unchecked) {
      deps.reporter.step(`Availability Zones ${zones.azs.join(', ')} (${which})`);
      deps.reporter.warn(
        `Did not check that ${input.instanceType.type} is offered in each of the ${input.azs} Availability Zones the stack will use: ${zones.unchecked}. ` +
          `Allow ${ZONE_CHECK_ACTIONS.join(', ')} to have it checked; an AZ that does not offer the type makes the stack roll back.`,
      );
    } else {
      deps.reporter.step(`Availability Zones ${zones.azs.join(', ')} (${which}) all offer ${input.instanceType.type}`);
    }

    const body = (deps.templateBody ?? templateBody)({ azs: input.azs, eip: input.eip });
    if (owner === 'template') {
      deps.reporter.step(
        `Stack ${name} in ${region} was made from hanat's template outside hanat (its template carries Metadata.hanat, the stack has no ${TAG.stack} tag). ` +
          (opts.dryRun
            ? `Deploying it without --dry-run gives it the ${TAG.stack} tag; from then on hanat deploy manages it.`
            : `It is now managed by hanat deploy: this update gives it the ${TAG.stack} tag.`),
      );
    }

    if (existing) warnAboutStackTags(existing, input.tags, deps.reporter);

    const quota = await checkEipQuota(clients.ec2, { name, azs: input.azs, eip: input.eip, region });
    if ('skipped' in quota) {
      deps.reporter.warn(
        `Did not check the Elastic IP quota: ${quota.skipped}. Allow ${EIP_QUOTA_ACTIONS.join(', ')} to have it checked; ` +
          `a stack that runs over the quota rolls back with AddressLimitExceeded.`,
      );
    } else if (quota.needed > 0 && 'quota' in quota) {
      deps.reporter.step(`Elastic IPs: ${quota.needed} new, ${quota.inUse} of the quota of ${quota.quota} in use in ${region}`);
    }

    const csName = changeSetName(deps.clock.now());
    deps.reporter.step(`Creating change set ${csName} (${type}) for stack ${name} in ${region}`);
    let created;
    try {
      created = await cfn.send(
        new CreateChangeSetCommand({
          StackName: name,
          ChangeSetName: csName,
          ChangeSetType: type,
          TemplateBody: body,
          Parameters: [
            { ParameterKey: PARAM.vpcName, ParameterValue: name },
            { ParameterKey: PARAM.cidrPrefix, ParameterValue: input.cidrPrefix },
            { ParameterKey: PARAM.keyName, ParameterValue: input.key ?? '' },
            { ParameterKey: PARAM.natAmi, ParameterValue: ami.id },
            { ParameterKey: PARAM.instanceType, ParameterValue: input.instanceType.type },
            { ParameterKey: PARAM.availabilityZones, ParameterValue: zones.azs.join(',') },
          ],
          Capabilities: capabilitiesFor(body),
          Tags: [{ Key: TAG.stack, Value: name }, ...input.tags],
          Description: `hanat deploy of ${name}`,
        }),
      );
    } catch (err) {
      awsFailure(err, 'CreateChangeSet');
    }
    const changeSetId = created.Id ?? csName;
    const stackId = created.StackId ?? existing?.StackId ?? name;
    // Undo everything the change set left behind when it is not executed: the
    // change set, and the empty REVIEW_IN_PROGRESS stack it created.
    const discard = () => discardChangeSet(cfn, changeSetId, existing === undefined ? stackId : undefined);
    const base = { stack: name, region, ami: ami.id };

    let marker: string | undefined;
    let changes: ResourceChange[];
    try {
      const cs = await waitForChangeSet(cfn, changeSetId, deps);
      if (cs.status === 'FAILED') {
        await discard();
        if (isNoChanges(cs.reason)) {
          deps.reporter.step(`No changes: stack ${name} is up to date.`);
          return { ...base, outcome: 'no-changes', stackId: existing?.StackId, status: existing?.StackStatus, changes: [], outputs: outputsOf(existing) };
        }
        throw new OperationError(`CloudFormation could not create the change set for ${name}: ${cs.reason}`);
      }
      changes = cs.changes;
      deps.reporter.step(`Changes to stack ${name} (${type}): ${summarise(changes)}`);
      deps.reporter.changes(changes);

      if (opts.dryRun) {
        await discard();
        deps.reporter.step(`Dry run: change set deleted, nothing was changed.`);
        return { ...base, outcome: 'dry-run', stackId: existing?.StackId, status: existing?.StackStatus, changes, outputs: outputsOf(existing) };
      }
      if (!opts.yes) {
        const ok = await deps.confirm(`Deploy these changes to stack ${name} in ${region}?`, deps.signal);
        if (deps.signal.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError' });
        if (!ok) {
          await discard();
          throw new OperationError(`Not deployed: the change set was declined and deleted; stack ${name} is unchanged.`);
        }
      }
      marker = await StackEventStream.marker(cfn, stackId, deps);
    } catch (err) {
      if (!isAbort(err, deps.signal)) throw err;
      await discard().catch(() => {});
      throw new InterruptedError(`Interrupted before deploying: the change set was deleted and stack ${name} is unchanged.`, { cause: err });
    }

    try {
      await cfn.send(new ExecuteChangeSetCommand({ ChangeSetName: changeSetId }));
    } catch (err) {
      awsFailure(err, 'ExecuteChangeSet');
    }
    deps.reporter.step(`Executing change set ${csName}; following stack events (Ctrl-C stops watching, the deploy goes on)`);

    const stream = new StackEventStream(cfn, stackId, deps, marker);
    const goesOn =
      `the ${type === 'CREATE' ? 'creation' : 'update'} of stack ${name} goes on in CloudFormation. ` +
      `Watch it with: aws cloudformation describe-stack-events --stack-name ${name} --region ${region} ` +
      `(or wait: aws cloudformation wait stack-${type === 'CREATE' ? 'create' : 'update'}-complete --stack-name ${name} --region ${region}).`;
    let settled;
    try {
      settled = await waitForStack(cfn, stackId, stream, deps);
    } catch (err) {
      if (isAbort(err, deps.signal)) throw new InterruptedError(`Stopped watching; ${goesOn}`, { cause: err });
      // Lost track (expired credentials, the network): the stack still changes, so say so.
      if (err instanceof HanatError) throw new OperationError(`${err.message}\nhanat stopped watching, but ${goesOn}`, { cause: err });
      throw err;
    }

    const status = settled.stack.StackStatus ?? 'UNKNOWN';
    const wanted = type === 'CREATE' ? 'CREATE_COMPLETE' : 'UPDATE_COMPLETE';
    if (status !== wanted) {
      const failures = failedResources(settled.events, name);
      throw new OperationError(
        `Deploy of stack ${name} failed: ${status}.` +
          (failures.length ? `\nFailed resources:\n${formatFailures(failures)}` : settled.stack.StackStatusReason ? `\nReason: ${settled.stack.StackStatusReason}` : '') +
          `\n${nextStep(status, name, region)}`,
      );
    }
    return { ...base, outcome: type === 'CREATE' ? 'created' : 'updated', stackId, status, changes, outputs: outputsOf(settled.stack) };
  } finally {
    clients.destroy();
  }
}

/**
 * The Availability Zones an existing stack has, in order: its AvailabilityZones
 * parameter, or, for a stack made from an earlier template that took them from
 * Fn::GetAZs, its `Az<i>Name` outputs. Empty when neither says.
 */
export function stackAzs(stack: Stack): string[] {
  const param = stack.Parameters?.find((p) => p.ParameterKey === PARAM.availabilityZones)?.ParameterValue;
  if (param) return param.split(',').map((s) => s.trim()).filter(Boolean);
  const byIndex = new Map<number, string>();
  for (const o of stack.Outputs ?? []) {
    const m = /^Az(\d)Name$/.exec(o.OutputKey ?? '');
    if (m && o.OutputValue) byIndex.set(Number(m[1]), o.OutputValue);
  }
  const azs: string[] = [];
  for (let i = 0; byIndex.has(i); i++) azs.push(byIndex.get(i)!);
  return azs;
}

/**
 * Deploy is declarative: the stack's tags become hanat:stack plus `--tag`. An
 * update therefore removes tags the stack has and `--tag` does not give; say
 * so, and say loudly when one of them is a key instance metadata cannot show
 * (it is why the stack's NATs cannot launch), or when a given one has a new value.
 */
function warnAboutStackTags(existing: Stack, wanted: readonly StackTag[], reporter: DeployDeps['reporter']): void {
  const current = (existing.Tags ?? []).filter((t) => t.Key && t.Key !== TAG.stack && !t.Key.startsWith('aws:'));
  const kept = new Set(wanted.map((t) => t.Key));
  for (const t of current) {
    const problem = imdsTagKeyProblem(t.Key!);
    if (!problem) continue;
    reporter.warn(
      `Stack ${existing.StackName ?? ''} carries the tag "${t.Key!}", which its NATs cannot launch with: ${problem}; ${IMDS_TAG_RULE}. ` +
        `While the stack has it, no NAT can launch or be replaced. This deploy removes it (it is not among --tag).`,
    );
  }
  const dropped = current.filter((t) => !kept.has(t.Key!) && !imdsTagKeyProblem(t.Key!)).map((t) => `${t.Key!}=${t.Value ?? ''}`);
  if (dropped.length) {
    reporter.warn(
      `This deploy removes the stack tag${dropped.length === 1 ? '' : 's'} ${dropped.join(', ')} (deploy is declarative: the stack gets hanat:stack and the --tag given). ` +
        `To keep ${dropped.length === 1 ? 'it' : 'them'}, pass ${dropped.map((d) => `--tag ${d}`).join(' ')}.`,
    );
  }
}

/** What an operator does after a failed deploy, by the stack's final status. */
export function nextStep(status: string, name: string, region: string): string {
  switch (status) {
    case 'ROLLBACK_COMPLETE':
      return `The stack rolled back and cannot be updated. Fix the cause above, delete it with "hanat destroy --name ${name} --region ${region}", then deploy again.`;
    case 'ROLLBACK_FAILED':
    case 'CREATE_FAILED':
      return `The rollback failed as well. Delete the stack with "hanat destroy --name ${name} --region ${region}" (clean up by hand what CloudFormation cannot delete), then deploy again.`;
    case 'UPDATE_ROLLBACK_COMPLETE':
      return `The stack was rolled back to its previous configuration and keeps serving. Fix the cause above and run hanat deploy again.`;
    case 'UPDATE_ROLLBACK_FAILED':
      return `The rollback failed as well. Run "aws cloudformation continue-update-rollback --stack-name ${name} --region ${region}", then deploy again.`;
    default:
      return `Look at the stack's events: aws cloudformation describe-stack-events --stack-name ${name} --region ${region}.`;
  }
}

/** Deletes a change set that will not be executed, and the empty stack it created, if any. */
async function discardChangeSet(cfn: CloudFormation, changeSetId: string, emptyStackId: string | undefined): Promise<void> {
  try {
    await cfn.send(new DeleteChangeSetCommand({ ChangeSetName: changeSetId }));
    if (emptyStackId) await cfn.send(new DeleteStackCommand({ StackName: emptyStackId }));
  } catch (err) {
    awsFailure(err, 'DeleteChangeSet');
  }
}
