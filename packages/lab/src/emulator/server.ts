/**
 * The emulator's HTTP front: one request handler behind any number of
 * listeners (loopback TCP, unix sockets). Paths under /latest/ are IMDS,
 * /_lab/ is the admin API (loopback TCP only), everything else is the AWS API,
 * routed by X-Amz-Target (JSON services) or by the Query `Version`/`Action`
 * parameters, never by host name, since the SDK sends every service to the one
 * AWS_ENDPOINT_URL.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { LAB_SOURCE_IP_HEADER } from '../contract.js';
import type { Account } from './account.js';
import { AwsError, isAwsError } from './errors.js';
import { checkApiFault, checkResourceFault, faultError, FaultSpecError } from './faults.js';
import { bucketFor } from './ratelimit.js';
import { Imds } from './imds.js';
import type { Service } from './latency.js';
import { OPERATIONS } from './operations.js';
import type { OpDef } from './protocol/ops.js';
import { escapeXml, readQueryInput, toJsonValue, writeXmlOutput, type Dialect } from './protocol/schema.js';

interface ServiceDef {
  service: Service;
  ops: ReadonlyMap<string, OpDef>;
  version?: string;
  xmlns?: string;
  /** SigV4 signing name in the credential scope. */
  signingName: string;
}

const SERVICES: ServiceDef[] = [
  { service: 'ec2', ops: OPERATIONS.ec2, version: '2016-11-15', xmlns: 'http://ec2.amazonaws.com/doc/2016-11-15/', signingName: 'ec2' },
  { service: 'autoscaling', ops: OPERATIONS.autoscaling, version: '2011-01-01', xmlns: 'http://autoscaling.amazonaws.com/doc/2011-01-01/', signingName: 'autoscaling' },
  { service: 'cloudformation', ops: OPERATIONS.cloudformation, version: '2010-05-15', xmlns: 'http://cloudformation.amazonaws.com/doc/2010-05-15/', signingName: 'cloudformation' },
  { service: 'ssm', ops: OPERATIONS.ssm, signingName: 'ssm' },
];

const JSON_TARGETS: Record<string, Service> = { AmazonSSM: 'ssm' };

export interface ListenOptions {
  /** Loopback address to listen on (127.0.0.1 by default). Non-loopback hosts are refused. */
  host?: string | undefined;
  /** TCP port; 0 picks a free one. */
  port?: number | undefined;
  /** Listen on a unix socket instead of TCP (the data plane proxies namespaces to it). */
  path?: string | undefined;
  /** Serve /_lab/ admin endpoints on this listener. Default: true for TCP, false for unix sockets. */
  admin?: boolean | undefined;
}

export interface Listener {
  /** `http://127.0.0.1:<port>` for TCP listeners. */
  url?: string | undefined;
  path?: string | undefined;
  port?: number | undefined;
  close(): Promise<void>;
}

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr.startsWith('127.') || addr === '::1' || addr.startsWith('::ffff:127.');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** `Credential=AKID/20260101/us-east-1/ec2/aws4_request` → region and service. */
function credentialScope(auth: string | undefined): { region?: string; service?: string } {
  const m = /Credential=[^/,\s]+\/\d{8}\/([^/,\s]+)\/([^/,\s]+)\/aws4_request/.exec(auth ?? '');
  return m ? { region: m[1]!, service: m[2]! } : {};
}

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function errorReply(def: ServiceDef, err: AwsError, requestId: string): Reply {
  if (def.service === 'ssm') {
    return {
      status: err.status,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': requestId, 'x-amzn-errortype': err.code },
      body: JSON.stringify({ __type: err.code, message: err.message }),
    };
  }
  const code = escapeXml(err.code);
  const message = escapeXml(err.message);
  if (def.service === 'ec2') {
    return {
      status: err.status,
      headers: { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId },
      body: `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
    };
  }
  const type = err.status >= 500 ? 'Receiver' : 'Sender';
  return {
    status: err.status,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
    body: `<ErrorResponse xmlns="${def.xmlns}">\n  <Error>\n    <Type>${type}</Type>\n    <Code>${code}</Code>\n    <Message>${message}</Message>\n  </Error>\n  <RequestId>${requestId}</RequestId>\n</ErrorResponse>\n`,
  };
}

function outputIsUnit(op: OpDef): boolean {
  const out = typeof op.schema.output === 'function' ? (op.schema.output as () => unknown)() : op.schema.output;
  return out === 'unit';
}

function successReply(def: ServiceDef, op: OpDef, result: unknown, requestId: string): Reply {
  if (def.service === 'ssm') {
    return { status: 200, headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': requestId }, body: JSON.stringify(toJsonValue(result ?? {})) };
  }
  const inner = writeXmlOutput(op.schema, result);
  const action = op.action;
  if (def.service === 'ec2') {
    return {
      status: 200,
      headers: { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId },
      body: `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${def.xmlns}"><requestId>${requestId}</requestId>${inner}</${action}Response>`,
    };
  }
  const resultEl = outputIsUnit(op) ? '' : `<${action}Result>${inner}</${action}Result>`;
  return {
    status: 200,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
    body: `<${action}Response xmlns="${def.xmlns}">${resultEl}<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`,
  };
}

