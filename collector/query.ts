/**
 * Request/response over a netlink socket that joined no group: dumps and statistics. One request
 * is in flight at a time; its replies (NLM_F_MULTI messages) go to the handler passed with it, and
 * the request settles on NLMSG_DONE, an ACK, a kernel error, or a timeout.
 */
import { asError, CtpipeError } from '../common/errors.js';
import type { CpuStats, CtRecord, ExpRecord } from '../contract/records.js';
import { decodeDatagram, type MessageHandler } from './conntrack/decode.js';
import type { ExpStats, GlobalStats } from './conntrack/stats.js';
import { forEachFrame } from './netlink/frames.js';
import type { NetlinkSocket } from './socket.js';

export type Replies = Partial<Pick<MessageHandler, 'ct' | 'exp' | 'cpuStats' | 'globalStats' | 'expStats' | 'other'>>;

interface Pending {
  seq: number;
  replies: Replies;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class QueryClient {
  private seq = Math.floor(Date.now() / 1000) & 0xffffff;
  private pending: Pending | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly handler: MessageHandler;

  constructor(
    private readonly sock: NetlinkSocket,
    onReject: MessageHandler['reject'],
    onUnknown?: MessageHandler['unknownAttrs'],
  ) {
    const route = <K extends keyof Replies>(k: K) =>
      ((...args: unknown[]) => {
        const f = this.pending?.replies[k] as ((...a: unknown[]) => void) | undefined;
        f?.(...args);
      }) as NonNullable<MessageHandler[K]>;
    this.handler = {
      ct: route('ct') as (r: CtRecord, seq: number) => void,
      exp: route('exp') as (r: ExpRecord, seq: number) => void,
      cpuStats: route('cpuStats') as (s: CpuStats, seq: number) => void,
      globalStats: route('globalStats') as (s: GlobalStats, seq: number) => void,
      expStats: route('expStats') as (s: ExpStats, seq: number) => void,
      other: route('other'),
      done: (seq) => this.settle(seq),
      kernelError: (seq, errno) => this.settle(seq, errno),
      reject: onReject,
      unknownAttrs: onUnknown,
    };
    sock.start((chunk) => {
      if (!chunk) return;
      const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      forEachFrame(chunk, (off, len, sec, nsec) => decodeDatagram(chunk, dv, off, off + len, sec, nsec, this.handler));
    });
  }

  private settle(seq: number, errno = 0): void {
    const p = this.pending;
    if (!p || p.seq !== seq) return;
    clearTimeout(p.timer);
    this.pending = undefined;
    if (errno) p.reject(new CtpipeError('NL_KERNEL_ERROR', `netlink request failed: errno ${errno}`));
    else p.resolve();
  }

  /** Sends the request built for a fresh sequence number and resolves when it completes. */
  request(build: (seq: number) => Buffer, replies: Replies, timeoutMs = 60_000): Promise<void> {
    const run = () =>
      new Promise<void>((resolve, reject) => {
        const seq = (this.seq = (this.seq + 1) >>> 0);
        const timer = setTimeout(() => {
          if (this.pending?.seq === seq) this.pending = undefined;
          reject(new CtpipeError('NL_KERNEL_ERROR', `netlink request ${seq} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        this.pending = { seq, replies, resolve, reject, timer };
        try {
          this.sock.send(build(seq));
        } catch (e) {
          clearTimeout(timer);
          this.pending = undefined;
          reject(asError(e));
        }
      });
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  close(): void {
    const p = this.pending;
    if (p) {
      clearTimeout(p.timer);
      this.pending = undefined;
      p.reject(new CtpipeError('NL_KERNEL_ERROR', 'netlink socket closed during a request'));
    }
    this.sock.close();
  }
}
