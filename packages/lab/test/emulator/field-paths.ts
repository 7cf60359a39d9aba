/**
 * Field paths into a deserialised SDK response, for emulator-fields.test.ts:
 * which fields a response must carry, and what is missing when it does not.
 *
 * A path is dot-separated property names; a name may be followed by one list
 * selector:
 *   `Stacks[].StackStatus`                every element (the list must not be empty)
 *   `StackEvents[?].ResourceStatusReason` at least one element
 *   `Tags[Key=hanat:az].Value`            the elements whose Key is `hanat:az`
 *                                         (at least one; every one of them)
 *   `Stacks[].Tags[Key=hanat:stack]`      a filter may end the path: such an element exists
 * A filter key may itself be a path (`[ResourceChange.Action=Modify]`); the
 * value is everything after the first `=`, dots included (`[DestinationCidrBlock=0.0.0.0/0]`).
 * A field counts as present when it is neither undefined nor null (false, 0
 * and "" are values); a timestamp must also be a valid date, since the SDK turns
 * a malformed one into an Invalid Date rather than leaving it out.
 */

export type Step =
  | { kind: 'key'; name: string }
  | { kind: 'every' }
  | { kind: 'some' }
  | { kind: 'where'; key: string; value: string };

/** Splits a path into steps; throws on a malformed one, so a typo cannot pass as a field. */
export function parsePath(path: string): Step[] {
  const steps: Step[] = [];
  const segments: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of path) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (depth < 0) throw new Error(`bad field path "${path}": "]" without "["`);
    if (ch === '.' && depth === 0) {
      segments.push(current);
      current = '';
    } else current += ch;
  }
  if (depth !== 0) throw new Error(`bad field path "${path}": "[" without "]"`);
  segments.push(current);
  for (const segment of segments) {
    const m = /^([A-Za-z0-9_$]+)(?:\[([^\]]*)\])?$/.exec(segment);
    if (!m) throw new Error(`bad field path "${path}": cannot read "${segment}"`);
    steps.push({ kind: 'key', name: m[1]! });
    const selector = m[2];
    if (selector === undefined) continue;
    if (selector === '') steps.push({ kind: 'every' });
    else if (selector === '?') steps.push({ kind: 'some' });
    else {
      const eq = selector.indexOf('=');
      if (eq <= 0) throw new Error(`bad field path "${path}": selector [${selector}] is not [], [?] or [Key=value]`);
      steps.push({ kind: 'where', key: selector.slice(0, eq), value: selector.slice(eq + 1) });
    }
  }
  return steps;
}

function isAbsent(v: unknown): boolean {
  return v === undefined || v === null;
}

function get(v: unknown, dotted: string): unknown {
  let cur = v;
  for (const name of dotted.split('.')) {
    if (isAbsent(cur) || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[name];
  }
  return cur;
}

function matches(element: unknown, step: { key: string; value: string }): boolean {
  const v = get(element, step.key);
  return (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') && String(v) === step.value;
}

/** What is missing along `steps` from `v` (reached at `at`), or undefined when the path resolves. */
function walk(v: unknown, steps: readonly Step[], at: string): string | undefined {
  const [step, ...rest] = steps;
  if (!step) {
    if (isAbsent(v)) return `${at || 'the response'} is missing`;
    if (v instanceof Date && Number.isNaN(v.getTime())) return `${at} is not a valid date`;
    return undefined;
  }
  if (step.kind === 'key') {
    if (isAbsent(v)) return `${at || 'the response'} is missing`;
    if (typeof v !== 'object') return `${at} is a ${typeof v}, not an object`;
    return walk((v as Record<string, unknown>)[step.name], rest, at ? `${at}.${step.name}` : step.name);
  }
  if (!Array.isArray(v)) return `${at} is ${isAbsent(v) ? 'missing' : 'not a list'}`;
  if (step.kind === 'every') {
    if (v.length === 0) return `${at} is empty`;
    for (let i = 0; i < v.length; i++) {
      const miss = walk(v[i], rest, `${at}[${i}]`);
      if (miss) return miss;
    }
    return undefined;
  }
  if (step.kind === 'some') {
    if (v.length === 0) return `${at} is empty`;
    const misses = v.map((e, i) => walk(e, rest, `${at}[${i}]`));
    if (misses.some((m) => m === undefined)) return undefined;
    return `no element of ${at} has it (${v.length} element${v.length === 1 ? '' : 's'}; first: ${misses[0]!})`;
  }
  const chosen = v.map((e, i) => [e, i] as const).filter(([e]) => matches(e, step));
  if (chosen.length === 0) return `${at} has no element with ${step.key}=${step.value}`;
  for (const [e, i] of chosen) {
    const miss = walk(e, rest, `${at}[${i}]`);
    if (miss) return miss;
  }
  return undefined;
}

/** Why `path` does not resolve in `response`, or undefined when it does. */
export function missingAt(response: unknown, path: string): string | undefined {
  return walk(response, parsePath(path), '');
}

/** Every path of `paths` that does not resolve, as "path: why". */
export function missingFields(response: unknown, paths: readonly string[]): string[] {
  return paths.flatMap((p) => {
    const miss = missingAt(response, p);
    return miss === undefined ? [] : [`${p}: ${miss}`];
  });
}

/**
 * Removes what `path` names from `response`, in place: the last property
 * wherever the path reaches it, or, for a path ending in a filter, the
 * matching elements. For the self-check that each listed path can fail.
 */
export function removeAt(response: unknown, path: string): void {
  remove(response, parsePath(path));
}

function remove(v: unknown, steps: readonly Step[]): void {
  const [step, ...rest] = steps;
  if (!step || isAbsent(v) || typeof v !== 'object') return;
  if (step.kind === 'key') {
    const obj = v as Record<string, unknown>;
    const next = rest[0];
    if (!next) {
      delete obj[step.name];
    } else if (next.kind === 'where' && rest.length === 1 && Array.isArray(obj[step.name])) {
      obj[step.name] = (obj[step.name] as unknown[]).filter((e) => !matches(e, next));
    } else {
      remove(obj[step.name], rest);
    }
    return;
  }
  if (!Array.isArray(v)) return;
  for (const e of v) if (step.kind !== 'where' || matches(e, step)) remove(e, rest);
}
