/**
 * The running lab's admin endpoint: JSON over HTTP on loopback, guarded by a bearer token
 * that only the state file (mode 0600, under /run/hanat-lab) holds. `hanat-lab status`,
 * `fault`, `probe` and `down` use it to talk to `hanat-lab up`.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export type AdminHandler = (body: unknown, query: URLSearchParams) => Promise<unknown>;

/** A handler's way of saying "your request is wrong" (HTTP 400, shown to the user as is). */
export class AdminUsageError extends Error {
  override readonly name = 'AdminUsageError';
}

export interface AdminServer {
  url: string;
  token: string;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

export async function startAdminServer(routes: Record<string, AdminHandler>): Promise<AdminServer> {
  const token = randomBytes(24).toString('hex');
  const expected = Buffer.from(`Bearer ${token}`);
  const server: Server = createServer((req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body) + '\n');
    };
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return reply(401, { error: 'missing or wrong admin token' });
    const url = new URL(req.url ?? '/', 'http://lab');
    const handler = routes[`${req.method} ${url.pathname}`];
    if (!handler) return reply(404, { error: `no such admin route: ${req.method} ${url.pathname}` });
    readJson(req).then(
      (body) => handler(body, url.searchParams),
    ).then(
      (result) => reply(200, result ?? {}),
      (err: unknown) => reply(err instanceof AdminUsageError ? 400 : 500, { error: err instanceof Error ? err.message : String(err) }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new AdminUsageError('request body too large');
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new AdminUsageError('request body is not JSON', { cause: err });
  }
}

export class AdminRequestError extends Error {
  override readonly name = 'AdminRequestError';
  constructor(
    message: string,
    readonly status: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Calls a running lab's admin endpoint. */
export async function adminRequest<T>(admin: { url: string; token: string }, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${admin.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    throw new AdminRequestError(`the lab at ${admin.url} does not answer (is it still up?)`, 0, { cause: err });
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { error: text };
  }
  if (!res.ok) throw new AdminRequestError((parsed as { error?: string }).error ?? `HTTP ${res.status}`, res.status);
  return parsed as T;
}