export class EmulatorServer {
  private readonly imds: Imds;
  private readonly servers = new Set<Server>();

  constructor(private readonly account: Account) {
    this.imds = new Imds(account);
  }

  async listen(opts: ListenOptions = {}): Promise<Listener> {
    const admin = opts.admin ?? opts.path === undefined;
    const server = createServer((req, res) => {
      this.handle(req, res, admin).catch((err: unknown) => {
        this.account.log(`request failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    server.keepAliveTimeout = 5_000;
    if (opts.path !== undefined) {
      const path = opts.path;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => resolve());
      });
    } else {
      const host = opts.host ?? '127.0.0.1';
      if (!isLoopbackHost(host)) throw new Error(`hanat-lab listens on loopback only; refusing host ${host}`);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port ?? 0, host, () => resolve());
      });
    }
    this.servers.add(server);
    const address = server.address();
    const port = address && typeof address === 'object' ? address.port : undefined;
    const hostForUrl = opts.host && opts.host.includes(':') ? `[${opts.host}]` : (opts.host ?? '127.0.0.1');
    return {
      url: port !== undefined ? `http://${hostForUrl}:${port}` : undefined,
      path: opts.path,
      port,
      close: () => this.closeServer(server),
    };
  }

  private closeServer(server: Server): Promise<void> {
    this.servers.delete(server);
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.servers].map((s) => this.closeServer(s)));
  }

  private async handle(req: IncomingMessage, res: ServerResponse, admin: boolean): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://lab');
    if (url.pathname.startsWith('/latest/') || url.pathname === '/latest') {
      await readBody(req);
      const r = this.imds.handle(req, url.pathname);
      res.writeHead(r.status, { server: 'EC2ws', ...(r.headers ?? {}) });
      res.end(req.method === 'HEAD' ? undefined : r.body);
      return;
    }
    if (url.pathname.startsWith('/_lab/')) {
      const body = await readBody(req);
      const allowed = admin && isLoopbackAddress(req.socket.remoteAddress) && req.headers[LAB_SOURCE_IP_HEADER] === undefined;
      const r = allowed ? this.admin(req.method ?? 'GET', url.pathname, body) : { status: 403, body: { error: 'admin endpoints are served on loopback TCP only' } };
      res.writeHead(r.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.body, null, 2));
      return;
    }
    const reply = await this.api(req, url);
    res.writeHead(reply.status, reply.headers);
    res.end(reply.body);
  }

