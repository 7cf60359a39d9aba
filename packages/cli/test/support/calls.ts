import type { AwsStub } from 'aws-sdk-client-mock';

/** The commands a mocked client was sent, in order, as [name, input]. */
export function sent(mock: AwsStub<object, object, object>): [string, Record<string, unknown>][] {
  return mock.calls().map((call) => {
    const command = call.args[0] as { constructor: { name: string }; input: Record<string, unknown> };
    return [command.constructor.name.replace(/Command$/, ''), command.input];
  });
}

export function names(mock: AwsStub<object, object, object>): string[] {
  return sent(mock).map(([name]) => name);
}

export function inputsOf(mock: AwsStub<object, object, object>, name: string): Record<string, unknown>[] {
  return sent(mock)
    .filter(([n]) => n === name)
    .map(([, input]) => input);
}
