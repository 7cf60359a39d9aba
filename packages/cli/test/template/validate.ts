/**
 * Checks a CloudFormation template against AWS's published resource
 * specification, as packaged in @aws-cdk/aws-service-spec (the database the
 * AWS CDK generates its L1 classes from, rebuilt from the CloudFormation
 * registry schemas and released several times a week).
 *
 * It catches what would otherwise surface only at deploy time: unknown
 * resource types, misspelled or missing properties, values of the wrong shape,
 * references that do not resolve, dependency cycles, and IAM policies that are
 * malformed or grant a mutating action on every resource.
 *
 * Test-only: the spec database is 2.6 MB gzipped and has no place in the CLI bundle.
 */
import { loadAwsServiceSpecSync } from '@aws-cdk/aws-service-spec';
import type { PropertyType, Resource, SpecDatabase, TypeDefinition } from '@aws-cdk/service-spec-types';

export interface Finding {
  /** Where in the template, e.g. `Resources.Vpc.Properties.CidrBlock`. */
  path: string;
  message: string;
}

let cachedDb: SpecDatabase | undefined;
function specDb(): SpecDatabase {
  cachedDb ??= loadAwsServiceSpecSync();
  return cachedDb;
}

/** Every resource type the spec knows, for tests that want to show the source is real. */
export function specResourceCount(): number {
  return specDb().all('resource').length;
}

/** The property holding a resource type's tags, or undefined when the spec says the type is not taggable. */
export function tagProperty(cloudFormationType: string): string | undefined {
  const found = specDb().lookup('resource', 'cloudFormationType', 'equals', cloudFormationType);
  return found.length === 1 ? found[0]?.tagInformation?.tagPropertyName : undefined;
}

const TOP_LEVEL_KEYS = new Set([
  'AWSTemplateFormatVersion', 'Description', 'Metadata', 'Parameters', 'Rules', 'Mappings', 'Conditions', 'Transform', 'Resources', 'Outputs',
]);
const RESOURCE_KEYS = new Set([
  'Type', 'Properties', 'DependsOn', 'Condition', 'Metadata', 'CreationPolicy', 'UpdatePolicy', 'DeletionPolicy', 'UpdateReplacePolicy',
]);
const PARAMETER_KEYS = new Set([
  'Type', 'Default', 'Description', 'AllowedPattern', 'AllowedValues', 'ConstraintDescription', 'MinLength', 'MaxLength', 'MinValue', 'MaxValue', 'NoEcho',
]);
const OUTPUT_KEYS = new Set(['Description', 'Value', 'Export', 'Condition']);
const PSEUDO_PARAMETERS = new Set([
  'AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix',
]);
const DELETION_POLICIES = new Set(['Delete', 'Retain', 'RetainExceptOnCreate', 'Snapshot']);
const LOGICAL_ID = /^[A-Za-z0-9]{1,255}$/;
const LIMITS = { resources: 500, parameters: 200, outputs: 200 };

/** What an intrinsic function evaluates to, as far as shape goes. */
type Produced = 'scalar' | 'list' | 'any';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `{ "Ref": … }` or `{ "Fn::…": … }`: a single-key object naming an intrinsic function. */
function intrinsicName(v: unknown): string | undefined {
  if (!isObject(v)) return undefined;
  const keys = Object.keys(v);
  if (keys.length !== 1) return undefined;
  const [key] = keys as [string];
  return key === 'Ref' || key.startsWith('Fn::') ? key : undefined;
}

const STRING: PropertyType = { type: 'string' };

export function validateTemplate(template: unknown): Finding[] {
  return new Validator(template).run();
}

class Validator {
  private readonly findings: Finding[] = [];
  private readonly t: JsonObject;
  private readonly resources: Record<string, JsonObject> = {};
  private readonly parameters: Record<string, JsonObject> = {};
  private readonly conditions: Set<string>;
  private readonly mappings: JsonObject;
  private readonly db = specDb();
  private readonly specs = new Map<string, Resource>();
  /** resource → resources it needs first (Ref, GetAtt, Sub, DependsOn). */
  private readonly edges = new Map<string, Set<string>>();
  private readonly used = { parameters: new Set<string>(), conditions: new Set<string>() };
  /** The resource whose properties are being read, for dependency edges. */
  private current: string | undefined;

  constructor(template: unknown) {
    this.t = isObject(template) ? template : {};
    if (!isObject(template)) this.report('', 'the template is not a JSON object');
    this.conditions = new Set(isObject(this.t.Conditions) ? Object.keys(this.t.Conditions) : []);
    this.mappings = isObject(this.t.Mappings) ? this.t.Mappings : {};
  }

  run(): Finding[] {
    this.topLevel();
    this.collect();
    this.checkParameters();
    this.checkConditions();
    this.checkResources();
    this.checkOutputs();
    this.checkCycles();
    this.checkUnused();
    return this.findings;
  }

