/**
 * Reads request parameters and writes response bodies by walking the AWS SDK's
 * own operation schemas (the `Xxx$` exports of @aws-sdk/client-*), so element
 * and parameter names are exactly the ones the service's wire protocol uses and
 * the real SDK deserialises. Handlers work with plain SDK-shaped objects.
 *
 * The schemas are static arrays (see @smithy/core/schema):
 *   number: 0 string, 1 number, 2 boolean, 4-7 timestamp, 15 document,
 *           17/19 big numbers, 21/42 blob, 64|x list of x, 128|x map of x
 *   [0, ns, name, traits, inner]           a simple type with traits
 *   [1, ns, name, traits, value]           list
 *   [2, ns, name, traits, key, value]      map
 *   [3|-3|4, ns, name, traits, names, members]  structure / error / union
 *   [9, ns, name, traits, input, output]   operation
 *   [ref, traits]                          a member: target plus member traits
 * Any ref may be a thunk.
 */

export type Traits = Record<string, unknown>;

type Kind = 'string' | 'number' | 'boolean' | 'timestamp' | 'blob' | 'document' | 'list' | 'map' | 'struct' | 'unit';

interface Shape {
  kind: Kind;
  /** Traits of the member that points at this shape (xmlName, ec2QueryName, ...). */
  memberTraits: Traits;
  /** Member traits over the target's own traits. */
  traits: Traits;
  /** timestamp format (4 default, 5 date-time, 6 http-date, 7 epoch seconds) */
  timestampFormat?: number;
  value?: unknown;
  key?: unknown;
  members?: [string, unknown][];
}

function deref(ref: unknown): unknown {
  return typeof ref === 'function' ? (ref as () => unknown)() : ref;
}

function traitsOf(indicator: unknown): Traits {
  return indicator && typeof indicator === 'object' ? (indicator as Traits) : {};
}

const isMember = (s: unknown): s is [unknown, unknown] => Array.isArray(s) && s.length === 2;

function shapeOf(ref: unknown): Shape {
  const stack: Traits[] = [];
  let s = deref(ref);
  while (isMember(s)) {
    stack.push(traitsOf(s[1]));
    s = deref(s[0]);
  }
  const memberTraits: Traits = {};
  for (let i = stack.length - 1; i >= 0; i--) Object.assign(memberTraits, stack[i]);
  let own: Traits = {};
  if (Array.isArray(s) && s[0] === 0 && s.length >= 5) {
    own = traitsOf(s[3]);
    s = deref(s[4]);
  } else if (Array.isArray(s) && s.length >= 5) {
    own = traitsOf(s[3]);
  }
  const traits = { ...own, ...memberTraits };
  const base = { memberTraits, traits };
  if (s === 'unit') return { kind: 'unit', ...base };
  if (typeof s === 'number') {
    if (s === 0) return { kind: 'string', ...base };
    if (s === 1 || s === 17 || s === 19) return { kind: 'number', ...base };
    if (s === 2) return { kind: 'boolean', ...base };
    if (s >= 4 && s <= 7) return { kind: 'timestamp', timestampFormat: s, ...base };
    if (s === 15) return { kind: 'document', ...base };
    if (s === 21 || s === 42) return { kind: 'blob', ...base };
    if (s >= 64 && s < 128) return { kind: 'list', value: s & 63, ...base };
    if (s >= 128 && s <= 255) return { kind: 'map', key: 0, value: s & 63, ...base };
    throw new Error(`unknown simple schema ${s}`);
  }
  if (Array.isArray(s)) {
    const id = s[0] as number;
    if (id === 1) return { kind: 'list', value: s[4], ...base };
    if (id === 2) return { kind: 'map', key: s[4], value: s[5], ...base };
    if (id === 3 || id === -3 || id === 4) {
      const names = s[4] as string[];
      const list = s[5] as unknown[];
      return { kind: 'struct', members: names.map((n, i) => [n, list[i]]), ...base };
    }
  }
  throw new Error(`unsupported schema ${JSON.stringify(s)}`);
}

/** An operation schema as exported by the SDK (`DescribeVpcs$`). */
export interface OperationSchema {
  name: string;
  input: unknown;
  output: unknown;
}

export function operationSchema(op: unknown): OperationSchema {
  const s = deref(op);
  if (!Array.isArray(s) || s[0] !== 9) throw new Error('not an operation schema');
  return { name: s[2] as string, input: s[4], output: s[5] };
}

// ---------------------------------------------------------------- query input

export type Dialect = 'ec2' | 'query';

const capitalize = (k: string) => k.charAt(0).toUpperCase() + k.slice(1);

function queryKey(name: string, traits: Traits, dialect: Dialect, struct: boolean): string {
  if (dialect === 'ec2' && typeof traits.ec2QueryName === 'string') return traits.ec2QueryName;
  const key = typeof traits.xmlName === 'string' ? traits.xmlName : name;
  return dialect === 'ec2' && struct ? capitalize(key) : key;
}

class Params {
  constructor(readonly map: Map<string, string>) {}
  has(prefix: string): boolean {
    if (this.map.has(prefix)) return true;
    const p = `${prefix}.`;
    for (const k of this.map.keys()) if (k.startsWith(p)) return true;
    return false;
  }
  indices(prefix: string): number[] {
    const p = `${prefix}.`;
    const out = new Set<number>();
    for (const k of this.map.keys()) {
      if (!k.startsWith(p)) continue;
      const seg = k.slice(p.length).split('.')[0] ?? '';
      if (/^\d+$/.test(seg)) out.add(Number(seg));
    }
    return [...out].sort((a, b) => a - b);
  }
}

