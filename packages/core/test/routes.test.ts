/**
 * At the send() boundary: a stand-in client records each command and answers
 * from a per-command script (core has no aws-sdk-client-mock of its own).
 */
import { EC2ServiceException } from '@aws-sdk/client-ec2';
import { beforeEach, describe, expect, it } from 'vitest';
import { isMissingRouteError, pointDefaultRoute, type Ec2 } from '../src/index.js';

const calls: [string, unknown][] = [];
const answers = new Map<string, (EC2ServiceException | object)[]>();
const ec2: Ec2 = {
  send(command: { constructor: { name: string }; input: unknown }) {
    const name = command.constructor.name.replace(/Command$/, '');
    calls.push([name, command.input]);
    const script = answers.get(name) ?? [];
    const answer = script.length > 1 ? script.shift()! : script[0];
    if (answer === undefined) throw new Error(`unexpected ${name}`);
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  },
  destroy() {},
} as never;
const on = (name: string, ...script: (EC2ServiceException | object)[]) => answers.set(name, script);

function awsError(name: string, message = ''): EC2ServiceException {
  return new EC2ServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: 400 } });
}

const sent = () => calls.map(([name]) => name);
const ROUTE = { RouteTableId: 'rtb-0a', DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: 'eni-0b' };

beforeEach(() => {
  calls.length = 0;
  answers.clear();
});

describe('pointDefaultRoute', () => {
  it('replaces an existing default route instead of failing', async () => {
    on('ReplaceRoute', {});
    expect(await pointDefaultRoute(ec2, 'rtb-0a', 'eni-0b', true)).toBe('replaced');
    expect(calls[0]![1]).toEqual(ROUTE);
    expect(sent()).toEqual(['ReplaceRoute']);
  });

  it('creates the route when EC2 says there is none, in either of its wordings', async () => {
    for (const err of [awsError('InvalidRoute.NotFound'), awsError('InvalidParameterValue', "There is no route defined for '0.0.0.0/0' in the route table. Use CreateRoute instead.")]) {
      calls.length = 0;
      on('ReplaceRoute', err);
      on('CreateRoute', { Return: true });
      expect(await pointDefaultRoute(ec2, 'rtb-0a', 'eni-0b', true)).toBe('created');
      expect(sent()).toEqual(['ReplaceRoute', 'CreateRoute']);
    }
  });

  it('replaces after all when someone created the route between the look and the create', async () => {
    on('CreateRoute', awsError('RouteAlreadyExists'));
    on('ReplaceRoute', {});
    expect(await pointDefaultRoute(ec2, 'rtb-0a', 'eni-0b', false)).toBe('replaced');
    expect(sent()).toEqual(['CreateRoute', 'ReplaceRoute']);
  });

  it('lets other errors through, and lets the caller wrap each call', async () => {
    on('ReplaceRoute', awsError('InvalidParameterValue', 'Invalid value for portRange'));
    const wrapped: string[] = [];
    await expect(
      pointDefaultRoute(ec2, 'rtb-0a', 'eni-0b', true, (action, call) => {
        wrapped.push(action);
        return call();
      }),
    ).rejects.toThrow(/portRange/);
    expect(wrapped).toEqual(['ReplaceRoute']);
  });

  it('recognises a missing route behind a wrapping error', () => {
    const inner = awsError('InvalidRoute.NotFound');
    expect(isMissingRouteError(new Error('ReplaceRoute on rtb-0a failed', { cause: inner }))).toBe(true);
    expect(isMissingRouteError(new Error('something else'))).toBe(false);
  });
});