  private async api(req: IncomingMessage, url: URL): Promise<Reply> {
    const requestId = randomUUID();
    const body = await readBody(req);
    const auth = req.headers.authorization;
    const scope = credentialScope(auth);
    const target = req.headers['x-amz-target'];

    let def: ServiceDef | undefined;
    let action: string | undefined;
    let params = new Map<string, string>();
    if (typeof target === 'string') {
      const [prefix, name] = target.split('.');
      const service = prefix ? JSON_TARGETS[prefix] : undefined;
      def = SERVICES.find((s) => s.service === service);
      action = name;
      if (!def) return errorReply(SERVICES[3]!, new AwsError('UnknownOperationException', `Unknown target ${target}`), requestId);
    } else {
      for (const [k, v] of url.searchParams) params.set(k, v);
      if (body) for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
      action = params.get('Action');
      const version = params.get('Version');
      def = SERVICES.find((s) => s.version !== undefined && s.version === version) ?? SERVICES.find((s) => s.signingName === scope.service && s.version !== undefined);
      if (!def) {
        return errorReply(SERVICES[0]!, new AwsError('InvalidAction', `The action ${action ?? ''} is not valid for this web service.`), requestId);
      }
    }

    if (!auth || !auth.startsWith('AWS4-HMAC-SHA256 ')) {
      const err =
        def.service === 'ec2'
          ? new AwsError('AuthFailure', 'AWS was not able to validate the provided access credentials', 401)
          : def.service === 'ssm'
            ? new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token', 400)
            : new AwsError('MissingAuthenticationToken', 'Request is missing Authentication Token', 403);
      return errorReply(def, err, requestId);
    }

    const regionName = scope.region && this.regionIsValid(scope.region) ? scope.region : this.account.defaultRegion;
    const region = this.account.region(regionName);
    const caller = this.imds.identify(req)?.instance.id;
    const key = `${def.service}:${action ?? ''}`;
    this.account.counters.record(key, caller);

    const limits = this.account.rateLimits;
    if (limits && action) {
      const filteredOrPaged = [...params.keys()].some((k) => /^(Filter\.|MaxResults$|NextToken$)/.test(k));
      const bucket = bucketFor(def.service, action, { filteredOrPaged });
      if (bucket && !limits.take(regionName, bucket.name, bucket.spec, this.account.settings.rateLimitScale)) {
        this.account.counters.recordThrottled(key, caller);
        return errorReply(def, faultError(def.service, 'throttle'), requestId);
      }
    }

    const delay = this.account.latency.api(def.service, action ?? '');
    if (delay > 0) await this.account.clock.sleep(delay);

    const injected = this.account.faults.check(def.service, action ?? '', caller);
    if (injected) {
      this.account.counters.recordInjected(key);
      return errorReply(def, injected, requestId);
    }

    const op = action ? def.ops.get(action) : undefined;
    if (!op) {
      const err =
        def.service === 'ssm'
          ? new AwsError('UnknownOperationException', `hanat-lab does not emulate ${action ?? ''}`)
          : new AwsError('InvalidAction', `The action ${action ?? ''} is not valid for this web service.`);
      return errorReply(def, err, requestId);
    }

    try {
      let input: Record<string, unknown>;
      if (def.service === 'ssm') {
        input = body ? (JSON.parse(body) as Record<string, unknown>) : {};
      } else {
        const dialect: Dialect = def.service === 'ec2' ? 'ec2' : 'query';
        input = readQueryInput(op.schema, params, dialect);
      }
      params = new Map();
      if (input.DryRun === true) throw new AwsError('DryRunOperation', 'Request would have succeeded, but DryRun flag is set.', 412);
      const result = await op.handler(input as never, { region, service: def.service, requestId, caller });
      return successReply(def, op, result, requestId);
    } catch (err) {
      if (isAwsError(err)) return errorReply(def, err, requestId);
      this.account.log(`${key} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      const internal = def.service === 'ec2' ? new AwsError('InternalError', 'An internal error has occurred', 500) : new AwsError('InternalFailure', 'An internal error occurred', 500);
      return errorReply(def, internal, requestId);
    }
  }

  private regionIsValid(name: string): boolean {
    return /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$/.test(name);
  }

  // ------------------------------------------------------------------ admin

  private admin(method: string, path: string, body: string): { status: number; body: unknown } {
    const a = this.account;
    let json: Record<string, unknown> = {};
    if (body) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return { status: 400, body: { error: 'body must be JSON' } };
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { status: 400, body: { error: 'body must be a JSON object' } };
      json = parsed as Record<string, unknown>;
    }
    const parts = path.split('/').filter(Boolean).slice(1);
    const route = `${method} /${parts.join('/')}`;
    if (route === 'GET /health') return { status: 200, body: { ok: true, region: a.defaultRegion, latency: a.latency.name, opLatency: a.opLatency, rateLimits: a.rateLimits !== undefined } };
    if (route === 'GET /counters') return { status: 200, body: a.counters.snapshot() };
    if (route === 'DELETE /counters') {
      a.counters.reset();
      return { status: 200, body: { ok: true } };
    }
    if (route === 'GET /faults') return { status: 200, body: a.faults.list() };
    try {
      if (route === 'POST /faults') return { status: 200, body: { id: a.faults.add(checkApiFault(json)) } };
      if (route === 'POST /faults/resource') return { status: 200, body: { id: a.faults.failResource(checkResourceFault(json)) } };
    } catch (err) {
      if (err instanceof FaultSpecError) return { status: 400, body: { error: err.message, field: err.field } };
      throw err;
    }
    if (route === 'POST /faults/az') {
      if (typeof json.az !== 'string' || json.az === '') return { status: 400, body: { error: `az must be an Availability Zone name, got ${JSON.stringify(json.az)}`, field: 'az' } };
      if (json.blocked !== undefined && typeof json.blocked !== 'boolean') return { status: 400, body: { error: `blocked must be true or false, got ${JSON.stringify(json.blocked)}`, field: 'blocked' } };
      a.faults.blockLaunches(json.az, json.blocked !== false);
      return { status: 200, body: a.faults.list() };
    }
    if (route === 'DELETE /faults') {
      a.faults.clear();
      return { status: 200, body: { ok: true } };
    }
    if (method === 'DELETE' && parts[0] === 'faults' && parts[1]) return { status: a.faults.remove(parts[1]) ? 200 : 404, body: { id: parts[1] } };
    if (route === 'GET /network') return { status: 200, body: a.snapshot() };
    if (method === 'POST' && parts[0] === 'instances' && parts[1] && parts[2] === 'terminate') {
      const found = a.instanceById(parts[1]);
      if (!found) return { status: 404, body: { error: `no instance ${parts[1]}` } };
      void found.region.ec2.terminate(parts[1], 'hanat-lab fault').catch(() => {});
      return { status: 200, body: { instanceId: parts[1], state: found.instance.state } };
    }
    return { status: 404, body: { error: `no admin route ${route}` } };
  }
}
