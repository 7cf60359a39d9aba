/**
 * HANAT_DEBUG, the environment's --debug. Any value turns debug on except the
 * ones that say "off": empty, 0, false and no (in any case), so HANAT_DEBUG=0
 * means what it says. main.ts, the program and run() all read it through here.
 */
const OFF = new Set(['', '0', 'false', 'no']);

export function debugFromEnv(value: string | undefined): boolean {
  return value !== undefined && !OFF.has(value.trim().toLowerCase());
}
