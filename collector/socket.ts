/**
 * The only file that touches the native netlink addon. Everything else takes a SocketFactory, so
 * logic tests run with fake sockets and no root.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from '../common/paths.js';
import { NETLINK_NETFILTER } from './netlink/constants.js';

export interface SocketStats {
  /** Kernel sk_drops: messages the kernel could not queue on this socket. */
  drops: number;
  /** Bytes waiting in the kernel receive queue. */
  rmem: number;
  rcvbuf: number;
  enobufs: number;
  truncated: number;
  datagrams: number;
  bytes: number;
  /** Bytes read by the reader thread and not yet handed to JavaScript. */
  queued: number;
  /** The reader thread's id, once it runs (0 before). */
  readerTid: number;
}

export type ChunkHandler = (chunk: Buffer | null, enobufs: number, errno: number) => void;

export interface NetlinkSocket {
  readonly portId: number;
  /** Effective SO_RCVBUF (the kernel reports twice the requested value). */
  readonly rcvbuf: number;
  /** Whether SO_RCVBUFFORCE was accepted (needs CAP_NET_ADMIN). */
  readonly forced: boolean;
  start(onChunk: ChunkHandler): void;
  send(msg: Buffer): void;
  setRcvbuf(bytes: number): number;
  stats(): SocketStats;
  unref(): void;
  close(): void;
}

export interface SocketOptions {
  groups?: number[];
  rcvbuf?: number;
  /** Path of a network namespace (e.g. /run/netns/NAME) to open the socket in. */
  netns?: string;
  /** Bytes the reader may hold for JavaScript before it stops reading (back-pressure). */
  maxQueued?: number;
}

export type SocketFactory = (opts: SocketOptions) => NetlinkSocket;

interface Addon {
  open(o: object): { handle: unknown; rcvbuf: number; forced: boolean; portId: number };
  send(h: unknown, b: Buffer): number;
  start(h: unknown, cb: ChunkHandler): void;
  setRcvbuf(h: unknown, n: number): number;
  stats(h: unknown): SocketStats;
  close(h: unknown): void;
  unref(h: unknown): void;
  procfs(netns: string, file: string, value?: string): string;
}

let addon: Addon | undefined;
function load(): Addon {
  addon ??= createRequire(import.meta.url)(path.join(packageRoot(), 'build', 'Release', 'ctpipe_netlink.node')) as Addon;
  return addon;
}

export const openNetfilterSocket: SocketFactory = (opts) => {
  const a = load();
  const o = a.open({ protocol: NETLINK_NETFILTER, groups: opts.groups ?? [], rcvbuf: opts.rcvbuf ?? 0, netns: opts.netns, maxQueued: opts.maxQueued });
  const h = o.handle;
  return {
    portId: o.portId,
    rcvbuf: o.rcvbuf,
    forced: o.forced,
    start: (cb) => a.start(h, cb),
    send: (msg) => void a.send(h, msg),
    setRcvbuf: (n) => a.setRcvbuf(h, n),
    stats: () => a.stats(h),
    unref: () => a.unref(h),
    close: () => a.close(h),
  };
};

/**
 * Reads (and optionally writes) a /proc file as seen from a network namespace; `netns` empty means
 * the collector's own. Returns the contents before any write.
 */
export function procfsInNetns(netns: string | undefined, file: string, value?: string): string {
  return load().procfs(netns ?? '', file, value);
}
