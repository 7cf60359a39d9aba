/**
 * pino, synchronous, one JSON line per event (STYLE.md 13). Every line carries a
 * stable `event` name; `component` comes from the child logger. Tests pass their
 * own destination stream and read the lines back.
 */
import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { VERSION } from '@hanat/core';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export function createLogger(level: LevelWithSilent, dest?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'hanat-agent', version: VERSION },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest ?? pino.destination({ dest: 1, sync: true }),
  );
}
