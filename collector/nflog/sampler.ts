/**
 * INVALID packet samples from NFLOG: binds a socket to the group `ct state invalid log group N`
 * logs to (configuration requests acknowledged through the same Requester as the query socket),
 * turns packet headers into `invalid_packet` records at most `rate` per second (the rest ride on
 * the next sample's weight), and reports receive-buffer overruns as `loss` records (source nflog).
 */
import type { CtpipeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { CtpipeRecord, InvalidPacketRecord } from '../../contract/records.js';
import type { Stamper } from '../../contract/stamper.js';
import { decodeChunk, type MessageHandler } from '../conntrack/decode.js';
import { DropCounter } from '../drops.js';
import { ifname, readIfnames } from '../ifnames.js';
import type { CollectorMetrics } from '../metrics.js';
import * as N from '../netlink/constants.js';
import { Requester } from '../requester.js';
import type { NetlinkSocket, SocketFactory } from '../socket.js';
import { nflogBind, nflogMode, nflogTimeout } from './config.js';
import { decodeNflogMessage, NFULNL_MSG_PACKET, type NflogPacket } from './decode.js';
import { SampleLimiter } from './rate-limit.js';

const PACKET = (N.NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
const EBUSY = 16;

export interface NflogSamplerOptions {
  group: number;
  /** Samples per second at most. */
  rate: number;
  /** Bytes of each packet NFLOG copies: headers only. */
  copyRange: number;
  netns?: string;
  sockets: SocketFactory;
  stamper: Stamper;
  /** Takes the stamped records (the collector counts them and writes them to its sink). */
  deliver: (r: CtpipeRecord) => void;
  reject: (e: CtpipeError, bytes: Buffer) => void;
  metrics: CollectorMetrics;
  log: Logger;
}

export class NflogSampler {
  private sock?: NetlinkSocket;

  /** The NFLOG socket, once started. */
  get socket(): NetlinkSocket | undefined {
    return this.sock;
  }
  private requests?: Requester;
  private readonly limiter: SampleLimiter;
  private ifnames = new Map<number, string>();

  constructor(private readonly o: NflogSamplerOptions) {
    this.limiter = new SampleLimiter(o.rate);
  }

  /** INVALID packets suppressed since the last sample (they will ride on the next one). */
  get pendingWeight(): number {
    return this.limiter.pending;
  }

  async start(): Promise<void> {
    const o = this.o;
    const sock = o.sockets({ rcvbuf: 8 << 20, netns: o.netns });
    this.sock = sock;
    const requests = new Requester((msg, onError) => sock.send(msg, onError), (errno) =>
      `NFLOG group ${o.group}: errno ${errno}${errno === EBUSY ? ' (EBUSY: another process owns the group)' : ''}`);
    this.requests = requests;
    const handler: MessageHandler = {
      ct: () => {}, exp: () => {}, cpuStats: () => {}, globalStats: () => {}, expStats: () => {},
      done: (seq) => requests.settle(seq),
      kernelError: (seq, errno) => requests.settle(seq, errno),
      reject: o.reject,
      // a packet that does not decode throws out of here: decodeDatagram rejects it with its code
      other: (buf, dv, off, len, type, _flags, sec, nsec) => {
        if (type === PACKET) this.onPacket(decodeNflogMessage(buf, dv, off, len), sec, nsec);
      },
    };
    const drops = new DropCounter(sock);
    sock.start((chunk, enobufs) => {
      if (chunk) decodeChunk(chunk, handler);
      if (enobufs > 0) {
        o.metrics.enobufs.inc({ socket: 'nflog' }, enobufs);
        o.deliver(o.stamper.loss({ reason: 'enobufs', count: drops.take(), source: 'nflog' }));
      }
    });
    await requests.request((seq) => nflogBind(seq, o.group), 5000);
    await requests.request((seq) => nflogMode(seq, o.group, o.copyRange), 5000);
    await requests.request((seq) => nflogTimeout(seq, o.group, 10), 5000);
    // /sys/class/net shows this process's namespace, not the watched one
    if (!o.netns) this.ifnames = readIfnames();
    o.log.info({ group: o.group, rate: o.rate }, 'sampling INVALID packets from NFLOG');
  }

  private onPacket(p: NflogPacket, sec: number, nsec: number): void {
    const weight = this.limiter.take();
    if (weight === 0) {
      this.o.metrics.invalidSuppressed.inc();
      return;
    }
    const { host, run } = this.o.stamper;
    const rec: InvalidPacketRecord = {
      host, run, seq: 0, sec, nsec, type: 'invalid_packet',
      family: p.family, proto: p.proto, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport,
      tcp_flags: p.tcp_flags, icmp_type: p.icmp_type, icmp_code: p.icmp_code, length: p.length,
      indev: ifname(this.ifnames, p.indev), outdev: ifname(this.ifnames, p.outdev), prefix: p.prefix, mark: p.mark,
      weight,
    };
    this.o.deliver(this.o.stamper.stamp(rec));
  }

  close(): void {
    this.requests?.close();
    this.sock?.close();
  }
}
