/**
 * The CLI's view of AWS: clients from @hanat/core's one factory, the region
 * check, and the translation of SDK errors into the CLI's error taxonomy.
 */
import { formatWithOptions } from 'node:util';
import { awsErrorName, cloudFormationClient, ec2Client, ssmClient, type SdkLogger } from '@hanat/core';
import type { AwsClients, AwsFactory, AwsTarget } from './deps.js';
import { OperationError, UsageError } from './errors.js';

/** An SDK log entry (usually an object: client, command, input, error) as readable text. */
function logText(content: unknown[]): string {
  return formatWithOptions({ breakLength: Infinity, depth: 4 }, ...content);
}

/** The production factory: real SDK clients; SDK diagnostics only with --debug. */
export function awsFactory(debugLog: (line: string) => void): AwsFactory {
  return (target: AwsTarget): AwsClients => {
    const logger: SdkLogger | undefined = target.debug
      ? {
          debug: () => {},
          info: () => {},
          warn: (...c: unknown[]) => debugLog(`aws-sdk warn: ${logText(c)}`),
          error: (...c: unknown[]) => debugLog(`aws-sdk error: ${logText(c)}`),
        }
      : undefined;
    const opts = { region: target.region, profile: target.profile, component: 'cli', logger };
    const cloudFormation = cloudFormationClient(opts);
    const ec2 = ec2Client(opts);
    const ssm = ssmClient(opts);
    return {
      cloudFormation,
      ec2,
      ssm,
      async region() {
        try {
          const region = await cloudFormation.config.region();
          return region || undefined;
        } catch {
          return undefined;
        }
      },
      destroy() {
        cloudFormation.destroy();
        ec2.destroy();
        ssm.destroy();
      },
    };
  };
}

export const NO_REGION_MESSAGE =
  'No AWS region: pass --region (e.g. --region eu-west-1), set AWS_REGION or AWS_DEFAULT_REGION, or set "region" in your profile in ~/.aws/config.';

const CREDENTIALS = new Set(['CredentialsProviderError', 'ExpiredToken', 'ExpiredTokenException', 'InvalidClientTokenId', 'UnrecognizedClientException', 'SignatureDoesNotMatch', 'AuthFailure', 'InvalidSignatureException', 'TokenProviderError']);
const DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'UnauthorizedAccess']);
export const CHECK_NETWORK = 'Check the network, or AWS_ENDPOINT_URL if you set it.';
const NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH']);

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

/** The Node network error code (ECONNREFUSED, ENOTFOUND, ...) of a failed call, if that is what it was. */
export function networkErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && NETWORK.has(code) ? code : undefined;
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
  if (code) {
    throw new OperationError(`Could not reach AWS for ${what} (${code}). ${CHECK_NETWORK}`, { cause: err });
  }
  throw new OperationError(`${what} failed: ${name}: ${messageOf(err)}`, { cause: err });
}
