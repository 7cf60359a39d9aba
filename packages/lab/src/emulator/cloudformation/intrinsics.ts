/**
 * Template evaluation: Ref, Fn::GetAtt, Fn::Sub (both forms), Fn::Join,
 * Fn::Select, Fn::Split, Fn::GetAZs, Fn::Cidr, Fn::If, Fn::Equals, Fn::Not,
 * Fn::And, Fn::Or, Fn::Base64, Fn::FindInMap, Fn::ImportValue, AWS::NoValue,
 * pseudo parameters and `{{resolve:ssm:...}}` dynamic references, as the
 * CloudFormation User Guide's "Intrinsic function reference" describes them.
 *
 * A value that is not known yet (an attribute of a resource a change set will
 * create or replace) evaluates to an Unknown, which propagates; change sets use
 * it to tell static from dynamic changes.
 */
import { parseCidr, subdivide } from '../cidr.js';
import { validationError } from '../errors.js';

export const NO_VALUE: unique symbol = Symbol('AWS::NoValue');

export class Unknown {
  constructor(readonly what: string) {}
}

export const PSEUDO = ['AWS::AccountId', 'AWS::NotificationARNs', 'AWS::NoValue', 'AWS::Partition', 'AWS::Region', 'AWS::StackId', 'AWS::StackName', 'AWS::URLSuffix'] as const;

export interface EvalContext {
  /** Parameter values after defaults and SSM resolution (list types as arrays). */
  params: Record<string, string | string[]>;
  pseudo: Record<string, string | string[]>;
  conditions: Record<string, unknown>;
  mappings: Record<string, Record<string, Record<string, unknown>>>;
  azs(region: string): string[];
  isResource(logicalId: string): boolean;
  ref(logicalId: string): unknown;
  getAtt(logicalId: string, attribute: string): unknown;
  importValue(name: string): unknown;
  ssm(name: string): string;
  /** Memo of evaluated conditions. */
  conditionCache?: Map<string, boolean>;
}

const templateError = (msg: string) => validationError(`Template error: ${msg}`);

export function isUnknown(v: unknown): v is Unknown {
  return v instanceof Unknown;
}

function containsUnknown(v: unknown): boolean {
  if (v instanceof Unknown) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v && typeof v === 'object') return Object.values(v).some(containsUnknown);
  return false;
}

function asString(v: unknown, fn: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw templateError(`every value passed to ${fn} must be a string`);
}

function resolveDynamicRefs(s: string, ctx: EvalContext): string {
  return s.replace(/\{\{resolve:([a-z-]+):([^}]*)\}\}/g, (_all, service: string, rest: string) => {
    if (service !== 'ssm') throw validationError(`hanat-lab resolves only ssm dynamic references; {{resolve:${service}:...}} is not supported`);
    return ctx.ssm(rest);
  });
}

export function evaluateCondition(name: string, ctx: EvalContext): boolean {
  const cache = (ctx.conditionCache ??= new Map<string, boolean>());
  const hit = cache.get(name);
  if (hit !== undefined) return hit;
  if (!(name in ctx.conditions)) throw validationError(`Template format error: Unresolved condition dependencies [${name}] in the Conditions block of the template`);
  const v = conditionValue(ctx.conditions[name], ctx);
  cache.set(name, v);
  return v;
}

function conditionValue(expr: unknown, ctx: EvalContext): boolean {
  if (expr && typeof expr === 'object' && !Array.isArray(expr)) {
    const keys = Object.keys(expr);
    if (keys.length === 1 && keys[0] === 'Condition') return evaluateCondition(asString((expr as { Condition: unknown }).Condition, 'Condition'), ctx);
  }
  const v = evaluate(expr, ctx);
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === 'false') return v === 'true';
  throw templateError('a condition must evaluate to true or false');
}

function fnArgs(v: unknown, fn: string, n?: number): unknown[] {
  if (!Array.isArray(v) || (n !== undefined && v.length !== n)) throw templateError(`${fn} requires ${n ?? 'a list of'} arguments`);
  return v;
}

