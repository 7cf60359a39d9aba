/**
 * The UDP socket, injected so that unit tests run the HA runtime without a network.
 * `udpSocket` is the real one (node's dgram).
 */
import { createSocket } from 'node:dgram';
import { OperationError } from '../errors.js';

export interface HaSocket {
  send(buf: Buffer, port: number, address: string): void;
  close(): void;
}

export type SocketFactory = (bind: { address: string; port: number }, onMessage: (buf: Buffer, from: string) => void) => Promise<HaSocket>;

export const udpSocket: SocketFactory = (bind, onMessage) =>
  new Promise((resolve, reject) => {
    const s = createSocket({ type: 'udp4', reuseAddr: false });
    const onBindError = (err: NodeJS.ErrnoException) =>
      reject(
        new OperationError(
          `cannot open the heartbeat socket on ${bind.address}:${bind.port} (${err.code ?? err.message}): ` +
            (err.code === 'EADDRNOTAVAIL'
              ? 'that address, which IMDS gives as this NAT\'s private address, is not on this host'
              : err.code === 'EADDRINUSE'
                ? 'another process holds that port (set HANAT_HA_PORT to another, the same on every NAT of the stack)'
                : 'the kernel refused it') +
            '; HANAT_HA=0 runs the agent without peers, takeover or failback',
          { cause: err },
        ),
      );
    s.once('error', onBindError);
    s.on('message', (buf, rinfo) => onMessage(buf, rinfo.address));
    s.bind(bind.port, bind.address, () => {
      s.off('error', onBindError);
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
