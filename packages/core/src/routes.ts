/**
 * Pointing a private route table's default route at a NAT, race-safe, for
 * everyone who does it: the agent when it claims its tables, the CLI's
 * `hanat failover`. Replace when a route exists, create when it does not, and
 * when someone else creates it between our look and our create, replace after all.
 */
import { CreateRouteCommand, ReplaceRouteCommand } from '@aws-sdk/client-ec2';
import { awsErrorName } from './aws.js';
import { DEFAULT_ROUTE_CIDR } from './tags.js';
import type { Ec2 } from './aws.js';

export type RouteWrite = 'replaced' | 'created';

/**
 * How often, by default, an agent checks its route tables: the longest a table
 * waits for its AZ's NAT after `hanat failover --restore`. The agent's
 * `--route-interval` defaults to it; the CLI quotes it.
 */
export const DEFAULT_ROUTE_INTERVAL_S = 30;

/** The UDP port the NATs of a stack heartbeat each other on (docs/ha.md); the template admits it. */
export const HA_PORT = 4242;

/**
 * Where a NAT's forward probes come from: `100.64.<3rd>.<4th octet>` of its private address
 * (docs/ha.md, "forward probe"). Not a VPC address, so the NATs' security group must admit it
 * on the heartbeat port, or every peer's probe is dropped before it arrives.
 */
export const FORWARD_PROBE_CIDR = '100.64.0.0/16';

/**
 * Runs one call of `pointDefaultRoute`; the caller can wrap it (name the call in
 * its errors, retry throttling). Identity by default.
 */
export type RouteCallWrapper = <T>(action: 'ReplaceRoute' | 'CreateRoute', call: () => Promise<T>) => Promise<T>;

/** The AWS error behind `err`: `err` itself, or the first error in its `cause` chain that AWS answered. */
function awsCause(err: unknown): unknown {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ('$metadata' in e || '$fault' in e) return e;
  }
  return err;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : '';
}

/**
 * ReplaceRoute on a route that is not there. The API reference lists
 * InvalidRoute.NotFound, but EC2 answers InvalidParameterValue "There is no route
 * defined for ... Use CreateRoute instead."; both count. Looks through `cause`.
 */
export function isMissingRouteError(err: unknown): boolean {
  const e = awsCause(err);
  const name = awsErrorName(e);
  return name === 'InvalidRoute.NotFound' || (name === 'InvalidParameterValue' && /no route defined/i.test(messageOf(e)));
}

/** CreateRoute on a destination that already has a route. Looks through `cause`. */
export function isRouteExistsError(err: unknown): boolean {
  return awsErrorName(awsCause(err)) === 'RouteAlreadyExists';
}

/**
 * Points `routeTableId`'s 0.0.0.0/0 at the network interface `eniId`.
 * `routeExists` is what the caller last saw; it only decides which call goes first.
 */
export async function pointDefaultRoute(
  ec2: Ec2,
  routeTableId: string,
  eniId: string,
  routeExists: boolean,
  wrap: RouteCallWrapper = (_action, call) => call(),
): Promise<RouteWrite> {
  const input = { RouteTableId: routeTableId, DestinationCidrBlock: DEFAULT_ROUTE_CIDR, NetworkInterfaceId: eniId };
  const replace = () => wrap('ReplaceRoute', () => ec2.send(new ReplaceRouteCommand(input)));
  const create = () => wrap('CreateRoute', () => ec2.send(new CreateRouteCommand(input)));
  const createOrReplace = async (): Promise<RouteWrite> => {
    try {
      await create();
      return 'created';
    } catch (err) {
      if (!isRouteExistsError(err)) throw err;
      await replace();
      return 'replaced';
    }
  };
  if (!routeExists) return createOrReplace();
  try {
    await replace();
    return 'replaced';
  } catch (err) {
    if (!isMissingRouteError(err)) throw err;
    return createOrReplace();
  }
}