/** Evaluates a template value; AWS::NoValue is removed from objects and lists. */
export function evaluate(value: unknown, ctx: EvalContext): unknown {
  if (typeof value === 'string') return value.includes('{{resolve:') ? resolveDynamicRefs(value, ctx) : value;
  if (Array.isArray(value)) return value.map((v) => evaluate(v, ctx)).filter((v) => v !== NO_VALUE);
  if (!value || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1) {
    const k = keys[0]!;
    if (k === 'Ref' || k.startsWith('Fn::')) return intrinsic(k, obj[k], ctx);
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const v = evaluate(obj[k], ctx);
    if (v !== NO_VALUE) out[k] = v;
  }
  return out;
}

function ref(name: string, ctx: EvalContext): unknown {
  if (name === 'AWS::NoValue') return NO_VALUE;
  if (name in ctx.pseudo) return ctx.pseudo[name];
  if (name in ctx.params) return ctx.params[name];
  if (ctx.isResource(name)) return ctx.ref(name);
  throw validationError(`Template format error: Unresolved resource dependencies [${name}] in the Resources block of the template`);
}

function sub(template: string, vars: Record<string, unknown>, ctx: EvalContext): unknown {
  let unknown = false;
  const out = template.replace(/\$\{([^}]*)\}/g, (all, name: string) => {
    if (name.startsWith('!')) return `\${${name.slice(1)}}`;
    let v: unknown;
    if (name in vars) v = vars[name];
    else if (name.includes('.') && !name.startsWith('AWS::')) {
      const dot = name.indexOf('.');
      v = getAtt(name.slice(0, dot), name.slice(dot + 1), ctx);
    } else v = ref(name, ctx);
    if (v instanceof Unknown) {
      unknown = true;
      return all;
    }
    if (Array.isArray(v)) throw templateError(`Fn::Sub variable ${name} is a list; Fn::Sub needs a string`);
    return String(v);
  });
  return unknown ? new Unknown(`Fn::Sub ${template}`) : out;
}

function getAtt(resource: string, attribute: string, ctx: EvalContext): unknown {
  if (!ctx.isResource(resource)) throw templateError(`instance of Fn::GetAtt references undefined resource ${resource}`);
  return ctx.getAtt(resource, attribute);
}

