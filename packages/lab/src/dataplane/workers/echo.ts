/**
 * The internet hosts' echo service, run in the internet namespace. TCP: answers with the
 * address it saw the connection come from, then closes. UDP: answers `<address seen>
 * <payload>`. The address seen is the NAT's public address, which is how the lab tells
 * which NAT carried a flow.
 *
 * Each address gets its own UDP socket, so replies leave from the address the probe was
 * sent to (an unbound socket would pick the namespace's transit address as the source).
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

export interface EchoOptions {
  addresses: string[];
  port: number;
}

export async function runEcho(options: EchoOptions): Promise<{ close(): void }> {
  const listening: Promise<void>[] = [];
  const closers: (() => void)[] = [];
  for (const address of options.addresses) {
    const tcp = createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.end(`${plain(socket.remoteAddress)}\n`);
    });
    closers.push(() => tcp.close());
    listening.push(
      new Promise((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(options.port, address, () => resolve());
      }),
    );
    const udp = createSocket('udp4');
    udp.on('message', (msg, peer) => {
      udp.send(`${peer.address} ${msg.toString('utf8', 0, Math.min(msg.length, 512))}`, peer.port, peer.address);
    });
    closers.push(() => udp.close());
    listening.push(
      new Promise((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(options.port, address, () => resolve());
      }),
    );
  }
  await Promise.all(listening);
  return { close: () => closers.forEach((c) => c()) };
}

function plain(address: string | undefined): string {
  const a = address ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
