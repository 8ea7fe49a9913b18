/**
 * A socket's sk_drops is a running total since it was opened; a loss record carries what was lost
 * since the previous one. The kernel counter is an int reported as u32: the increase is taken
 * modulo 2^32 so that a wrap never turns into a negative loss.
 */
import type { NetlinkSocket } from './socket.js';

const U32 = 2 ** 32;

export class DropCounter {
  private last = 0;

  constructor(private readonly sock: Pick<NetlinkSocket, 'stats'>) {}

  /** Messages dropped since the last call (since the socket opened, on the first). */
  take(): number {
    const now = this.sock.stats().drops;
    const delta = (now - this.last + U32) % U32;
    this.last = now;
    return delta;
  }
}
