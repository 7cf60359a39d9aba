/**
 * `hanat destroy`: confirm, DeleteStack, stream events to DELETE_COMPLETE.
 * The Elastic IPs are stack resources, so they are released with the stack:
 * the AZs' egress addresses are gone for good (the prompt says so).
 * Only hanat's stacks are deleted: those with the hanat:stack tag, and those
 * made from hanat's template outside hanat (Metadata.hanat; cfn.ts ownershipOf).
 */
import { DeleteStackCommand } from '@aws-sdk/client-cloudformation';
import { TAG } from '@hanat/core';
import { awsFailure, checkTarget, localRegion, type StackTargetOptions } from './aws.js';
import { describeStack, failedResources, formatFailures, isInProgress, ownershipOf, StackEventStream, templateUnreadable, waitForStack } from './cfn.js';
import type { ActionDeps } from './deps.js';
import { HanatError, InterruptedError, OperationError, UsageError } from './errors.js';
import { checkStackName } from './validate.js';

export interface DestroyOptions extends StackTargetOptions {
  yes?: boolean | undefined;
}

export interface DestroyResult {
  stack: string;
  region: string;
  /** `deleted`, or `absent` when there was no such stack (nothing to do, exit 0). */
  outcome: 'deleted' | 'absent';
}

export const NOT_INTERACTIVE_DESTROY_MESSAGE =
  'Refusing to destroy without confirmation: no terminal to ask on. Pass --yes to delete the stack without a prompt.';

export async function destroy(opts: DestroyOptions, deps: ActionDeps): Promise<DestroyResult> {
  const name = checkStackName(opts.name);
  const regionOpt = localRegion(opts, deps.env);
  if (!opts.yes && !deps.interactive) throw new UsageError(NOT_INTERACTIVE_DESTROY_MESSAGE);

  const clients = deps.aws({ region: regionOpt, profile: opts.profile, debug: opts.debug });
  try {
    const region = await checkTarget(clients, { profile: opts.profile, profileFrom: opts.profileFrom, region: regionOpt });
    const cfn = clients.cloudFormation;

    const stack = await describeStack(cfn, name, deps);
    if (!stack) {
      deps.reporter.step(`Stack ${name} does not exist in ${region}; nothing to delete.`);
      return { stack: name, region, outcome: 'absent' };
    }
    const owner = await ownershipOf(cfn, stack, deps);
    if (owner === 'foreign' || owner === 'unreadable') {
      const profile = opts.profile ? ` --profile ${opts.profile}` : '';
      throw new UsageError(
        `Stack ${name} in ${region} was not created by hanat (it has no ${TAG.stack} tag), so hanat will not delete it: ` +
          `destroy deletes everything in a stack, and this one may belong to someone else. ` +
          `If you really mean to delete it, use CloudFormation directly: aws cloudformation delete-stack --stack-name ${name} --region ${region}${profile}.` +
          (owner === 'unreadable' ? templateUnreadable('destroy') : ''),
      );
    }
    if (owner === 'template') {
      deps.reporter.step(
        `Stack ${name} in ${region} has no ${TAG.stack} tag but was made from hanat's template outside hanat (its template carries Metadata.hanat); destroy treats it as a hanat stack.`,
      );
    }
    const status = stack.StackStatus ?? 'UNKNOWN';
    if (isInProgress(status) && status !== 'DELETE_IN_PROGRESS' && status !== 'REVIEW_IN_PROGRESS') {
      throw new OperationError(
        `Stack ${name} is busy (${status}). Wait until the running operation finishes (aws cloudformation describe-stack-events --stack-name ${name} --region ${region}), then run hanat destroy again.`,
      );
    }
    const stackId = stack.StackId ?? name;

    if (!opts.yes) {
      const ok = await deps.confirm(
        `Delete stack ${name} in ${region} with its VPC, subnets and NAT instances, and release its Elastic IPs (the egress addresses are lost)?`,
        deps.signal,
      );
      if (deps.signal.aborted) throw new InterruptedError(`Interrupted: stack ${name} was not touched.`);
      if (!ok) throw new OperationError(`Not destroyed: stack ${name} is unchanged.`);
    }

    let marker: string | undefined;
    try {
      marker = await StackEventStream.marker(cfn, stackId, deps);
      if (status !== 'DELETE_IN_PROGRESS') await cfn.send(new DeleteStackCommand({ StackName: stackId }));
    } catch (err) {
      if (deps.signal.aborted) throw new InterruptedError(`Interrupted: stack ${name} was not touched.`, { cause: err });
      awsFailure(err, 'DeleteStack');
    }
    deps.reporter.step(`Deleting stack ${name}; following stack events (Ctrl-C stops watching, the deletion goes on)`);

    const goesOn = `the deletion of stack ${name} goes on in CloudFormation. Watch it with: aws cloudformation describe-stack-events --stack-name ${name} --region ${region} (or run hanat destroy again).`;
    let settled;
    try {
      settled = await waitForStack(cfn, stackId, new StackEventStream(cfn, stackId, deps, marker), deps, true);
    } catch (err) {
      if (deps.signal.aborted) throw new InterruptedError(`Stopped watching; ${goesOn}`, { cause: err });
      // Lost track (expired credentials, the network): the stack is still being deleted, so say so.
      if (err instanceof HanatError) throw new OperationError(`${err.message}\nhanat stopped watching, but ${goesOn}`, { cause: err });
      throw err;
    }
    const final = settled.stack.StackStatus ?? 'UNKNOWN';
    if (final !== 'DELETE_COMPLETE') {
      const failures = failedResources(settled.events, name);
      throw new OperationError(
        `Destroy of stack ${name} failed: ${final}.` +
          (failures.length ? `\nFailed resources:\n${formatFailures(failures)}` : '') +
          `\nRemove what blocks them (often something created outside the stack, such as a network interface or an instance in the VPC), then run hanat destroy again.`,
      );
    }
    return { stack: name, region, outcome: 'deleted' };
  } finally {
    clients.destroy();
  }
}
