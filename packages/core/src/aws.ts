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
 *
 * Every client also (a) does not retry a call whose endpoint cannot be reached
 * at all (unreachableCode: a refused connection, a host that does not resolve,
 * no route), since a retry only delays the message that says why, and
 * (b) marks each failed call's error with where it went (endpointOf), so that
 * the message can name the endpoint and the setting it came from.
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
  /**
   * The environment the SDK reads (process.env by default), only to name the
   * `AWS_ENDPOINT_URL*` setting a failed call went to (endpointOf).
   */
  env?: Readonly<Record<string, string | undefined>> | undefined;
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
  return finish(new EC2Client(config(opts)), 'EC2', opts);
}

export function autoScalingClient(opts: AwsClientOptions = {}): AutoScalingClient {
  return finish(new AutoScalingClient(config(opts)), 'AUTO_SCALING', opts);
}

export function cloudFormationClient(opts: AwsClientOptions = {}): CloudFormationClient {
  return finish(new CloudFormationClient(config(opts)), 'CLOUDFORMATION', opts);
}

export function ssmClient(opts: AwsClientOptions = {}): SSMClient {
  return finish(new SSMClient(config(opts)), 'SSM', opts);
}

/**
 * Network errors that mean the endpoint cannot be reached at all, as opposed
 * to a connection that broke or timed out: nothing listens at the address
 * (ECONNREFUSED, e.g. a stopped lab), its host name does not exist (ENOTFOUND;
 * a temporary DNS failure is EAI_AGAIN, not this), or there is no route to it.
 */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);

/** The code (ECONNREFUSED, ENOTFOUND, EHOSTUNREACH, ENETUNREACH) when `err`, or an error it wraps, says the endpoint cannot be reached. */
export function unreachableCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE.has(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Where a failed call went: the endpoint URL, and the setting that chose it. */
export interface Endpoint {
  /** e.g. `http://127.0.0.1:4566` or `https://ec2.eu-west-1.amazonaws.com`. */
  url: string;
  /** `AWS_ENDPOINT_URL_EC2=…` or `AWS_ENDPOINT_URL=…` as set, or undefined (the SDK's default endpoint, or a profile's endpoint_url). */
  setting: string | undefined;
}

const ENDPOINT = Symbol.for('hanat.endpoint');

/** Where the call that threw `err` went, when a client of this factory sent it. */
export function endpointOf(err: unknown): Endpoint | undefined {
  return err && typeof err === 'object' ? ((err as { [ENDPOINT]?: Endpoint })[ENDPOINT] ?? undefined) : undefined;
}

/**
 * The `AWS_ENDPOINT_URL*` variable the SDK takes a service's endpoint from,
 * as `NAME=value`: the service's own first, then the general one; none when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true.
 */
export function endpointSetting(service: string, env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS?.trim().toLowerCase() === 'true') return undefined;
  for (const name of [`AWS_ENDPOINT_URL_${service}`, 'AWS_ENDPOINT_URL']) {
    const value = env[name]?.trim();
    if (value) return `${name}=${value}`;
  }
  return undefined;
}

interface RetryErrorInfo {
  error: unknown;
}
interface RetryStrategyV2 {
  acquireInitialRetryToken(scope: string): Promise<unknown>;
  refreshRetryTokenForRetry(token: unknown, info: RetryErrorInfo): Promise<unknown>;
  recordSuccess(token: unknown): void;
}

function isRetryStrategyV2(s: unknown): s is RetryStrategyV2 {
  return typeof s === 'object' && s !== null && 'refreshRetryTokenForRetry' in s && 'acquireInitialRetryToken' in s && 'recordSuccess' in s;
}

/** The SDK's own retry strategy (standard, its token bucket and backoff), except that an unreachable endpoint is not retried. */
function noRetryWhenUnreachable(base: RetryStrategyV2): RetryStrategyV2 {
  return {
    acquireInitialRetryToken: (scope) => base.acquireInitialRetryToken(scope),
    // Throwing here ends the SDK's retry loop; it then throws the call's own error.
    refreshRetryTokenForRetry: (token, info) =>
      unreachableCode(info.error) ? Promise.reject(new Error('no retry: the endpoint cannot be reached', { cause: info.error })) : base.refreshRetryTokenForRetry(token, info),
    recordSuccess: (token) => base.recordSuccess(token),
  };
}

interface Finishable {
  config: { retryStrategy: () => Promise<unknown> };
  middlewareStack: { add(middleware: unknown, options: { step: 'finalizeRequest'; priority: 'low'; name: string }): void };
}

/** The behaviour every client of the factory shares, on top of its config: see the module comment. */
function finish<C>(client: C, service: string, opts: AwsClientOptions): C {
  const c = client as C & Finishable;
  const resolve = c.config.retryStrategy;
  let strategy: Promise<unknown> | undefined;
  c.config.retryStrategy = () =>
    (strategy ??= resolve().then((s) => (isRetryStrategyV2(s) ? noRetryWhenUnreachable(s) : s)));

  const setting = endpointSetting(service, opts.env ?? process.env);
  // Inside the retry loop (finalizeRequest, low priority): each attempt's request has its endpoint resolved.
  const markEndpoint =
    (next: (args: { request?: unknown }) => Promise<unknown>) =>
    async (args: { request?: unknown }): Promise<unknown> => {
      try {
        return await next(args);
      } catch (err) {
        const r = args.request as { protocol?: string; hostname?: string; port?: number } | undefined;
        if (err && typeof err === 'object' && r?.hostname && !(ENDPOINT in err)) {
          const host = r.hostname.includes(':') ? `[${r.hostname}]` : r.hostname;
          const url = `${r.protocol ?? 'https:'}//${host}${r.port ? `:${r.port}` : ''}`;
          Object.defineProperty(err, ENDPOINT, { value: { url, setting } satisfies Endpoint, enumerable: false, configurable: true });
        }
        throw err;
      }
    };
  c.middlewareStack.add(markEndpoint, { step: 'finalizeRequest', priority: 'low', name: 'hanatEndpoint' });
  return client;
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
