/**
 * A small, stateful fake of the CloudFormation operations hanat calls, wired
 * into aws-sdk-client-mock so the real SDK client and real command objects
 * are used up to send(). It keeps stacks, change sets and events; an executed
 * change set plays out as a script of stack events that DescribeStacks calls
 * reveal a few at a time, so polling loops see a stack move through its
 * states. Failures (a resource that fails, throttling) are scripted per test.
 */
import {
  CloudFormationServiceException,
  CreateChangeSetCommand,
  DeleteChangeSetCommand,
  DeleteStackCommand,
  DescribeChangeSetCommand,
  DescribeStackEventsCommand,
  DescribeStacksCommand,
  ExecuteChangeSetCommand,
  GetTemplateCommand,
  type Change,
  type CloudFormationClientResolvedConfig,
  type CreateChangeSetCommandInput,
  type DescribeStacksCommandInput,
  type GetTemplateCommandInput,
  type ServiceInputTypes as CfnInput,
  type ServiceOutputTypes as CfnOutput,
  type Parameter,
  type ResourceChange,
  type Stack,
  type StackEvent,
  type Tag,
} from '@aws-sdk/client-cloudformation';
import type { AwsStub } from 'aws-sdk-client-mock';

type CfnStub = AwsStub<CfnInput, CfnOutput, CloudFormationClientResolvedConfig>;

interface Resource {
  Type: string;
  Properties?: unknown;
}

interface Template {
  Metadata?: Record<string, unknown>;
  Parameters?: Record<string, { Default?: string }>;
  Resources?: Record<string, Resource>;
  Outputs?: Record<string, unknown>;
}

export interface FakeStack {
  name: string;
  id: string;
  status: string;
  statusReason?: string;
  tags: Tag[];
  template: Template;
  /** The template as it was submitted (GetTemplate's Original stage); JSON of `template` when not given. */
  templateBody?: string;
  parameters: Record<string, string>;
  outputs: Record<string, string>;
  /** Every event so far, oldest first; only the first `visible` have "happened". */
  events: StackEvent[];
  visible: number;
  /** What the stack becomes when its script has played out. */
  onSettled?: () => void;
}

interface FakeChangeSet {
  id: string;
  name: string;
  stackId: string;
  type: 'CREATE' | 'UPDATE';
  status: string;
  reason?: string;
  pollsUntilReady: number;
  changes: ResourceChange[];
  template: Template;
  templateBody: string;
  parameters: Record<string, string>;
  tags: Tag[];
}