function intrinsic(fn: string, arg: unknown, ctx: EvalContext): unknown {
  switch (fn) {
    case 'Ref':
      return ref(asString(arg, 'Ref'), ctx);
    case 'Fn::GetAtt': {
      const parts = typeof arg === 'string' ? [arg.slice(0, arg.indexOf('.')), arg.slice(arg.indexOf('.') + 1)] : fnArgs(arg, fn, 2).map((a) => evaluate(a, ctx));
      return getAtt(asString(parts[0], fn), asString(parts[1], fn), ctx);
    }
    case 'Fn::Sub': {
      if (typeof arg === 'string') return sub(arg, {}, ctx);
      const [tpl, map] = fnArgs(arg, fn, 2);
      const vars = evaluate(map, ctx) as Record<string, unknown>;
      const t = evaluate(tpl, ctx);
      if (t instanceof Unknown) return t;
      return sub(asString(t, fn), vars, ctx);
    }
    case 'Fn::Join': {
      const [delim, list] = fnArgs(arg, fn, 2);
      const items = evaluate(list, ctx);
      if (items instanceof Unknown) return items;
      if (!Array.isArray(items)) throw templateError('Fn::Join requires a list as its second argument');
      if (items.some((i) => i instanceof Unknown)) return new Unknown('Fn::Join');
      return items.map((i) => asString(i, fn)).join(asString(delim, fn));
    }
    case 'Fn::Select': {
      const [index, list] = fnArgs(arg, fn, 2);
      const i = Number(evaluate(index, ctx));
      const items = evaluate(list, ctx);
      if (items instanceof Unknown) return items;
      if (!Array.isArray(items)) throw templateError('Fn::Select requires a list as its second argument');
      if (!Number.isInteger(i) || i < 0 || i >= items.length) throw templateError(`Fn::Select cannot select nonexistent value at index ${String(evaluate(index, ctx))}`);
      return items[i];
    }
    case 'Fn::Split': {
      const [delim, s] = fnArgs(arg, fn, 2);
      const v = evaluate(s, ctx);
      if (v instanceof Unknown) return v;
      return asString(v, fn).split(asString(delim, fn));
    }
    case 'Fn::GetAZs': {
      const r = evaluate(arg, ctx);
      const region = r === '' || r === undefined ? (ctx.pseudo['AWS::Region'] as string) : asString(r, fn);
      return ctx.azs(region);
    }
    case 'Fn::Cidr': {
      const [block, count, bits] = fnArgs(arg, fn, 3).map((a) => evaluate(a, ctx));
      if ([block, count, bits].some((x) => x instanceof Unknown)) return new Unknown('Fn::Cidr');
      const c = parseCidr(asString(block, fn));
      if (!c) throw templateError(`Fn::Cidr: ${String(block)} is not a CIDR block`);
      try {
        return subdivide(c, Number(count), Number(bits));
      } catch (err) {
        throw templateError(`Fn::Cidr: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    case 'Fn::If': {
      const [cond, a, b] = fnArgs(arg, fn, 3);
      return evaluateCondition(asString(cond, fn), ctx) ? evaluate(a, ctx) : evaluate(b, ctx);
    }
    case 'Fn::Equals': {
      const [a, b] = fnArgs(arg, fn, 2).map((x) => evaluate(x, ctx));
      if (a instanceof Unknown || b instanceof Unknown) throw templateError('Fn::Equals cannot compare values that are not known until the stack is created');
      return JSON.stringify(typeof a === 'number' ? String(a) : a) === JSON.stringify(typeof b === 'number' ? String(b) : b);
    }
    case 'Fn::Not': {
      const [c] = fnArgs(arg, fn, 1);
      return !conditionValue(c, ctx);
    }
    case 'Fn::And': {
      const list = fnArgs(arg, fn);
      if (list.length < 2 || list.length > 10) throw templateError('Fn::And requires between 2 and 10 conditions');
      return list.every((c) => conditionValue(c, ctx));
    }
    case 'Fn::Or': {
      const list = fnArgs(arg, fn);
      if (list.length < 2 || list.length > 10) throw templateError('Fn::Or requires between 2 and 10 conditions');
      return list.some((c) => conditionValue(c, ctx));
    }
    case 'Fn::Base64': {
      const v = evaluate(arg, ctx);
      if (v instanceof Unknown || containsUnknown(v)) return new Unknown('Fn::Base64');
      return Buffer.from(asString(v, fn), 'utf8').toString('base64');
    }
    case 'Fn::FindInMap': {
      const [m, k1, k2] = fnArgs(arg, fn, 3).map((a) => evaluate(a, ctx));
      const v = ctx.mappings[asString(m, fn)]?.[asString(k1, fn)]?.[asString(k2, fn)];
      if (v === undefined) throw templateError(`Unable to get mapping for ${String(m)}::${String(k1)}::${String(k2)}`);
      return v;
    }
    case 'Fn::ImportValue': {
      const name = evaluate(arg, ctx);
      if (name instanceof Unknown) return name;
      return ctx.importValue(asString(name, fn));
    }
    default:
      throw validationError(`Template format error: Unrecognized intrinsic function ${fn}`);
  }
}

/** Every logical name a value refers to (Ref, Fn::GetAtt, Fn::Sub variables), for the dependency graph. */
export function references(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) references(v, out);
    return out;
  }
  if (!value || typeof value !== 'object') return out;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1) {
    const k = keys[0]!;
    const arg = obj[k];
    if (k === 'Ref' && typeof arg === 'string') out.add(arg);
    else if (k === 'Fn::GetAtt') {
      if (typeof arg === 'string') out.add(arg.split('.')[0]!);
      else if (Array.isArray(arg) && typeof arg[0] === 'string') out.add(arg[0]);
    } else if (k === 'Fn::Sub') {
      const tpl: unknown = typeof arg === 'string' ? arg : Array.isArray(arg) ? (arg as unknown[])[0] : undefined;
      const vars = Array.isArray(arg) && arg[1] && typeof arg[1] === 'object' ? Object.keys(arg[1] as object) : [];
      if (typeof tpl === 'string') {
        for (const m of tpl.matchAll(/\$\{([^}!][^}]*)\}/g)) {
          const name = m[1]!;
          if (vars.includes(name)) continue;
          out.add(name.includes('.') && !name.startsWith('AWS::') ? name.slice(0, name.indexOf('.')) : name);
        }
      }
      if (Array.isArray(arg)) references(arg[1], out);
      return out;
    }
  }
  for (const v of Object.values(obj)) references(v, out);
  return out;
}
