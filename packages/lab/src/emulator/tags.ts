/** Tags as every service stores them: one map per resource id, in insertion order. */
export type Tags = Map<string, string>;

export interface SdkTag {
  Key?: string | undefined;
  Value?: string | undefined;
}

export function tagsFromList(list: readonly SdkTag[] | undefined): Tags {
  const out: Tags = new Map();
  for (const t of list ?? []) if (t.Key !== undefined) out.set(t.Key, t.Value ?? '');
  return out;
}

export function tagList(tags: Tags | undefined): { Key: string; Value: string }[] {
  return [...(tags ?? new Map<string, string>())].map(([Key, Value]) => ({ Key, Value }));
}

export function tagRecord(tags: Tags | undefined): Record<string, string> {
  return Object.fromEntries(tags ?? []);
}
