/**
 * Command line and configuration. Precedence: flag, then environment variable,
 * then instance tag (read through IMDS). Anything invalid or missing is a
 * UsageError (exit 2) that names the value and how to fix it.
 *
 * The parser is node's own `util.parseArgs`: no dependency, nothing to load at start.
 */
import { parseArgs } from 'node:util';
import type { LevelWithSilent } from 'pino';
import { DEFAULT_ROUTE_INTERVAL_S, HA_PORT, TAG } from '@hanat/core';
import { UsageError } from './errors.js';
import type { Identity } from './identity.js';
import { parseImdsEndpoint } from './imds.js';
import { LOG_LEVELS } from './log.js';

export type Command = 'run' | 'check' | 'version' | 'help';

export interface Options {
  stack?: string | undefined;
  az?: string | undefined;
  logLevel: LevelWithSilent;
  /** Kernel observe/repair period. */
  intervalMs: number;
  /** Route table observe/repair period (one DescribeRouteTables call). */
  routeIntervalMs: number;
  /** Source/dest check and EIP re-verification period. */
  recheckIntervalMs: number;
  /** Identical consecutive local failures (nft, sysctl) before the agent exits 1; errors from AWS never count. */
  maxFailures: number;
  /** Overrides the memory-based conntrack table size. */
  conntrackMax?: number | undefined;
  /** IMDS's origin (`http://host[:port]`), validated; also handed to the SDK's credential provider. */
  imdsEndpoint?: string | undefined;
  /**
   * Leave source/dest check as it is. Only for proving that the check matters (the lab's
   * end-to-end test): a NAT with the check on cannot forward, so its AZ loses the internet.
   */
  skipSourceDest: boolean;
  /** Peer heartbeats, self-watchdog and takeover (docs/ha.md); false only to run the agent alone. */
  ha: boolean;
  /** UDP port of the heartbeats. */
  haPort: number;
  heartbeatIntervalMs: number;
  /** No heartbeat for this long makes a peer suspect. */
  peerTimeoutMs: number;
  /** Self-check period, and the upstream probe's timeout. */
  healthIntervalMs: number;
  healthTimeoutMs: number;
  rise: number;
  fall: number;
  /** Hold-down before the first failback after a step-aside; doubles with each further step-aside. */
  failbackDelayMs: number;
  /** Peer list refresh from EC2 (one DescribeInstances). */
  peerIntervalMs: number;
  /** Upstream probe target `host:port` (TCP connect); undefined: the regional EC2 endpoint; null: off. */
  probeTarget?: { host: string; port: number } | null | undefined;
  /** Where each explicitly set value came from (`--stack`, `HANAT_AZ`, ...), for the effective-config log. */
  from: Record<string, string>;
}

/** HA's defaults (docs/ha.md "Settings"), for tests that build a Config by hand. */
export const HA_DEFAULTS = {
  ha: true,
  haPort: HA_PORT,
  heartbeatIntervalMs: 200,
  peerTimeoutMs: 800,
  healthIntervalMs: 1_000,
  healthTimeoutMs: 800,
  rise: 3,
  fall: 3,
  failbackDelayMs: 30_000,
  peerIntervalMs: 60_000,
} as const satisfies Partial<Options>;

export interface Config extends Options {
  stack: string;
  az: string;
}

interface Setting {
  flag: string;
  env?: string;
  help: string;
}

