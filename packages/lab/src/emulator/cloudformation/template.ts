/**
 * Template parsing and validation, and parameter resolution, with the error
 * messages CloudFormation gives (ValidationError "Template format error: ...",
 * "Parameters: [X] must have values", ...). JSON templates only.
 */
import { AwsError, validationError } from '../errors.js';
import { PSEUDO, references } from './intrinsics.js';
import { PROVIDERS } from './resources.js';
import { scalar } from '../text.js';

export interface ParameterDef {
  Type: string;
  Default?: unknown;
  AllowedValues?: unknown[];
  AllowedPattern?: string;
  ConstraintDescription?: string;
  MinLength?: number | string;
  MaxLength?: number | string;
  MinValue?: number | string;
  MaxValue?: number | string;
  NoEcho?: boolean | string;
  Description?: string;
}

export interface ResourceDef {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: string | string[];
  Condition?: string;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
  Metadata?: unknown;
}

export interface OutputDef {
  Value: unknown;
  Description?: string;
  Condition?: string;
  Export?: { Name: unknown };
}

export interface Template {
  AWSTemplateFormatVersion?: string;
  Description?: string;
  Metadata?: unknown;
  Parameters?: Record<string, ParameterDef>;
  Mappings?: Record<string, Record<string, Record<string, unknown>>>;
  Conditions?: Record<string, unknown>;
  Resources: Record<string, ResourceDef>;
  Outputs?: Record<string, OutputDef>;
  Transform?: unknown;
  Rules?: unknown;
}

const SECTIONS = new Set(['AWSTemplateFormatVersion', 'Description', 'Metadata', 'Parameters', 'Mappings', 'Conditions', 'Resources', 'Outputs', 'Transform', 'Rules']);

const AWS_PARAM_TYPES = /^(AWS::EC2::(AvailabilityZone::Name|Image::Id|Instance::Id|KeyPair::KeyName|SecurityGroup::GroupName|SecurityGroup::Id|Subnet::Id|Volume::Id|VPC::Id)|AWS::Route53::HostedZone::Id)$/;

function isParamType(t: string): boolean {
  if (['String', 'Number', 'List<Number>', 'CommaDelimitedList'].includes(t)) return true;
  if (AWS_PARAM_TYPES.test(t)) return true;
  const list = /^List<(.+)>$/.exec(t);
  if (list && AWS_PARAM_TYPES.test(list[1]!)) return true;
  return /^AWS::SSM::Parameter::Value<.+>$/.test(t) || t === 'AWS::SSM::Parameter::Name';
}

function lineCol(text: string, err: unknown): string {
  const m = /position (\d+)/.exec(err instanceof Error ? err.message : '');
  if (!m) return '';
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const col = before.length - before.lastIndexOf('\n');
  return ` (line ${line}, column ${col})`;
}

/** The largest TemplateBody CloudFormation accepts, in bytes. */
export const TEMPLATE_BODY_LIMIT = 51_200;

