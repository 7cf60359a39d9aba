/**
 * The shape of a CloudFormation template, and the few intrinsic functions the
 * renderer writes. Kept deliberately small: this is raw CloudFormation JSON,
 * not a construct library.
 */

/** A CloudFormation value: literals, lists, objects and intrinsic functions. */
export type CfnValue = string | number | boolean | CfnValue[] | { [key: string]: CfnValue };

export interface CfnResource {
  Type: string;
  Condition?: string;
  DependsOn?: string | string[];
  Properties?: Record<string, CfnValue>;
  Metadata?: Record<string, CfnValue>;
  CreationPolicy?: Record<string, CfnValue>;
  UpdatePolicy?: Record<string, CfnValue>;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}

export interface CfnParameter {
  Type: string;
  Description?: string;
  Default?: string;
  AllowedPattern?: string;
  AllowedValues?: string[];
  ConstraintDescription?: string;
  MinLength?: number;
  MaxLength?: number;
}

export interface CfnOutput {
  Description?: string;
  Value: CfnValue;
  Condition?: string;
  Export?: { Name: CfnValue };
}

export interface CfnTemplate {
  AWSTemplateFormatVersion: '2010-09-09';
  Description: string;
  Metadata?: Record<string, CfnValue>;
  Parameters: Record<string, CfnParameter>;
  Conditions?: Record<string, CfnValue>;
  Resources: Record<string, CfnResource>;
  Outputs: Record<string, CfnOutput>;
}

export interface CfnTag {
  Key: string;
  Value: CfnValue;
}

export const ref = (name: string): CfnValue => ({ Ref: name });

export const getAtt = (resource: string, attribute: string): CfnValue => ({ 'Fn::GetAtt': [resource, attribute] });

/** `Fn::Sub`, with an optional variable map. */
export const sub = (text: string, variables?: Record<string, CfnValue>): CfnValue =>
  variables ? { 'Fn::Sub': [text, variables] } : { 'Fn::Sub': text };

/** The name of the region's i-th Availability Zone (0-based), resolved at deploy time. */
/** AZ `index` of the stack: element `index` of the AvailabilityZones parameter (the renderer's header says why not Fn::GetAZs). */
export const azName = (index: number): CfnValue => ({ 'Fn::Select': [index, { Ref: 'AvailabilityZones' }] });

export const ifCondition = (condition: string, whenTrue: CfnValue, whenFalse: CfnValue): CfnValue => ({
  'Fn::If': [condition, whenTrue, whenFalse],
});

export const NO_VALUE: CfnValue = { Ref: 'AWS::NoValue' };

/** A tag list in the `[{Key, Value}]` form most resource types use. */
export function tagList(tags: readonly (readonly [string, CfnValue])[]): CfnValue[] {
  return tags.map(([Key, Value]) => ({ Key, Value }));
}
