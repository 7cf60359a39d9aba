/**
 * One handler per operation, in a table per service. A handler takes the SDK's
 * input shape and returns the SDK's output shape; the server turns those into
 * the wire protocol with the operation's schema (schema.ts).
 */
import type { Service } from '../latency.js';
import type { Region } from '../region.js';
import { AwsError } from '../errors.js';
import { operationSchema, type OperationSchema } from './schema.js';

export interface OpContext {
  region: Region;
  service: Service;
  requestId: string;
  /** Instance id of the caller, when the call came from inside the lab. */
  caller?: string | undefined;
}

export interface OpDef {
  action: string;
  schema: OperationSchema;
  handler: (input: never, ctx: OpContext) => unknown;
}

/** Output types of the SDK commands carry `$metadata`, which is not on the wire. */
export type Out<T> = Omit<T, '$metadata'>;

export function op<I, O>(schema: unknown, handler: (input: I, ctx: OpContext) => O | Promise<O>): OpDef {
  const s = operationSchema(schema);
  return { action: s.name, schema: s, handler: handler };
}

export function opTable(defs: readonly OpDef[]): Map<string, OpDef> {
  return new Map(defs.map((d) => [d.action, d]));
}

/** Offset-based pagination with opaque tokens, as the Describe and List calls page. */
export function paginate<T>(items: readonly T[], maxResults: number | undefined, token: string | undefined, invalid: (token: string) => AwsError): { items: T[]; next?: string } {
  let start = 0;
  if (token) {
    const decoded = Buffer.from(token, 'base64url').toString('utf8');
    const m = /^lab:(\d+)$/.exec(decoded);
    if (!m) throw invalid(token);
    start = Number(m[1]);
  }
  if (!maxResults || maxResults <= 0) return { items: items.slice(start) };
  const end = start + maxResults;
  const out = items.slice(start, end);
  return end < items.length ? { items: out, next: Buffer.from(`lab:${end}`).toString('base64url') } : { items: out };
}