  private report(path: string, message: string): void {
    this.findings.push({ path, message });
  }

  private topLevel(): void {
    for (const key of Object.keys(this.t)) {
      if (!TOP_LEVEL_KEYS.has(key)) this.report(key, `unknown top-level section "${key}"`);
    }
    if (this.t.AWSTemplateFormatVersion !== undefined && this.t.AWSTemplateFormatVersion !== '2010-09-09') {
      this.report('AWSTemplateFormatVersion', `must be "2010-09-09", got ${JSON.stringify(this.t.AWSTemplateFormatVersion)}`);
    }
    if (typeof this.t.Description === 'string' && Buffer.byteLength(this.t.Description) > 1024) {
      this.report('Description', 'longer than 1024 bytes');
    }
    if (!isObject(this.t.Resources) || Object.keys(this.t.Resources).length === 0) {
      this.report('Resources', 'a template needs at least one resource');
    }
  }

  private collect(): void {
    const section = (name: string): JsonObject => (isObject(this.t[name]) ? this.t[name] : {});
    for (const [id, p] of Object.entries(section('Parameters'))) {
      if (!isObject(p)) this.report(`Parameters.${id}`, 'a parameter must be an object');
      else this.parameters[id] = p;
    }
    for (const [id, r] of Object.entries(section('Resources'))) {
      if (!isObject(r)) this.report(`Resources.${id}`, 'a resource must be an object');
      else this.resources[id] = r;
    }
    const counts = {
      resources: Object.keys(this.resources).length,
      parameters: Object.keys(this.parameters).length,
      outputs: Object.keys(section('Outputs')).length,
    };
    for (const [what, limit] of Object.entries(LIMITS) as [keyof typeof LIMITS, number][]) {
      if (counts[what] > limit) this.report(what, `${counts[what]} ${what}; CloudFormation allows ${limit}`);
    }
    for (const [sectionName, ids] of [
      ['Parameters', Object.keys(this.parameters)],
      ['Resources', Object.keys(this.resources)],
      ['Outputs', Object.keys(section('Outputs'))],
      ['Conditions', [...this.conditions]],
    ] as const) {
      for (const id of ids) if (!LOGICAL_ID.test(id)) this.report(`${sectionName}.${id}`, `"${id}" is not a valid logical id (A-Z, a-z, 0-9)`);
    }
    for (const id of Object.keys(this.parameters)) {
      if (id in this.resources) this.report(`Parameters.${id}`, `"${id}" names both a parameter and a resource`);
    }
  }

  private checkParameters(): void {
    for (const [id, p] of Object.entries(this.parameters)) {
      const path = `Parameters.${id}`;
      for (const key of Object.keys(p)) if (!PARAMETER_KEYS.has(key)) this.report(`${path}.${key}`, `unknown parameter attribute "${key}"`);
      const type = p.Type;
      const knownType =
        typeof type === 'string' &&
        (['String', 'Number', 'List<Number>', 'CommaDelimitedList'].includes(type) || /^(List<)?AWS::[A-Za-z0-9:<>]+>?$/.test(type));
      if (!knownType) this.report(`${path}.Type`, `unknown parameter type ${JSON.stringify(type)}`);
      let pattern: RegExp | undefined;
      if (p.AllowedPattern !== undefined) {
        if (typeof p.AllowedPattern !== 'string') this.report(`${path}.AllowedPattern`, 'must be a string');
        else {
          try {
            // CloudFormation matches the whole value (Java `matches`).
            pattern = new RegExp(`^(?:${p.AllowedPattern})$`);
          } catch (err) {
            this.report(`${path}.AllowedPattern`, `not a valid regular expression: ${(err as Error).message}`);
          }
        }
      }
      if (p.Default !== undefined) {
        const value = p.Default;
        if (typeof value !== 'string' && typeof value !== 'number') this.report(`${path}.Default`, 'a default must be a string or number');
        else {
          const text = String(value);
          if (pattern && !pattern.test(text)) this.report(`${path}.Default`, `default ${JSON.stringify(text)} does not match AllowedPattern`);
          if (typeof p.MaxLength === 'number' && text.length > p.MaxLength) this.report(`${path}.Default`, 'default is longer than MaxLength');
          if (typeof p.MinLength === 'number' && text.length < p.MinLength) this.report(`${path}.Default`, 'default is shorter than MinLength');
          if (Array.isArray(p.AllowedValues) && !p.AllowedValues.includes(text)) this.report(`${path}.Default`, 'default is not among AllowedValues');
        }
      }
    }
  }

  private checkConditions(): void {
    if (!isObject(this.t.Conditions)) return;
    for (const [id, c] of Object.entries(this.t.Conditions)) this.conditionExpr(c, `Conditions.${id}`);
  }

