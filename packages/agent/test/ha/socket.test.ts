/**
 * The real heartbeat socket (node's dgram) on loopback: a port it cannot have is an
 * OperationError (exit 1, restart) that says what is wrong and how to run without HA,
 * not an internal error.
 */
import { describe, expect, it } from 'vitest';
import { OperationError } from '../../src/errors.js';
import { udpSocket } from '../../src/ha/socket.js';

describe('udpSocket', () => {
  it('refuses a port another socket holds with an OperationError naming the address, the cause and HANAT_HA=0', async () => {
    const holder = await udpSocket({ address: '127.0.0.1', port: 47_411 }, () => {});
    try {
      const err = await udpSocket({ address: '127.0.0.1', port: 47_411 }, () => {}).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(OperationError);
      expect((err as Error).message).toContain('cannot open the heartbeat socket on 127.0.0.1:47411 (EADDRINUSE)');
      expect((err as Error).message).toContain('HANAT_HA_PORT');
      expect((err as Error).message).toContain('HANAT_HA=0');
    } finally {
      holder.close();
    }
  });
});
