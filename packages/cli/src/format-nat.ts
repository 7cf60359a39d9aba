/**
 * How `hanat status` and `hanat failover` results look on stdout: tables for
 * people (takeovers, pins and broken routes in capitals, so they stand out
 * without colour), and the `--json` documents (absent values are null).
 */
import { TAG } from '@hanat/core';
import type { FailoverResult } from './failover.js';
import type { EipState, NatState } from './observe.js';
import type { Palette } from './format.js';
import type { StatusResult, TableVerdict, Verdict, WatchFrame } from './status.js';

/** Columns padded to their widest cell; the last column is not padded. */
function columns(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** `ok` stays quiet; everything else is shouted. */
export function verdictLabel(v: Verdict): string {
  return v === 'ok' ? 'ok' : v.toUpperCase();
}

function routeCell(t: TableVerdict): string {
  if (!t.route) return '-';
  return `${t.route.target} (${t.route.state ?? 'unknown'})`;
}

function natRows(nats: readonly NatState[]): string[][] {
  return [
    ['AZ', 'INSTANCE', 'STATE', 'HEALTH', 'LIFECYCLE', 'ENI', 'PRIVATE IP', 'PUBLIC IP', 'SRC/DST CHECK', 'LAUNCHED'],
    ...nats.map((n) => [
      n.az,
      n.instanceId,
      n.state,
      n.autoScaling?.health ?? '-',
      n.autoScaling?.lifecycle ?? '(no group)',
      n.networkInterfaceId ?? '-',
      n.privateIp ?? '-',
      n.publicIp ?? '-',
      n.sourceDestCheck === undefined ? '-' : n.sourceDestCheck ? 'ON (cannot forward)' : 'off',
      n.launchTime ?? '-',
    ]),
  ];
}

function eipRows(eips: readonly EipState[]): string[][] {
  return [
    ['AZ', 'ELASTIC IP', 'ALLOCATION', 'ASSOCIATED WITH'],
    ...eips.map((e) => [e.az ?? '-', e.publicIp ?? '-', e.allocationId, e.instanceId ?? e.networkInterfaceId ?? '(not associated)']),
  ];
}

export function statusTable(r: StatusResult): string {
  const azRows = [
    ['AZ', 'VERDICT', 'ROUTE TABLE', 'DEFAULT ROUTE', 'SERVED BY', 'DETAIL'],
    ...r.azs.flatMap((a) =>
      a.routeTables.map((t) => [a.az, verdictLabel(t.verdict), t.routeTableId, routeCell(t), t.servedBy ? `${t.servedBy.instanceId} (${t.servedBy.az})` : '-', t.detail]),
    ),
  ];
  const parts = [`Stack ${r.stack} in ${r.region} (${r.stackStatus})\n`, columns(azRows)];
  if (r.untagged.length) parts.push(`Private route tables without ${TAG.az} (in no AZ): ${r.untagged.join(', ')}\n`);
  parts.push('\nNAT instances\n', r.nats.length ? columns(natRows(r.nats)) : '  none (not terminated)\n');
  if (r.failedLaunches.length) {
    parts.push('\nFailed launches (the latest scaling activity of the AZ\'s group, in AWS\'s words)\n', columns([['AZ', 'TIME', 'GROUP', 'REASON'], ...r.failedLaunches.map((f) => [f.az, f.time ?? '-', f.group, f.message])]));
  }
  if (r.eips.length) parts.push('\nElastic IPs\n', columns(eipRows(r.eips)));
  return parts.join('');
}

const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

function natJson(n: NatState) {
  return {
    instanceId: n.instanceId,
    az: n.az,
    state: n.state,
    networkInterfaceId: orNull(n.networkInterfaceId),
    privateIp: orNull(n.privateIp),
    publicIp: orNull(n.publicIp),
    sourceDestCheck: orNull(n.sourceDestCheck),
    launchTime: orNull(n.launchTime),
    autoScaling: n.autoScaling ? { group: n.autoScaling.group, health: n.autoScaling.health, lifecycle: n.autoScaling.lifecycle } : null,
    statusChecks: n.statusChecks ? { instance: n.statusChecks.instance, system: n.statusChecks.system, impairedSince: orNull(n.statusChecks.impairedSince) } : null,
  };
}

/** The `--json` document of `hanat status`, as an object. */
export function statusDoc(r: StatusResult) {
  return {
    stack: r.stack,
    region: r.region,
    stackStatus: r.stackStatus,
    healthy: r.degraded.length === 0,
    degraded: r.degraded,
    untaggedRouteTables: r.untagged,
    azs: r.azs.map((a) => ({
      az: a.az,
      verdict: a.verdict,
      servedBy: orNull(a.servedBy),
      since: orNull(a.since),
      reason: orNull(a.reason),
      detail: a.detail,
      routeTables: a.routeTables.map((t) => ({
        routeTableId: t.routeTableId,
        verdict: t.verdict,
        detail: t.detail,
        route: t.route ? { target: t.route.target, networkInterfaceId: orNull(t.route.networkInterfaceId), instanceId: orNull(t.route.instanceId), state: orNull(t.route.state) } : null,
        servedBy: orNull(t.servedBy),
        since: orNull(t.since),
        reason: orNull(t.reason),
        override: orNull(t.override),
        owner: t.owner ? { instanceId: t.owner.instanceId, since: orNull(t.owner.since), reason: orNull(t.owner.reason) } : null,
      })),
    })),
    nats: r.nats.map(natJson),
    eips: r.eips.map((e) => ({ allocationId: e.allocationId, publicIp: orNull(e.publicIp), az: orNull(e.az), instanceId: orNull(e.instanceId), networkInterfaceId: orNull(e.networkInterfaceId) })),
    failedLaunches: r.failedLaunches.map((f) => ({ az: f.az, group: f.group, time: orNull(f.time), message: f.message, description: orNull(f.description) })),
  };
}

/** The `--json` document of `hanat status`. */
export function statusJson(r: StatusResult): string {
  return JSON.stringify(statusDoc(r), null, 2) + '\n';
}

// ---- hanat status --watch ----

/** ANSI control sequences (ECMA-48): cursor home, erase display, erase to the end of the line / display. */
const HOME = '\x1b[H';
const CLEAR_SCREEN = '\x1b[2J';
const CLEAR_LINE_END = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';

export interface WatchView {
  /** Seconds between two looks. */
  intervalS: number;
  /** stdout is a terminal: redraw in place. Otherwise each look is printed after the last. */
  tty: boolean;
  /** Colours for the summary line (none off a terminal or with NO_COLOR). */
  palette: Palette;
}

const clockTime = (ms: number) => `${new Date(ms).toISOString().slice(11, 19)} UTC`;

/** One line: does every AZ reach the internet, and if not, which do not. */
function summary(r: StatusResult, p: Palette): string {
  if (r.degraded.length > 0) {
    const n = r.degraded.length;
    return p.red(`${n} ${n === 1 ? 'AZ cannot' : 'AZs cannot'} reach the internet: ${r.degraded.join(', ')}`);
  }
  const moved = r.azs.filter((a) => a.verdict !== 'ok').map((a) => `${a.az} ${verdictLabel(a.verdict)}`);
  return p.green(`every AZ reaches the internet${moved.length ? ` (${moved.join(', ')})` : ''}`);
}

/**
 * One screen of `hanat status --watch`, for people: a header with the time of the look,
 * a summary line, then the status table. On a terminal the screen is drawn over the last
 * one from the top-left corner (the first one clears the screen), each line erased to its
 * end and everything below it erased, so nothing scrolls; off a terminal it is plain text
 * that follows the last screen after a blank line. A failed look shows the error above the
 * last good result.
 */
export function watchScreen(frame: WatchFrame, last: StatusResult | undefined, view: WatchView, first: boolean): string {
  const p = view.palette;
  const shown = frame.result ?? last;
  const lines = [
    `hanat status --watch: stack ${shown?.stack ?? '?'} in ${shown?.region ?? '?'}, a look every ${view.intervalS} s; last look ${clockTime(frame.at)}. Ctrl-C stops.`,
    frame.error ? p.red(`This look failed: ${frame.error.message}${last ? '\nThe last good look follows.' : ''} The next look is in ${view.intervalS} s.`) : summary(frame.result, p),
    '',
  ];
  const body = [...lines, ...(shown ? statusTable(shown).trimEnd().split('\n') : [])].join('\n').split('\n');
  if (!view.tty) return `${first ? '' : '\n'}${body.join('\n')}\n`;
  return `${first ? HOME + CLEAR_SCREEN : HOME}${body.map((l) => l + CLEAR_LINE_END).join('\n')}\n${CLEAR_BELOW}`;
}

/** One look of `hanat status --watch --json`: one JSON document on one line (JSON Lines), with its time. */
export function watchJsonLine(frame: WatchFrame): string {
  const time = new Date(frame.at).toISOString();
  return JSON.stringify(frame.result ? { time, ...statusDoc(frame.result) } : { time, error: frame.error.message }) + '\n';
}

/** What `hanat failover` did, for people. */
export function failoverText(r: FailoverResult): string {
  const lines: string[] = [];
  const rows = [
    ['ROUTE TABLE', 'PIN', 'DEFAULT ROUTE', 'OWNER TAGS'],
    ...r.routeTables.map((t) => [t.routeTableId, t.pin, t.route, t.owner]),
  ];
  if (r.action === 'failover') {
    lines.push(
      r.changed
        ? `AZ ${r.az} now sends 0.0.0.0/0 through ${r.to}'s NAT ${r.instanceId} (${r.networkInterfaceId}), pinned with ${r.pinTag}=${r.to}.`
        : `Nothing to do: AZ ${r.az} already sends 0.0.0.0/0 through ${r.to}'s NAT ${r.instanceId} (${r.networkInterfaceId}) and is pinned to ${r.to}.`,
    );
  } else {
    lines.push(r.changed ? `Removed the pin ${r.pinTag} from AZ ${r.az}'s private route table(s).` : `Nothing to do: AZ ${r.az}'s private route table(s) carry no ${r.pinTag} pin.`);
  }
  lines.push(columns(rows).trimEnd());
  for (const note of r.notes) lines.push(note);
  return lines.join('\n') + '\n';
}

export function failoverJson(r: FailoverResult): string {
  return (
    JSON.stringify(
      {
        stack: r.stack,
        region: r.region,
        action: r.action,
        az: r.az,
        to: orNull(r.to),
        instanceId: orNull(r.instanceId),
        networkInterfaceId: orNull(r.networkInterfaceId),
        changed: r.changed,
        routeTables: r.routeTables,
        notes: r.notes,
        undo: orNull(r.undo),
      },
      null,
      2,
    ) + '\n'
  );
}