  /** A condition: Fn::Equals/Not/And/Or, or `{ "Condition": name }`; refs to parameters only. */
  private conditionExpr(c: Json, path: string): void {
    if (!isObject(c) || Object.keys(c).length !== 1) {
      this.report(path, 'a condition must be Fn::Equals, Fn::Not, Fn::And, Fn::Or or {"Condition": name}');
      return;
    }
    const [fn, arg] = Object.entries(c)[0] as [string, Json];
    if (fn === 'Condition') {
      this.conditionName(arg, path);
    } else if (fn === 'Fn::Equals') {
      if (!Array.isArray(arg) || arg.length !== 2) this.report(path, 'Fn::Equals takes two values');
      else arg.forEach((v, i) => this.conditionOperand(v, `${path}.Fn::Equals[${i}]`));
    } else if (fn === 'Fn::Not' || fn === 'Fn::And' || fn === 'Fn::Or') {
      const [min, max] = fn === 'Fn::Not' ? [1, 1] : [2, 10];
      if (!Array.isArray(arg) || arg.length < min || arg.length > max) this.report(path, `${fn} takes ${min === max ? min : `${min} to ${max}`} conditions`);
      else arg.forEach((v, i) => this.conditionExpr(v, `${path}.${fn}[${i}]`));
    } else {
      this.report(path, `${fn} is not a condition function`);
    }
  }

  private conditionOperand(v: Json, path: string): void {
    const fn = intrinsicName(v);
    if (fn === 'Ref' && isObject(v) && typeof v.Ref === 'string' && v.Ref in this.resources) {
      this.report(path, `conditions cannot refer to resources ("${v.Ref}")`);
      return;
    }
    this.value(v, STRING, path);
  }

  private conditionName(name: Json, path: string): void {
    if (typeof name !== 'string' || !this.conditions.has(name)) {
      this.report(path, `condition ${JSON.stringify(name)} is not defined in Conditions`);
      return;
    }
    this.used.conditions.add(name);
  }

  private resourceSpec(type: string): Resource | undefined {
    if (!this.specs.has(type)) {
      const found = this.db.lookup('resource', 'cloudFormationType', 'equals', type);
      if (found.length === 1) this.specs.set(type, found[0] as Resource);
    }
    return this.specs.get(type);
  }

  private checkResources(): void {
    for (const [id, r] of Object.entries(this.resources)) {
      const path = `Resources.${id}`;
      this.current = id;
      this.edges.set(id, new Set());
      for (const key of Object.keys(r)) if (!RESOURCE_KEYS.has(key)) this.report(`${path}.${key}`, `unknown resource attribute "${key}"`);
      if (r.Condition !== undefined) this.conditionName(r.Condition, `${path}.Condition`);
      this.dependsOn(id, r.DependsOn, `${path}.DependsOn`);
      for (const policy of ['DeletionPolicy', 'UpdateReplacePolicy'] as const) {
        if (r[policy] !== undefined && !DELETION_POLICIES.has(r[policy] as string)) this.report(`${path}.${policy}`, `unknown ${policy} ${JSON.stringify(r[policy])}`);
      }
      if (typeof r.Type !== 'string') {
        this.report(`${path}.Type`, 'every resource needs a Type');
        continue;
      }
      const spec = this.resourceSpec(r.Type);
      if (!spec) {
        this.report(`${path}.Type`, `unknown resource type "${r.Type}"${suggest(r.Type, this.db.all('resource').map((x) => x.cloudFormationType))}`);
        continue;
      }
      if (r.Properties !== undefined && !isObject(r.Properties)) {
        this.report(`${path}.Properties`, 'Properties must be an object');
        continue;
      }
      this.properties(r.Properties ?? {}, spec.properties, r.Type, `${path}.Properties`);
      this.iamPolicies(r.Type, r.Properties ?? {}, `${path}.Properties`);
    }
    this.current = undefined;
  }

  private dependsOn(id: string, deps: Json | undefined, path: string): void {
    if (deps === undefined) return;
    const list = typeof deps === 'string' ? [deps] : deps;
    if (!Array.isArray(list)) {
      this.report(path, 'DependsOn must be a logical id or a list of them');
      return;
    }
    for (const dep of list) {
      if (typeof dep !== 'string' || !(dep in this.resources)) this.report(path, `DependsOn ${JSON.stringify(dep)} is not a resource in this template`);
      else if (dep === id) this.report(path, 'a resource cannot depend on itself');
      else this.edges.get(id)?.add(dep);
    }
  }

  private properties(obj: JsonObject, spec: Record<string, { type: PropertyType; required?: boolean }>, owner: string, path: string): void {
    for (const [name, value] of Object.entries(obj)) {
      const prop = spec[name];
      if (!prop) {
        this.report(`${path}.${name}`, `${owner} has no property "${name}"${suggest(name, Object.keys(spec))}`);
        continue;
      }
      this.value(value, prop.type, `${path}.${name}`);
    }
    for (const [name, prop] of Object.entries(spec)) {
      if (prop.required && !(name in obj)) this.report(path, `${owner} requires property "${name}"`);
    }
  }