/** Parses and validates a template body; throws ValidationError as CloudFormation does. */
export function parseTemplate(body: string | undefined): Template {
  if (body === undefined || body.trim() === '') throw validationError('Either Template URL or Template Body must be specified.');
  // API Reference (CreateChangeSet, CreateStack, UpdateStack, ValidateTemplate, GetTemplateSummary):
  // TemplateBody has "a maximum length of 51,200 bytes"; larger templates go through TemplateURL.
  if (Buffer.byteLength(body, 'utf8') > TEMPLATE_BODY_LIMIT) {
    throw validationError(`1 validation error detected: Value '${body}' at 'templateBody' failed to satisfy constraint: Member must have length less than or equal to ${TEMPLATE_BODY_LIMIT}`);
  }
  const text = body.trim();
  if (!text.startsWith('{')) {
    throw validationError('Template format error: hanat-lab accepts JSON templates only (YAML is not supported by the emulator)');
  }
  let t: unknown;
  try {
    t = JSON.parse(text);
  } catch (err) {
    throw validationError(`Template format error: JSON not well-formed.${lineCol(text, err)}`);
  }
  if (!t || typeof t !== 'object' || Array.isArray(t)) throw validationError('Template format error: JSON not well-formed.');
  const tpl = t as Template;
  for (const k of Object.keys(tpl)) if (!SECTIONS.has(k)) throw validationError(`Template format error: Invalid template property or properties [${k}]`);
  if (tpl.Transform !== undefined) throw validationError('Template format error: hanat-lab does not process template Transforms (macros)');
  if (!tpl.Resources || typeof tpl.Resources !== 'object' || Object.keys(tpl.Resources).length === 0) {
    throw validationError('Template format error: At least one Resources member must be defined.');
  }
  for (const [id, r] of Object.entries(tpl.Resources)) {
    if (!/^[A-Za-z0-9]+$/.test(id)) throw validationError(`Template format error: Resource name ${id} is non alphanumeric.`);
    if (!r || typeof r !== 'object' || typeof r.Type !== 'string') throw validationError(`Template format error: [/Resources/${id}] Every Resources object must contain a Type member.`);
  }
  const unknownTypes = [...new Set(Object.values(tpl.Resources).map((r) => r.Type))].filter((type) => !PROVIDERS[type]);
  if (unknownTypes.length) throw validationError(`Template format error: Unrecognized resource types: [${unknownTypes.join(', ')}]`);
  for (const [name, p] of Object.entries(tpl.Parameters ?? {})) {
    if (!p || typeof p.Type !== 'string') throw validationError(`Template format error: Every Parameters object must contain a Type member.`);
    if (!isParamType(p.Type)) throw validationError(`Template format error: Unrecognized parameter type: ${p.Type}`);
    if (Object.prototype.hasOwnProperty.call(tpl.Resources, name)) throw validationError(`Template format error: Parameter ${name} has the same name as a resource`);
  }
  checkReferences(tpl);
  dependencyOrder(tpl, Object.keys(tpl.Resources));
  return tpl;
}

function checkReferences(tpl: Template): void {
  const known = new Set<string>([...PSEUDO, ...Object.keys(tpl.Parameters ?? {}), ...Object.keys(tpl.Resources)]);
  const unresolved = new Set<string>();
  for (const r of Object.values(tpl.Resources)) {
    for (const name of references(r.Properties)) if (!known.has(name)) unresolved.add(name);
    for (const d of [r.DependsOn ?? []].flat()) {
      if (!Object.prototype.hasOwnProperty.call(tpl.Resources, d)) throw validationError(`Template format error: Unresolved resource dependencies [${d}] in the Resources block of the template`);
    }
    if (r.Condition !== undefined && !(tpl.Conditions && r.Condition in tpl.Conditions)) {
      throw validationError(`Template format error: Unresolved condition dependencies [${r.Condition}] in the Resources block of the template`);
    }
  }
  if (unresolved.size) throw validationError(`Template format error: Unresolved resource dependencies [${[...unresolved].join(', ')}] in the Resources block of the template`);
  for (const o of Object.values(tpl.Outputs ?? {})) {
    for (const name of references(o.Value)) if (!known.has(name)) throw validationError(`Template format error: Unresolved resource dependencies [${name}] in the Outputs block of the template`);
  }
  for (const c of Object.values(tpl.Conditions ?? {})) {
    for (const name of references(c)) {
      if (Object.prototype.hasOwnProperty.call(tpl.Resources, name)) throw validationError(`Template error: Unresolved dependencies [${name}]. Cannot reference resources in the Conditions block of the template`);
    }
  }
}

