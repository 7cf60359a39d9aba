/** Any aws-sdk-client-mock stub: only its recorded calls are read. */
interface Recorded {
  calls(): { args: readonly unknown[] }[];
}

/** The commands a mocked client was sent, in order, as [name, input]. */
export function sent(mock: Recorded): [string, Record<string, unknown>][] {
  return mock.calls().map((call) => {
    const command = call.args[0] as { constructor: { name: string }; input: Record<string, unknown> };
    return [command.constructor.name.replace(/Command$/, ''), command.input];
  });
}

export function names(mock: Recorded): string[] {
  return sent(mock).map(([name]) => name);
}

export function inputsOf(mock: Recorded, name: string): Record<string, unknown>[] {
  return sent(mock)
    .filter(([n]) => n === name)
    .map(([, input]) => input);
}

/** A retry's progress line on stderr (cfn.ts retrying): the call, the error, the attempt, the wait and the time left. */
export const RETRY_LINE = /^warning: (AWS is throttling or failing|Could not reach AWS for) .*: attempt \d+ of \d+ failed; trying again in \d+ s, giving up in at most (\d+ min )?\d+ s more \(Ctrl-C stops\)\.$/;

/** stderr split into the retry progress lines and the rest. */
export function retryLines(stderr: string): { retries: string[]; rest: string } {
  const lines = stderr.split('\n');
  return { retries: lines.filter((l) => RETRY_LINE.test(l)), rest: lines.filter((l) => !RETRY_LINE.test(l)).join('\n') };
}