  /** Checks a value against a spec type; intrinsic functions stand in for any value of the right shape. */
  private value(v: Json, type: PropertyType, path: string): void {
    if (type.type === 'union') {
      // Accept the value if any member type takes it; otherwise report the closest member's findings.
      let best: Finding[] | undefined;
      const fitting = type.types.filter((member) => shapeFits(v, member));
      for (const member of fitting.length > 0 ? fitting : type.types) {
        const before = this.findings.length;
        this.value(v, member, path);
        const found = this.findings.splice(before);
        if (found.length === 0) return;
        if (!best || found.length < best.length) best = found;
      }
      this.findings.push(...(best ?? []));
      return;
    }
    const fn = intrinsicName(v);
    if (fn !== undefined && isObject(v)) {
      if (fn === 'Fn::If') {
        // Each branch must fit the type on its own.
        const arg = v['Fn::If'];
        if (!Array.isArray(arg) || arg.length !== 3) {
          this.report(path, 'Fn::If takes [condition, value if true, value if false]');
          return;
        }
        this.conditionName(arg[0] as Json, `${path}.Fn::If[0]`);
        this.value(arg[1] as Json, type, `${path}.Fn::If[1]`);
        this.value(arg[2] as Json, type, `${path}.Fn::If[2]`);
        return;
      }
      if (fn === 'Ref' && v.Ref === 'AWS::NoValue') return;
      const produced = this.intrinsic(fn, v[fn] as Json, path);
      if (produced === 'any' || type.type === 'json') return;
      if (type.type === 'array' || type.type === 'map' || type.type === 'ref' || type.type === 'tag') {
        if (type.type !== 'array' || produced !== 'list') this.report(path, `${fn} yields ${produced === 'list' ? 'a list' : 'a single value'} where ${type.type === 'array' ? 'a list' : 'an object'} is expected`);
      } else if (produced === 'list') {
        this.report(path, `${fn} yields a list where a single value is expected`);
      }
      return;
    }
    switch (type.type) {
      case 'string':
      case 'date-time':
        if (typeof v !== 'string') this.report(path, `expected a string, got ${describe(v)}`);
        else if (type.type === 'string' && type.allowedValues && !type.allowedValues.includes(v)) {
          this.report(path, `"${v}" is not one of ${type.allowedValues.join(', ')}`);
        }
        return;
      case 'number':
        if (typeof v !== 'number') this.report(path, `expected a number, got ${describe(v)}`);
        return;
      case 'integer':
        if (typeof v !== 'number' || !Number.isInteger(v)) this.report(path, `expected an integer, got ${describe(v)}`);
        return;
      case 'boolean':
        if (typeof v !== 'boolean') this.report(path, `expected true or false, got ${describe(v)}`);
        return;
      case 'null':
        return;
      case 'json':
        if (typeof v === 'string') return;
        if (!isObject(v) && !Array.isArray(v)) this.report(path, `expected a JSON object, got ${describe(v)}`);
        else this.walkJson(v, path);
        return;
      case 'tag':
        if (!isObject(v)) {
          this.report(path, `expected a tag {Key, Value}, got ${describe(v)}`);
          return;
        }
        this.properties(v, { Key: { type: STRING, required: true }, Value: { type: STRING, required: true } }, 'Tag', path);
        return;
      case 'array':
        if (!Array.isArray(v)) {
          this.report(path, `expected a list, got ${describe(v)}`);
          return;
        }
        v.forEach((el, i) => this.value(el, type.element, `${path}[${i}]`));
        return;
      case 'map':
        if (!isObject(v)) {
          this.report(path, `expected an object, got ${describe(v)}`);
          return;
        }
        for (const [k, el] of Object.entries(v)) this.value(el, type.element, `${path}.${k}`);
        return;
      case 'ref': {
        const def: TypeDefinition = this.db.get('typeDefinition', type.reference);
        if (!isObject(v)) {
          this.report(path, `expected a ${def.name} object, got ${describe(v)}`);
          return;
        }
        this.properties(v, def.properties, def.name, path);
        return;
      }
    }
  }

  /** Free-form JSON (policy documents): only its intrinsic functions are checked. */
  private walkJson(v: Json, path: string): void {
    const fn = intrinsicName(v);
    if (fn !== undefined && isObject(v)) {
      this.value(v, { type: 'json' }, path);
      return;
    }
    if (Array.isArray(v)) v.forEach((el, i) => this.walkJson(el, `${path}[${i}]`));
    else if (isObject(v)) for (const [k, el] of Object.entries(v)) this.walkJson(el, `${path}.${k}`);
  }

