/**
 * A fake IMDSv2 on 127.0.0.1:<random port>. It refuses requests without a token
 * (no IMDSv1), can expire tokens (401) and fail paths on demand.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export const MAC = '02:00:00:00:00:01';

export function defaultMetadata(tags: Record<string, string> = { 'hanat:stack': 'prod', 'hanat:az': 'us-east-1a' }): Record<string, string> {
  const base = `network/interfaces/macs/${MAC}`;
  return {
    'instance-id': 'i-0123456789abcdef0',
    'placement/region': 'us-east-1',
    'placement/availability-zone': 'us-east-1a',
    mac: MAC,
    'local-ipv4': '10.0.0.10',
    [`${base}/subnet-id`]: 'subnet-0aaaaaaaaaaaaaaa1',
    [`${base}/vpc-id`]: 'vpc-0bbbbbbbbbbbbbbb1',
    [`${base}/vpc-ipv4-cidr-blocks`]: '10.0.0.0/16\n10.1.0.0/16',
    [`${base}/interface-id`]: 'eni-0ccccccccccccccc1',
    [`${base}/local-ipv4s`]: '10.0.0.10',
    'tags/instance': Object.keys(tags).join('\n'),
    ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`tags/instance/${k}`, v])),
  };
}

export interface FakeImds {
  url: string;
  metadata: Record<string, string>;
  /** Tokens issued so far. */
  tokensIssued: number;
  /** GETs received, by path. */
  gets: string[];
  /** Requests that came without a token (IMDSv1 style). */
  v1Attempts: number;
  /** Once this many tokens were issued, further token requests get 403 (IMDSv2 refused). */
  maxTokens: number;
  /** Makes every token issued so far invalid (IMDS answers 401 for them). */
  expireTokens(): void;
  /** The next `n` requests for `path` answer `status`. */
  failNext(path: string, status: number, n?: number): void;
  /** Requests for `path` get no answer at all. */
  hang(path: string): void;
  close(): Promise<void>;
}

export async function startFakeImds(metadata: Record<string, string> = defaultMetadata()): Promise<FakeImds> {
  const valid = new Set<string>();
  const failures = new Map<string, { status: number; n: number }>();
  const hung = new Set<string>();
  const fake: Omit<FakeImds, 'url' | 'close'> = {
    metadata,
    tokensIssued: 0,
    gets: [],
    v1Attempts: 0,
    maxTokens: Infinity,
    expireTokens: () => valid.clear(),
    failNext: (path, status, n = 1) => failures.set(path, { status, n }),
    hang: (path) => hung.add(path),
  };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    const fail = failures.get(url);
    if (hung.has(url)) return;
    if (fail && fail.n > 0) {
      fail.n--;
      res.writeHead(fail.status).end();
      return;
    }
    if (req.method === 'PUT' && url === '/latest/api/token') {
      if (!req.headers['x-aws-ec2-metadata-token-ttl-seconds']) return void res.writeHead(400).end();
      if (fake.tokensIssued >= fake.maxTokens) return void res.writeHead(403).end();
      const token = `token-${++fake.tokensIssued}`;
      valid.add(token);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(token);
      return;
    }
    const token = req.headers['x-aws-ec2-metadata-token'];
    if (typeof token !== 'string') {
      fake.v1Attempts++;
      return void res.writeHead(401).end();
    }
    if (!valid.has(token)) return void res.writeHead(401).end();
    const prefix = '/latest/meta-data/';
    if (req.method !== 'GET' || !url.startsWith(prefix)) return void res.writeHead(404).end();
    const path = decodeURI(url.slice(prefix.length));
    fake.gets.push(path);
    const body = fake.metadata[path];
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const extra: Pick<FakeImds, 'url' | 'close'> = {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return Object.assign(fake, extra);
}