export function awsError(name: string, message: string, status = 400): CloudFormationServiceException {
  return new CloudFormationServiceException({ name, message, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

const STACK_TYPE = 'AWS::CloudFormation::Stack';

export class FakeCloudFormation {
  readonly stacks: FakeStack[] = [];
  readonly changeSets = new Map<string, FakeChangeSet>();
  /** Events revealed per DescribeStacks call of a stack that is changing. */
  eventsPerPoll = 3;
  /** Page sizes, small so that paging is exercised. */
  eventPageSize = 4;
  changePageSize = 5;
  /** Scripted failures of the next operation: logical id → status reason. */
  readonly failures = new Map<string, string>();
  /** Logical ids whose modification the change set reports as a replacement. */
  readonly replacements = new Set<string>();
  private readonly throttled = new Map<string, number>();
  private readonly denied = new Set<string>();
  private changeSetFailure: string | undefined;
  private seq = 0;

  constructor(private readonly clock: { now(): number }, private readonly region = 'eu-west-1') {}

  /** The next `times` calls of `command` fail with a throttling error. */
  throttle(command: string, times: number): void {
    this.throttled.set(command, times);
  }

  /** Every call of `command` is refused with AccessDenied, as IAM refuses an action the caller may not perform. */
  deny(command: string): void {
    this.denied.add(command);
  }

  /** The next change set ends FAILED with this reason. */
  failNextChangeSet(reason: string): void {
    this.changeSetFailure = reason;
  }

  /** Makes `logicalId` fail with `reason` in the next create, update or delete. */
  failResource(logicalId: string, reason: string): void {
    this.failures.set(logicalId, reason);
  }

  /** A stack that already exists, e.g. created by an earlier deploy. */
  seedStack(s: {
    name: string;
    status: string;
    template?: Template;
    /** The submitted body, e.g. YAML; `template` is then what it parses to. */
    templateBody?: string;
    parameters?: Record<string, string>;
    outputs?: Record<string, string>;
    tags?: Tag[];
  }): FakeStack {
    const stack: FakeStack = {
      name: s.name,
      id: this.stackArn(s.name),
      status: s.status,
      tags: s.tags ?? [{ Key: 'hanat:stack', Value: s.name }],
      template: s.template ?? {},
      templateBody: s.templateBody,
      parameters: s.parameters ?? {},
      outputs: s.outputs ?? {},
      events: [],
      visible: 0,
    };
    this.stacks.push(stack);
    this.emit(stack, stack.name, STACK_TYPE, s.status, 'seeded by the test');
    stack.visible = stack.events.length;
    return stack;
  }

  stack(name: string): FakeStack | undefined {
    return this.find(name);
  }

  install(mock: CfnStub): void {
    const on = <I extends object>(cmd: new (input: I) => unknown, name: string, fn: (input: I) => unknown) =>
      mock.on(cmd as never).callsFake((input: I) => {
        if (this.denied.has(name)) {
          throw awsError('AccessDenied', `User: arn:aws:iam::123456789012:user/ops is not authorized to perform: cloudformation:${name} because no identity-based policy allows the cloudformation:${name} action`, 403);
        }
        const left = this.throttled.get(name) ?? 0;
        if (left > 0) {
          this.throttled.set(name, left - 1);
          throw awsError('Throttling', 'Rate exceeded');
        }
        return fn(input);
      });
    on(DescribeStacksCommand, 'DescribeStacks', (i: DescribeStacksCommandInput) => this.describeStacks(i.StackName));
    on(DescribeStackEventsCommand, 'DescribeStackEvents', (i) => this.describeStackEvents(i.StackName, i.NextToken));
    on(CreateChangeSetCommand, 'CreateChangeSet', (i) => this.createChangeSet(i));
    on(DescribeChangeSetCommand, 'DescribeChangeSet', (i) => this.describeChangeSet(i.ChangeSetName, i.NextToken));
    on(ExecuteChangeSetCommand, 'ExecuteChangeSet', (i) => this.executeChangeSet(i.ChangeSetName));
    on(DeleteChangeSetCommand, 'DeleteChangeSet', (i) => this.deleteChangeSet(i.ChangeSetName));
    on(DeleteStackCommand, 'DeleteStack', (i) => this.deleteStack(i.StackName));
    on(GetTemplateCommand, 'GetTemplate', (i: GetTemplateCommandInput) => this.getTemplate(i.StackName, i.TemplateStage));
  }

  // --- the API -------------------------------------------------------------

  private describeStacks(name: string | undefined) {
    const stack = this.find(name);
    if (!stack) throw awsError('ValidationError', `Stack with id ${name} does not exist`);
    this.reveal(stack, this.eventsPerPoll);
    const out: Stack = {
      StackName: stack.name,
      StackId: stack.id,
      StackStatus: stack.status as Stack['StackStatus'],
      StackStatusReason: stack.statusReason,
      CreationTime: new Date(this.clock.now()),
      Tags: stack.tags,
      Parameters: Object.entries(stack.parameters).map(([ParameterKey, ParameterValue]) => ({ ParameterKey, ParameterValue })),
      Outputs: Object.entries(stack.outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
    };
    return { Stacks: [out] };
  }

  private describeStackEvents(name: string | undefined, token: string | undefined) {
    const stack = this.find(name);
    if (!stack) throw awsError('ValidationError', `Stack [${name}] does not exist`);
    const newestFirst = stack.events.slice(0, stack.visible).reverse();
    const start = token ? Number(token) : 0;
    const page = newestFirst.slice(start, start + this.eventPageSize);
    const next = start + this.eventPageSize < newestFirst.length ? String(start + this.eventPageSize) : undefined;
    return { StackEvents: page, NextToken: next };
  }

  private getTemplate(name: string | undefined, stage: string | undefined) {
    const stack = this.find(name);
    if (!stack) throw awsError('ValidationError', `Stack with id ${name} does not exist`);
    if (stage !== 'Original') throw new Error(`the fake answers GetTemplate only for TemplateStage Original, got ${stage}`);
    return { TemplateBody: stack.templateBody ?? JSON.stringify(stack.template), StagesAvailable: ['Original', 'Processed'] };
  }

  private createChangeSet(i: CreateChangeSetCommandInput) {
    const template = JSON.parse(i.TemplateBody ?? '{}') as Template;
    const parameters = this.checkParameters(template, i.Parameters ?? []);
    this.checkCapabilities(template, i.Capabilities ?? []);
    let stack = this.find(i.StackName);
    if (i.ChangeSetType === 'CREATE') {
      if (stack && stack.status !== 'REVIEW_IN_PROGRESS') {
        throw awsError('ValidationError', `Stack [${i.StackName}] already exists and cannot be created again with the changeSet [${i.ChangeSetName}].`);
      }
      if (!stack) {
        stack = { name: i.StackName!, id: this.stackArn(i.StackName!), status: 'REVIEW_IN_PROGRESS', tags: i.Tags ?? [], template: {}, parameters: {}, outputs: {}, events: [], visible: 0 };
        this.stacks.push(stack);
        this.emit(stack, stack.name, STACK_TYPE, 'REVIEW_IN_PROGRESS', 'User Initiated');
        stack.visible = stack.events.length;
      }
    } else if (!stack) {
      throw awsError('ValidationError', `Stack [${i.StackName}] does not exist`);
    }
    const id = `arn:aws:cloudformation:${this.region}:123456789012:changeSet/${i.ChangeSetName}/${this.uuid()}`;
    const changes = i.ChangeSetType === 'CREATE' ? this.diff({}, {}, template, parameters) : this.diff(stack.template, stack.parameters, template, parameters);
    // New stack tags propagate to every resource, so an update that only changes them still changes something.
    const tagsChanged = i.ChangeSetType !== 'CREATE' && JSON.stringify(i.Tags ?? []) !== JSON.stringify(stack.tags);
    if (tagsChanged) {
      for (const [id, r] of Object.entries(template.Resources ?? {})) {
        if (!changes.some((c) => c.LogicalResourceId === id)) {
          changes.push({ Action: 'Modify', LogicalResourceId: id, PhysicalResourceId: `${id.toLowerCase()}-physical`, ResourceType: r.Type, Replacement: 'False' });
        }
      }
    }
    const cs: FakeChangeSet = {
      id,
      name: i.ChangeSetName!,
      stackId: stack.id,
      type: i.ChangeSetType === 'CREATE' ? 'CREATE' : 'UPDATE',
      status: 'CREATE_PENDING',
      pollsUntilReady: 2,
      changes,
      template,
      templateBody: i.TemplateBody ?? '{}',
      parameters,
      tags: i.Tags ?? [],
    };
    if (changes.length === 0 && JSON.stringify(stack.parameters) === JSON.stringify(parameters)) {
      cs.reason = "The submitted information didn't contain changes. Submit different information to create a change set.";
    }
    if (this.changeSetFailure !== undefined) {
      cs.reason = this.changeSetFailure;
      this.changeSetFailure = undefined;
    }
    this.changeSets.set(id, cs);
    return { Id: id, StackId: stack.id };
  }

  private describeChangeSet(idOrName: string | undefined, token: string | undefined) {
    const cs = this.changeSets.get(idOrName ?? '');
    if (!cs) throw awsError('ChangeSetNotFound', `ChangeSet [${idOrName}] does not exist`, 404);
    if (cs.pollsUntilReady > 0) {
      cs.pollsUntilReady--;
      cs.status = cs.pollsUntilReady === 0 ? (cs.reason ? 'FAILED' : 'CREATE_COMPLETE') : 'CREATE_IN_PROGRESS';
    }
    const start = token ? Number(token) : 0;
    const ready = cs.status === 'CREATE_COMPLETE';
    const page: Change[] = ready ? cs.changes.slice(start, start + this.changePageSize).map((rc) => ({ Type: 'Resource', ResourceChange: rc })) : [];
    const next = ready && start + this.changePageSize < cs.changes.length ? String(start + this.changePageSize) : undefined;
    return {
      ChangeSetId: cs.id,
      ChangeSetName: cs.name,
      StackId: cs.stackId,
      Status: cs.status,
      StatusReason: cs.status === 'FAILED' ? cs.reason : undefined,
      ExecutionStatus: ready ? 'AVAILABLE' : 'UNAVAILABLE',
      Changes: page,
      NextToken: next,
    };
  }

  private executeChangeSet(id: string | undefined) {
    const cs = this.changeSets.get(id ?? '');
    if (!cs) throw awsError('ChangeSetNotFound', `ChangeSet [${id}] does not exist`, 404);
    if (cs.status !== 'CREATE_COMPLETE') throw awsError('InvalidChangeSetStatus', `ChangeSet [${cs.id}] cannot be executed in its current status of [${cs.status}]`);
    const stack = this.stacks.find((s) => s.id === cs.stackId)!;
    this.changeSets.delete(cs.id);
    if (cs.type === 'CREATE') this.playCreate(stack, cs);
    else this.playUpdate(stack, cs);
    return {};
  }

  private deleteChangeSet(id: string | undefined) {
    if (!this.changeSets.delete(id ?? '')) throw awsError('ChangeSetNotFound', `ChangeSet [${id}] does not exist`, 404);
    return {};
  }

  private deleteStack(name: string | undefined) {
    const stack = this.find(name);
    if (!stack) return {}; // DeleteStack of a missing stack succeeds silently, as in AWS.
    if (stack.status === 'REVIEW_IN_PROGRESS') {
      this.emit(stack, stack.name, STACK_TYPE, 'DELETE_COMPLETE', undefined);
      stack.status = 'DELETE_COMPLETE';
      stack.visible = stack.events.length;
      return {};
    }
    this.playDelete(stack);
    return {};
  }

  // --- scripts of events -------------------------------------------------

  private playCreate(stack: FakeStack, cs: FakeChangeSet) {
    this.start(stack, 'CREATE_IN_PROGRESS', 'User Initiated');
    const created: [string, string][] = [];
    const resources = Object.entries(cs.template.Resources ?? {});
    let failed: string | undefined;
    for (const [id, r] of resources) {
      this.emit(stack, id, r.Type, 'CREATE_IN_PROGRESS');
      const reason = this.failures.get(id);
      if (reason !== undefined) {
        this.emit(stack, id, r.Type, 'CREATE_FAILED', reason);
        failed = id;
        const next = resources[resources.findIndex(([rid]) => rid === id) + 1];
        if (next) {
          this.emit(stack, next[0], next[1].Type, 'CREATE_IN_PROGRESS');
          this.emit(stack, next[0], next[1].Type, 'CREATE_FAILED', 'Resource creation cancelled');
        }
        break;
      }
      this.emit(stack, id, r.Type, 'CREATE_COMPLETE');
      created.push([id, r.Type]);
    }
    this.failures.clear();
    if (failed) {
      this.emit(stack, stack.name, STACK_TYPE, 'ROLLBACK_IN_PROGRESS', `The following resource(s) failed to create: [${failed}]. Rollback requested by user.`);
      for (const [id, type] of created.reverse()) {
        this.emit(stack, id, type, 'DELETE_IN_PROGRESS');
        this.emit(stack, id, type, 'DELETE_COMPLETE');
      }
      this.emit(stack, stack.name, STACK_TYPE, 'ROLLBACK_COMPLETE');
      return;
    }
    this.emit(stack, stack.name, STACK_TYPE, 'CREATE_COMPLETE');
    stack.onSettled = () => this.adopt(stack, cs);
  }

  private playUpdate(stack: FakeStack, cs: FakeChangeSet) {
    this.start(stack, 'UPDATE_IN_PROGRESS', 'User Initiated');
    const done: ResourceChange[] = [];
    let failed: string | undefined;
    for (const c of cs.changes.filter((c) => c.Action !== 'Remove')) {
      const id = c.LogicalResourceId!;
      const verb = c.Action === 'Add' ? 'CREATE' : 'UPDATE';
      this.emit(stack, id, c.ResourceType!, `${verb}_IN_PROGRESS`);
      const reason = this.failures.get(id);
      if (reason !== undefined) {
        this.emit(stack, id, c.ResourceType!, `${verb}_FAILED`, reason);
        failed = id;
        break;
      }
      this.emit(stack, id, c.ResourceType!, `${verb}_COMPLETE`);
      done.push(c);
    }
    this.failures.clear();
    if (failed) {
      this.emit(stack, stack.name, STACK_TYPE, 'UPDATE_ROLLBACK_IN_PROGRESS', `The following resource(s) failed to update: [${failed}].`);
      for (const c of done.filter((c) => c.Action === 'Modify').reverse()) {
        this.emit(stack, c.LogicalResourceId!, c.ResourceType!, 'UPDATE_IN_PROGRESS');
        this.emit(stack, c.LogicalResourceId!, c.ResourceType!, 'UPDATE_COMPLETE');
      }
      this.emit(stack, stack.name, STACK_TYPE, 'UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS');
      for (const c of done.filter((c) => c.Action === 'Add').reverse()) {
        this.emit(stack, c.LogicalResourceId!, c.ResourceType!, 'DELETE_IN_PROGRESS');
        this.emit(stack, c.LogicalResourceId!, c.ResourceType!, 'DELETE_COMPLETE');
      }
      this.emit(stack, stack.name, STACK_TYPE, 'UPDATE_ROLLBACK_COMPLETE');
      return;
    }
    this.emit(stack, stack.name, STACK_TYPE, 'UPDATE_COMPLETE_CLEANUP_IN_PROGRESS');
    for (const c of cs.changes.filter((c) => c.Action === 'Remove')) {
      this.emit(stack, c.LogicalResourceId!, c.ResourceType!, 'DELETE_IN_PROGRESS');
      this.emit(stack, c.LogicalResourceId!, c.ResourceType!, 'DELETE_COMPLETE');
    }
    this.emit(stack, stack.name, STACK_TYPE, 'UPDATE_COMPLETE');
    stack.onSettled = () => this.adopt(stack, cs);
  }

  private playDelete(stack: FakeStack) {
    this.start(stack, 'DELETE_IN_PROGRESS', 'User Initiated');
    let failed: string | undefined;
    for (const [id, r] of Object.entries(stack.template.Resources ?? {}).reverse()) {
      this.emit(stack, id, r.Type, 'DELETE_IN_PROGRESS');
      const reason = this.failures.get(id);
      if (reason !== undefined) {
        this.emit(stack, id, r.Type, 'DELETE_FAILED', reason);
        failed = id;
        continue;
      }
      this.emit(stack, id, r.Type, 'DELETE_COMPLETE');
    }
    this.failures.clear();
    if (failed) this.emit(stack, stack.name, STACK_TYPE, 'DELETE_FAILED', `The following resource(s) failed to delete: [${failed}].`);
    else this.emit(stack, stack.name, STACK_TYPE, 'DELETE_COMPLETE');
  }

  // --- helpers ---------------------------------------------------------------

  private adopt(stack: FakeStack, cs: FakeChangeSet) {
    stack.template = cs.template;
    stack.templateBody = cs.templateBody;
    stack.tags = cs.tags;
    stack.parameters = cs.parameters;
    stack.outputs = Object.fromEntries(Object.keys(cs.template.Outputs ?? {}).map((k) => [k, `value-of-${k}`]));
  }

  /** The operation's first event is visible at once: ExecuteChangeSet/DeleteStack return with the stack in progress. */
  private start(stack: FakeStack, status: string, reason: string) {
    this.reveal(stack, Infinity);
    this.emit(stack, stack.name, STACK_TYPE, status, reason);
    stack.visible = stack.events.length;
    stack.status = status;
  }

  private reveal(stack: FakeStack, n: number) {
    const until = Math.min(stack.events.length, stack.visible + n);
    for (; stack.visible < until; stack.visible++) {
      const e = stack.events[stack.visible]!;
      if (e.ResourceType === STACK_TYPE) {
        stack.status = e.ResourceStatus!;
        stack.statusReason = e.ResourceStatusReason;
      }
    }
    if (stack.visible === stack.events.length && stack.onSettled) {
      stack.onSettled();
      stack.onSettled = undefined;
    }
  }

  private emit(stack: FakeStack, logicalId: string, type: string, status: string, reason?: string) {
    this.seq++;
    stack.events.push({
      StackId: stack.id,
      StackName: stack.name,
      EventId: `${logicalId}-${status}-${this.seq}`,
      LogicalResourceId: logicalId,
      PhysicalResourceId: type === STACK_TYPE ? stack.id : `${logicalId.toLowerCase()}-physical`,
      ResourceType: type,
      ResourceStatus: status as StackEvent['ResourceStatus'],
      ResourceStatusReason: reason,
      Timestamp: new Date(this.clock.now() + this.seq),
    });
  }

  private diff(oldT: Template, oldP: Record<string, string>, newT: Template, newP: Record<string, string>): ResourceChange[] {
    const before = oldT.Resources ?? {};
    const after = newT.Resources ?? {};
    const changedParams = Object.keys(newP).filter((k) => oldP[k] !== newP[k]);
    const changes: ResourceChange[] = [];
    for (const [id, r] of Object.entries(after)) {
      const old = before[id];
      if (!old) {
        changes.push({ Action: 'Add', LogicalResourceId: id, ResourceType: r.Type });
        continue;
      }
      const body = JSON.stringify(r);
      const refsChanged = changedParams.some((p) => body.includes(`{"Ref":"${p}"}`) || body.includes('${' + p + '}'));
      if (body !== JSON.stringify(old) || refsChanged) {
        changes.push({ Action: 'Modify', LogicalResourceId: id, PhysicalResourceId: `${id.toLowerCase()}-physical`, ResourceType: r.Type, Replacement: this.replacements.has(id) ? 'True' : 'False' });
      }
    }
    for (const [id, r] of Object.entries(before)) {
      if (!after[id]) changes.push({ Action: 'Remove', LogicalResourceId: id, PhysicalResourceId: `${id.toLowerCase()}-physical`, ResourceType: r.Type });
    }
    return changes;
  }

  private checkParameters(template: Template, given: Parameter[]): Record<string, string> {
    const declared = template.Parameters ?? {};
    const unknown = given.filter((p) => !(p.ParameterKey! in declared)).map((p) => p.ParameterKey);
    if (unknown.length) throw awsError('ValidationError', `Parameters: [${unknown.join(', ')}] do not exist in the template`);
    const values: Record<string, string> = {};
    for (const [k, d] of Object.entries(declared)) {
      const v = given.find((p) => p.ParameterKey === k)?.ParameterValue ?? d.Default;
      if (v === undefined) throw awsError('ValidationError', `Parameters: [${k}] must have values`);
      values[k] = v;
    }
    return values;
  }

  private checkCapabilities(template: Template, given: string[]) {
    const iam = Object.values(template.Resources ?? {}).filter((r) => r.Type.startsWith('AWS::IAM::'));
    if (iam.length && !given.includes('CAPABILITY_IAM') && !given.includes('CAPABILITY_NAMED_IAM')) {
      throw awsError('InsufficientCapabilitiesException', 'Requires capabilities : [CAPABILITY_IAM]');
    }
  }

  private find(nameOrId: string | undefined): FakeStack | undefined {
    // By name, only a live stack answers; by id, a deleted one does too (as in AWS).
    return this.stacks.find((s) => s.id === nameOrId) ?? this.stacks.find((s) => s.name === nameOrId && s.status !== 'DELETE_COMPLETE');
  }

  private stackArn(name: string): string {
    return `arn:aws:cloudformation:${this.region}:123456789012:stack/${name}/${this.uuid()}`;
  }

  private uuid(): string {
    return `00000000-0000-4000-8000-${String(++this.seq).padStart(12, '0')}`;
  }
}
