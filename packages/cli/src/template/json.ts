/**
 * JSON for people: objects and arrays that fit on one line stay on one line,
 * larger ones open up with two-space indentation. The template stays readable
 * and diffable while a 6-AZ render keeps well under CloudFormation's inline
 * body limit (plain 2-space JSON would not).
 */
export function formatJson(value: unknown, width = 120): string {
  return format(value, '', 0, width);
}

/** `used`: characters already on the line before this value (indent and key). */
function format(value: unknown, indent: string, used: number, width: number): string {
  if (value === null || typeof value !== 'object') {
    const scalar = JSON.stringify(value);
    if (scalar === undefined) throw new TypeError(`cannot format ${typeof value} as JSON`);
    return scalar;
  }
  const flat = oneLine(value);
  if (used + flat.length <= width) return flat;
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => inner + format(v, inner, inner.length, width)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return '{}';
  const lines = entries.map(([k, v]) => {
    const key = `${inner}${JSON.stringify(k)}: `;
    return key + format(v, inner, key.length, width);
  });
  return `{\n${lines.join(',\n')}\n${indent}}`;
}

/** `{"Key": "a", "Value": [1, 2]}`: JSON on one line, spaced like prose. */
function oneLine(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(oneLine).join(', ')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${oneLine(v)}`).join(', ')}}`;
}