  /** Validates one intrinsic function call and says what shape it yields. */
  private intrinsic(fn: string, arg: Json, path: string): Produced {
    const at = `${path}.${fn}`;
    switch (fn) {
      case 'Ref':
        return typeof arg === 'string' ? this.ref(arg, at) : (this.report(at, 'Ref takes a logical id or pseudo parameter name'), 'any');
      case 'Fn::GetAtt': {
        const parts = typeof arg === 'string' ? splitOnce(arg, '.') : arg;
        if (!Array.isArray(parts) || parts.length !== 2 || typeof parts[0] !== 'string') {
          this.report(at, 'Fn::GetAtt takes [resource, attribute] or "resource.attribute"');
          return 'any';
        }
        if (typeof parts[1] !== 'string') {
          this.value(parts[1] as Json, STRING, `${at}[1]`);
          return 'any';
        }
        return this.getAtt(parts[0], parts[1], at);
      }
      case 'Fn::Sub': {
        const [text, vars] = typeof arg === 'string' ? [arg, {}] : Array.isArray(arg) && arg.length === 2 ? [arg[0], arg[1]] : [undefined, undefined];
        if (typeof text !== 'string' || !isObject(vars)) {
          this.report(at, 'Fn::Sub takes a string, or [string, {variables}]');
          return 'scalar';
        }
        for (const [name, value] of Object.entries(vars)) this.value(value, STRING, `${at}.${name}`);
        for (const match of text.matchAll(/\$\{([^}]*)\}/g)) {
          const name = (match[1] ?? '').trim();
          if (name.startsWith('!') || name in vars) continue;
          if (name.includes('.') && !PSEUDO_PARAMETERS.has(name)) {
            const [res, attr] = splitOnce(name, '.') as [string, string];
            this.getAtt(res, attr, at);
          } else {
            this.ref(name, at);
          }
        }
        return 'scalar';
      }
      case 'Fn::Join':
        if (!Array.isArray(arg) || arg.length !== 2 || typeof arg[0] !== 'string') {
          this.report(at, 'Fn::Join takes [delimiter, [values]]');
          return 'scalar';
        }
        this.listArgument(arg[1] as Json, `${at}[1]`);
        return 'scalar';
      case 'Fn::Select':
        if (!Array.isArray(arg) || arg.length !== 2) {
          this.report(at, 'Fn::Select takes [index, list]');
          return 'scalar';
        }
        if (typeof arg[0] === 'number') {
          if (!Number.isInteger(arg[0]) || arg[0] < 0) this.report(`${at}[0]`, 'index must be a whole number from 0');
        } else {
          this.value(arg[0] as Json, STRING, `${at}[0]`);
        }
        if (Array.isArray(arg[1]) && typeof arg[0] === 'number' && arg[0] >= arg[1].length) this.report(`${at}[0]`, 'index is past the end of the list');
        this.listArgument(arg[1] as Json, `${at}[1]`);
        return 'scalar';
      case 'Fn::GetAZs':
        if (arg !== '') this.value(arg, STRING, at);
        return 'list';
      case 'Fn::Base64':
        this.value(arg, STRING, at);
        return 'scalar';
      case 'Fn::Split':
        if (!Array.isArray(arg) || arg.length !== 2 || typeof arg[0] !== 'string') this.report(at, 'Fn::Split takes [delimiter, string]');
        else this.value(arg[1] as Json, STRING, `${at}[1]`);
        return 'list';
      case 'Fn::FindInMap': {
        if (!Array.isArray(arg) || arg.length !== 3) {
          this.report(at, 'Fn::FindInMap takes [map, top-level key, second-level key]');
          return 'any';
        }
        if (typeof arg[0] !== 'string' || !(arg[0] in this.mappings)) this.report(`${at}[0]`, `mapping ${JSON.stringify(arg[0])} is not defined in Mappings`);
        this.value(arg[1] as Json, STRING, `${at}[1]`);
        this.value(arg[2] as Json, STRING, `${at}[2]`);
        return 'any';
      }
      case 'Fn::ImportValue':
        this.value(arg, STRING, at);
        return 'scalar';
      case 'Fn::Cidr':
        if (!Array.isArray(arg) || arg.length !== 3) this.report(at, 'Fn::Cidr takes [ipBlock, count, cidrBits]');
        return 'list';
      case 'Fn::If': {
        if (!Array.isArray(arg) || arg.length !== 3) {
          this.report(at, 'Fn::If takes [condition, value if true, value if false]');
          return 'any';
        }
        this.conditionName(arg[0] as Json, `${at}[0]`);
        const shapes = [arg[1], arg[2]].map((branch, i) => this.shapeOf(branch as Json, `${at}[${i + 1}]`));
        return shapes[0] === shapes[1] ? (shapes[0] as Produced) : 'any';
      }
      case 'Fn::Equals':
      case 'Fn::Not':
      case 'Fn::And':
      case 'Fn::Or':
        this.report(at, `${fn} belongs in the Conditions section; use Fn::If with a named condition here`);
        return 'scalar';
      default:
        this.report(at, `unknown intrinsic function ${fn}`);
        return 'any';
    }
  }

  /** A list argument (Fn::Join, Fn::Select): a literal list of values, or a function yielding a list. */
  private listArgument(v: Json, path: string): void {
    if (Array.isArray(v)) {
      v.forEach((el, i) => this.value(el, STRING, `${path}[${i}]`));
      return;
    }
    const fn = intrinsicName(v);
    if (fn === undefined || !isObject(v)) {
      this.report(path, `expected a list, got ${describe(v)}`);
      return;
    }
    if (this.intrinsic(fn, v[fn] as Json, path) === 'scalar') this.report(path, `${fn} yields a single value where a list is expected`);
  }

  private shapeOf(v: Json, path: string): Produced {
    const fn = intrinsicName(v);
    if (fn !== undefined && isObject(v)) return fn === 'Ref' && v.Ref === 'AWS::NoValue' ? 'any' : this.intrinsic(fn, v[fn] as Json, path);
    if (Array.isArray(v)) {
      v.forEach((el, i) => this.walkJson(el, `${path}[${i}]`));
      return 'list';
    }
    this.walkJson(v, path);
    return 'scalar';
  }

  private ref(name: string, path: string): Produced {
    if (PSEUDO_PARAMETERS.has(name)) return name === 'AWS::NotificationARNs' ? 'list' : 'scalar';
    const param = this.parameters[name];
    if (param) {
      this.used.parameters.add(name);
      const type = typeof param.Type === 'string' ? param.Type : '';
      return type.startsWith('List<') || type === 'CommaDelimitedList' ? 'list' : 'scalar';
    }
    if (name in this.resources) {
      this.dependOn(name, path);
      return 'scalar';
    }
    this.report(path, `Ref to "${name}", which is neither a parameter, a resource nor a pseudo parameter${suggest(name, [...Object.keys(this.parameters), ...Object.keys(this.resources)])}`);
    return 'any';
  }

  private getAtt(resource: string, attribute: string, path: string): Produced {
    const r = this.resources[resource];
    if (!r) {
      this.report(path, `Fn::GetAtt on "${resource}", which is not a resource in this template${suggest(resource, Object.keys(this.resources))}`);
      return 'any';
    }
    this.dependOn(resource, path);
    const spec = typeof r.Type === 'string' ? this.resourceSpec(r.Type) : undefined;
    if (!spec) return 'any'; // the resource's own check reports its type
    const attr = spec.attributes[attribute];
    if (!attr) {
      this.report(path, `${spec.cloudFormationType} has no attribute "${attribute}"${suggest(attribute, Object.keys(spec.attributes))}`);
      return 'any';
    }
    return attr.type.type === 'array' ? 'list' : 'scalar';
  }

  private dependOn(target: string, path: string): void {
    if (this.current === undefined) return;
    if (target === this.current) this.report(path, `"${target}" refers to itself`);
    else this.edges.get(this.current)?.add(target);
  }

  private checkOutputs(): void {
    if (!isObject(this.t.Outputs)) return;
    for (const [id, o] of Object.entries(this.t.Outputs)) {
      const path = `Outputs.${id}`;
      if (!isObject(o)) {
        this.report(path, 'an output must be an object');
        continue;
      }
      for (const key of Object.keys(o)) if (!OUTPUT_KEYS.has(key)) this.report(`${path}.${key}`, `unknown output attribute "${key}"`);
      if (o.Value === undefined) this.report(path, 'an output needs a Value');
      else this.value(o.Value, STRING, `${path}.Value`);
      if (o.Condition !== undefined) this.conditionName(o.Condition, `${path}.Condition`);
      if (o.Export !== undefined) {
        if (!isObject(o.Export) || o.Export.Name === undefined) this.report(`${path}.Export`, 'Export needs a Name');
        else this.value(o.Export.Name, STRING, `${path}.Export.Name`);
      }
    }
  }

  /** CloudFormation refuses a template whose resources depend on each other in a circle. */
  private checkCycles(): void {
    const state = new Map<string, 'visiting' | 'done'>();
    const stack: string[] = [];
    const visit = (id: string): void => {
      if (state.get(id) === 'done') return;
      if (state.get(id) === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(id)), id];
        this.report(`Resources.${id}`, `circular dependency: ${cycle.join(' -> ')}`);
        return;
      }
      state.set(id, 'visiting');
      stack.push(id);
      for (const next of this.edges.get(id) ?? []) visit(next);
      stack.pop();
      state.set(id, 'done');
    };
    for (const id of this.edges.keys()) visit(id);
  }

  private checkUnused(): void {
    for (const id of Object.keys(this.parameters)) {
      if (!this.used.parameters.has(id)) this.report(`Parameters.${id}`, `parameter "${id}" is never used`);
    }
    for (const id of this.conditions) {
      if (!this.used.conditions.has(id)) this.report(`Conditions.${id}`, `condition "${id}" is never used`);
    }
  }

  // ---- IAM ----

  private iamPolicies(type: string, props: JsonObject, path: string): void {
    if (type === 'AWS::IAM::Role') {
      if (props.AssumeRolePolicyDocument !== undefined) checkPolicy(props.AssumeRolePolicyDocument, `${path}.AssumeRolePolicyDocument`, 'trust', this.findings);
      if (Array.isArray(props.Policies)) {
        props.Policies.forEach((p, i) => {
          if (isObject(p) && p.PolicyDocument !== undefined) checkPolicy(p.PolicyDocument, `${path}.Policies[${i}].PolicyDocument`, 'identity', this.findings);
        });
      }
    }
    if ((type === 'AWS::IAM::Policy' || type === 'AWS::IAM::ManagedPolicy') && props.PolicyDocument !== undefined) {
      checkPolicy(props.PolicyDocument, `${path}.PolicyDocument`, 'identity', this.findings);
    }
  }
}

