/**
 * Request/response over a netlink socket that joined no group: dumps and statistics. One request
 * is in flight at a time (Requester); its replies (NLM_F_MULTI messages) go to the handler passed
 * with it.
 */
import type { CpuStats, CtRecord, ExpRecord } from '../contract/records.js';
import { decodeChunk, type MessageHandler } from './conntrack/decode.js';
import type { ExpStats, GlobalStats } from './conntrack/stats.js';
import { ChunkGate, type Room } from './gate.js';
import { Requester } from './requester.js';

/** Dump replies kept at most while the sink has no room (a 1M-entry dump is about 300 MB); past it they go on regardless. */
const DUMP_HOLD_MAX_BYTES = 1 << 30;
import type { NetlinkSocket } from './socket.js';

export type Replies = Partial<Pick<MessageHandler, 'ct' | 'exp' | 'cpuStats' | 'globalStats' | 'expStats' | 'other'>>;

export class QueryClient {
  private readonly requests: Requester<Replies>;
  private readonly handler: MessageHandler;
  private readonly gate: ChunkGate<Buffer>;

  /** `room`: flow control of the records a dump makes (gate.ts); none when absent. */
  constructor(
    private readonly sock: NetlinkSocket,
    onReject: MessageHandler['reject'],
    onUnknown?: MessageHandler['unknownAttrs'],
    room: Room = {},
  ) {
    this.requests = new Requester<Replies>((msg, onError) => sock.send(msg, onError));
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
    // A dump kept waiting by the gate is not stuck: the timeout counts from the last reply.
    this.gate = new ChunkGate(room, (chunk) => decodeChunk(chunk, this.handler), (c) => c.length, DUMP_HOLD_MAX_BYTES);
    sock.start((chunk) => {
      if (!chunk) return;
      this.requests.progress();
      this.gate.push(chunk);
    });
  }

  /** Resolves once every reply received so far is decoded. */
  drained(): Promise<void> {
    return this.gate.drained();
  }

  /** Sends the request built for a fresh sequence number and resolves when it completes (or `timeoutMs` passes without a reply). */
  request(build: (seq: number) => Buffer, replies: Replies, timeoutMs = 60_000): Promise<void> {
    return this.requests.request(build, timeoutMs, replies);
  }

  close(): void {
    this.requests.close();
    this.sock.close();
  }

  /** After close(): the replies received before it have been decoded (socket.ts `settled`). */
  async settled(): Promise<void> {
    await this.sock.settled?.();
    await this.gate.drained();
  }
}