/** The resources a resource depends on (Ref, GetAtt, Sub, DependsOn), limited to `present`. */
export function dependenciesOf(r: ResourceDef, present: ReadonlySet<string>): string[] {
  const deps = new Set<string>();
  for (const n of references(r.Properties)) if (present.has(n)) deps.add(n);
  for (const d of [r.DependsOn ?? []].flat()) if (present.has(d)) deps.add(d);
  return [...deps];
}

/** Topological order of `ids`; throws CloudFormation's circular dependency error. */
export function dependencyOrder(tpl: Template, ids: readonly string[]): string[] {
  const present = new Set(ids);
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, path: string[]) => {
    const s = state.get(id);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = path.slice(path.indexOf(id));
      throw validationError(`Circular dependency between resources: [${[...new Set(cycle)].sort().join(', ')}]`);
    }
    state.set(id, 'visiting');
    for (const d of dependenciesOf(tpl.Resources[id]!, present)) visit(d, [...path, id]);
    state.set(id, 'done');
    order.push(id);
  };
  for (const id of ids) visit(id, []);
  return order;
}

export interface GivenParameter {
  ParameterKey?: string | undefined;
  ParameterValue?: string | undefined;
  UsePreviousValue?: boolean | undefined;
}

export interface ResolvedParameters {
  /** Values for evaluation (list types split into arrays, SSM types resolved). */
  values: Record<string, string | string[]>;
  /** The values as given (strings), for DescribeStacks and UsePreviousValue. */
  given: Record<string, string>;
  /** SSM-typed parameters: the resolved value (DescribeStacks ResolvedValue). */
  resolved: Record<string, string>;
}

export interface ParameterLookups {
  ssm(name: string): string | undefined;
  exists(type: string, value: string): boolean;
}

export function resolveParameters(tpl: Template, input: readonly GivenParameter[] | undefined, previous: Record<string, string> | undefined, lookups: ParameterLookups): ResolvedParameters {
  const defs = tpl.Parameters ?? {};
  const given = new Map<string, GivenParameter>();
  for (const p of input ?? []) if (p.ParameterKey) given.set(p.ParameterKey, p);
  const extra = [...given.keys()].filter((k) => !(k in defs));
  if (extra.length) throw validationError(`Parameters: [${extra.join(', ')}] do not exist in the template`);
  const out: ResolvedParameters = { values: {}, given: {}, resolved: {} };
  const missing: string[] = [];
  for (const [name, def] of Object.entries(defs)) {
    const g = given.get(name);
    let value: string | undefined;
    if (g?.UsePreviousValue) {
      value = previous?.[name];
      if (value === undefined) throw validationError(`Invalid input for parameter key ${name}. Cannot specify usePreviousValue as true for a parameter key not in the previous template`);
    } else if (g?.ParameterValue !== undefined) value = g.ParameterValue;
    else if (def.Default !== undefined) value = Array.isArray(def.Default) ? def.Default.join(',') : scalar(def.Default);
    if (value === undefined) {
      missing.push(name);
      continue;
    }
    checkParameter(name, def, value, lookups);
    out.given[name] = value;
    const ssmType = /^AWS::SSM::Parameter::Value<(.+)>$/.exec(def.Type);
    if (ssmType) {
      const names = ssmType[1]!.startsWith('List<') || ssmType[1] === 'CommaDelimitedList' ? value.split(',') : [value];
      const values = names.map((n) => lookups.ssm(n.trim()));
      const missingSsm = names.filter((_, i) => values[i] === undefined);
      if (missingSsm.length) throw validationError(`Unable to fetch parameters [${missingSsm.join(',')}] from parameter store for this account.`);
      const resolved = values.join(',');
      out.resolved[name] = resolved;
      out.values[name] = names.length > 1 || ssmType[1]!.startsWith('List<') ? (values as string[]) : resolved;
      continue;
    }
    out.values[name] = def.Type === 'CommaDelimitedList' || def.Type.startsWith('List<') ? (value === '' ? [] : value.split(',').map((s) => (def.Type === 'CommaDelimitedList' ? s : s.trim()))) : value;
  }
  if (missing.length) throw validationError(`Parameters: [${missing.join(', ')}] must have values`);
  return out;
}