const CONDITION_OPERATORS = new Set([
  'StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike',
  'NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals',
  'DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan', 'DateGreaterThanEquals',
  'Bool', 'BinaryEquals', 'IpAddress', 'NotIpAddress', 'ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike', 'Null',
]);
const STATEMENT_KEYS = new Set(['Sid', 'Effect', 'Principal', 'NotPrincipal', 'Action', 'NotAction', 'Resource', 'NotResource', 'Condition']);
const ACTION = /^[a-z0-9-]+:[A-Za-z0-9*?]+$/;
const CONDITION_KEY = /^[A-Za-z0-9-]+:[A-Za-z0-9_:/.${}@+=-]+$/;
/** Read-only IAM actions: the only ones hanat grants on every resource. */
const READ_ONLY = /^[a-z0-9-]+:(Describe|Get|List)[A-Za-z0-9*]*$/;

/** An IAM condition operator: a base operator, optionally set-qualified and/or `IfExists`. */
export function isConditionOperator(op: string): boolean {
  const base = op.replace(/^(ForAllValues|ForAnyValue):/, '').replace(/IfExists$/, '');
  return CONDITION_OPERATORS.has(base) && !(base === 'Null' && op.endsWith('IfExists'));
}

function checkPolicy(doc: Json, path: string, kind: 'trust' | 'identity', findings: Finding[]): void {
  const report = (at: string, message: string) => findings.push({ path: at, message });
  if (!isObject(doc) || intrinsicName(doc) !== undefined) {
    report(path, 'a policy document must be a literal JSON object so it can be audited');
    return;
  }
  for (const key of Object.keys(doc)) if (!['Version', 'Id', 'Statement'].includes(key)) report(`${path}.${key}`, `unknown policy element "${key}"`);
  if (doc.Version !== '2012-10-17') report(`${path}.Version`, `must be "2012-10-17", got ${JSON.stringify(doc.Version)}`);
  const statements = Array.isArray(doc.Statement) ? doc.Statement : isObject(doc.Statement) ? [doc.Statement] : [];
  if (statements.length === 0) report(`${path}.Statement`, 'a policy needs at least one statement');
  const sids = new Set<string>();
  statements.forEach((s, i) => {
    const at = `${path}.Statement[${i}]`;
    if (!isObject(s)) {
      report(at, 'a statement must be an object');
      return;
    }
    for (const key of Object.keys(s)) if (!STATEMENT_KEYS.has(key)) report(`${at}.${key}`, `unknown statement element "${key}"`);
    if (s.Sid !== undefined) {
      if (typeof s.Sid !== 'string' || !/^[A-Za-z0-9]*$/.test(s.Sid)) report(`${at}.Sid`, 'Sid must be alphanumeric');
      else if (sids.has(s.Sid)) report(`${at}.Sid`, `duplicate Sid "${s.Sid}"`);
      else sids.add(s.Sid);
    }
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') report(`${at}.Effect`, `Effect must be Allow or Deny, got ${JSON.stringify(s.Effect)}`);
    const hasAction = s.Action !== undefined;
    if (hasAction === (s.NotAction !== undefined)) report(at, 'a statement needs exactly one of Action and NotAction');
    const actions = toList(s.Action ?? s.NotAction);
    for (const a of actions) if (typeof a !== 'string' || (a !== '*' && !ACTION.test(a))) report(`${at}.Action`, `${JSON.stringify(a)} is not a "service:Action" name`);
    if (kind === 'trust') {
      if (s.Principal === undefined && s.NotPrincipal === undefined) report(at, 'a trust policy statement needs a Principal');
      if (s.Resource !== undefined || s.NotResource !== undefined) report(at, 'a trust policy statement takes no Resource');
    } else {
      if (s.Principal !== undefined || s.NotPrincipal !== undefined) report(at, 'an identity policy statement takes no Principal');
      if ((s.Resource !== undefined) === (s.NotResource !== undefined)) report(at, 'a statement needs exactly one of Resource and NotResource');
    }
    for (const r of toList(s.Resource ?? s.NotResource ?? [])) checkPolicyResource(r, `${at}.Resource`, report);
    if (s.Condition !== undefined) checkPolicyCondition(s.Condition, `${at}.Condition`, report);

    if (kind === 'identity' && s.Effect === 'Allow') {
      if (s.NotAction !== undefined || s.NotResource !== undefined) report(at, 'Allow with NotAction or NotResource grants more than it names');
      const resources = toList(s.Resource ?? []);
      const mutating = actions.filter((a): a is string => typeof a === 'string' && !READ_ONLY.test(a));
      if (resources.includes('*') && mutating.length > 0) report(at, `mutating action(s) ${mutating.join(', ')} granted on every resource ("*")`);
      const wildcardArns = resources.filter((r) => (typeof r === 'string' ? r !== '*' && r.includes('*') : subText(r)?.includes('*')));
      if (wildcardArns.length > 0 && mutating.length > 0 && s.Condition === undefined) {
        report(at, `mutating action(s) ${mutating.join(', ')} on wildcard ARNs without a Condition to scope them`);
      }
    }
  });
}

