/**
 * CloudFormation plumbing shared by deploy and destroy: reading a stack,
 * waiting for a change set, streaming stack events, diagnosing failures.
 * Every polling loop retries throttling and 5xx errors instead of failing.
 */
import {
  DescribeChangeSetCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  GetTemplateCommand,
  type ResourceChange,
  type Stack,
  type StackEvent,
} from '@aws-sdk/client-cloudformation';
import { awsErrorName, isRetryableAwsError, TAG, unreachableCode, type CloudFormation } from '@hanat/core';
import { awsFailure, CHECK_NETWORK, isAccessDenied, networkErrorCode } from './aws.js';
import type { ActionDeps } from './deps.js';
import { OperationError } from './errors.js';
import { HANAT_METADATA } from './template/render.js';

type PollDeps = Pick<ActionDeps, 'clock' | 'signal' | 'pollIntervalMs' | 'reporter'>;

/** Consecutive retryable failures a polling loop tolerates before giving up. */
export const MAX_POLL_RETRIES = 10;

/** The longest wait between two attempts of a polling call, ms. */
const MAX_BACKOFF_MS = 30_000;

/** The wait after failed attempt `attempt` (1-based) is jittered within [b/2, b] of this bound. */
function backoffBound(attempt: number, pollIntervalMs: number): number {
  return Math.min(pollIntervalMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
}

/** `2 s`, `1 min 05 s`: a wait as people read it. */
export function waitText(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/**
 * Runs one AWS call of a polling loop. Throttling, 5xx and network errors are
 * retried with a growing, jittered delay (up to MAX_POLL_RETRIES in a row),
 * each retry announced on stderr with the attempt and the time left before
 * hanat gives up. An endpoint that cannot be reached at all (a refused
 * connection, an unknown host: core's unreachableCode) is not retried, and
 * anything else becomes a typed error at once.
 */
export async function retrying<T>(what: string, call: () => Promise<T>, deps: PollDeps): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isRetryableAwsError(err) || unreachableCode(err)) awsFailure(err, what);
      const network = networkErrorCode(err);
      if (attempt >= MAX_POLL_RETRIES) {
        throw new OperationError(
          network
            ? `Could not reach AWS for ${what} (${network}) after ${attempt} attempts. ${CHECK_NETWORK}`
            : `${what} kept failing (${awsErrorName(err) ?? 'error'}) after ${attempt} attempts; try again in a few minutes.`,
          { cause: err },
        );
      }
      const bound = backoffBound(attempt, deps.pollIntervalMs);
      const wait = bound / 2 + Math.random() * (bound / 2);
      // The longest hanat can still wait before it gives up: this wait and every later one at its bound.
      let left = wait;
      for (let later = attempt + 1; later < MAX_POLL_RETRIES; later++) left += backoffBound(later, deps.pollIntervalMs);
      const trouble = network ? `Could not reach AWS for ${what} (${network})` : `AWS is throttling or failing ${what} (${awsErrorName(err) ?? 'error'})`;
      deps.reporter.warn(
        `${trouble}: attempt ${attempt} of ${MAX_POLL_RETRIES} failed; trying again in ${waitText(wait)}, giving up in at most ${waitText(left)} more (Ctrl-C stops).`,
      );
      await deps.clock.sleep(wait, deps.signal);
    }
  }
}

function isStackMissing(err: unknown): boolean {
  return awsErrorName(err) === 'ValidationError' && /does not exist/i.test(err instanceof Error ? err.message : '');
}

/** The stack by name or id, or undefined when it does not exist. */
export async function describeStack(cfn: CloudFormation, stack: string, deps: PollDeps): Promise<Stack | undefined> {
  return retrying(
    'DescribeStacks',
    async () => {
      try {
        const out = await cfn.send(new DescribeStacksCommand({ StackName: stack }));
        return out.Stacks?.[0];
      } catch (err) {
        if (isStackMissing(err)) return undefined;
        throw err;
      }
    },
    deps,
  );
}

/**
 * Why hanat may act on a stack (or may not):
 * - `tagged`: the stack carries the `hanat:stack` tag that `hanat deploy` gives it;
 * - `template`: no tag, but it was made from hanat's template outside hanat
 *   (the console, `aws cloudformation deploy`): its original template is JSON
 *   whose `Metadata.hanat` is an object;
 * - `foreign`: neither (a YAML or unparsable template is not hanat's);
 * - `unreadable`: no tag, and AWS denied GetTemplate, so hanat cannot tell.
 */