function join(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key;
}

function readQueryValue(ref: unknown, params: Params, prefix: string, dialect: Dialect): unknown {
  const shape = shapeOf(ref);
  switch (shape.kind) {
    case 'struct': {
      const out: Record<string, unknown> = {};
      for (const [name, member] of shape.members ?? []) {
        const m = shapeOf(member);
        const key = join(prefix, queryKey(name, m.traits, dialect, true));
        if (!params.has(key)) continue;
        const v = readQueryValue(member, params, key, dialect);
        if (v !== undefined) out[name] = v;
      }
      return out;
    }
    case 'list': {
      if (params.map.get(prefix) === '') return [];
      const flat = dialect === 'ec2' || shape.traits.xmlFlattened === true;
      const item = shapeOf([shape.value, 0]);
      const base = flat ? prefix : join(prefix, queryKey('member', item.traits, dialect, false));
      return params.indices(base).map((i) => readQueryValue(shape.value, params, `${base}.${i}`, dialect));
    }
    case 'map': {
      const flat = shape.traits.xmlFlattened === true;
      const base = flat ? prefix : join(prefix, 'entry');
      const keyName = queryKey('key', shapeOf([shape.key, 0]).traits, dialect, false);
      const valueName = queryKey('value', shapeOf([shape.value, 0]).traits, dialect, false);
      const out: Record<string, unknown> = {};
      for (const i of params.indices(base)) {
        const k = params.map.get(`${base}.${i}.${keyName}`);
        if (k !== undefined) out[k] = readQueryValue(shape.value, params, `${base}.${i}.${valueName}`, dialect);
      }
      return out;
    }
    default: {
      const raw = params.map.get(prefix);
      if (raw === undefined) return undefined;
      return fromString(shape, raw);
    }
  }
}

function fromString(shape: Shape, raw: string): unknown {
  switch (shape.kind) {
    case 'number':
      return Number(raw);
    case 'boolean':
      return raw === 'true';
    case 'timestamp':
      return /^\d+(\.\d+)?$/.test(raw) ? new Date(Number(raw) * 1000) : new Date(raw);
    case 'blob':
      return Buffer.from(raw, 'base64');
    default:
      return raw;
  }
}

/** Decodes an `application/x-www-form-urlencoded` Query request into the operation's SDK input shape. */
export function readQueryInput(op: OperationSchema, params: Map<string, string>, dialect: Dialect): Record<string, unknown> {
  const v = readQueryValue(op.input, new Params(params), '', dialect);
  return (v && typeof v === 'object' ? v : {}) as Record<string, unknown>;
}

// ----------------------------------------------------------------- XML output

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

function scalarText(shape: Shape, value: unknown): string {
  if (shape.kind === 'timestamp') {
    const d = value instanceof Date ? value : new Date(value as string | number);
    if (shape.timestampFormat === 7) return String(Math.floor(d.getTime() / 1000));
    if (shape.timestampFormat === 6) return d.toUTCString();
    return d.toISOString();
  }
  if (shape.kind === 'blob') {
    if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
    return Buffer.from(String(value), 'utf8').toString('base64');
  }
  if (shape.kind === 'document') return JSON.stringify(value);
  return String(value);
}

function writeElement(ref: unknown, value: unknown, name: string, out: string[]): void {
  if (value === undefined || value === null) return;
  const shape = shapeOf(ref);
  if (shape.kind === 'list' && shape.traits.xmlFlattened === true) {
    for (const item of value as unknown[]) writeElement(shape.value, item, name, out);
    return;
  }
  out.push(`<${name}>`);
  writeContent(shape, value, out);
  out.push(`</${name}>`);
}

function writeContent(shape: Shape, value: unknown, out: string[]): void {
  switch (shape.kind) {
    case 'struct': {
      const obj = value as Record<string, unknown>;
      for (const [name, member] of shape.members ?? []) {
        const v = obj[name];
        if (v === undefined || v === null) continue;
        const m = shapeOf(member);
        const el = typeof m.memberTraits.xmlName === 'string' ? m.memberTraits.xmlName : name;
        writeElement(member, v, el, out);
      }
      return;
    }
    case 'list': {
      const item = shapeOf([shape.value, 0]);
      const el = typeof item.traits.xmlName === 'string' ? item.traits.xmlName : 'member';
      for (const v of value as unknown[]) writeElement(shape.value, v, el, out);
      return;
    }
    case 'map': {
      const keyEl = (shapeOf([shape.key, 0]).traits.xmlName as string | undefined) ?? 'key';
      const valueEl = (shapeOf([shape.value, 0]).traits.xmlName as string | undefined) ?? 'value';
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        out.push(`<entry><${keyEl}>${escapeXml(k)}</${keyEl}>`);
        writeElement(shape.value, v, valueEl, out);
        out.push('</entry>');
      }
      return;
    }
    case 'unit':
      return;
    default:
      out.push(escapeXml(scalarText(shape, value)));
  }
}

/** The members of the operation's output structure as XML elements (no wrapper). */
export function writeXmlOutput(op: OperationSchema, value: unknown): string {
  const out: string[] = [];
  const shape = shapeOf(op.output);
  if (shape.kind === 'struct' && value) writeContent(shape, value, out);
  return out.join('');
}

// ---------------------------------------------------------------- JSON output

/** awsJson1_1: timestamps as epoch seconds, blobs as base64. */
export function toJsonValue(value: unknown): unknown {
  if (value instanceof Date) return value.getTime() / 1000;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toJsonValue(v);
    return out;
  }
  return value;
}