/** Every flag and its environment variable, for the help text and docs/agent.md. */
export const SETTINGS: Record<string, Setting> = {
  stack: { flag: 'stack', env: 'HANAT_STACK', help: `stack name (default: the instance tag ${TAG.stack})` },
  az: { flag: 'az', env: 'HANAT_AZ', help: `AZ whose route tables to claim (default: the tag ${TAG.az}, else the instance's AZ)` },
  logLevel: { flag: 'log-level', env: 'HANAT_LOG_LEVEL', help: 'trace|debug|info|warn|error|fatal|silent (default info)' },
  interval: { flag: 'interval', env: 'HANAT_INTERVAL', help: 'seconds between kernel checks (default 5)' },
  routeInterval: { flag: 'route-interval', env: 'HANAT_ROUTE_INTERVAL', help: `seconds between route table checks (default ${DEFAULT_ROUTE_INTERVAL_S})` },
  recheckInterval: { flag: 'recheck-interval', env: 'HANAT_RECHECK_INTERVAL', help: 'seconds between source/dest check and EIP checks (default 300)' },
  maxFailures: { flag: 'max-failures', env: 'HANAT_MAX_FAILURES', help: 'identical consecutive local failures (nft, sysctl) before exiting 1 (default 5)' },
  conntrackMax: { flag: 'conntrack-max', env: 'HANAT_CONNTRACK_MAX', help: 'conntrack table size (default: from memory)' },
  skipSourceDest: { flag: 'skip-srcdst', env: 'HANAT_SKIP_SRCDST', help: 'testing only: "1" leaves source/dest check on, so this NAT cannot forward' },
  ha: { flag: 'ha', env: 'HANAT_HA', help: '"0" turns peer heartbeats, the self-watchdog and takeover off (default 1)' },
  haPort: { flag: 'ha-port', env: 'HANAT_HA_PORT', help: 'UDP port of the heartbeats (default 4242)' },
  heartbeatInterval: { flag: 'heartbeat-interval', env: 'HANAT_HEARTBEAT_INTERVAL', help: 'seconds between heartbeats (default 0.2)' },
  peerTimeout: { flag: 'peer-timeout', env: 'HANAT_PEER_TIMEOUT', help: 'seconds without a heartbeat before a peer is suspect (default 0.8)' },
  healthInterval: { flag: 'health-interval', env: 'HANAT_HEALTH_INTERVAL', help: 'seconds between self-checks (default 1)' },
  healthTimeout: { flag: 'health-timeout', env: 'HANAT_HEALTH_TIMEOUT', help: 'seconds the upstream probe may take (default 0.8)' },
  rise: { flag: 'rise', env: 'HANAT_RISE', help: 'passed self-checks in a row before healthy (default 3)' },
  fall: { flag: 'fall', env: 'HANAT_FALL', help: 'failed self-checks in a row before stepping aside (default 3)' },
  failbackDelay: { flag: 'failback-delay', env: 'HANAT_FAILBACK_DELAY', help: 'seconds before failing back after a step-aside, doubled each time (default 30)' },
  peerInterval: { flag: 'peer-interval', env: 'HANAT_PEER_INTERVAL', help: 'seconds between peer list refreshes from EC2 (default 60)' },
  probeTarget: { flag: 'probe-target', env: 'HANAT_PROBE_TARGET', help: 'upstream probe, host:port over TCP (default: the regional EC2 endpoint, 443); "off" disables it' },
  imdsEndpoint: { flag: 'imds-endpoint', env: 'AWS_EC2_METADATA_SERVICE_ENDPOINT', help: 'IMDS endpoint (default http://169.254.169.254)' },
};

export const HELP = `Usage: hanat-agent <command> [options]

Commands:
  run        make this instance a NAT, claim its AZ's private routes, keep them
  check      one-shot self-check; prints JSON, exit 0 healthy, 1 unhealthy or not verified
  --version  print the version

Options (flag, environment variable):
${Object.values(SETTINGS)
  .map((s) => `  --${s.flag.padEnd(17)} ${(s.env ?? '').padEnd(34)} ${s.help}`)
  .join('\n')}

Exit codes: 0 stopped / healthy, 1 failed / unhealthy or not verified, 2 bad usage or configuration.
`;

/** The one-line usage that follows a command-line mistake. */
export const USAGE = 'Usage: hanat-agent run|check [--stack <name>] [--az <az>] [options]; hanat-agent --help lists every option.';

/** A mistake on the command line: the message, then the usage line. Exit 2. */
function commandLineError(message: string, cause?: unknown): UsageError {
  return new UsageError(`${message}\n${USAGE}`, { cause });
}

/**
 * Edits (insert, delete, substitute, swap two neighbours) between two words:
 * the optimal string alignment distance.
 */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The candidate a typo most likely meant (at most 2 edits away, and not most of the word), if any. */
export function didYouMean(typo: string, candidates: readonly string[]): string | undefined {
  const bare = (w: string) => w.replace(/^-+/, '');
  let best: { word: string; distance: number } | undefined;
  for (const word of candidates) {
    const distance = editDistance(bare(typo), bare(word));
    const length = Math.max(bare(typo).length, bare(word).length);
    if (distance > 2 || (length - distance) / length <= 0.4) continue;
    if (!best || distance < best.distance) best = { word, distance };
  }
  return best?.word;
}

