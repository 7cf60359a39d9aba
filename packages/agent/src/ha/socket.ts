/**
 * The UDP socket, injected so that unit tests run the HA runtime without a network.
 * `udpSocket` is the real one (node's dgram).
 */
import { createSocket } from 'node:dgram';

export interface HaSocket {
  send(buf: Buffer, port: number, address: string): void;
  close(): void;
}

export type SocketFactory = (bind: { address: string; port: number }, onMessage: (buf: Buffer, from: string) => void) => Promise<HaSocket>;

export const udpSocket: SocketFactory = (bind, onMessage) =>
  new Promise((resolve, reject) => {
    const s = createSocket({ type: 'udp4', reuseAddr: false });
    s.once('error', reject);
    s.on('message', (buf, rinfo) => onMessage(buf, rinfo.address));
    s.bind(bind.port, bind.address, () => {
      s.off('error', reject);
      // A send error (peer unreachable, ICMP) must never crash the agent; silence is what peers judge.
      s.on('error', () => {});
      resolve({
        send: (buf, port, address) => s.send(buf, port, address, () => {}),
        close: () => {
          try {
            s.close();
          } catch {
            // already closed
          }
        },
      });
    });
  });
