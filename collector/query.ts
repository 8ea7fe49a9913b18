/**
 * Request/response over a netlink socket that joined no group: dumps and statistics. One request
 * is in flight at a time (Requester); its replies (NLM_F_MULTI messages) go to the handler passed
 * with it.
 */
import type { CpuStats, CtRecord, ExpRecord } from '../contract/records.js';
import { decodeChunk, type MessageHandler } from './conntrack/decode.js';
import type { ExpStats, GlobalStats } from './conntrack/stats.js';
import { Requester } from './requester.js';
import type { NetlinkSocket } from './socket.js';

export type Replies = Partial<Pick<MessageHandler, 'ct' | 'exp' | 'cpuStats' | 'globalStats' | 'expStats' | 'other'>>;

export class QueryClient {
  private readonly requests: Requester<Replies>;
  private readonly handler: MessageHandler;

  constructor(
    private readonly sock: NetlinkSocket,
    onReject: MessageHandler['reject'],
    onUnknown?: MessageHandler['unknownAttrs'],
  ) {
    this.requests = new Requester<Replies>((msg) => sock.send(msg));
    const route = <K extends keyof Replies>(k: K) =>
      ((...args: unknown[]) => {
        const f = this.requests.context?.[k] as ((...a: unknown[]) => void) | undefined;
        f?.(...args);
      }) as NonNullable<MessageHandler[K]>;
    this.handler = {
      ct: route('ct') as (r: CtRecord, seq: number) => void,
      exp: route('exp') as (r: ExpRecord, seq: number) => void,
      cpuStats: route('cpuStats') as (s: CpuStats, seq: number) => void,
      globalStats: route('globalStats') as (s: GlobalStats, seq: number) => void,
      expStats: route('expStats') as (s: ExpStats, seq: number) => void,
      other: route('other'),
      done: (seq) => this.requests.settle(seq),
      kernelError: (seq, errno) => this.requests.settle(seq, errno),
      reject: onReject,
      unknownAttrs: onUnknown,
    };
    sock.start((chunk) => {
      if (chunk) decodeChunk(chunk, this.handler);
    });
  }

  /** Sends the request built for a fresh sequence number and resolves when it completes. */
  request(build: (seq: number) => Buffer, replies: Replies, timeoutMs = 60_000): Promise<void> {
    return this.requests.request(build, timeoutMs, replies);
  }

  close(): void {
    this.requests.close();
    this.sock.close();
  }
}
