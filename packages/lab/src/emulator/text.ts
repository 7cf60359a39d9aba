/** A template or API value as text: strings as they are, numbers and booleans by value, anything else as JSON. */
export function scalar(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v === undefined || v === null) return '';
  return JSON.stringify(v);
}