export type Ownership = 'tagged' | 'template' | 'foreign' | 'unreadable';

function hasHanatTag(stack: Stack): boolean {
  return stack.Tags?.some((t) => t.Key === TAG.stack) ?? false;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True when a template body is JSON carrying hanat's `Metadata.hanat` object, as every render does. */
export function isHanatTemplate(body: string | undefined): boolean {
  let template: unknown;
  try {
    template = JSON.parse(body ?? '');
  } catch {
    return false;
  }
  return isRecord(template) && isRecord(template.Metadata) && isRecord(template.Metadata[HANAT_METADATA]);
}

const DENIED = Symbol('denied');

/**
 * Whether `stack` is hanat's (see Ownership). Only a stack without the tag
 * costs a call: GetTemplate of its original template. Makes no change.
 */
export async function ownershipOf(cfn: CloudFormation, stack: Stack, deps: PollDeps): Promise<Ownership> {
  if (hasHanatTag(stack)) return 'tagged';
  // Change sets never executed: the stack has no template of its own, and no resources.
  if (stack.StackStatus === 'REVIEW_IN_PROGRESS') return 'foreign';
  const body = await retrying(
    'GetTemplate',
    async () => {
      try {
        const out = await cfn.send(new GetTemplateCommand({ StackName: stack.StackId ?? stack.StackName, TemplateStage: 'Original' }));
        return out.TemplateBody;
      } catch (err) {
        if (isAccessDenied(err)) return DENIED;
        throw err;
      }
    },
    deps,
  );
  if (body === DENIED) return 'unreadable';
  return isHanatTemplate(body) ? 'template' : 'foreign';
}

/** Appended to the refusal of a stack without the tag when its template could not be read. */
export function templateUnreadable(command: 'deploy' | 'destroy' | 'status' | 'failover'): string {
  const act = { deploy: 'update', destroy: 'delete', status: 'read', failover: 'read' }[command];
  return (
    ` hanat could not check whether the stack was made from hanat's template outside hanat: AWS denied cloudformation:GetTemplate. ` +
    `Allow cloudformation:GetTemplate to let hanat ${command} ${act} such a stack.`
  );
}

export function isInProgress(status: string | undefined): boolean {
  return status !== undefined && status.endsWith('_IN_PROGRESS');
}

export interface ChangeSetResult {
  status: string;
  reason: string;
  changes: ResourceChange[];
}

/** "No changes" as CloudFormation words it for a change set (and for UpdateStack). */
export function isNoChanges(reason: string): boolean {
  return /didn't contain changes|No updates are to be performed/i.test(reason);
}

const CHANGE_SET_DEADLINE_MS = 30 * 60_000;

/** Polls DescribeChangeSet until it is CREATE_COMPLETE or FAILED; collects every page of changes. */
export async function waitForChangeSet(cfn: CloudFormation, changeSetId: string, deps: PollDeps): Promise<ChangeSetResult> {
  const deadline = deps.clock.now() + CHANGE_SET_DEADLINE_MS;
  for (;;) {
    const first = await retrying('DescribeChangeSet', () => cfn.send(new DescribeChangeSetCommand({ ChangeSetName: changeSetId })), deps);
    const status = first.Status ?? 'UNKNOWN';
    if (status === 'CREATE_COMPLETE' || status === 'FAILED') {
      const changes = (first.Changes ?? []).flatMap((c) => (c.ResourceChange ? [c.ResourceChange] : []));
      let token = first.NextToken;
      while (token) {
        const page = await retrying(
          'DescribeChangeSet',
          () => cfn.send(new DescribeChangeSetCommand({ ChangeSetName: changeSetId, NextToken: token })),
          deps,
        );
        changes.push(...(page.Changes ?? []).flatMap((c) => (c.ResourceChange ? [c.ResourceChange] : [])));
        token = page.NextToken;
      }
      return { status, reason: first.StatusReason ?? '', changes };
    }
    if (deps.clock.now() >= deadline) {
      throw new OperationError(`Change set ${changeSetId} was still ${status} after ${CHANGE_SET_DEADLINE_MS / 60_000} minutes; look at it in the CloudFormation console.`);
    }
    await deps.clock.sleep(deps.pollIntervalMs, deps.signal);
  }
}

/**
 * New stack events, oldest first. DescribeStackEvents pages newest-first; a
 * poll reads pages until it meets an event it has already seen or the marker
 * (the newest event before the operation started), so only the operation's
 * own events come out, each once (by EventId). The marker is an event id
 * rather than a local timestamp, so clock skew cannot hide or repeat events.
 */
export class StackEventStream {
  private readonly seen = new Set<string>();
  readonly events: StackEvent[] = [];

  constructor(
    private readonly cfn: CloudFormation,
    private readonly stackId: string,
    private readonly deps: PollDeps,
    private readonly markerEventId: string | undefined,
  ) {}

  /** The newest event id of a stack now, to start a stream after it. */
  static async marker(cfn: CloudFormation, stackId: string, deps: PollDeps): Promise<string | undefined> {
    const out = await retrying('DescribeStackEvents', () => cfn.send(new DescribeStackEventsCommand({ StackName: stackId })), deps);
    return out.StackEvents?.[0]?.EventId;
  }

  async poll(): Promise<StackEvent[]> {
    const fresh: StackEvent[] = [];
    let token: string | undefined;
    page: do {
      const out = await retrying(
        'DescribeStackEvents',
        () => this.cfn.send(new DescribeStackEventsCommand({ StackName: this.stackId, NextToken: token })),
        this.deps,
      );
      for (const e of out.StackEvents ?? []) {
        if (!e.EventId || e.EventId === this.markerEventId || this.seen.has(e.EventId)) break page;
        fresh.push(e);
      }
      token = out.NextToken;
    } while (token);
    fresh.reverse();
    for (const e of fresh) {
      this.seen.add(e.EventId!);
      this.events.push(e);
    }
    return fresh;
  }
}

export interface WaitResult {
  stack: Stack;
  events: StackEvent[];
}

/**
 * Streams events to the reporter and polls the stack until its status is
 * terminal. A terminal status counts only once the operation has been seen
 * running (an *_IN_PROGRESS status or a new stack-level event), so the
 * previous operation's UPDATE_COMPLETE is not mistaken for this one's.
 */
export async function waitForStack(
  cfn: CloudFormation,
  stackId: string,
  stream: StackEventStream,
  deps: PollDeps,
  /** For deletes: a stack that can no longer be described is gone, i.e. DELETE_COMPLETE. */
  goneIsDeleted = false,
): Promise<WaitResult> {
  let started = false;
  for (;;) {
    for (const e of await stream.poll()) {
      if (e.ResourceType === 'AWS::CloudFormation::Stack' && e.PhysicalResourceId === stackId) started = true;
      deps.reporter.event(e);
    }
    let stack = await describeStack(cfn, stackId, deps);
    if (!stack && goneIsDeleted) {
      stack = { StackId: stackId, StackName: undefined, CreationTime: undefined, StackStatus: 'DELETE_COMPLETE' };
      started = true;
    }
    if (!stack) throw new OperationError(`Stack ${stackId} disappeared while hanat was waiting for it.`);
    if (isInProgress(stack.StackStatus)) started = true;
    else if (started) {
      for (const e of await stream.poll()) deps.reporter.event(e);
      return { stack, events: stream.events };
    }
    await deps.clock.sleep(deps.pollIntervalMs, deps.signal);
  }
}

export interface FailedResource {
  logicalId: string;
  type: string;
  status: string;
  reason: string;
}

const CANCELLED = /Resource (creation|update|deletion) cancelled/i;

/**
 * The resources that failed, from the operation's events: the root causes
 * first; resources merely cancelled because another failed are left out
 * when a root cause is known.
 */
export function failedResources(events: readonly StackEvent[], stackName: string): FailedResource[] {
  const failed = events
    .filter((e) => e.ResourceStatus?.endsWith('_FAILED') && !(e.ResourceType === 'AWS::CloudFormation::Stack' && e.LogicalResourceId === stackName))
    .map((e) => ({
      logicalId: e.LogicalResourceId ?? '?',
      type: e.ResourceType ?? '?',
      status: e.ResourceStatus ?? '?',
      reason: e.ResourceStatusReason ?? '(no reason given)',
    }));
  const causes = failed.filter((f) => !CANCELLED.test(f.reason));
  return causes.length > 0 ? causes : failed;
}

export function formatFailures(failures: readonly FailedResource[]): string {
  return failures.map((f) => `  ${f.logicalId} (${f.type}) ${f.status}: ${f.reason}`).join('\n');
}
