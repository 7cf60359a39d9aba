/**
 * Describe* filters as AWS documents them: filters are ANDed, the values of one
 * filter are ORed, values may use `*` and `?` wildcards, and `tag:<key>`,
 * `tag-key` and `tag-value` work on every taggable resource. An unknown filter
 * name is an error (InvalidParameterValue "The filter 'x' is invalid"), never
 * silently ignored, so a caller's typo cannot pass a test.
 */
import { AwsError } from './errors.js';
import type { Tags } from './tags.js';

export interface Filter {
  Name?: string | undefined;
  Values?: string[] | undefined;
}

export type Extractor<T> = (item: T) => readonly (string | number | boolean | undefined)[] | string | number | boolean | undefined;

export interface FilterTable<T> {
  fields: Record<string, Extractor<T>>;
  tags?: (item: T) => Tags | undefined;
}

function glob(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 's');
}

function matchesAny(values: readonly string[], patterns: readonly RegExp[]): boolean {
  return values.some((v) => patterns.some((p) => p.test(v)));
}

function asStrings(v: ReturnType<Extractor<unknown>>): string[] {
  const list = Array.isArray(v) ? v : [v];
  return list.filter((x) => x !== undefined).map(String);
}

export function applyFilters<T>(items: readonly T[], filters: readonly Filter[] | undefined, table: FilterTable<T>, errorCode = 'InvalidParameterValue'): T[] {
  const checks: ((item: T) => boolean)[] = [];
  for (const f of filters ?? []) {
    const name = f.Name ?? '';
    const patterns = (f.Values ?? []).map(glob);
    if (name.startsWith('tag:') && table.tags) {
      const key = name.slice(4);
      const tags = table.tags;
      checks.push((item) => {
        const v = tags(item)?.get(key);
        return v !== undefined && matchesAny([v], patterns);
      });
    } else if (name === 'tag-key' && table.tags) {
      const tags = table.tags;
      checks.push((item) => matchesAny([...(tags(item)?.keys() ?? [])], patterns));
    } else if (name === 'tag-value' && table.tags) {
      const tags = table.tags;
      checks.push((item) => matchesAny([...(tags(item)?.values() ?? [])], patterns));
    } else {
      const field = table.fields[name];
      if (!field) throw new AwsError(errorCode, `The filter '${name}' is invalid`);
      checks.push((item) => matchesAny(asStrings(field(item)), patterns));
    }
  }
  return items.filter((item) => checks.every((c) => c(item)));
}
