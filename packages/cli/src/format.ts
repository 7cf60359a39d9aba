/**
 * How results and progress look: the stderr progress reporter, the change
 * list, stack event lines, the outputs table. Colour only when asked for
 * (a TTY without NO_COLOR, or --color always).
 */
import type { ResourceChange, StackEvent } from '@aws-sdk/client-cloudformation';
import type { Reporter } from './deps.js';
import type { DeployResult } from './deploy.js';

export interface Palette {
  red: (s: string) => string;
  green: (s: string) => string;
  yellow: (s: string) => string;
  dim: (s: string) => string;
  bold: (s: string) => string;
}

const sgr = (code: string) => (s: string) => `\x1b[${code}m${s}\x1b[0m`;
const plain = (s: string) => s;

export function palette(color: boolean): Palette {
  return color
    ? { red: sgr('31'), green: sgr('32'), yellow: sgr('33'), dim: sgr('2'), bold: sgr('1') }
    : { red: plain, green: plain, yellow: plain, dim: plain, bold: plain };
}

/** Colour on a terminal unless NO_COLOR is set (non-empty); `--color` overrides. */
export function useColor(mode: 'auto' | 'always' | 'never', isTTY: boolean, env: Readonly<Record<string, string | undefined>>): boolean {
  if (mode === 'always') return true;
  if (mode === 'never') return false;
  return isTTY && !env.NO_COLOR;
}

function statusColor(p: Palette, status: string, width = 0): string {
  const text = status.padEnd(width);
  if (status.endsWith('_FAILED') || status.includes('ROLLBACK')) return p.red(text);
  if (status.endsWith('_COMPLETE')) return p.green(text);
  return p.yellow(text);
}

function hhmmss(d: Date | undefined): string {
  return d ? d.toISOString().slice(11, 19) : '--:--:--';
}

export function formatEvent(e: StackEvent, p: Palette): string {
  const status = e.ResourceStatus ?? '?';
  const reason = e.ResourceStatusReason ? `  ${status.endsWith('_FAILED') ? p.red(e.ResourceStatusReason) : p.dim(e.ResourceStatusReason)}` : '';
  return `${p.dim(hhmmss(e.Timestamp))}  ${statusColor(p, status, 28)} ${(e.ResourceType ?? '?').padEnd(36)} ${e.LogicalResourceId ?? '?'}${reason}`;
}

const ACTION_MARK: Record<string, string> = { Add: '+', Modify: '~', Remove: '-', Import: '>', Dynamic: '?' };

export function formatChange(c: ResourceChange, p: Palette): string {
  const action = c.Action ?? '?';
  const mark = ACTION_MARK[action] ?? '?';
  const colour = action === 'Add' ? p.green : action === 'Remove' ? p.red : p.yellow;
  const replacement =
    c.Replacement === 'True' ? p.red('  replacement: yes') : c.Replacement === 'Conditional' ? p.yellow('  replacement: conditional') : '';
  return `  ${colour(`${mark} ${action.padEnd(7)}`)} ${(c.ResourceType ?? '?').padEnd(40)} ${c.LogicalResourceId ?? '?'}${replacement}`;
}

/** The reporter the CLI gives actions: one line per message on stderr. */
export function stderrReporter(write: (text: string) => void, p: Palette): Reporter {
  return {
    step: (m) => write(`${m}\n`),
    warn: (m) => write(`${p.yellow('warning:')} ${m}\n`),
    changes: (changes) => {
      for (const c of changes) write(`${formatChange(c, p)}\n`);
    },
    event: (e) => write(`${formatEvent(e, p)}\n`),
  };
}

/** Outputs as a two-column table for people (stdout). */
export function outputsTable(outputs: Record<string, string>): string {
  const keys = Object.keys(outputs);
  if (keys.length === 0) return '';
  const width = Math.max('OUTPUT'.length, ...keys.map((k) => k.length));
  return [`${'OUTPUT'.padEnd(width)}  VALUE`, ...keys.map((k) => `${k.padEnd(width)}  ${outputs[k]}`)].join('\n') + '\n';
}

/** The `--json` document of a deploy (stdout). */
export function deployJson(r: DeployResult): string {
  return (
    JSON.stringify(
      {
        stack: r.stack,
        stackId: r.stackId ?? null,
        region: r.region,
        outcome: r.outcome,
        status: r.status ?? null,
        ami: r.ami,
        changes: r.changes.map((c) => ({
          action: c.Action,
          logicalId: c.LogicalResourceId,
          type: c.ResourceType,
          replacement: c.Replacement ?? null,
        })),
        outputs: r.outputs,
      },
      null,
      2,
    ) + '\n'
  );
}
