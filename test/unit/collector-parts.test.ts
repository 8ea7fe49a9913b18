/**
 * The collector's small pieces on their own: the drop counter, the request/ack piece, the sample
 * rate limit, interface names, the readers' priority, the activation tables a start may remove.
 */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { getPriority, setPriority, tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { activationStatements, ownTableName, staleTables } from '../../collector/activation.js';
import { DropCounter } from '../../collector/drops.js';
import { ifname, readIfnames } from '../../collector/ifnames.js';
import { SampleLimiter } from '../../collector/nflog/rate-limit.js';
import { Requester } from '../../collector/requester.js';
import { favorReaders } from '../../collector/priority.js';
import type { NetlinkSocket } from '../../collector/socket.js';
import { silentLogger } from '../../common/log.js';

describe('drop counter', () => {
  it('gives the increase of sk_drops since the last call, across the u32 wrap', () => {
    let drops = 40;
    const d = new DropCounter({ stats: () => ({ drops, rmem: 0, rcvbuf: 0, enobufs: 0, truncated: 0, datagrams: 0, bytes: 0, queued: 0, readerTid: 0 }) });
    expect(d.take()).toBe(40);
    expect(d.take()).toBe(0);
    drops = 2 ** 32 - 10;
    d.take();
    drops = 5; // wrapped
    expect(d.take()).toBe(15);
  });
});

describe('requester', () => {
  const seqOf = (m: Buffer) => m.readUInt32LE(0);
  const build = (seq: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(seq);
    return b;
  };

  it('sends one request at a time, each with a fresh seq, settled by its own ack only', async () => {
    const sent: Buffer[] = [];
    const r = new Requester<string>((m) => sent.push(m));
    const a = r.request(build, 1000, 'a');
    const b = r.request(build, 1000, 'b');
    await Promise.resolve();
    expect(sent.length).toBe(1); // b waits for a
    expect(r.context).toBe('a');
    r.settle(seqOf(sent[0]!) + 7); // someone else's ack
    r.settle(seqOf(sent[0]!));
    await a;
    await new Promise((res) => setImmediate(res));
    expect(sent.length).toBe(2);
    expect(seqOf(sent[1]!)).toBe(seqOf(sent[0]!) + 1);
    expect(r.context).toBe('b');
    r.settle(seqOf(sent[1]!));
    await b;
    expect(r.context).toBeUndefined();
  });

  it('fails on a kernel error in the caller\'s words, on a timeout, and when closed', async () => {
    const sent: Buffer[] = [];
    const r = new Requester((m) => sent.push(m), (errno) => `group 7: errno ${errno}`);
    const refused = r.request(build, 1000);
    await Promise.resolve();
    r.settle(seqOf(sent[0]!), 16);
    await expect(refused).rejects.toMatchObject({ code: 'NL_KERNEL_ERROR', message: 'group 7: errno 16' });
    await expect(r.request(build, 20)).rejects.toThrow(/timed out after 20 ms/);
    const closed = r.request(build, 1000);
    await Promise.resolve();
    r.close();
    await expect(closed).rejects.toThrow(/closed during a request/);
  });

  it('fails a request whose send fails after it went off the event loop, and sends the next one', async () => {
    const sent: Buffer[] = [];
    let failNext = true;
    const r = new Requester<string>((m, onError) => {
      sent.push(m);
      if (failNext) setImmediate(() => onError(Object.assign(new Error('sendto(netlink) failed: No buffer space available'), { code: 'NL_SEND' })));
      failNext = false;
    });
    const failed = r.request(build, 1000, 'a');
    const next = r.request(build, 1000, 'b');
    await expect(failed).rejects.toMatchObject({ code: 'NL_SEND' });
    await new Promise((res) => setImmediate(res));
    expect(sent.length).toBe(2);
    r.settle(seqOf(sent[0]!)); // a late ack of the failed one settles nothing
    expect(r.context).toBe('b');
    r.settle(seqOf(sent[1]!));
    await expect(next).resolves.toBeUndefined();
  });

  it('counts its timeout from the last reply: a long dump that keeps replying does not time out', async () => {
    const sent: Buffer[] = [];
    const r = new Requester((m) => sent.push(m));
    const long = r.request(build, 60);
    for (let i = 0; i < 5; i++) {
      await sleep(30);
      r.progress(); // a reply of the request in flight
    }
    r.settle(seqOf(sent[0]!));
    await expect(long).resolves.toBeUndefined();
  });
});

describe('sample rate limit', () => {
  it('takes `rate` samples a second, a burst of at most `rate`, and weighs each with the packets refused before it', () => {
    let now = 1_000_000;
    const l = new SampleLimiter(3, () => now);
    const burst = () => Array.from({ length: 5 }, () => l.take());
    expect(burst()).toEqual([1, 1, 1, 0, 0]);
    expect(l.pending).toBe(2);
    now += 400; // 1.2 tokens back
    expect(burst()).toEqual([3, 0, 0, 0, 0]);
    now += 60_000; // a long quiet time fills the bucket to `rate`, no more
    expect(burst()).toEqual([5, 1, 1, 0, 0]);
  });
});

describe('interface names', () => {
  it('reads index -> name from a /sys/class/net layout, and shows if<N> for an index it does not know', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-ifnames-'));
    for (const [name, index] of [['lo', 1], ['eth0', 2]] as const) {
      mkdirSync(path.join(dir, name));
      writeFileSync(path.join(dir, name, 'ifindex'), `${index}\n`);
    }
    const names = readIfnames(dir);
    expect([ifname(names, 2), ifname(names, 1), ifname(names, 9), ifname(names, undefined)]).toEqual(['eth0', 'lo', 'if9', undefined]);
    expect(readIfnames(path.join(dir, 'missing')).size).toBe(0);
  });
});

