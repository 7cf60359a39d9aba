/**
 * Our own IMDSv2 client (STYLE.md 10). No SDK, no IMDSv1 fallback.
 *
 * - The endpoint is injectable; by default `AWS_EC2_METADATA_SERVICE_ENDPOINT`,
 *   else http://169.254.169.254.
 * - Each attempt has a short connect timeout and a bounded request time; each
 *   call has a bounded total time across its jittered, bounded retries.
 * - The session token is cached until shortly before it expires, shared by
 *   concurrent calls, and fetched again when IMDS answers 401.
 */
import http from 'node:http';
import { backoff, systemClock, type Clock } from './clock.js';
import { ImdsError, UsageError, errorMessage } from './errors.js';

export const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';
const TOKEN_PATH = '/latest/api/token';
const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'x-aws-ec2-metadata-token';
const MAX_BODY_BYTES = 64 * 1024;
/** What to check when IMDS does not answer: the three usual causes, in the order they are met. */
const UNREACHABLE_HINT =
  'check that the instance has its metadata service enabled (HttpEndpoint=enabled), ' +
  'that its hop limit (HttpPutResponseHopLimit) reaches this process (1 on the host, 2 from a container), ' +
  'and, if --imds-endpoint or AWS_EC2_METADATA_SERVICE_ENDPOINT is set, that it names the right address';

export interface ImdsOptions {
  endpoint?: string | undefined;
  connectTimeoutMs?: number;
  /** Per attempt, connect included. */
  attemptTimeoutMs?: number;
  /** Per call, all retries included. */
  totalTimeoutMs?: number;
  maxAttempts?: number;
  tokenTtlSeconds?: number;
  clock?: Clock;
  random?: () => number;
}

interface Answer {
  status: number;
  body: string;
}

/**
 * `raw` as an IMDS endpoint (its origin). A value that cannot be one is a
 * configuration error, not an IMDS failure: UsageError (exit 2), naming `from`.
 */
export function parseImdsEndpoint(raw: string, from: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (err) {
    throw new UsageError(`${from} '${raw}' is not a URL; set it to IMDS's http:// address, such as ${DEFAULT_IMDS_ENDPOINT} (the default when unset)`, { cause: err });
  }
  if (url.protocol !== 'http:') {
    throw new UsageError(`${from} '${raw}' must be an http:// URL (IMDS only speaks plain HTTP), such as ${DEFAULT_IMDS_ENDPOINT}`);
  }
  return url.origin;
}

/** The endpoint the agent uses: the explicit one, else the standard SDK environment variable, else the link-local address. */
export function imdsEndpoint(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit !== undefined) return parseImdsEndpoint(explicit, 'IMDS endpoint');
  const fromEnv = env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  if (fromEnv !== undefined && fromEnv !== '') return parseImdsEndpoint(fromEnv, 'AWS_EC2_METADATA_SERVICE_ENDPOINT');
  return DEFAULT_IMDS_ENDPOINT;
}

class RetryableImdsError extends ImdsError {}

export class Imds {
  readonly endpoint: string;
  private readonly connectTimeoutMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly totalTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly tokenTtlSeconds: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private token: { value: string; expiresAt: number } | undefined;
  private tokenInFlight: Promise<string> | undefined;

  constructor(opts: ImdsOptions = {}) {
    this.endpoint = imdsEndpoint(opts.endpoint);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 150;
    this.attemptTimeoutMs = opts.attemptTimeoutMs ?? 1_000;
    this.totalTimeoutMs = opts.totalTimeoutMs ?? 5_000;
    this.maxAttempts = opts.maxAttempts ?? 4;
    this.tokenTtlSeconds = opts.tokenTtlSeconds ?? 21_600;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
  }