function checkParameter(name: string, def: ParameterDef, value: string, lookups: ParameterLookups): void {
  const fail = (msg: string): never => {
    throw validationError(def.ConstraintDescription !== undefined && !msg.startsWith('Parameter validation') ? `Parameter ${name} failed to satisfy constraint: ${def.ConstraintDescription}` : msg);
  };
  if (def.AllowedValues && !def.AllowedValues.map(String).includes(value)) fail(`Parameter '${name}' must be one of AllowedValues`);
  if (def.Type === 'Number' || def.Type === 'List<Number>') {
    for (const v of def.Type === 'Number' ? [value] : value.split(',')) {
      if (v.trim() === '' || Number.isNaN(Number(v))) fail(`Parameter '${name}' must be a number`);
      if (def.MinValue !== undefined && Number(v) < Number(def.MinValue)) fail(`Parameter '${name}' must be a number not less than ${String(def.MinValue)}`);
      if (def.MaxValue !== undefined && Number(v) > Number(def.MaxValue)) fail(`Parameter '${name}' must be a number not greater than ${String(def.MaxValue)}`);
    }
  }
  if (def.Type === 'String' || def.Type === 'CommaDelimitedList' || !def.Type.includes('::')) {
    if (def.MinLength !== undefined && value.length < Number(def.MinLength)) fail(`Parameter '${name}' must contain at least ${String(def.MinLength)} characters`);
    if (def.MaxLength !== undefined && value.length > Number(def.MaxLength)) fail(`Parameter '${name}' must contain at most ${String(def.MaxLength)} characters`);
  }
  if (def.AllowedPattern !== undefined) {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${def.AllowedPattern})$`);
    } catch {
      throw validationError(`Template format error: AllowedPattern for parameter ${name} is not a valid regular expression`);
    }
    if (!re.test(value)) fail(`Parameter '${name}' must match pattern ${def.AllowedPattern}`);
  }
  const awsType = /^(?:List<)?(AWS::EC2::[A-Za-z:]+)>?$/.exec(def.Type);
  if (awsType) {
    const values = def.Type.startsWith('List<') ? value.split(',').map((s) => s.trim()) : [value];
    for (const v of values) {
      if (!lookups.exists(awsType[1]!, v)) throw validationError(`Parameter validation failed: parameter value ${v} for parameter name ${name} does not exist. Rollback requested by user.`);
    }
  }
}

/** The capabilities a template needs (IAM resources; named ones need CAPABILITY_NAMED_IAM). */
export function requiredCapabilities(tpl: Template): { capability?: 'CAPABILITY_IAM' | 'CAPABILITY_NAMED_IAM'; types: string[] } {
  const iam = Object.values(tpl.Resources).filter((r) => r.Type.startsWith('AWS::IAM::'));
  if (!iam.length) return { types: [] };
  const named = iam.some((r) => ['RoleName', 'InstanceProfileName', 'ManagedPolicyName', 'UserName', 'GroupName'].some((p) => r.Properties?.[p] !== undefined));
  return { capability: named ? 'CAPABILITY_NAMED_IAM' : 'CAPABILITY_IAM', types: [...new Set(iam.map((r) => r.Type))] };
}

export function checkCapabilities(tpl: Template, given: readonly string[] | undefined): void {
  const need = requiredCapabilities(tpl);
  if (!need.capability) return;
  const have = new Set(given ?? []);
  const ok = need.capability === 'CAPABILITY_IAM' ? have.has('CAPABILITY_IAM') || have.has('CAPABILITY_NAMED_IAM') : have.has('CAPABILITY_NAMED_IAM');
  if (!ok) throw new AwsError('InsufficientCapabilitiesException', `Requires capabilities : [${need.capability}]`);
}
