/**
 * How long EC2's shutdown of a lab instance waits for its agent after SIGTERM: the stop
 * timeout of the agent's systemd unit in the image (scripts/systemd/hanat-agent.service,
 * installed by scripts/provision-nat.sh), read from that file so that the lab stops an
 * agent exactly as the image does. On AWS, terminating an instance shuts its OS down:
 * systemd sends the unit's KillSignal (SIGTERM) and, after TimeoutStopSec, SIGKILL.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** systemd's DefaultTimeoutStopSec, for a unit that sets neither TimeoutStopSec nor TimeoutSec (systemd-system.conf(5)). */
const SYSTEMD_DEFAULT_STOP_MS = 90_000;

const UNIT_MS: Record<string, number> = {
  us: 0.001, usec: 0.001,
  ms: 1, msec: 1,
  s: 1_000, sec: 1_000, second: 1_000, seconds: 1_000,
  m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hour: 3_600_000, hours: 3_600_000,
};

/** A systemd time span (`30s`, `1min 30s`, `90`: seconds without a unit), in ms; `infinity` is Infinity (systemd.time(7)). */
export function parseTimeSpanMs(text: string): number {
  const value = text.trim();
  if (value === 'infinity') return Infinity;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1_000;
  let total = 0;
  let rest = value;
  const part = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)/;
  while (rest.trim() !== '') {
    const m = part.exec(rest);
    const unit = m ? UNIT_MS[m[2]!] : undefined;
    if (!m || unit === undefined) throw new Error(`not a systemd time span: ${JSON.stringify(text)}`);
    total += Number(m[1]) * unit;
    rest = rest.slice(m[0].length);
  }
  return total;
}

/** The stop timeout of a unit file's [Service] section, in ms (TimeoutStopSec, else TimeoutSec, else systemd's default). */
export function unitStopTimeoutMs(unitText: string): number {
  let section = '';
  let stop: string | undefined;
  let both: string | undefined;
  for (const raw of unitText.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (section !== 'Service') continue;
    const kv = /^([A-Za-z]+)\s*=\s*(.*)$/.exec(line);
    if (!kv) continue;
    // The last assignment wins, as in systemd.
    if (kv[1] === 'TimeoutStopSec') stop = kv[2];
    if (kv[1] === 'TimeoutSec') both = kv[2];
  }
  const value = stop ?? both;
  return value === undefined || value === '' ? SYSTEMD_DEFAULT_STOP_MS : parseTimeSpanMs(value);
}

/** The agent's unit file in this repository, next to the lab's sources or its bundle. */
export function agentUnitPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // packages/lab/src/dataplane (sources) or packages/lab/dist (the bundle).
  for (const up of ['../../../..', '../../..']) {
    const candidate = join(here, up, 'scripts', 'systemd', 'hanat-agent.service');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`the agent's systemd unit (scripts/systemd/hanat-agent.service) was not found near ${here}; pass the stop timeout explicitly`);
}

let cached: number | undefined;

/** The image's stop timeout for the agent, in ms (30 s today). */
export function imageStopTimeoutMs(): number {
  cached ??= unitStopTimeoutMs(readFileSync(agentUnitPath(), 'utf8'));
  return cached;
}
