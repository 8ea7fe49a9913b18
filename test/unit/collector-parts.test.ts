/** The collector's small pieces on their own: the drop counter, the request/ack piece. */
import { describe, expect, it } from 'vitest';
import { DropCounter } from '../../collector/drops.js';
import { Requester } from '../../collector/requester.js';

describe('drop counter', () => {
  it('gives the increase of sk_drops since the last call, across the u32 wrap', () => {
    let drops = 40;
    const d = new DropCounter({ stats: () => ({ drops, rmem: 0, rcvbuf: 0, enobufs: 0, truncated: 0, datagrams: 0, bytes: 0, queued: 0 }) });
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
});
