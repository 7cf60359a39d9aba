/**
 * The CLI's view of AWS: clients from @hanat/core's one factory, the region
 * check, and the translation of SDK errors into the CLI's error taxonomy.
 */
import { formatWithOptions } from 'node:util';
import { autoScalingClient, awsErrorName, cloudFormationClient, ec2Client, endpointOf, ssmClient, unreachableCode, type SdkLogger } from '@hanat/core';
import type { AwsClients, AwsFactory, AwsTarget } from './deps.js';
import { OperationError, UsageError } from './errors.js';
import { readSharedConfig, type SharedConfig } from './profiles.js';
import { checkRegion } from './validate.js';

/** An SDK log entry (usually an object: client, command, input, error) as readable text. */
function logText(content: unknown[]): string {
  return formatWithOptions({ breakLength: Infinity, depth: 4 }, ...content);
}

/**
 * The production factory: real SDK clients; SDK diagnostics only with --debug.
 * `env` must be the environment the SDK reads (process.env), so that the
 * profile check looks at the same files the SDK will.
 */
export function awsFactory(debugLog: (line: string) => void, env: Readonly<Record<string, string | undefined>> = process.env): AwsFactory {
  return (target: AwsTarget): AwsClients => {
    const logger: SdkLogger | undefined = target.debug
      ? {
          debug: () => {},
          info: () => {},
          warn: (...c: unknown[]) => debugLog(`aws-sdk warn: ${logText(c)}`),
          error: (...c: unknown[]) => debugLog(`aws-sdk error: ${logText(c)}`),
        }
      : undefined;
    const opts = { region: target.region, profile: target.profile, component: 'cli', logger, env };
    const cloudFormation = cloudFormationClient(opts);
    const ec2 = ec2Client(opts);
    const ssm = ssmClient(opts);
    const autoScaling = autoScalingClient(opts);
    return {
      cloudFormation,
      ec2,
      ssm,
      autoScaling,
      async region() {
        try {
          const region = await cloudFormation.config.region();
          return region || undefined;
        } catch {
          return undefined;
        }
      },
      sharedConfig() {
        return readSharedConfig(env);
      },
      destroy() {
        cloudFormation.destroy();
        ec2.destroy();
        ssm.destroy();
        autoScaling.destroy();
      },
    };
  };
}

export const NO_REGION_MESSAGE =
  'No AWS region: pass --region (e.g. --region eu-west-1), set AWS_REGION or AWS_DEFAULT_REGION, or set "region" in your profile in ~/.aws/config.';

/** Which option a region or profile came from: the flag, or the variable commander read into it. */
export type RegionFrom = '--region' | 'AWS_REGION';
export type ProfileFrom = '--profile' | 'AWS_PROFILE';

/** The options every command that works on one stack shares. */
export interface StackTargetOptions {
  name: string;
  region?: string | undefined;
  /** Where `region` came from, for messages: the flag (default) or AWS_REGION. */
  regionFrom?: RegionFrom | undefined;
  profile?: string | undefined;
  /** Where `profile` came from, for messages: the flag (default) or AWS_PROFILE. */
  profileFrom?: ProfileFrom | undefined;
  debug?: boolean | undefined;
}

/**
 * The region given without reading any file: --region (or AWS_REGION, which
 * commander reads into it), else AWS_DEFAULT_REGION as the AWS CLI does.
 * A malformed one is blamed on where it came from.
 */
export function localRegion(
  opts: { region?: string | undefined; regionFrom?: RegionFrom | undefined },
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  if (opts.region) {
    return checkRegion(opts.region, opts.regionFrom === 'AWS_REGION' ? { kind: 'env', name: 'AWS_REGION' } : { kind: 'flag' });
  }
  if (env.AWS_DEFAULT_REGION) return checkRegion(env.AWS_DEFAULT_REGION, { kind: 'env', name: 'AWS_DEFAULT_REGION' });
  return undefined;
}

export function profileNotFoundMessage(profile: string, from: ProfileFrom, shared: SharedConfig): string {
  const known = shared.profiles.length ? `Profiles there: ${shared.profiles.join(', ')}.` : 'Neither file defines a profile.';
  const other = from === 'AWS_PROFILE' ? 'or set AWS_PROFILE to another profile (or unset it)' : 'or pass another --profile';
  return (
    `profile "${profile}" was not found in ${shared.configFile} or ${shared.credentialsFile}` +
    (from === 'AWS_PROFILE' ? ' (AWS_PROFILE names it; no --profile was given)' : '') +
    `. Create it with: aws configure --profile ${profile}, ${other}. ${known}`
  );
}

/**
 * Checks where the AWS calls will go, before the first one: a named profile
 * must exist in the shared files, there must be a region, and a region that
 * came from the profile's config must look like one. Returns the region.
 */
export async function checkTarget(
  clients: AwsClients,
  target: { profile?: string | undefined; profileFrom?: ProfileFrom | undefined; region: string | undefined },
): Promise<string> {
  const shared = await clients.sharedConfig();
  const profile = target.profile || undefined;
  if (profile !== undefined && !shared.profiles.includes(profile)) {
    throw new UsageError(profileNotFoundMessage(profile, target.profileFrom ?? '--profile', shared));
  }
  const region = await clients.region();
  if (!region) throw new UsageError(NO_REGION_MESSAGE);
  // Neither the flag nor the environment gave it, so the SDK read it from the profile.
  if (target.region === undefined) checkRegion(region, { kind: 'profile', profile: profile ?? 'default', configFile: shared.configFile });
  return region;
}