const COMMANDS = ['run', 'check'] as const;

export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): { command: Command; options: Options } {
  const spec = {
    version: { type: 'boolean' as const },
    help: { type: 'boolean' as const, short: 'h' },
    ...Object.fromEntries(Object.values(SETTINGS).map((s) => [s.flag, { type: 'string' as const }])),
  } as Record<string, { type: 'boolean' | 'string'; short?: string }>;
  // Node's own messages for these ("Unknown option '--stak'. To specify a positional argument
  // starting with a '-', …") speak of parseArgs, not of hanat-agent: find them first, and say them ours.
  const { tokens } = parseArgs({ args: [...argv], allowPositionals: true, strict: false, tokens: true, options: spec });
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const option = spec[t.name];
    if (!option) {
      const meant = t.rawName.startsWith('--') ? didYouMean(t.rawName, Object.keys(spec).map((k) => `--${k}`)) : undefined;
      throw commandLineError(`unknown option '${t.rawName}'${meant ? ` (did you mean ${meant}?)` : ''}`);
    }
    if (option.type === 'string' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('-')))) {
      throw commandLineError(`option '${t.rawName}' needs a value: ${t.rawName} <value>, or ${t.rawName}=<value> for a value that starts with '-'`);
    }
    if (option.type === 'boolean' && t.value !== undefined) throw commandLineError(`option '${t.rawName}' takes no value`);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: spec });
  } catch (err) {
    throw commandLineError((err as Error).message, err);
  }
  const { values, positionals } = parsed;
  let command: Command;
  if (values.version) command = 'version';
  else if (values.help || positionals.length === 0) command = 'help';
  else if (positionals.length === 1 && (COMMANDS as readonly string[]).includes(positionals[0]!)) command = positionals[0] as Command;
  else {
    const meant = positionals.length === 1 ? didYouMean(positionals[0]!, COMMANDS) : undefined;
    throw commandLineError(`unknown command '${positionals.join(' ')}'${meant ? ` (did you mean ${meant}?)` : ''}; the commands are run and check`);
  }

  const raw = (key: keyof typeof SETTINGS): { value: string; from: string } | undefined => {
    const s = SETTINGS[key]!;
    const flagValue: unknown = (values as Record<string, unknown>)[s.flag];
    if (typeof flagValue === 'string') return { value: flagValue, from: `--${s.flag}` };
    const envValue = s.env ? env[s.env] : undefined;
    if (envValue !== undefined && envValue !== '') return { value: envValue, from: s.env! };
    return undefined;
  };

  const logLevel = raw('logLevel');
  if (logLevel && !LOG_LEVELS.includes(logLevel.value as LevelWithSilent)) {
    throw new UsageError(`${logLevel.from} '${logLevel.value}' is not a log level; use one of ${LOG_LEVELS.join(', ')}`);
  }
  const stack = raw('stack');
  const az = raw('az');
  const conntrackMax = raw('conntrackMax');
  const endpoint = raw('imdsEndpoint');
  const from: Record<string, string> = {};
  for (const key of Object.keys(SETTINGS)) {
    const r = raw(key);
    if (r) from[key] = r.from;
  }
  return {
    command,
    options: {
      stack: stack ? validStack(stack.value, stack.from) : undefined,
      az: az ? validAz(az.value, az.from) : undefined,
      logLevel: (logLevel?.value as LevelWithSilent | undefined) ?? 'info',
      intervalMs: seconds(raw('interval'), 5, 1, 3600),
      routeIntervalMs: seconds(raw('routeInterval'), DEFAULT_ROUTE_INTERVAL_S, 5, 3600),
      recheckIntervalMs: seconds(raw('recheckInterval'), 300, 30, 86_400),
      maxFailures: integer(raw('maxFailures'), 5, 1, 1000),
      conntrackMax: conntrackMax ? integer(conntrackMax, 0, 1024, 1 << 26) : undefined,
      imdsEndpoint: endpoint ? parseImdsEndpoint(endpoint.value, endpoint.from) : undefined,
      skipSourceDest: flag(raw('skipSourceDest')),
      ha: raw('ha') ? flag(raw('ha')) : HA_DEFAULTS.ha,
      haPort: integer(raw('haPort'), HA_DEFAULTS.haPort, 1, 65535),
      heartbeatIntervalMs: seconds(raw('heartbeatInterval'), HA_DEFAULTS.heartbeatIntervalMs / 1000, 0.05, 10),
      peerTimeoutMs: seconds(raw('peerTimeout'), HA_DEFAULTS.peerTimeoutMs / 1000, 0.1, 60),
      healthIntervalMs: seconds(raw('healthInterval'), HA_DEFAULTS.healthIntervalMs / 1000, 0.1, 60),
      healthTimeoutMs: seconds(raw('healthTimeout'), HA_DEFAULTS.healthTimeoutMs / 1000, 0.05, 60),
      rise: integer(raw('rise'), HA_DEFAULTS.rise, 1, 100),
      fall: integer(raw('fall'), HA_DEFAULTS.fall, 1, 100),
      failbackDelayMs: seconds(raw('failbackDelay'), HA_DEFAULTS.failbackDelayMs / 1000, 0, 3600),
      peerIntervalMs: seconds(raw('peerInterval'), HA_DEFAULTS.peerIntervalMs / 1000, 5, 3600),
      probeTarget: probeTarget(raw('probeTarget')),
      from,
    },
  };
}

