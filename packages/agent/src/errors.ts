/**
 * The agent's error taxonomy and exit codes (STYLE.md "A small error taxonomy").
 * Exit codes are public API: the systemd unit relies on them.
 *
 *   0  stopped cleanly (SIGTERM) / `check`: healthy
 *   1  failed; systemd restarts the agent (repeated identical local failures, IMDS unreachable)
 *      / `check`: unhealthy, or not verified (routes could not be checked)
 *   2  bad usage or configuration; systemd does not restart (RestartPreventExitStatus=2)
 */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Bad flags, environment or instance tags. Exit 2: restarting cannot fix it. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = EXIT_USAGE;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The agent could not do its job. Exit 1: systemd restarts it fresh. */
export class OperationError extends Error {
  override readonly name: string = 'OperationError';
  readonly exitCode = EXIT_FAILED;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** IMDS did not answer, or answered something unusable. */
export class ImdsError extends OperationError {
  override readonly name = 'ImdsError';
  constructor(
    message: string,
    readonly path: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A host command (nft, sysctl, ip) failed or the kernel did not take a setting. */
export class KernelError extends OperationError {
  override readonly name = 'KernelError';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
