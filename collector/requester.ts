/**
 * Requests over a netlink socket, one at a time: each is sent with a fresh sequence number and
 * settles on its acknowledgement (NLMSG_DONE, or NLMSG_ERROR with errno 0), a kernel error, or a
 * timeout. The socket's reader passes `done` and `kernelError` to settle(); replies that arrive
 * before the acknowledgement belong to the request in flight, whose context says where they go.
 * Used by the query socket (dumps, statistics) and the NFLOG socket (configuration).
 */
import { asError, CtpipeError } from '../common/errors.js';

interface Pending<C> {
  seq: number;
  context: C | undefined;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class Requester<C = undefined> {
  private seq = Math.floor(Date.now() / 1000) & 0xffffff;
  private pending: Pending<C> | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  /** `refusal` words the error for a kernel errno (the request is already known to have failed). */
  constructor(
    /** Sends off the event loop; a failed send comes back through `onError`. */
    private readonly send: (msg: Buffer, onError: (e: Error) => void) => void,
    private readonly refusal: (errno: number) => string = (errno) => `netlink request failed: errno ${errno}`,
  ) {}

  /** The context of the request in flight. */
  get context(): C | undefined {
    return this.pending?.context;
  }

  /**
   * Sends the request built for a fresh sequence number; resolves when the kernel acknowledges it,
   * fails after `timeoutMs` without an acknowledgement or a reply (progress()).
   */
  request(build: (seq: number) => Buffer, timeoutMs: number, context?: C): Promise<void> {
    const run = () =>
      new Promise<void>((resolve, reject) => {
        const seq = (this.seq = (this.seq + 1) >>> 0);
        const timer = setTimeout(() => {
          if (this.pending?.seq === seq) this.pending = undefined;
          reject(new CtpipeError('NL_KERNEL_ERROR', `netlink request ${seq} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        this.pending = { seq, context, resolve, reject, timer };
        const fail = (e: unknown) => {
          clearTimeout(timer);
          if (this.pending?.seq === seq) this.pending = undefined;
          reject(asError(e));
        };
        try {
          this.send(build(seq), fail);
        } catch (e) {
          fail(e);
        }
      });
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** A reply of the request in flight arrived: its timeout counts again from now. */
  progress(): void {
    this.pending?.timer.refresh();
  }

  /** An acknowledgement (errno 0) or a kernel error for `seq`; anything not in flight is ignored. */
  settle(seq: number, errno = 0): void {
    const p = this.pending;
    if (!p || p.seq !== seq) return;
    clearTimeout(p.timer);
    this.pending = undefined;
    if (errno) p.reject(new CtpipeError('NL_KERNEL_ERROR', this.refusal(errno)));
    else p.resolve();
  }

  /** Fails the request in flight: its socket is closing. */
  close(): void {
    const p = this.pending;
    if (!p) return;
    clearTimeout(p.timer);
    this.pending = undefined;
    p.reject(new CtpipeError('NL_KERNEL_ERROR', 'netlink socket closed during a request'));
  }
}
