/**
 * The latency options `serve` and `up` share: `--latency aws|zero` (the profile,
 * aws by default) and repeatable `--op-latency <op>=<ms>` for single operations,
 * e.g. `--op-latency CreateRoute=250 --op-latency ec2:DescribeRouteTables=20-60`.
 */
import { Option, type Command } from 'commander';
import { LabUsageError } from '../dataplane/cli-support.js';
import { resolveOperation, type OpLatency, type OpLatencyMs } from '../emulator/index.js';

export type LatencyChoice = 'aws' | 'zero';

export interface LatencyOptions {
  latency: LatencyChoice;
  /** Raw `--op-latency` values, in the order given (absent when none). */
  opLatency?: string[] | undefined;
}

const MAX_MS = 600_000;

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function addLatencyOptions(command: Command): Command {
  return command
    .addOption(new Option('--latency <profile>', 'API and stack latency: aws (describes 30-80 ms, mutating calls 100-300 ms, stack steps seconds) or zero').choices(['aws', 'zero']).default('aws'))
    .addOption(new Option('--op-latency <op=ms>', 'API latency of one operation, overriding the profile: CreateRoute=250, ec2:DescribeRouteTables=40, or a range ReplaceRoute=100-400 (repeatable)').argParser(collect));
}

function ms(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_MS ? n : undefined;
}

/**
 * `['CreateRoute=250', 'ec2:DescribeRouteTables=20-60']` → `{ 'ec2:CreateRoute': 250,
 * 'ec2:DescribeRouteTables': [20, 60] }`. A bad entry is a usage error naming it.
 */
export function parseOpLatency(values: readonly string[] | undefined): OpLatency {
  const out: Record<string, OpLatencyMs> = {};
  for (const value of values ?? []) {
    const bad = (why: string) => new LabUsageError(`--op-latency ${JSON.stringify(value)}: ${why}`);
    const eq = value.lastIndexOf('=');
    if (eq <= 0) throw bad('expected <operation>=<ms>, e.g. CreateRoute=250 or ec2:DescribeRouteTables=20-60');
    const op = resolveOperation(value.slice(0, eq));
    if ('error' in op) throw bad(op.error);
    const spec = value.slice(eq + 1);
    const range = /^(\d+)-(\d+)$/.exec(spec);
    let latency: OpLatencyMs | undefined;
    if (range) {
      const lo = ms(range[1]!);
      const hi = ms(range[2]!);
      latency = lo !== undefined && hi !== undefined && lo <= hi ? [lo, hi] : undefined;
    } else {
      latency = ms(spec);
    }
    if (latency === undefined) throw bad(`the latency must be whole milliseconds from 0 to ${MAX_MS}, or a range like 100-300, got ${JSON.stringify(spec)}`);
    const key = `${op.service}:${op.action}`;
    if (key in out) throw bad(`${key} is given twice`);
    out[key] = latency;
  }
  return out;
}

/** `aws` or `aws, ec2:CreateRoute 250 ms, ec2:ReplaceRoute 100-400 ms`, for start-up messages. */
export function describeLatency(profile: LatencyChoice, opLatency: OpLatency): string {
  const ops = Object.entries(opLatency).map(([k, v]) => `${k} ${typeof v === 'number' ? v : `${v[0]}-${v[1]}`} ms`);
  return [profile, ...ops].join(', ');
}

/** The flags that reproduce these options on another `hanat-lab` command line (for `up --detach`). */
export function latencyArgs(opts: LatencyOptions): string[] {
  return ['--latency', opts.latency, ...(opts.opLatency ?? []).flatMap((v) => ['--op-latency', v])];
}
