/**
 * The netlink readers first. The kernel drops conntrack events when a socket's receive buffer
 * fills, and a burst (a table flush: a million DESTROY events in a second or two) fills any buffer
 * unless its reader thread keeps running. On a busy host the reader competes for the CPU with the
 * event loop, the store's threads and the flush itself, so every other thread of this process is
 * given a lower priority (a higher nice value, which needs no privilege): the readers drain the
 * kernel first and the records wait in memory, counted, until the rest catches up. Threads started
 * later inherit the value from the thread that starts them.
 */
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../common/log.js';
import type { NetlinkSocket } from './socket.js';

/** Sets `nice` on every thread of this process but the sockets' readers (0: leaves them alone). */
export async function favorReaders(sockets: readonly NetlinkSocket[], nice: number, log: Logger): Promise<void> {
  if (nice <= 0) return;
  const readers = new Set<number>();
  for (const s of sockets) {
    // a reader thread records its id as it starts
    for (let t = 0; t < 100 && s.stats().readerTid === 0; t++) await sleep(1);
    if (s.stats().readerTid) readers.add(s.stats().readerTid);
  }
  if (readers.size === 0) return; // no reader threads (a test's fake sockets)
  let lowered = 0;
  for (const t of readdirSync('/proc/self/task')) {
    const tid = Number(t);
    if (readers.has(tid)) continue;
    try {
      if (getPriority(tid) < nice) {
        setPriority(tid, nice);
        lowered++;
      }
    } catch {
      // the thread ended meanwhile
    }
  }
  log.info({ nice, threads: lowered, readers: [...readers] }, 'netlink readers favoured: the other threads run at a lower priority');
}
