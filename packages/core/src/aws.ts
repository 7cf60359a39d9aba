/**
 * The one AWS client factory (STYLE.md "One AWS client factory").
 *
 * Region and profile come from the caller (flags) or from the SDK's standard
 * environment and config files. Endpoints come from the SDK's own
 * `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` settings, which is how the
 * lab plugs in. Business code asks for a narrow client here and never writes
 * `new EC2Client`.
 *
 * Each client has its own function so that a bundle (the agent) only pulls in
 * the SDK packages it really uses.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import { VERSION } from './version.js';

export interface AwsClientOptions {
  region?: string | undefined;
  profile?: string | undefined;
  /** Total attempts per call, retries included (SDK `maxAttempts`). */
  maxAttempts?: number | undefined;
  /** Per-request socket timeout, ms. */
  requestTimeoutMs?: number | undefined;
  /** Connect timeout, ms. */
  connectionTimeoutMs?: number | undefined;
  /** Extra user agent token `hanat-<component>`, e.g. `agent` or `cli`. */
  component?: string | undefined;
  /** SDK diagnostics go to this logger; silent by default so nothing leaks to users. */
  logger?: SdkLogger | undefined;
  /** The keep-alive connections the client uses, when the caller must be able to drop them (connectionPool). */
  connections?: Connections | undefined;
}

/**
 * The keep-alive connections of one or more clients, held by the caller so that
 * it can drop them: a NAT's agent must after associating its Elastic IP, as that
 * releases the public address its open connections to AWS came from, and the next
 * call on such a connection would wait out its timeout.
 */
export interface Connections {
  readonly httpAgent: HttpAgent;
  readonly httpsAgent: HttpsAgent;
  /** Closes every pooled connection; the next call opens a new one. Call it with no request in flight. */
  reset(): void;
}

export function connectionPool(): Connections {
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 50 });
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 50 });
  return {
    httpAgent,
    httpsAgent,
    reset() {
      // An Agent stays usable after destroy(): it only closes the sockets it holds.
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

export interface SdkLogger {
  debug(...content: unknown[]): void;
  info(...content: unknown[]): void;
  warn(...content: unknown[]): void;
  error(...content: unknown[]): void;
}

const silent: SdkLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** A user agent product as the SDK takes it: `[name]` or `[name, version]`. */
export type UserAgentPair = [name: string, version?: string];

/**
 * The user agent every hanat request carries, after the SDK's own: the token
 * `hanat/<version>`, plus `hanat-<component>` (`hanat-cli`, `hanat-agent`).
 * The SDK escapes each pair into one token (a space inside a name becomes
 * `-`), so the tokens go in as separate pairs, never as one string.
 */
export function userAgent(component?: string): UserAgentPair[] {
  const pairs: UserAgentPair[] = [['hanat', VERSION]];
  if (component) pairs.push([`hanat-${component}`]);
  return pairs;
}

function config(opts: AwsClientOptions) {
  return {
    ...(opts.region ? { region: opts.region } : {}),
    ...(opts.profile ? { profile: opts.profile } : {}),
    customUserAgent: userAgent(opts.component),
    maxAttempts: opts.maxAttempts ?? 6,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: opts.connectionTimeoutMs ?? 3_000,
      requestTimeout: opts.requestTimeoutMs ?? 20_000,
      ...(opts.connections ? { httpAgent: opts.connections.httpAgent, httpsAgent: opts.connections.httpsAgent } : {}),
    },
    logger: opts.logger ?? silent,
  };
}

export type Ec2 = Pick<EC2Client, 'send' | 'destroy'>;
export type AutoScaling = Pick<AutoScalingClient, 'send' | 'destroy'>;
export type CloudFormation = Pick<CloudFormationClient, 'send' | 'destroy'>;
export type Ssm = Pick<SSMClient, 'send' | 'destroy'>;

export function ec2Client(opts: AwsClientOptions = {}): EC2Client {
  return new EC2Client(config(opts));
}

export function autoScalingClient(opts: AwsClientOptions = {}): AutoScalingClient {
  return new AutoScalingClient(config(opts));
}

export function cloudFormationClient(opts: AwsClientOptions = {}): CloudFormationClient {
  return new CloudFormationClient(config(opts));
}

export function ssmClient(opts: AwsClientOptions = {}): SSMClient {
  return new SSMClient(config(opts));
}

/** The AWS error name of a thrown SDK error (`RouteAlreadyExists`, `Throttling`, ...), if any. */
export function awsErrorName(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'name' in err && typeof err.name === 'string') {
    const code = (err as { Code?: unknown }).Code;
    return typeof code === 'string' ? code : err.name;
  }
  return undefined;
}

const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
]);

/** True for errors worth retrying: throttling, 5xx, timeouts and connection failures. */
export function isRetryableAwsError(err: unknown): boolean {
  const name = awsErrorName(err);
  if (name && THROTTLING.has(name)) return true;
  const meta = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata;
  if (meta?.httpStatusCode !== undefined && meta.httpStatusCode >= 500) return true;
  if (name && ['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'InternalError', 'InternalFailure', 'ServiceUnavailable', 'Unavailable'].includes(name)) return true;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN'].includes(code);
}
