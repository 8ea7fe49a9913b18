/**
 * A fake netlink socket for logic tests (no root): records what is sent and lets the test push
 * datagrams, ENOBUFS and drop counts, in the spirit of mdlayher/netlink's nltest.
 */
import { frameDatagrams } from '../../collector/netlink/frames.js';
import type { ChunkHandler, NetlinkSocket, SocketOptions, SocketStats } from '../../collector/socket.js';

export class FakeSocket implements NetlinkSocket {
  portId = 1234;
  rcvbuf: number;
  forced = true;
  sent: Buffer[] = [];
  drops = 0;
  /** What stats() reports as the kernel's receive queue and the reader thread's. */
  rmem = 0;
  queued = 0;
  closed = false;
  private handler?: ChunkHandler;
  constructor(readonly opts: SocketOptions, private readonly answer?: (req: Buffer, sock: FakeSocket) => void) {
    // The addon asks the kernel for half, which doubles it: the effective size is what was asked.
    this.rcvbuf = opts.rcvbuf ?? 212992;
  }
  start(h: ChunkHandler): void {
    this.handler = h;
  }
  send(msg: Buffer): void {
    this.sent.push(msg);
    this.answer?.(msg, this);
  }
  deliver(datagrams: Buffer[], enobufs = 0): void {
    this.handler?.(datagrams.length ? frameDatagrams(datagrams, 1_795_000_000, 5) : null, enobufs, 0);
  }
  setRcvbuf(bytes: number): number {
    this.rcvbuf = bytes;
    return this.rcvbuf;
  }
  stats(): SocketStats {
    if (this.closed) throw new Error('netlink socket is closed'); // as the addon's NL_CLOSED
    return { drops: this.drops, rmem: this.rmem, rcvbuf: this.rcvbuf, enobufs: 0, truncated: 0, datagrams: 0, bytes: 0, queued: this.queued, readerTid: 0 };
  }
  unref(): void {}
  close(): void {
    this.closed = true;
  }
}