function checkPolicyResource(r: Json, path: string, report: (at: string, message: string) => void): void {
  const text = typeof r === 'string' ? r : subText(r);
  if (text === undefined) {
    if (intrinsicName(r) === undefined) report(path, `${JSON.stringify(r)} is not an ARN`);
    return; // Ref / GetAtt of an ARN: shape checked by the template validator
  }
  if (text !== '*' && !text.startsWith('arn:')) report(path, `${JSON.stringify(text)} is neither "*" nor an ARN`);
}

function checkPolicyCondition(c: Json, path: string, report: (at: string, message: string) => void): void {
  if (!isObject(c)) {
    report(path, 'Condition must be an object of operators');
    return;
  }
  for (const [op, block] of Object.entries(c)) {
    if (!isConditionOperator(op)) report(`${path}.${op}`, `unknown condition operator "${op}"`);
    if (!isObject(block) || intrinsicName(block) !== undefined) {
      report(`${path}.${op}`, 'an operator takes an object of condition keys');
      continue;
    }
    for (const [key, value] of Object.entries(block)) {
      if (!CONDITION_KEY.test(key)) report(`${path}.${op}.${key}`, `"${key}" is not a condition key`);
      const values = Array.isArray(value) ? value : [value];
      if (values.length === 0) report(`${path}.${op}.${key}`, 'a condition needs at least one value');
      for (const v of values) {
        if (typeof v !== 'string' && typeof v !== 'boolean' && typeof v !== 'number' && intrinsicName(v) === undefined) {
          report(`${path}.${op}.${key}`, `${JSON.stringify(v)} is not a condition value`);
        }
      }
    }
  }
}

