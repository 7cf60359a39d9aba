/**
 * CloudFormation of one region: stacks, change sets, and the engine that
 * materialises a template into the region's services.
 *
 * - A CREATE change set makes a REVIEW_IN_PROGRESS stack; change sets compute
 *   asynchronously (CREATE_PENDING → CREATE_COMPLETE, or FAILED with "The
 *   submitted information didn't contain changes...").
 * - Execution walks the dependency graph (Ref, GetAtt, Sub, DependsOn),
 *   starting each resource when its dependencies are done, and records stack
 *   events as it goes. Properties are modified in place or the resource is
 *   replaced, following the resource specification; replaced and removed
 *   resources are deleted in the cleanup phase.
 * - A failure stops new work, marks in-flight work cancelled and rolls back
 *   (ROLLBACK_COMPLETE after a failed create, UPDATE_ROLLBACK_COMPLETE after a
 *   failed update), unless rollback is disabled.
 *
 * See EMULATOR.md for the AWS documentation each behaviour follows.
 */
import type * as T from '@aws-sdk/client-cloudformation';
import type { Env } from '../env.js';
import { AwsError, isAwsError, validationError } from '../errors.js';
import type { Region } from '../region.js';
import type { Tags } from '../tags.js';
import { evaluate, evaluateCondition, isUnknown, PSEUDO, Unknown, type EvalContext } from './intrinsics.js';
import { PROVIDERS, PropertyError, TAGGABLE, type Props, type ResourceContext } from './resources.js';
import { checkCapabilities, dependenciesOf, dependencyOrder, parseTemplate, requiredCapabilities, resolveParameters, type ResolvedParameters, type Template } from './template.js';
import { scalar } from '../text.js';

export interface StackResource {
  logicalId: string;
  type: string;
  physicalId?: string | undefined;
  status: string;
  reason?: string | undefined;
  updated: Date;
  props: Props;
  attrs: Record<string, unknown>;
}

export interface StackEvent {
  id: string;
  logicalId: string;
  physicalId: string;
  type: string;
  status: string;
  reason?: string | undefined;
  time: Date;
  props?: string | undefined;
}

export interface Output {
  key: string;
  value: string;
  description?: string | undefined;
  exportName?: string | undefined;
}

export interface Stack {
  id: string;
  name: string;
  status: string;
  reason?: string | undefined;
  created: Date;
  updated?: Date | undefined;
  deleted?: Date | undefined;
  description?: string | undefined;
  templateBody: string;
  template: Template;
  params: ResolvedParameters;
  tags: Tags;
  capabilities: string[];
  disableRollback: boolean;
  resources: Map<string, StackResource>;
  events: StackEvent[];
  outputs: Output[];
  changeSetId?: string | undefined;
  operation?: Promise<void> | undefined;
  /**
   * DeleteStack arrived while the stack was being created, when the stack had
   * `since` events: creation starts nothing more, and once the resources in
   * flight finish, everything made is deleted.
   */
  deleteRequested?: { since: number } | undefined;
}

export interface ChangeSet {
  id: string;
  name: string;
  stack: Stack;
  type: 'CREATE' | 'UPDATE';
  status: string;
  executionStatus: string;
  reason?: string | undefined;
  created: Date;
  description?: string | undefined;
  templateBody: string;
  template: Template;
  params: ResolvedParameters;
  tags: Tags;
  capabilities: string[];
  changes: T.Change[];
  noChanges: boolean;
}

const NAME = /^[a-zA-Z][-a-zA-Z0-9]*$/;

const UPDATABLE = new Set(['CREATE_COMPLETE', 'UPDATE_COMPLETE', 'UPDATE_ROLLBACK_COMPLETE', 'IMPORT_COMPLETE', 'IMPORT_ROLLBACK_COMPLETE']);

