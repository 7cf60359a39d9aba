/**
 * The CLI's error taxonomy (STYLE.md practice 5). Actions throw these; the one
 * exit path (`run` in run.ts) maps them to exit codes and messages.
 *
 * - UsageError     exit 2: bad usage or input, including bad input that AWS
 *                  reveals (a key pair that does not exist in the region).
 * - OperationError exit 1: the operation ran and failed (the stack rolled back,
 *                  AWS refused a call, the stack is in a state we cannot act on).
 * - InterruptedError exit 130: Ctrl-C while waiting; the stack is left alone.
 * - InternalError  (or anything else): a bug in hanat.
 *
 * Every message names the bad value and says how to fix it.
 */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  internal: 70,
  interrupted: 130,
} as const;

export class HanatError extends Error {
  readonly exitCode: number = EXIT.failed;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class UsageError extends HanatError {
  override readonly exitCode: number = EXIT.usage;
}

export class OperationError extends HanatError {
  override readonly exitCode: number = EXIT.failed;
}

export class InterruptedError extends HanatError {
  override readonly exitCode: number = EXIT.interrupted;
}

export class InternalError extends HanatError {
  override readonly exitCode: number = EXIT.internal;
}

/** True when `err` is Ctrl-C: the signal fired, or a wait it cut short rejected with an AbortError. */
export function isAbort(err: unknown, signal: AbortSignal): boolean {
  return signal.aborted || (err instanceof Error && err.name === 'AbortError');
}