/** Fills stack and AZ from the instance's tags and placement; throws UsageError when the stack is unknown. */
export function resolveConfig(options: Options, id: Identity): Config {
  const from = { ...options.from };
  const tagStack = id.tags[TAG.stack];
  const stack = options.stack ?? (tagStack !== undefined ? validStack(tagStack, `instance tag ${TAG.stack}`) : undefined);
  if (!stack) {
    throw new UsageError(
      `no stack name: instance ${id.instanceId} has no ${TAG.stack} tag visible in IMDS; ` +
        `tag the instance (and enable instance metadata tags), or set --stack / HANAT_STACK`,
    );
  }
  const tagAz = id.tags[TAG.az];
  const az = options.az ?? (tagAz !== undefined ? validAz(tagAz, `instance tag ${TAG.az}`) : id.az);
  from.stack ??= `instance tag ${TAG.stack}`;
  from.az ??= tagAz !== undefined ? `instance tag ${TAG.az}` : 'IMDS placement/availability-zone';
  return { ...options, stack, az, from };
}

function validStack(v: string, from: string): string {
  // CloudFormation stack names: a letter, then letters, digits and hyphens, at most 128.
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(v)) throw new UsageError(`${from} '${v}' is not a stack name (a letter, then letters, digits or '-', at most 128)`);
  return v;
}

function validAz(v: string, from: string): string {
  if (!/^[a-z]{2,}(-[a-z0-9]+)+$/.test(v)) throw new UsageError(`${from} '${v}' is not an availability zone name such as us-east-1a`);
  return v;
}

function probeTarget(r: { value: string; from: string } | undefined): { host: string; port: number } | null | undefined {
  if (!r) return undefined;
  if (r.value === 'off') return null;
  const m = /^([A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(r.value);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new UsageError(`${r.from} '${r.value}' must be host:port (TCP), or off`);
  return { host: m[1]!, port: Number(m[2]) };
}

function flag(r: { value: string; from: string } | undefined): boolean {
  if (!r) return false;
  if (r.value === '1' || r.value === 'true') return true;
  if (r.value === '0' || r.value === 'false') return false;
  throw new UsageError(`${r.from} '${r.value}' must be 1 or 0`);
}

function integer(r: { value: string; from: string } | undefined, dflt: number, min: number, max: number): number {
  if (!r) return dflt;
  if (!/^[0-9]+$/.test(r.value) || Number(r.value) < min || Number(r.value) > max) {
    throw new UsageError(`${r.from} '${r.value}' must be a whole number from ${min} to ${max}`);
  }
  return Number(r.value);
}

function seconds(r: { value: string; from: string } | undefined, dflt: number, min: number, max: number): number {
  if (!r) return dflt * 1000;
  const n = Number(r.value);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(r.value) || n < min || n > max) {
    throw new UsageError(`${r.from} '${r.value}' must be a number of seconds from ${min} to ${max}`);
  }
  return Math.round(n * 1000);
}