function deepEqual(a: unknown, b: unknown): boolean {
  if (a instanceof Unknown || b instanceof Unknown) return false;
  if (a === b) return true;
  if (typeof a !== typeof b) {
    // CloudFormation compares scalars by their string form ("1" equals 1, "true" equals true).
    if ((typeof a === 'number' || typeof a === 'boolean' || typeof a === 'string') && (typeof b === 'number' || typeof b === 'boolean' || typeof b === 'string')) return String(a) === String(b);
    return false;
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return false;
}

function hasUnknown(v: unknown): boolean {
  if (v instanceof Unknown) return true;
  if (Array.isArray(v)) return v.some(hasUnknown);
  if (v && typeof v === 'object') return Object.values(v).some(hasUnknown);
  return false;
}

function serviceOf(type: string): string {
  const s = type.split('::')[1] ?? '';
  return s === 'EC2' ? 'Ec2' : s === 'IAM' ? 'Iam' : s === 'SSM' ? 'Ssm' : s;
}

function handlerErrorCode(code: string): string {
  if (/NotFound|NoSuchEntity/.test(code)) return 'NotFound';
  if (/Duplicate|AlreadyExists|AlreadyAssociated/.test(code)) return 'AlreadyExists';
  if (/DependencyViolation|InUse|DeleteConflict/.test(code)) return 'ResourceConflict';
  if (/Capacity|Limit/.test(code)) return 'ServiceLimitExceeded';
  if (/^Invalid|Missing|Validation/.test(code)) return 'InvalidRequest';
  return 'GeneralServiceException';
}

/** Graph walk: run each node once its dependencies succeeded; stop starting new nodes after a failure, or once `stop` says so. */
async function runGraph(
  ids: readonly string[],
  depsOf: (id: string) => readonly string[],
  run: (id: string) => Promise<void>,
  stop: () => boolean = () => false,
): Promise<{ failed: string[]; done: string[]; skipped: string[] }> {
  const done = new Set<string>();
  const failed: string[] = [];
  const started = new Set<string>();
  const inFlight = new Map<string, Promise<void>>();
  const idSet = new Set(ids);
  for (;;) {
    if (failed.length === 0 && !stop()) {
      for (const id of ids) {
        if (started.has(id)) continue;
        if (depsOf(id).every((d) => !idSet.has(d) || done.has(d))) {
          started.add(id);
          const p = run(id).then(
            () => {
              done.add(id);
            },
            () => {
              failed.push(id);
            },
          );
          inFlight.set(id, p.finally(() => inFlight.delete(id)));
        }
      }
    }
    if (inFlight.size === 0) break;
    await Promise.race(inFlight.values());
  }
  return { failed, done: [...done], skipped: ids.filter((id) => !started.has(id)) };
}

export class CloudFormation {
  readonly stacks: Stack[] = [];
  readonly changeSets = new Map<string, ChangeSet>();

  constructor(
    readonly env: Env,
    private readonly region: Region,
  ) {}

  // ------------------------------------------------------------------ lookups

  /** By ARN (any status, deleted included) or by name (the live stack). */
  findStack(nameOrId: string): Stack | undefined {
    if (nameOrId.startsWith('arn:')) return this.stacks.find((s) => s.id === nameOrId);
    return this.stacks.find((s) => s.name === nameOrId && s.status !== 'DELETE_COMPLETE');
  }

  stack(nameOrId: string | undefined): Stack {
    const s = nameOrId ? this.findStack(nameOrId) : undefined;
    if (!s) throw validationError(`Stack with id ${nameOrId ?? ''} does not exist`);
    return s;
  }

  changeSet(name: string | undefined, stackName?: string): ChangeSet {
    if (!name) throw validationError("1 validation error detected: Value null at 'changeSetName' failed to satisfy constraint: Member must not be null");
    if (name.startsWith('arn:')) {
      const cs = this.changeSets.get(name);
      if (!cs) throw new AwsError('ChangeSetNotFound', `ChangeSet [${name}] does not exist`, 404);
      return cs;
    }
    if (!stackName) throw validationError('StackName must be specified if ChangeSetName is not specified as an ARN.');
    const stack = this.stack(stackName);
    const cs = [...this.changeSets.values()].find((c) => c.stack === stack && c.name === name);
    if (!cs) throw new AwsError('ChangeSetNotFound', `ChangeSet [${name}] does not exist`, 404);
    return cs;
  }

  /** Resolves when every stack operation in flight has finished. */
  async settled(): Promise<void> {
    for (;;) {
      const ops = this.stacks.map((s) => s.operation).filter((p): p is Promise<void> => !!p);
      if (ops.length === 0) return;
      await Promise.allSettled(ops);
    }
  }

  private event(stack: Stack, e: Omit<StackEvent, 'id' | 'time'>): void {
    stack.events.push({ ...e, id: this.env.ids.uuid(), time: new Date(this.env.clock.now()) });
  }

  private stackEvent(stack: Stack, status: string, reason?: string): void {
    stack.status = status;
    stack.reason = reason;
    this.event(stack, { logicalId: stack.name, physicalId: stack.id, type: 'AWS::CloudFormation::Stack', status, reason });
  }

  private resourceEvent(stack: Stack, r: StackResource, status: string, reason?: string, physicalId?: string): void {
    r.status = status;
    r.reason = reason;
    r.updated = new Date(this.env.clock.now());
    this.event(stack, {
      logicalId: r.logicalId,
      physicalId: physicalId ?? r.physicalId ?? '',
      type: r.type,
      status,
      reason,
      props: JSON.stringify(r.props),
    });
  }

  // ------------------------------------------------------------------ evaluation

  private lookups() {
    return {
      ssm: (name: string) => {
        try {
          return this.region.ssm.get(name).version.value;
        } catch {
          return undefined;
        }
      },
      exists: (type: string, value: string) => {
        const ec2 = this.region.ec2;
        switch (type) {
          case 'AWS::EC2::KeyPair::KeyName':
            return ec2.keyPairs.has(value);
          case 'AWS::EC2::Image::Id':
            return ec2.images.has(value);
          case 'AWS::EC2::AvailabilityZone::Name':
            return this.env.azs.includes(value);
          case 'AWS::EC2::VPC::Id':
            return ec2.vpcs.has(value);
          case 'AWS::EC2::Subnet::Id':
            return ec2.subnets.has(value);
          case 'AWS::EC2::SecurityGroup::Id':
            return ec2.securityGroups.has(value);
          case 'AWS::EC2::Instance::Id':
            return ec2.instances.has(value);
          default:
            return true;
        }
      },
    };
  }

  private pseudo(stack: Stack): Record<string, string | string[]> {
    return {
      'AWS::AccountId': this.env.accountId,
      'AWS::Region': this.env.region,
      'AWS::StackName': stack.name,
      'AWS::StackId': stack.id,
      'AWS::Partition': 'aws',
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::NotificationARNs': [],
    };
  }

  /**
   * An evaluation context. In planning mode, resources that are new or will be
   * replaced have unknown Refs and attributes.
   */
  private context(stack: Stack, template: Template, params: ResolvedParameters, active: ReadonlySet<string>, unknown?: ReadonlySet<string>): EvalContext {
    return {
      params: params.values,
      pseudo: this.pseudo(stack),
      conditions: template.Conditions ?? {},
      mappings: template.Mappings ?? {},
      azs: (region) => (region === this.env.region ? [...this.env.azs] : ['a', 'b', 'c', 'd', 'e', 'f'].map((l) => `${region}${l}`)),
      isResource: (id) => active.has(id),
      ref: (id) => {
        const r = stack.resources.get(id);
        if (unknown?.has(id) || !r?.physicalId) {
          if (unknown) return new Unknown(`Ref ${id}`);
          throw validationError(`Template error: resource ${id} has no physical id yet`);
        }
        return r.physicalId;
      },
      getAtt: (id, attr) => {
        const type = template.Resources[id]!.Type;
        const provider = PROVIDERS[type]!;
        if (!provider.attributes.includes(attr)) throw validationError(`Template error: resource ${id} does not support attribute type ${attr} in Fn::GetAtt`);
        const r = stack.resources.get(id);
        if (unknown?.has(id) || !r?.physicalId) {
          if (unknown) return new Unknown(`GetAtt ${id}.${attr}`);
          throw validationError(`Template error: attribute ${attr} of ${id} is not available`);
        }
        return r.attrs[attr];
      },
      importValue: (name) => {
        for (const s of this.stacks) {
          if (s.status === 'DELETE_COMPLETE') continue;
          const o = s.outputs.find((x) => x.exportName === name);
          if (o) return o.value;
        }
        throw validationError(`No export named ${name} found. Rollback requested by user.`);
      },
      ssm: (name) => {
        const v = this.lookups().ssm(name);
        if (v === undefined) throw validationError(`Unable to fetch parameters [${name}] from parameter store for this account.`);
        return v;
      },
    };
  }

  private activeResources(stack: Stack, template: Template, params: ResolvedParameters): string[] {
    const ctx = this.context(stack, template, params, new Set(), new Set());
    return Object.entries(template.Resources)
      .filter(([, r]) => r.Condition === undefined || evaluateCondition(r.Condition, ctx))
      .map(([id]) => id);
  }

  // ------------------------------------------------------------------ change sets

  createChangeSet(input: T.CreateChangeSetCommandInput): ChangeSet {
    const { env } = this;
    const stackName = input.StackName ?? '';
    const csName = input.ChangeSetName ?? '';
    if (!NAME.test(stackName) || stackName.length > 128) {
      throw validationError(`1 validation error detected: Value '${stackName}' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]*`);
    }
    if (!NAME.test(csName) || csName.length > 128) {
      throw validationError(`1 validation error detected: Value '${csName}' at 'changeSetName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*`);
    }
    if (input.TemplateURL) throw validationError('hanat-lab does not fetch templates from S3; pass TemplateBody');
    const type = input.ChangeSetType ?? 'UPDATE';
    if (type !== 'CREATE' && type !== 'UPDATE') throw validationError(`hanat-lab does not emulate ${type} change sets`);
    let stack = this.findStack(stackName);
    if (type === 'CREATE' && stack && stack.status !== 'REVIEW_IN_PROGRESS') {
      throw new AwsError('AlreadyExistsException', `Stack [${stackName}] already exists and cannot be created again with the changeSet [${csName}].`);
    }
    if (type === 'UPDATE') {
      if (!stack) throw validationError(`Stack [${stackName}] does not exist`);
      if (stack.status === 'REVIEW_IN_PROGRESS') throw validationError(`Stack [${stackName}] does not exist`);
      if (!UPDATABLE.has(stack.status)) throw validationError(`Stack:${stack.id} is in ${stack.status} state and can not be updated.`);
    }
    const body = input.UsePreviousTemplate ? stack?.templateBody : input.TemplateBody;
    if (input.UsePreviousTemplate && (!stack || type === 'CREATE')) throw validationError('UsePreviousTemplate is only valid when updating an existing stack');
    const template = parseTemplate(body);
    checkCapabilities(template, input.Capabilities);
    const params = resolveParameters(template, input.Parameters, type === 'UPDATE' ? stack?.params.given : undefined, this.lookups());
    if (stack && [...this.changeSets.values()].some((c) => c.stack === stack && c.name === csName)) {
      throw new AwsError('AlreadyExistsException', `ChangeSet [${csName}] already exists`);
    }
    const tags: Tags = input.Tags ? new Map(input.Tags.map((t) => [t.Key ?? '', t.Value ?? ''])) : new Map(stack?.tags ?? []);

    if (!stack) {
      stack = {
        id: `arn:aws:cloudformation:${env.region}:${env.accountId}:stack/${stackName}/${env.ids.uuid()}`,
        name: stackName,
        status: 'REVIEW_IN_PROGRESS',
        created: new Date(env.clock.now()),
        description: template.Description,
        templateBody: body!,
        template,
        params,
        tags,
        capabilities: input.Capabilities ?? [],
        disableRollback: false,
        resources: new Map(),
        events: [],
        outputs: [],
      };
      this.stacks.push(stack);
      this.stackEvent(stack, 'REVIEW_IN_PROGRESS', 'User Initiated');
    }

    const { changes, noChanges } = this.plan(stack, template, params, tags, type);
    const cs: ChangeSet = {
      id: `arn:aws:cloudformation:${env.region}:${env.accountId}:changeSet/${csName}/${env.ids.uuid()}`,
      name: csName,
      stack,
      type,
      status: 'CREATE_PENDING',
      executionStatus: 'UNAVAILABLE',
      created: new Date(env.clock.now()),
      description: input.Description,
      templateBody: body!,
      template,
      params,
      tags,
      capabilities: input.Capabilities ?? [],
      changes,
      noChanges,
    };
    this.changeSets.set(cs.id, cs);
    void (async () => {
      await env.clock.sleep(0);
      if (!this.changeSets.has(cs.id)) return;
      cs.status = 'CREATE_IN_PROGRESS';
      await env.clock.sleep(env.latency.changeSet());
      if (!this.changeSets.has(cs.id)) return;
      if (noChanges) {
        cs.status = 'FAILED';
        cs.reason = "The submitted information didn't contain changes. Submit different information to create a change set.";
      } else {
        cs.status = 'CREATE_COMPLETE';
        cs.executionStatus = 'AVAILABLE';
      }
    })();
    return cs;
  }

  /** The resource changes a change set shows, computed with unknown values for what does not exist yet. */
  private plan(stack: Stack, template: Template, params: ResolvedParameters, tags: Tags, type: 'CREATE' | 'UPDATE'): { changes: T.Change[]; noChanges: boolean } {
    const active = this.activeResources(stack, template, params);
    const activeSet = new Set(active);
    const order = dependencyOrder(template, active);
    const unknown = new Set<string>();
    const changes: T.Change[] = [];
    const existing = type === 'UPDATE' ? stack.resources : new Map<string, StackResource>();
    const tagsChanged = type === 'UPDATE' && !deepEqual(Object.fromEntries(tags), Object.fromEntries(stack.tags));
    const ctx = this.context(stack, template, params, activeSet, unknown);
    for (const id of order) {
      const def = template.Resources[id]!;
      const props = (evaluate(def.Properties ?? {}, ctx) ?? {}) as Props;
      const old = existing.get(id);
      if (!old || old.status === 'DELETE_COMPLETE' || !old.physicalId) {
        unknown.add(id);
        changes.push({ Type: 'Resource', ResourceChange: { Action: 'Add', LogicalResourceId: id, ResourceType: def.Type, Scope: [], Details: [], PolicyAction: undefined } });
        continue;
      }
      if (old.type !== def.Type) throw validationError(`Update of resource type is not permitted. The new template modifies resource type of resource ${id}.`);
      const provider = PROVIDERS[def.Type]!;
      const keys = new Set([...Object.keys(props), ...Object.keys(old.props)]);
      const details: T.ResourceChangeDetail[] = [];
      let replaceStatic = false;
      let replaceDynamic = false;
      for (const k of keys) {
        if (deepEqual(props[k], old.props[k])) continue;
        const replaces = provider.replaceOn.includes(k) || !provider.update;
        const dynamic = hasUnknown(props[k]);
        if (replaces && dynamic) replaceDynamic = true;
        else if (replaces) replaceStatic = true;
        details.push({
          Target: { Attribute: k === 'Tags' ? 'Tags' : 'Properties', Name: k === 'Tags' ? undefined : k, RequiresRecreation: replaces ? (dynamic ? 'Conditionally' : 'Always') : 'Never' },
          Evaluation: dynamic ? 'Dynamic' : 'Static',
          ChangeSource: dynamic ? 'ResourceReference' : 'DirectModification',
        });
      }
      if (details.length === 0 && tagsChanged && TAGGABLE.has(def.Type)) {
        details.push({ Target: { Attribute: 'Tags', RequiresRecreation: 'Never' }, Evaluation: 'Static', ChangeSource: 'DirectModification' });
      }
      if (details.length === 0) continue;
      const replacement = replaceStatic ? 'True' : replaceDynamic ? 'Conditional' : 'False';
      if (replacement !== 'False') unknown.add(id);
      const scope = [...new Set(details.map((d) => d.Target!.Attribute!))] as T.ResourceAttribute[];
      changes.push({
        Type: 'Resource',
        ResourceChange: { Action: 'Modify', LogicalResourceId: id, PhysicalResourceId: old.physicalId, ResourceType: def.Type, Replacement: replacement, Scope: scope, Details: details },
      });
    }
    for (const [id, old] of existing) {
      if (activeSet.has(id) || old.status === 'DELETE_COMPLETE' || !old.physicalId) continue;
      changes.push({ Type: 'Resource', ResourceChange: { Action: 'Remove', LogicalResourceId: id, PhysicalResourceId: old.physicalId, ResourceType: old.type, Scope: [], Details: [] } });
    }
    // Outputs are checked now, so a bad Fn::GetAtt fails the change set as it does on AWS.
    for (const o of Object.values(template.Outputs ?? {})) {
      if (o.Condition !== undefined && !evaluateCondition(o.Condition, ctx)) continue;
      evaluate(o.Value, ctx);
      if (o.Export) evaluate(o.Export.Name, ctx);
    }
    const sameTemplate = type === 'UPDATE' && JSON.stringify(template) === JSON.stringify(stack.template);
    const sameParams = type === 'UPDATE' && deepEqual(params.given, stack.params.given);
    return { changes, noChanges: type === 'UPDATE' && changes.length === 0 && sameTemplate && sameParams && !tagsChanged };
  }

  executeChangeSet(name: string | undefined, stackName: string | undefined, disableRollback: boolean | undefined): void {
    const cs = this.changeSet(name, stackName);
    const stack = cs.stack;
    if (cs.executionStatus !== 'AVAILABLE') {
      throw new AwsError('InvalidChangeSetStatus', `ChangeSet [${cs.id}] cannot be executed in its current execution status of [${cs.executionStatus}]`);
    }
    if (stack.status.endsWith('_IN_PROGRESS') && stack.status !== 'REVIEW_IN_PROGRESS') {
      throw new AwsError('InvalidChangeSetStatus', `ChangeSet [${cs.id}] cannot be executed: stack ${stack.name} is in ${stack.status} state`);
    }
    cs.executionStatus = 'EXECUTE_IN_PROGRESS';
    for (const other of [...this.changeSets.values()]) if (other.stack === stack && other !== cs) this.changeSets.delete(other.id);
    stack.disableRollback = disableRollback ?? false;
    stack.changeSetId = cs.id;
    this.startOperation(stack, async () => {
      const ok = cs.type === 'CREATE' ? await this.runCreate(stack, cs) : await this.runUpdate(stack, cs);
      cs.executionStatus = ok ? 'EXECUTE_COMPLETE' : 'EXECUTE_FAILED';
      this.changeSets.delete(cs.id);
    });
  }

  deleteChangeSet(name: string | undefined, stackName: string | undefined): void {
    const cs = this.changeSet(name, stackName);
    if (cs.executionStatus === 'EXECUTE_IN_PROGRESS') throw new AwsError('InvalidChangeSetStatus', `Cannot delete ChangeSet in status ${cs.executionStatus}`);
    this.changeSets.delete(cs.id);
  }

  listChangeSets(stackName: string | undefined): ChangeSet[] {
    const stack = this.stack(stackName);
    return [...this.changeSets.values()].filter((c) => c.stack === stack);
  }

  private startOperation(stack: Stack, work: () => Promise<void>): void {
    const op = (async () => {
      await this.env.clock.sleep(0);
      try {
        await work();
      } catch (err) {
        this.env.log(`stack ${stack.name}: operation failed unexpectedly: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        this.stackEvent(stack, stack.status.replace(/_IN_PROGRESS$/, '_FAILED'), 'Internal Failure');
      }
    })();
    stack.operation = op;
    void op.finally(() => {
      if (stack.operation === op) stack.operation = undefined;
    });
  }

  // ------------------------------------------------------------------ direct stack operations

  createStack(input: T.CreateStackCommandInput): Stack {
    const existing = input.StackName ? this.findStack(input.StackName) : undefined;
    if (existing) throw new AwsError('AlreadyExistsException', `Stack [${input.StackName}] already exists`);
    const cs = this.createChangeSet({ ...input, ChangeSetName: `hanat-lab-create-${this.env.ids.suffix(8)}`, ChangeSetType: 'CREATE' });
    cs.status = 'CREATE_COMPLETE';
    cs.executionStatus = 'AVAILABLE';
    this.executeChangeSet(cs.id, undefined, input.DisableRollback ?? input.OnFailure === 'DO_NOTHING');
    return cs.stack;
  }

  updateStack(input: T.UpdateStackCommandInput): Stack {
    const cs = this.createChangeSet({ ...input, ChangeSetName: `hanat-lab-update-${this.env.ids.suffix(8)}`, ChangeSetType: 'UPDATE' });
    if (cs.noChanges) {
      this.changeSets.delete(cs.id);
      throw validationError('No updates are to be performed.');
    }
    cs.status = 'CREATE_COMPLETE';
    cs.executionStatus = 'AVAILABLE';
    this.executeChangeSet(cs.id, undefined, input.DisableRollback);
    return cs.stack;
  }

  /**
   * Like AWS: a stack being created can be deleted (creation stops, what it made is
   * deleted); one being updated or rolled back cannot.
   */
  deleteStack(nameOrId: string | undefined, retain: readonly string[] | undefined): void {
    const stack = nameOrId ? this.findStack(nameOrId) : undefined;
    if (!stack || stack.status === 'DELETE_COMPLETE' || stack.status === 'DELETE_IN_PROGRESS') return;
    // A CREATE change set being executed leaves REVIEW_IN_PROGRESS a moment later.
    const executing = stack.changeSetId !== undefined && this.changeSets.get(stack.changeSetId)?.executionStatus === 'EXECUTE_IN_PROGRESS';
    const creating = stack.status === 'CREATE_IN_PROGRESS' || (stack.status === 'REVIEW_IN_PROGRESS' && executing);
    if (!creating && stack.status.endsWith('_IN_PROGRESS') && stack.status !== 'REVIEW_IN_PROGRESS') {
      throw validationError(`Stack [${stack.name}] cannot be deleted while in status ${stack.status}`);
    }
    if (retain?.length && stack.status !== 'DELETE_FAILED') {
      throw validationError(`Invalid operation on stack [${stack.id}]. RetainResources can only be specified when the stack is in the DELETE_FAILED state`);
    }
    for (const cs of [...this.changeSets.values()]) if (cs.stack === stack) this.changeSets.delete(cs.id);
    if (creating) {
      stack.deleteRequested = { since: stack.events.length };
      this.stackEvent(stack, 'DELETE_IN_PROGRESS', 'User Initiated');
      return;
    }
    this.startOperation(stack, () => this.runDelete(stack, new Set(retain ?? [])));
  }

  // ------------------------------------------------------------------ execution

  private resourceContext(stack: Stack, logicalId: string, type: string): ResourceContext {
    const stackTags: Tags = new Map();
    if (TAGGABLE.has(type)) {
      for (const [k, v] of stack.tags) stackTags.set(k, v);
      stackTags.set('aws:cloudformation:stack-name', stack.name);
      stackTags.set('aws:cloudformation:stack-id', stack.id);
      stackTags.set('aws:cloudformation:logical-id', logicalId);
    }
    return { region: this.region, stackName: stack.name, stackId: stack.id, logicalId, stackTags, ids: this.env.ids };
  }

  private failureReason(err: unknown, logicalId: string, type: string): string {
    if (err instanceof PropertyError) return `Properties validation failed for resource ${logicalId} with message: ${err.message}`;
    if (isAwsError(err)) {
      if (err.code === 'ValidationError' || err.code === 'HanatLabFault') return err.message;
      return `Resource handler returned message: "${err.message} (Service: ${serviceOf(type)}, Status Code: ${err.status}, Request ID: ${this.env.ids.uuid()})" (RequestToken: ${this.env.ids.uuid()}, HandlerErrorCode: ${handlerErrorCode(err.code)})`;
    }
    this.env.log(`resource ${logicalId} (${type}) failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 'Internal Failure';
  }

  /** Runs one provider call with the type's latency and any injected fault. */
  private async provision<R>(stack: Stack, logicalId: string, type: string, phase: 'create' | 'update' | 'delete', call: () => Promise<R>): Promise<R> {
    await this.env.clock.sleep(this.env.latency.resource(type, phase));
    const injected = this.env.faults.checkResource(stack.name, logicalId, type, phase);
    if (injected) throw new AwsError('HanatLabFault', injected);
    return call();
  }

  private evalProps(stack: Stack, template: Template, params: ResolvedParameters, active: ReadonlySet<string>, id: string): Props {
    const ctx = this.context(stack, template, params, active);
    return (evaluate(template.Resources[id]!.Properties ?? {}, ctx) ?? {}) as Props;
  }

  private evalOutputs(stack: Stack, active: ReadonlySet<string>): Output[] {
    const ctx = this.context(stack, stack.template, stack.params, active);
    const out: Output[] = [];
    for (const [key, o] of Object.entries(stack.template.Outputs ?? {})) {
      if (o.Condition !== undefined && !evaluateCondition(o.Condition, ctx)) continue;
      const v = evaluate(o.Value, ctx);
      const exportName = o.Export ? evaluate(o.Export.Name, ctx) : undefined;
      out.push({
        key,
        value: Array.isArray(v) ? v.join(',') : String(v),
        description: o.Description,
        ...(exportName !== undefined ? { exportName: scalar(exportName) } : {}),
      });
    }
    return out;
  }

  private async createResource(stack: Stack, template: Template, active: ReadonlySet<string>, id: string, record: StackResource): Promise<void> {
    const type = template.Resources[id]!.Type;
    this.resourceEvent(stack, record, 'CREATE_IN_PROGRESS');
    try {
      record.props = this.evalProps(stack, template, stack.params, active, id);
      const provider = PROVIDERS[type]!;
      const created = await this.provision(stack, id, type, 'create', () => provider.create(record.props, this.resourceContext(stack, id, type)));
      record.physicalId = created.physicalId;
      record.attrs = created.attrs;
      this.resourceEvent(stack, record, 'CREATE_IN_PROGRESS', 'Resource creation Initiated');
      this.resourceEvent(stack, record, 'CREATE_COMPLETE');
    } catch (err) {
      this.resourceEvent(stack, record, 'CREATE_FAILED', this.failureReason(err, id, type));
      throw err;
    }
  }

  private async deleteResource(stack: Stack, r: StackResource, physicalId: string | undefined, retain: boolean): Promise<void> {
    const deletionPolicy = stack.template.Resources[r.logicalId]?.DeletionPolicy;
    if (retain || deletionPolicy === 'Retain' || deletionPolicy === 'RetainExceptOnCreate') {
      this.resourceEvent(stack, r, 'DELETE_SKIPPED', undefined, physicalId);
      return;
    }
    this.resourceEvent(stack, r, 'DELETE_IN_PROGRESS', undefined, physicalId);
    if (physicalId) {
      try {
        const provider = PROVIDERS[r.type]!;
        await this.provision(stack, r.logicalId, r.type, 'delete', () => provider.delete(physicalId, r.props, this.resourceContext(stack, r.logicalId, r.type)));
      } catch (err) {
        this.resourceEvent(stack, r, 'DELETE_FAILED', this.failureReason(err, r.logicalId, r.type), physicalId);
        throw err;
      }
    }
    this.resourceEvent(stack, r, 'DELETE_COMPLETE', undefined, physicalId);
  }

  /** Deletes `ids` in reverse dependency order; returns the ones that failed. */
  private async deleteAll(stack: Stack, ids: readonly string[], physical: (id: string) => string | undefined, retain: ReadonlySet<string> = new Set()): Promise<string[]> {
    const present = new Set(ids);
    const tpl = stack.template;
    const dependents = (id: string) => ids.filter((other) => other !== id && tpl.Resources[other] && dependenciesOf(tpl.Resources[other], present).includes(id));
    const result = await runGraph(ids, dependents, (id) => this.deleteResource(stack, stack.resources.get(id)!, physical(id), retain.has(id)));
    return [...result.failed, ...result.skipped];
  }

  private async runCreate(stack: Stack, cs: ChangeSet): Promise<boolean> {
    stack.template = cs.template;
    stack.templateBody = cs.templateBody;
    stack.params = cs.params;
    stack.tags = cs.tags;
    stack.capabilities = cs.capabilities;
    stack.description = cs.template.Description;
    stack.created = new Date(this.env.clock.now());
    /** DeleteStack may arrive at any await below. */
    const deletion = () => stack.deleteRequested;
    if (deletion()) {
      // Deleted before creation began: there is nothing to undo.
      await this.runDelete(stack, new Set(), false);
      return false;
    }
    this.stackEvent(stack, 'CREATE_IN_PROGRESS', 'User Initiated');
    const active = this.activeResources(stack, stack.template, stack.params);
    const activeSet = new Set(active);
    for (const id of active) {
      stack.resources.set(id, { logicalId: id, type: stack.template.Resources[id]!.Type, status: 'NOT_STARTED', updated: new Date(this.env.clock.now()), props: {}, attrs: {} });
    }
    const result = await runGraph(
      active,
      (id) => dependenciesOf(stack.template.Resources[id]!, activeSet),
      (id) => this.createResource(stack, stack.template, activeSet, id, stack.resources.get(id)!),
      () => deletion() !== undefined,
    );
    const deleteRequested = deletion();
    if (deleteRequested) {
      const since = deleteRequested.since;
      for (const id of result.done) {
        const r = stack.resources.get(id)!;
        if (this.finishedAfter(stack, id, since)) this.resourceEvent(stack, r, 'CREATE_FAILED', 'Resource creation cancelled');
      }
      for (const id of active) if (stack.resources.get(id)!.status === 'NOT_STARTED') stack.resources.delete(id);
      await this.runDelete(stack, new Set(), false);
      return false;
    }
    if (result.failed.length === 0) {
      try {
        stack.outputs = this.evalOutputs(stack, activeSet);
      } catch (err) {
        result.failed.push(stack.name);
        this.env.log(`stack ${stack.name}: outputs: ${String(err)}`);
      }
    }
    if (result.failed.length === 0) {
      this.stackEvent(stack, 'CREATE_COMPLETE');
      return true;
    }
    const failed = result.failed.filter((id) => id !== stack.name);
    for (const id of result.done) {
      const r = stack.resources.get(id)!;
      if (failed.length && r.status === 'CREATE_COMPLETE' && this.wasInFlightWhenFailed(stack, id)) this.resourceEvent(stack, r, 'CREATE_FAILED', 'Resource creation cancelled');
    }
    const reason = `The following resource(s) failed to create: [${failed.sort().join(', ')}]. `;
    if (stack.disableRollback) {
      this.stackEvent(stack, 'CREATE_FAILED', reason);
      return false;
    }
    this.stackEvent(stack, 'ROLLBACK_IN_PROGRESS', `${reason}Rollback requested by user.`);
    const toDelete = active.filter((id) => {
      const r = stack.resources.get(id)!;
      return r.status !== 'NOT_STARTED';
    });
    const undeleted = await this.deleteAll(stack, toDelete, (id) => stack.resources.get(id)!.physicalId);
    for (const id of active) if (stack.resources.get(id)!.status === 'NOT_STARTED') stack.resources.delete(id);
    if (undeleted.length) {
      this.stackEvent(stack, 'ROLLBACK_FAILED', `The following resource(s) failed to delete: [${undeleted.sort().join(', ')}]. `);
    } else {
      this.stackEvent(stack, 'ROLLBACK_COMPLETE');
      // DescribeStacks keeps saying why the stack rolled back.
      stack.reason = `${reason}Rollback requested by user.`;
    }
    return false;
  }

  /** Whether resource `id` started creating before event number `since` and completed after it (it was in flight). */
  private finishedAfter(stack: Stack, id: string, since: number): boolean {
    const started = stack.events.findIndex((e) => e.logicalId === id && e.status === 'CREATE_IN_PROGRESS');
    const completed = stack.events.findIndex((e) => e.logicalId === id && e.status === 'CREATE_COMPLETE');
    return started >= 0 && started < since && completed > since;
  }

  /** A resource that finished after the first failure event was in flight and counts as cancelled. */
  private wasInFlightWhenFailed(stack: Stack, id: string): boolean {
    const firstFailure = stack.events.find((e) => e.status.endsWith('_FAILED') && e.logicalId !== id);
    const started = stack.events.find((e) => e.logicalId === id && e.status === 'CREATE_IN_PROGRESS');
    const completed = stack.events.find((e) => e.logicalId === id && e.status === 'CREATE_COMPLETE');
    if (!firstFailure || !started || !completed) return false;
    return stack.events.indexOf(started) < stack.events.indexOf(firstFailure) && stack.events.indexOf(completed) > stack.events.indexOf(firstFailure);
  }

  private async runUpdate(stack: Stack, cs: ChangeSet): Promise<boolean> {
    const before = {
      template: stack.template,
      templateBody: stack.templateBody,
      params: stack.params,
      tags: stack.tags,
      outputs: stack.outputs,
      description: stack.description,
      resources: new Map([...stack.resources].map(([k, v]) => [k, { ...v }])),
    };
    stack.template = cs.template;
    stack.templateBody = cs.templateBody;
    stack.params = cs.params;
    stack.tags = cs.tags;
    stack.capabilities = cs.capabilities;
    stack.description = cs.template.Description;
    stack.updated = new Date(this.env.clock.now());
    this.stackEvent(stack, 'UPDATE_IN_PROGRESS', 'User Initiated');

    const active = this.activeResources(stack, stack.template, stack.params);
    const activeSet = new Set(active);
    /** Old physical resources to delete in cleanup (replaced ones), by logical id. */
    const replaced = new Map<string, StackResource>();
    /** What this update did, for rollback. */
    const added: string[] = [];
    const modified = new Map<string, Props>();

    const step = async (id: string) => {
      const type = stack.template.Resources[id]!.Type;
      const old = stack.resources.get(id);
      if (!old || !old.physicalId) {
        const record: StackResource = { logicalId: id, type, status: 'NOT_STARTED', updated: new Date(this.env.clock.now()), props: {}, attrs: {} };
        stack.resources.set(id, record);
        added.push(id);
        await this.createResource(stack, stack.template, activeSet, id, record);
        return;
      }
      const provider = PROVIDERS[type]!;
      const props = this.evalProps(stack, stack.template, stack.params, activeSet, id);
      const tagsChanged = TAGGABLE.has(type) && !deepEqual(Object.fromEntries(cs.tags), Object.fromEntries(before.tags));
      const changed = [...new Set([...Object.keys(props), ...Object.keys(old.props)])].filter((k) => !deepEqual(props[k], old.props[k]));
      if (changed.length === 0 && !tagsChanged) return;
      const replace = !provider.update || changed.some((k) => provider.replaceOn.includes(k));
      const ctx = this.resourceContext(stack, id, type);
      if (replace) {
        replaced.set(id, { ...old });
        this.resourceEvent(stack, old, 'UPDATE_IN_PROGRESS', 'Requested update requires the creation of a new physical resource; hence creating one.');
        try {
          const created = await this.provision(stack, id, type, 'create', () => provider.create(props, ctx));
          old.physicalId = created.physicalId;
          old.attrs = created.attrs;
          old.props = props;
          this.resourceEvent(stack, old, 'UPDATE_IN_PROGRESS', 'Resource creation Initiated');
          this.resourceEvent(stack, old, 'UPDATE_COMPLETE');
        } catch (err) {
          this.resourceEvent(stack, old, 'UPDATE_FAILED', this.failureReason(err, id, type));
          throw err;
        }
        return;
      }
      modified.set(id, old.props);
      this.resourceEvent(stack, old, 'UPDATE_IN_PROGRESS');
      try {
        const updated = await this.provision(stack, id, type, 'update', () => provider.update!(old.physicalId!, props, old.props, ctx));
        old.attrs = updated.attrs;
        old.props = props;
        this.resourceEvent(stack, old, 'UPDATE_COMPLETE');
      } catch (err) {
        this.resourceEvent(stack, old, 'UPDATE_FAILED', this.failureReason(err, id, type));
        throw err;
      }
    };

    const result = await runGraph(active, (id) => dependenciesOf(stack.template.Resources[id]!, activeSet), step);
    if (result.failed.length === 0) {
      try {
        stack.outputs = this.evalOutputs(stack, activeSet);
      } catch (err) {
        result.failed.push(stack.name);
        this.env.log(`stack ${stack.name}: outputs: ${String(err)}`);
      }
    }
    if (result.failed.length === 0) {
      const removed = [...stack.resources.keys()].filter((id) => !activeSet.has(id));
      if (removed.length || replaced.size) {
        this.stackEvent(stack, 'UPDATE_COMPLETE_CLEANUP_IN_PROGRESS');
        const removedPhysical = new Map(removed.map((id) => [id, stack.resources.get(id)!.physicalId]));
        // Old physical resources of replaced resources go first (they may hold names or CIDRs), then removed ones.
        for (const [id, old] of replaced) {
          const current = stack.resources.get(id)!;
          const shadow = { ...current, props: old.props };
          try {
            await this.deleteResource(stack, shadow, old.physicalId, false);
          } catch {
            /* a failed cleanup leaves the old resource behind, as CloudFormation does */
          }
          current.status = 'UPDATE_COMPLETE';
        }
        const oldTemplate = stack.template;
        stack.template = before.template;
        await this.deleteAll(stack, removed, (id) => removedPhysical.get(id));
        stack.template = oldTemplate;
        for (const id of removed) stack.resources.delete(id);
      }
      this.stackEvent(stack, 'UPDATE_COMPLETE');
      return true;
    }

    const failed = result.failed.filter((id) => id !== stack.name);
    this.stackEvent(stack, 'UPDATE_ROLLBACK_IN_PROGRESS', `The following resource(s) failed to update: [${failed.sort().join(', ')}]. `);
    // Undo in-place updates and point replaced resources back at their old physical resource.
    for (const [id, oldProps] of modified) {
      const r = stack.resources.get(id)!;
      const provider = PROVIDERS[r.type]!;
      this.resourceEvent(stack, r, 'UPDATE_IN_PROGRESS');
      try {
        stack.tags = before.tags;
        const back = await this.provision(stack, id, r.type, 'update', () => provider.update!(r.physicalId!, oldProps, r.props, this.resourceContext(stack, id, r.type)));
        r.attrs = back.attrs;
        r.props = oldProps;
        this.resourceEvent(stack, r, 'UPDATE_COMPLETE');
      } catch (err) {
        this.resourceEvent(stack, r, 'UPDATE_FAILED', this.failureReason(err, id, r.type));
      }
    }
    const newPhysical = new Map<string, StackResource>();
    for (const [id, old] of replaced) {
      const r = stack.resources.get(id)!;
      if (r.physicalId !== old.physicalId) newPhysical.set(id, { ...r });
      stack.resources.set(id, { ...old, status: 'UPDATE_COMPLETE', updated: new Date(this.env.clock.now()) });
      this.resourceEvent(stack, stack.resources.get(id)!, 'UPDATE_COMPLETE');
    }
    stack.template = before.template;
    stack.templateBody = before.templateBody;
    stack.params = before.params;
    stack.tags = before.tags;
    stack.outputs = before.outputs;
    stack.description = before.description;
    this.stackEvent(stack, 'UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS');
    for (const [, r] of newPhysical) {
      try {
        await this.deleteResource(stack, r, r.physicalId, false);
      } catch {
        /* left behind, as CloudFormation does when cleanup fails */
      }
    }
    for (const id of added.reverse()) {
      const r = stack.resources.get(id)!;
      if (r.physicalId) {
        try {
          await this.deleteResource(stack, r, r.physicalId, false);
        } catch {
          /* left behind */
        }
      } else {
        this.resourceEvent(stack, r, 'DELETE_COMPLETE');
      }
      stack.resources.delete(id);
    }
    this.stackEvent(stack, 'UPDATE_ROLLBACK_COMPLETE');
    return false;
  }

  /** Deletes the stack's resources; `announce` is false when DeleteStack already reported DELETE_IN_PROGRESS. */
  private async runDelete(stack: Stack, retain: ReadonlySet<string>, announce = true): Promise<void> {
    if (announce) this.stackEvent(stack, 'DELETE_IN_PROGRESS', 'User Initiated');
    const ids = [...stack.resources.values()].filter((r) => r.status !== 'DELETE_COMPLETE' && r.status !== 'DELETE_SKIPPED').map((r) => r.logicalId);
    const failed = await this.deleteAll(stack, ids, (id) => stack.resources.get(id)!.physicalId, retain);
    if (failed.length) {
      this.stackEvent(stack, 'DELETE_FAILED', `The following resource(s) failed to delete: [${failed.sort().join(', ')}]. `);
      return;
    }
    stack.deleted = new Date(this.env.clock.now());
    this.stackEvent(stack, 'DELETE_COMPLETE');
  }

  // ------------------------------------------------------------------ ValidateTemplate

  validateTemplate(body: string | undefined): T.ValidateTemplateOutput {
    const tpl = parseTemplate(body);
    const caps = requiredCapabilities(tpl);
    return {
      Parameters: Object.entries(tpl.Parameters ?? {}).map(([k, p]) => ({
        ParameterKey: k,
        DefaultValue: p.Default === undefined ? undefined : String(p.Default as string),
        NoEcho: p.NoEcho === true || p.NoEcho === 'true',
        Description: p.Description,
      })),
      Description: tpl.Description,
      Capabilities: caps.capability ? [caps.capability] : [],
      CapabilitiesReason: caps.capability ? `The following resource(s) require capabilities: [${caps.types.join(', ')}]` : undefined,
      DeclaredTransforms: [],
    };
  }

  // ------------------------------------------------------------------ GetTemplateSummary

  /**
   * The template of a new body, or of a stack (live by name, deleted too by id),
   * summarised: parameters as declared, resource types, capabilities, version,
   * metadata. `aws cloudformation deploy` calls it before an update to learn which
   * parameters the stack's template has. Exactly one source must be given.
   */
  templateSummary(input: T.GetTemplateSummaryCommandInput): T.GetTemplateSummaryOutput {
    const given = [input.TemplateBody, input.TemplateURL, input.StackName, input.StackSetName].filter((v) => v !== undefined);
    if (given.length !== 1) throw validationError('1 validation error detected: exactly one of TemplateBody, TemplateURL, StackName or StackSetName must be specified');
    if (input.TemplateURL !== undefined) throw validationError('hanat-lab does not fetch templates from S3; pass TemplateBody');
    if (input.StackSetName !== undefined) throw validationError(`StackSet ${input.StackSetName} not found`);
    const tpl = input.StackName !== undefined ? this.stack(input.StackName).template : parseTemplate(input.TemplateBody);
    const caps = requiredCapabilities(tpl);
    const types = [...new Set(Object.values(tpl.Resources).map((r) => r.Type))];
    return {
      Parameters: Object.entries(tpl.Parameters ?? {}).map(([k, p]) => ({
        ParameterKey: k,
        DefaultValue: p.Default === undefined ? undefined : Array.isArray(p.Default) ? p.Default.join(',') : scalar(p.Default),
        ParameterType: p.Type,
        NoEcho: p.NoEcho === true || p.NoEcho === 'true',
        Description: p.Description,
        ParameterConstraints: p.AllowedValues ? { AllowedValues: p.AllowedValues.map((v) => scalar(v)) } : {},
      })),
      Description: tpl.Description,
      Capabilities: caps.capability ? [caps.capability] : [],
      CapabilitiesReason: caps.capability ? `The following resource(s) require capabilities: [${caps.types.join(', ')}]` : undefined,
      ResourceTypes: types,
      Version: tpl.AWSTemplateFormatVersion,
      Metadata: tpl.Metadata === undefined ? undefined : JSON.stringify(tpl.Metadata),
      DeclaredTransforms: [],
    };
  }

  static isPseudo(name: string): boolean {
    return (PSEUDO as readonly string[]).includes(name);
  }

  static isUnknown = isUnknown;
}
