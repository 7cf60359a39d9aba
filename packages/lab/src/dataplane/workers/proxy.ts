/**
 * The IMDS and AWS API proxy, run inside the router namespace. It listens on
 * 169.254.169.254:80 (IMDS) and on the lab's API address, and forwards every request to
 * the emulator's unix socket, adding the caller's address in `x-hanat-lab-source-ip` so
 * that IMDS answers as the calling instance. A unix socket keeps the namespaces without
 * any network path to the host.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request } from 'node:http';
import { LAB_INSTANCE_HEADER, LAB_SOURCE_IP_HEADER } from '../../contract.js';

export interface ProxyOptions {
  listen: { host: string; port: number }[];
  socketPath: string;
}

export function proxyHandler(socketPath: string) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const headers = { ...req.headers };
    // Identity comes from the connection only: a caller cannot claim to be another instance.
    delete headers[LAB_SOURCE_IP_HEADER];
    delete headers[LAB_INSTANCE_HEADER];
    headers[LAB_SOURCE_IP_HEADER] = clientAddress(req);
    const upstream = request({ socketPath, method: req.method, path: req.url, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`hanat-lab proxy: the emulator is unreachable: ${err.message}\n`);
    });
    req.pipe(upstream);
  };
}

function clientAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export async function runProxy(options: ProxyOptions): Promise<{ close(): void }> {
  const handler = proxyHandler(options.socketPath);
  const servers = options.listen.map(() => createServer(handler));
  await Promise.all(
    options.listen.map(
      ({ host, port }, i) =>
        new Promise<void>((resolve, reject) => {
          const server = servers[i]!;
          server.keepAliveTimeout = 5_000;
          server.once('error', reject);
          server.listen(port, host, () => resolve());
        }),
    ),
  );
  return {
    close: () => {
      for (const s of servers) {
        s.close();
        s.closeAllConnections();
      }
    },
  };
}