  /** GET `/latest/meta-data/<path>`; throws ImdsError (status 404 for a missing path). */
  async get(path: string): Promise<string> {
    const full = `/latest/meta-data/${path}`;
    const deadline = this.clock.now() + this.totalTimeoutMs;
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      try {
        const token = await this.sessionToken(deadline);
        const res = await this.request('GET', full, { [TOKEN_HEADER]: token }, deadline);
        if (res.status === 200) return res.body;
        if (res.status === 401 && !refreshed) {
          // The token expired or IMDS restarted: drop it and fetch a new one once.
          refreshed = true;
          if (this.token?.value === token) this.token = undefined;
          attempt--;
          continue;
        }
        if (res.status === 404) throw new ImdsError(`IMDS has no ${full}`, full, 404);
        if (res.status === 429 || res.status >= 500) throw new RetryableImdsError(`IMDS answered ${res.status} for ${full}`, full, res.status);
        throw new ImdsError(`IMDS answered ${res.status} for ${full}`, full, res.status);
      } catch (err) {
        if (!(err instanceof RetryableImdsError)) throw err;
        const delay = backoff(attempt, 50, 1_000, this.random);
        if (attempt + 1 >= this.maxAttempts || this.clock.now() + delay >= deadline) {
          throw new ImdsError(`IMDS at ${this.endpoint} did not answer ${full} after ${attempt + 1} attempts: ${err.message}; ${UNREACHABLE_HINT}`, full, err.status, {
            cause: err,
          });
        }
        await this.clock.sleep(delay);
      }
    }
  }

  /** Like `get`, but undefined when IMDS has no such path (404). */
  async getOptional(path: string): Promise<string | undefined> {
    try {
      return await this.get(path);
    } catch (err) {
      if (err instanceof ImdsError && err.status === 404) return undefined;
      throw err;
    }
  }

  private sessionToken(deadline: number): Promise<string> {
    if (this.token && this.token.expiresAt > this.clock.now()) return Promise.resolve(this.token.value);
    this.tokenInFlight ??= this.fetchToken(deadline).finally(() => {
      this.tokenInFlight = undefined;
    });
    return this.tokenInFlight;
  }

  private async fetchToken(deadline: number): Promise<string> {
    const res = await this.request('PUT', TOKEN_PATH, { [TTL_HEADER]: String(this.tokenTtlSeconds) }, deadline);
    if (res.status === 429 || res.status >= 500) throw new RetryableImdsError(`IMDS answered ${res.status} for the session token`, TOKEN_PATH, res.status);
    if (res.status !== 200) {
      // 403: IMDS is disabled; 405/400: a proxy in between. IMDSv1 is never an option.
      throw new ImdsError(`IMDS refused a session token (HTTP ${res.status}); hanat needs IMDSv2 enabled`, TOKEN_PATH, res.status);
    }
    const value = res.body.trim();
    if (!/^[\x21-\x7e]{1,512}$/.test(value)) throw new ImdsError('IMDS returned a malformed session token', TOKEN_PATH, res.status);
    // Refresh a minute early so a token never expires between check and use.
    this.token = { value, expiresAt: this.clock.now() + Math.max(1, this.tokenTtlSeconds - 60) * 1000 };
    return value;
  }

  private request(method: 'GET' | 'PUT', path: string, headers: Record<string, string>, deadline: number): Promise<Answer> {
    const timeoutMs = Math.min(this.attemptTimeoutMs, Math.max(1, deadline - this.clock.now()));
    return new Promise<Answer>((resolve, reject) => {
      let settled = false;
      const fail = (msg: string, cause?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(total);
        clearTimeout(connect);
        req.destroy();
        reject(new RetryableImdsError(`IMDS ${method} ${path}: ${msg}`, path, undefined, { cause }));
      };
      const req = http.request(`${this.endpoint}${path}`, { method, headers, agent: false });
      const total = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
      let connect: NodeJS.Timeout | undefined;
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        connect = setTimeout(() => fail(`no connection within ${this.connectTimeoutMs} ms`), this.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(connect));
      });
      req.on('error', (err) => fail(errorMessage(err), err));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (b: Buffer) => {
          size += b.length;
          if (size > MAX_BODY_BYTES) fail(`answer larger than ${MAX_BODY_BYTES} bytes`);
          else chunks.push(b);
        });
        res.on('error', (err) => fail(errorMessage(err), err));
        res.on('end', () => {
          if (settled) return;
          settled = true;
          clearTimeout(total);
          clearTimeout(connect);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.end();
    });
  }
}
