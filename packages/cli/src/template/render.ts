/**
 * Renders hanat's CloudFormation template (DESIGN.md "The network the template creates").
 * Minimal contract version: the full renderer follows.
 */

/** A CloudFormation value: literals, lists, objects and intrinsic functions. */
export type CfnValue = string | number | boolean | CfnValue[] | { [key: string]: CfnValue };

export interface CfnResource {
  Type: string;
  Properties?: Record<string, CfnValue>;
  DependsOn?: string | string[];
  Condition?: string;
  UpdatePolicy?: Record<string, CfnValue>;
  CreationPolicy?: Record<string, CfnValue>;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  Metadata?: Record<string, CfnValue>;
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
  Export?: { Name: CfnValue };
  Condition?: string;
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

export interface TemplateOptions {
  /** Number of Availability Zones, MIN_AZS..MAX_AZS. */
  azs: number;
  /** One Elastic IP per AZ. */
  eip: boolean;
  /** Default for the CidrPrefix parameter, e.g. "10.0". */
  cidrPrefix?: string;
}

export const MIN_AZS = 2;
export const MAX_AZS = 6;

export const DEFAULT_TEMPLATE_OPTIONS: TemplateOptions = Object.freeze({ azs: 3, eip: true });

export function renderTemplate(opts: TemplateOptions): CfnTemplate {
  if (!Number.isInteger(opts.azs) || opts.azs < MIN_AZS || opts.azs > MAX_AZS) {
    throw new RangeError(`azs must be an integer from ${MIN_AZS} to ${MAX_AZS}, got ${opts.azs}`);
  }
  return {
    AWSTemplateFormatVersion: '2010-09-09',
    Description: 'hanat: highly available NAT instances (work in progress)',
    Parameters: {},
    Resources: {},
    Outputs: {},
  };
}

export function templateBody(opts: TemplateOptions): string {
  return JSON.stringify(renderTemplate(opts), null, 1) + '\n';
}
