/**
 * The only file that touches the native netlink addon. Everything else takes a SocketFactory, so
 * logic tests run with fake sockets and no root.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { CtpipeError, errorMessage } from '../common/errors.js';
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
  /**
   * Sends a request to the kernel off the event loop (a ctnetlink request waits in the kernel
   * behind `conntrack -F`, seconds on a big table); `onError` hears if the send failed.
   */
  send(msg: Buffer, onError: (e: Error) => void): void;
  setRcvbuf(bytes: number): number;
  stats(): SocketStats;
  unref(): void;
  close(): void;
  /**
   * After close(): resolves once what the reader thread handed over before it ended has reached the
   * handler (those deliveries wait in the event loop's queue; records decoded from them after the
   * sink's last flush would be stamped and never stored).
   */
  settled?(): Promise<void>;
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
  send(h: unknown, b: Buffer, cb: (errno: number, message: string) => void): void;
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

const EPERM = 1;
const ENOENT = 2;

/**
 * Entering another network namespace (setns) takes CAP_SYS_ADMIN as well as CAP_NET_ADMIN (the
 * kernel checks CAP_SYS_ADMIN over the namespace's user namespace): said in the error, with the
 * way that needs CAP_NET_ADMIN only.
 */
export function netnsError(netns: string, e: unknown): CtpipeError {
  const errno = (e as { errno?: number }).errno;
  const why = errno === EPERM
    ? 'entering a network namespace (setns) needs CAP_SYS_ADMIN as well as CAP_NET_ADMIN, and this process lacks it. Grant both ' +
      '(systemd AmbientCapabilities=CAP_NET_ADMIN CAP_SYS_ADMIN, docker/compose cap_add: [NET_ADMIN, SYS_ADMIN]), or run ctpipe inside ' +
      'the namespace without --netns (ip netns exec NAME ctpipe ..., a container in that namespace), which needs CAP_NET_ADMIN only'
    : errno === ENOENT ? 'no such namespace (a path such as /run/netns/NAME, or /proc/PID/ns/net)' : errorMessage(e);
  return new CtpipeError('NETNS_UNAVAILABLE', `cannot enter the network namespace ${netns}: ${why}`, { cause: e });
}

export const openNetfilterSocket: SocketFactory = (opts) => {
  const a = load();
  let o: ReturnType<Addon['open']>;
  try {
    o = a.open({ protocol: NETLINK_NETFILTER, groups: opts.groups ?? [], rcvbuf: opts.rcvbuf ?? 0, netns: opts.netns, maxQueued: opts.maxQueued });
  } catch (e) {
    if (opts.netns && (e as { code?: string }).code === 'NL_NETNS') throw netnsError(opts.netns, e);
    throw e;
  }
  const h = o.handle;
  let delivered = 0;
  return {
    portId: o.portId,
    rcvbuf: o.rcvbuf,
    forced: o.forced,
    start: (cb) => a.start(h, (chunk, enobufs, errno) => {
      delivered++;
      cb(chunk, enobufs, errno);
    }),
    send: (msg, onError) => a.send(h, msg, (errno, message) => {
      // as the addon's own errors: its code and errno on a plain Error
      if (errno) onError(Object.assign(new Error(`sendto(netlink) failed: ${message}`), { code: 'NL_SEND', errno }));
    }),
    setRcvbuf: (n) => a.setRcvbuf(h, n),
    stats: () => a.stats(h),
    unref: () => a.unref(h),
    close: () => a.close(h),
    // close() joined the reader, so nothing more is queued: two quiet loop turns in a row mean the
    // queue is empty (a delivery signalled late in one turn runs in the next one's poll phase)
    settled: async () => {
      for (let quiet = 0; quiet < 2;) {
        const before = delivered;
        await new Promise((r) => setImmediate(r));
        quiet = delivered === before ? quiet + 1 : 0;
      }
    },
  };
};

/**
 * Reads (and optionally writes) a /proc file as seen from a network namespace; `netns` empty means
 * the collector's own. Returns the contents before any write.
 */
/** Fails with NETNS_UNAVAILABLE, before anything starts, when this process cannot enter `netns`. */
export function requireNetns(netns: string | undefined): void {
  if (netns) openNetfilterSocket({ netns }).close();
}

export function procfsInNetns(netns: string | undefined, file: string, value?: string): string {
  return load().procfs(netns ?? '', file, value);
}
