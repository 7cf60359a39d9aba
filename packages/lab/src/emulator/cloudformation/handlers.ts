/** CloudFormation operations (awsQuery protocol, Version 2010-05-15). */
import * as cfn from '@aws-sdk/client-cloudformation';
import type * as T from '@aws-sdk/client-cloudformation';
import { validationError } from '../errors.js';
import { op, opTable, paginate, type OpContext, type Out } from '../protocol/ops.js';
import { tagList } from '../tags.js';
import type { ChangeSet, Stack, StackResource } from './engine.js';

const invalidToken = () => validationError('Invalid NextToken');

const STACK_STATUSES: readonly string[] = Object.values(cfn.StackStatus);

function parameters(stack: Stack | ChangeSet): T.Parameter[] {
  const defs = stack.template.Parameters ?? {};
  return Object.entries(stack.params.given).map(([k, v]) => {
    const noEcho = defs[k]?.NoEcho === true || defs[k]?.NoEcho === 'true';
    const resolved = stack.params.resolved[k];
    return { ParameterKey: k, ParameterValue: noEcho ? '****' : v, ...(resolved !== undefined ? { ResolvedValue: resolved } : {}) };
  });
}

function renderStack(s: Stack): T.Stack {
  return {
    StackId: s.id,
    StackName: s.name,
    ChangeSetId: s.changeSetId,
    Description: s.description,
    Parameters: parameters(s),
    CreationTime: s.created,
    DeletionTime: s.deleted,
    LastUpdatedTime: s.updated,
    RollbackConfiguration: {},
    StackStatus: s.status as T.StackStatus,
    StackStatusReason: s.reason,
    DisableRollback: s.disableRollback,
    NotificationARNs: [],
    Capabilities: s.capabilities as T.Capability[],
    Outputs: s.outputs.map((o) => ({ OutputKey: o.key, OutputValue: o.value, Description: o.description, ExportName: o.exportName })),
    Tags: tagList(s.tags),
    EnableTerminationProtection: false,
    DriftInformation: { StackDriftStatus: 'NOT_CHECKED' },
  };
}

function renderResource(s: Stack, r: StackResource): T.StackResource {
  return {
    StackName: s.name,
    StackId: s.id,
    LogicalResourceId: r.logicalId,
    PhysicalResourceId: r.physicalId,
    ResourceType: r.type,
    Timestamp: r.updated,
    ResourceStatus: r.status as T.ResourceStatus,
    ResourceStatusReason: r.reason,
    DriftInformation: { StackResourceDriftStatus: 'NOT_CHECKED' },
  };
}

function liveResources(s: Stack): StackResource[] {
  return [...s.resources.values()].filter((r) => r.status !== 'NOT_STARTED');
}

function cfnOf(ctx: OpContext) {
  return ctx.region.cloudformation;
}

