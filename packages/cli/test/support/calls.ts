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