/** Whether a value has the JSON shape of a type (used to pick the member of a union to report against). */
function shapeFits(v: Json, type: PropertyType): boolean {
  if (intrinsicName(v) !== undefined) return true;
  switch (type.type) {
    case 'string':
    case 'date-time':
      return typeof v === 'string';
    case 'number':
    case 'integer':
      return typeof v === 'number';
    case 'boolean':
      return typeof v === 'boolean';
    case 'array':
      return Array.isArray(v);
    case 'json':
      return typeof v === 'object' && v !== null;
    case 'map':
    case 'ref':
    case 'tag':
      return isObject(v);
    default:
      return true;
  }
}

/** The template string of a `Fn::Sub`, if that is what `v` is. */
function subText(v: Json): string | undefined {
  if (!isObject(v) || intrinsicName(v) !== 'Fn::Sub') return undefined;
  const arg = v['Fn::Sub'];
  if (typeof arg === 'string') return arg;
  return Array.isArray(arg) && typeof arg[0] === 'string' ? arg[0] : undefined;
}

const toList = (v: Json | undefined): Json[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function splitOnce(s: string, sep: string): [string, string] | [string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s] : [s.slice(0, i), s.slice(i + 1)];
}

function describe(v: Json): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** ` (did you mean "X"?)` when a known name is close to the unknown one. */
function suggest(name: string, known: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const [a, b] = [name.toLowerCase(), candidate.toLowerCase()];
    const contains = Math.min(a.length, b.length) >= 3 && (a.includes(b) || b.includes(a));
    // Case slips first, then names that contain one another (closest length first), then typos.
    const d = a === b ? 0 : contains ? 0.5 + Math.abs(a.length - b.length) / 1000 : editDistance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? ` (did you mean "${best}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