const CREDENTIALS = new Set(['CredentialsProviderError', 'ExpiredToken', 'ExpiredTokenException', 'InvalidClientTokenId', 'UnrecognizedClientException', 'SignatureDoesNotMatch', 'AuthFailure', 'InvalidSignatureException', 'TokenProviderError']);
const DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'UnauthorizedAccess']);
export const CHECK_NETWORK = 'Check the network, or AWS_ENDPOINT_URL if you set it.';
const NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** True for errors that came from AWS or the SDK, as opposed to bugs in hanat. */
export function isAwsError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { $metadata?: unknown; $fault?: unknown; name?: unknown; code?: unknown };
  return (
    e.$metadata !== undefined ||
    e.$fault !== undefined ||
    (typeof e.name === 'string' && (CREDENTIALS.has(e.name) || e.name === 'TimeoutError')) ||
    (typeof e.code === 'string' && NETWORK.has(e.code))
  );
}

/** True when AWS refused a call for lack of permission (AccessDenied, UnauthorizedOperation, ...). */
export function isAccessDenied(err: unknown): boolean {
  return isAwsError(err) && DENIED.has(awsErrorName(err) ?? '');
}

/** The Node network error code (ECONNREFUSED, ENOTFOUND, ...) of a failed call, if that is what it was. */
export function networkErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && NETWORK.has(code) ? code : undefined;
}

/** Where a failed call went, for messages: the URL, else the address Node could not connect to. */
function whereTo(err: unknown): string | undefined {
  const endpoint = endpointOf(err);
  if (endpoint) return endpoint.url;
  const e = err as { address?: unknown; port?: unknown; hostname?: unknown } | undefined;
  if (typeof e?.address === 'string') return typeof e.port === 'number' ? `${e.address}:${e.port}` : e.address;
  return typeof e?.hostname === 'string' ? e.hostname : undefined;
}

/**
 * The message for a call whose endpoint cannot be reached at all (core's
 * unreachableCode): it names the endpoint and the setting it came from, and
 * what to do. Nothing is retried first: retrying a refused connection only
 * delays this.
 */
export function unreachableMessage(err: unknown, what: string, code: string): string {
  const endpoint = endpointOf(err);
  const where = endpoint?.setting ?? whereTo(err);
  const why = where
    ? ({
        ECONNREFUSED: `nothing listens at ${where}`,
        ENOTFOUND: `the host name of ${where} does not resolve`,
        EHOSTUNREACH: `there is no route to the host of ${where}`,
        ENETUNREACH: `there is no route to the network of ${where}`,
      }[code] ?? `${where} cannot be reached`)
    : ({
        ECONNREFUSED: 'the connection was refused',
        ENOTFOUND: 'the host name does not resolve',
        EHOSTUNREACH: 'there is no route to the host',
        ENETUNREACH: 'there is no route to the network',
      }[code] ?? 'the endpoint cannot be reached');
  const head = `Could not reach AWS for ${what}: ${why} (${code}).`;
  if (endpoint?.setting) {
    const name = endpoint.setting.slice(0, endpoint.setting.indexOf('='));
    return (
      `${head} If that is a hanat lab, it is not running any more: hanat-lab status shows the labs that run, and hanat-lab up starts one (then use its exports). ` +
      `To use real AWS, unset ${name}.`
    );
  }
  return (
    `${head} ` +
    (code === 'ENOTFOUND'
      ? 'Check the region (--region, AWS_REGION) and that this machine can resolve AWS host names (DNS, a proxy).'
      : 'Check the network (a firewall, a proxy, a VPN), or an endpoint_url in your AWS profile.')
  );
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Turns an unexpected AWS error during `what` ("DescribeStacks") into a typed
 * error; anything that is not an AWS error is rethrown as is (a bug).
 */
export function awsFailure(err: unknown, what: string): never {
  if (!isAwsError(err)) throw err;
  const name = awsErrorName(err) ?? 'Error';
  const code = networkErrorCode(err);
  if (CREDENTIALS.has(name)) {
    throw new UsageError(
      `AWS did not accept the credentials (${name}: ${messageOf(err)}). Pass --profile, set AWS_PROFILE, or refresh them (aws sso login / aws configure).`,
      { cause: err },
    );
  }
  if (DENIED.has(name)) {
    throw new OperationError(`AWS denied ${what}: ${messageOf(err)}. The identity running hanat needs permission for it.`, { cause: err });
  }
  const unreachable = unreachableCode(err);
  if (unreachable) throw new OperationError(unreachableMessage(err, what, unreachable), { cause: err });
  if (code) {
    throw new OperationError(`Could not reach AWS for ${what} (${code}). ${CHECK_NETWORK}`, { cause: err });
  }
  throw new OperationError(`${what} failed: ${name}: ${messageOf(err)}`, { cause: err });
}