describe('reader priority', () => {
  it('lowers the priority of every thread but the readers, and leaves them alone when off', async () => {
    // a worker thread stands in for a reader: its id from /proc/thread-self
    const worker = new Worker("const { parentPort } = require('node:worker_threads'); const fs = require('node:fs'); parentPort.postMessage(Number(fs.readlinkSync('/proc/thread-self').split('/').pop())); setInterval(() => {}, 1000);", { eval: true });
    const readerTid = await new Promise<number>((r) => worker.once('message', r));
    const reader = { stats: () => ({ drops: 0, rmem: 0, rcvbuf: 0, enobufs: 0, truncated: 0, datagrams: 0, bytes: 0, queued: 0, readerTid }) } as unknown as NetlinkSocket;
    const tids = readdirSync('/proc/self/task').map(Number);
    const before = new Map(tids.map((t) => [t, getPriority(t)]));
    try {
      await favorReaders([reader], 0, silentLogger);
      expect(tids.map((t) => getPriority(t))).toEqual(tids.map((t) => before.get(t)));
      await favorReaders([reader], 7, silentLogger);
      for (const t of tids) expect([t, getPriority(t)]).toEqual([t, t === readerTid ? before.get(t) : Math.max(7, before.get(t)!)]);
    } finally {
      for (const [t, p] of before) setPriority(t, p); // root may raise them back
      await worker.terminate();
    }
  });
});

describe('activation tables', () => {
  it('names a table after the pid and pid namespace, and adds the owner flag only where asked', () => {
    expect(ownTableName(42, '4026531836')).toBe('ctpipe_conntrack_p42_n4026531836');
    expect(activationStatements('t', true)[0]).toBe('add table inet t { flags owner; }');
    expect(activationStatements('t', false)[0]).toBe('add table inet t');
    expect(activationStatements('t', false).filter((l) => l.includes('ct state new counter')).length).toBe(2);
  });

  it('a start removes only the tables of dead ctpipe processes of its own pid namespace', () => {
    const listing = ['table inet ctpipe_lab', 'table inet ctpipe_conntrack', 'table inet ctpipe_conntrack_p10_n7',
      'table inet ctpipe_conntrack_p11_n7', 'table inet ctpipe_conntrack_p12_n8', 'table ip ctpipe_conntrack_p13_n7', 'table inet ctpipe_conntrack_p14_n7x'].join('\n');
    // 10 runs, 11 is gone; 12 belongs to another pid namespace (not visible from here); 13 is not inet; 14 is not ours
    expect(staleTables(listing, '7', (pid) => pid === 10)).toEqual(['ctpipe_conntrack_p11_n7']);
  });
});