export const cloudFormationOperations = opTable([
  op<T.CreateChangeSetCommandInput, Out<T.CreateChangeSetCommandOutput>>(cfn.CreateChangeSet$, (input, ctx) => {
    const cs = cfnOf(ctx).createChangeSet(input);
    return { Id: cs.id, StackId: cs.stack.id };
  }),

  op<T.DescribeChangeSetCommandInput, Out<T.DescribeChangeSetCommandOutput>>(cfn.DescribeChangeSet$, (input, ctx) => {
    const cs = cfnOf(ctx).changeSet(input.ChangeSetName, input.StackName);
    const page = paginate(cs.status === 'CREATE_COMPLETE' ? cs.changes : [], 100, input.NextToken, invalidToken);
    return {
      ChangeSetName: cs.name,
      ChangeSetId: cs.id,
      StackId: cs.stack.id,
      StackName: cs.stack.name,
      Description: cs.description,
      Parameters: parameters(cs),
      CreationTime: cs.created,
      ExecutionStatus: cs.executionStatus as T.ExecutionStatus,
      Status: cs.status as T.ChangeSetStatus,
      StatusReason: cs.reason,
      NotificationARNs: [],
      RollbackConfiguration: {},
      Capabilities: cs.capabilities as T.Capability[],
      Tags: tagList(cs.tags),
      Changes: page.items,
      NextToken: page.next,
      IncludeNestedStacks: false,
    };
  }),

  op<T.ExecuteChangeSetCommandInput, object>(cfn.ExecuteChangeSet$, (input, ctx) => {
    cfnOf(ctx).executeChangeSet(input.ChangeSetName, input.StackName, input.DisableRollback);
    return {};
  }),

  op<T.DeleteChangeSetCommandInput, object>(cfn.DeleteChangeSet$, (input, ctx) => {
    cfnOf(ctx).deleteChangeSet(input.ChangeSetName, input.StackName);
    return {};
  }),

  op<T.ListChangeSetsCommandInput, Out<T.ListChangeSetsCommandOutput>>(cfn.ListChangeSets$, (input, ctx) => {
    const list = cfnOf(ctx).listChangeSets(input.StackName);
    const page = paginate(list, 100, input.NextToken, invalidToken);
    return {
      Summaries: page.items.map((cs) => ({
        StackId: cs.stack.id,
        StackName: cs.stack.name,
        ChangeSetId: cs.id,
        ChangeSetName: cs.name,
        ExecutionStatus: cs.executionStatus as T.ExecutionStatus,
        Status: cs.status as T.ChangeSetStatus,
        StatusReason: cs.reason,
        CreationTime: cs.created,
        Description: cs.description,
        IncludeNestedStacks: false,
      })),
      NextToken: page.next,
    };
  }),

  op<T.DescribeStacksCommandInput, Out<T.DescribeStacksCommandOutput>>(cfn.DescribeStacks$, (input, ctx) => {
    const c = cfnOf(ctx);
    const stacks = input.StackName ? [c.stack(input.StackName)] : c.stacks.filter((s) => s.status !== 'DELETE_COMPLETE');
    const page = paginate(stacks, 100, input.NextToken, invalidToken);
    return { Stacks: page.items.map(renderStack), NextToken: page.next };
  }),

  op<T.ListStacksCommandInput, Out<T.ListStacksCommandOutput>>(cfn.ListStacks$, (input, ctx) => {
    const unknown = (input.StackStatusFilter ?? []).filter((f) => !STACK_STATUSES.includes(f));
    if (unknown.length) {
      throw validationError(`1 validation error detected: Value '[${unknown.join(', ')}]' at 'stackStatusFilter' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [${STACK_STATUSES.join(', ')}]]`);
    }
    let stacks = cfnOf(ctx).stacks;
    if (input.StackStatusFilter?.length) stacks = stacks.filter((s) => input.StackStatusFilter!.includes(s.status as T.StackStatus));
    const page = paginate(stacks, 100, input.NextToken, invalidToken);
    return {
      StackSummaries: page.items.map((s) => ({
        StackId: s.id,
        StackName: s.name,
        TemplateDescription: s.description,
        CreationTime: s.created,
        LastUpdatedTime: s.updated,
        DeletionTime: s.deleted,
        StackStatus: s.status as T.StackStatus,
        StackStatusReason: s.reason,
        DriftInformation: { StackDriftStatus: 'NOT_CHECKED' },
      })),
      NextToken: page.next,
    };
  }),

  op<T.DescribeStackEventsCommandInput, Out<T.DescribeStackEventsCommandOutput>>(cfn.DescribeStackEvents$, (input, ctx) => {
    // DescribeStackEvents words a missing stack differently from DescribeStacks.
    const s = input.StackName ? cfnOf(ctx).findStack(input.StackName) : undefined;
    if (!s) throw validationError(`Stack [${input.StackName ?? ''}] does not exist`);
    const newestFirst = [...s.events].reverse();
    const page = paginate(newestFirst, 100, input.NextToken, invalidToken);
    return {
      StackEvents: page.items.map((e) => ({
        StackId: s.id,
        EventId: e.id,
        StackName: s.name,
        LogicalResourceId: e.logicalId,
        PhysicalResourceId: e.physicalId,
        ResourceType: e.type,
        Timestamp: e.time,
        ResourceStatus: e.status as T.ResourceStatus,
        ResourceStatusReason: e.reason,
        ResourceProperties: e.props,
      })),
      NextToken: page.next,
    };
  }),

  op<T.DescribeStackResourcesCommandInput, Out<T.DescribeStackResourcesCommandOutput>>(cfn.DescribeStackResources$, (input, ctx) => {
    const c = cfnOf(ctx);
    let stack: Stack;
    if (input.StackName) stack = c.stack(input.StackName);
    else if (input.PhysicalResourceId) {
      const found = c.stacks.find((s) => s.status !== 'DELETE_COMPLETE' && [...s.resources.values()].some((r) => r.physicalId === input.PhysicalResourceId));
      if (!found) throw validationError(`Stack for ${input.PhysicalResourceId} does not exist`);
      stack = found;
    } else throw validationError('Either StackName or PhysicalResourceId must be specified.');
    let list = liveResources(stack);
    if (input.LogicalResourceId) list = list.filter((r) => r.logicalId === input.LogicalResourceId);
    return { StackResources: list.map((r) => renderResource(stack, r)) };
  }),

  op<T.DescribeStackResourceCommandInput, Out<T.DescribeStackResourceCommandOutput>>(cfn.DescribeStackResource$, (input, ctx) => {
    const stack = cfnOf(ctx).stack(input.StackName);
    const r = liveResources(stack).find((x) => x.logicalId === input.LogicalResourceId);
    if (!r) throw validationError(`Resource ${input.LogicalResourceId ?? ''} does not exist for stack ${stack.name}`);
    const base = renderResource(stack, r);
    return { StackResourceDetail: { ...base, Timestamp: undefined, LastUpdatedTimestamp: r.updated, Metadata: JSON.stringify(stack.template.Resources[r.logicalId]?.Metadata ?? {}) } };
  }),

  op<T.ListStackResourcesCommandInput, Out<T.ListStackResourcesCommandOutput>>(cfn.ListStackResources$, (input, ctx) => {
    const stack = cfnOf(ctx).stack(input.StackName);
    const page = paginate(liveResources(stack), 100, input.NextToken, invalidToken);
    return {
      StackResourceSummaries: page.items.map((r) => ({
        LogicalResourceId: r.logicalId,
        PhysicalResourceId: r.physicalId,
        ResourceType: r.type,
        LastUpdatedTimestamp: r.updated,
        ResourceStatus: r.status as T.ResourceStatus,
        ResourceStatusReason: r.reason,
        DriftInformation: { StackResourceDriftStatus: 'NOT_CHECKED' },
      })),
      NextToken: page.next,
    };
  }),

  op<T.GetTemplateCommandInput, Out<T.GetTemplateCommandOutput>>(cfn.GetTemplate$, (input, ctx) => {
    const c = cfnOf(ctx);
    if (input.ChangeSetName) {
      const cs = c.changeSet(input.ChangeSetName, input.StackName);
      return { TemplateBody: cs.templateBody, StagesAvailable: ['Original', 'Processed'] };
    }
    const s = c.stack(input.StackName);
    return { TemplateBody: s.templateBody, StagesAvailable: ['Original', 'Processed'] };
  }),

  op<T.ValidateTemplateCommandInput, Out<T.ValidateTemplateCommandOutput>>(cfn.ValidateTemplate$, (input, ctx) => cfnOf(ctx).validateTemplate(input.TemplateBody)),

  op<T.GetTemplateSummaryCommandInput, Out<T.GetTemplateSummaryCommandOutput>>(cfn.GetTemplateSummary$, (input, ctx) => cfnOf(ctx).templateSummary(input)),

  op<T.DeleteStackCommandInput, object>(cfn.DeleteStack$, (input, ctx) => {
    cfnOf(ctx).deleteStack(input.StackName, input.RetainResources);
    return {};
  }),

  op<T.CreateStackCommandInput, Out<T.CreateStackCommandOutput>>(cfn.CreateStack$, (input, ctx) => ({ StackId: cfnOf(ctx).createStack(input).id })),

  op<T.UpdateStackCommandInput, Out<T.UpdateStackCommandOutput>>(cfn.UpdateStack$, (input, ctx) => ({ StackId: cfnOf(ctx).updateStack(input).id })),
]);
