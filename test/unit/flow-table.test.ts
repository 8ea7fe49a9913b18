/**
 * The open-flow column store against a plain Map, under random opens and closes with conntrack ids
 * from a small range (so the index's probe chains collide, wrap and shift back on deletion), and
 * the round trip of its slots through a binary snapshot (what checkpoints store); the ended keys
 * against an insertion-ordered Map bounded the same way, and through a snapshot.
 */
import { describe, expect, it } from 'vitest';
import type { Tuple } from '../../contract/records.js';
import { EndedKeys } from '../../processor/lifecycle/ended-keys.js';
import { F_LIVE, FlowTable, K, SLOT_COLUMNS, T } from '../../processor/lifecycle/flow-table.js';
import { rowOf } from '../../processor/lifecycle/flow-row.js';
import { SnapshotReader, SnapshotWriter } from '../../processor/snapshot.js';
import { mulberry32 } from '../helpers/random.js';

const tuple = (i: number, v6 = false): Tuple => ({
  src: v6 ? `2001:db8::${i.toString(16)}` : `198.51.${(i >> 8) & 255}.${i & 255}`, dst: v6 ? '2001:db8::1' : '203.0.113.2',
  proto: 6, sport: 1024 + (i % 60000), dport: 443, icmp_type: undefined, icmp_code: undefined, icmp_id: undefined, zone: undefined,
});

function open(t: FlowTable, host: string, id: number, tu: Tuple, v6: boolean): number {
  const s = t.alloc();
  t.ctId[s] = id;
  t.zone[s] = 0;
  t.hostIdx[s] = t.intern(host);
  t.runIdx[s] = t.intern('r');
  t.setTuple(s, tu, v6 ? 6 : 4);
  t.flags[s] = F_LIVE;
  t.index(s);
  return s;
}

describe('open-flow column store', () => {
  it('finds exactly the open flows through any sequence of opens and closes', () => {
    const rnd = mulberry32(7);
    const t = new FlowTable();
    const ref = new Map<string, number>(); // host|id|i -> slot
    const keyOf = (host: string, id: number, i: number) => `${host}|${id}|${i}`;
    for (let step = 0; step < 60_000; step++) {
      const host = rnd() < 0.5 ? 'a' : 'b';
      const id = Math.floor(rnd() * 300); // few ids: long collision chains
      const i = Math.floor(rnd() * 50);
      const v6 = i % 7 === 0;
      const k = keyOf(host, id, i);
      const found = t.find(host, 0, id, tuple(i, v6));
      expect(found).toBe(ref.get(k) ?? -1);
      if (found < 0 && rnd() < 0.6) ref.set(k, open(t, host, id, tuple(i, v6), v6));
      else if (found >= 0) {
        t.release(found);
        ref.delete(k);
      }
    }
    expect(t.size).toBe(ref.size);
    for (const [k, s] of ref) {
      const [host, id, i] = k.split('|') as [string, string, string];
      expect(t.find(host, 0, Number(id), tuple(Number(i), Number(i) % 7 === 0))).toBe(s);
      expect(t.orig(s).src).toBe(tuple(Number(i), Number(i) % 7 === 0).src);
    }
  });

  it('gives back every column, string and side map of its slots through a snapshot', async () => {
    const t = new FlowTable();
    const s = open(t, 'fw', 42, tuple(9), false);
    t.hashHi[s] = 0xdeadbeef;
    t.hashLo[s] = 0x01020304;
    t.setTime(s, T.First, 1_795_000_000, 5);
    t.setTime(s, T.Last, 1_795_000_001, 6);
    t.setTime(s, T.Established, 1_795_000_000, 900_000_000);
    for (const [k, code] of [1, 2, 3, 4, 5, 7].entries()) t.pushState(s, code, 1_795_000_000 + k, k); // past the inline four
    t.setCounters(s, { orig: { packets: 3, bytes: 180 }, reply: { packets: 2, bytes: 120 } });
    t.setReply(s, { ...tuple(9), src: '192.0.2.7', dst: '203.0.113.2' }, tuple(9)); // DNAT
    t.master.set(s, { tuple: tuple(1), flowId: '00000000000000aa' });
    t.setKernelTime(s, K.Start, { sec: 1_795_000_000, nsec: 1 });
    t.helperIdx[s] = t.intern('ftp');
    const v6 = open(t, 'fw6', 43, { ...tuple(10), src: '2001:db8::1', dst: '2001:db8::2' }, true);
    const gone = open(t, 'fw', 44, tuple(11), false);
    t.release(gone); // a free slot below top
    const w = new SnapshotWriter();
    await t.save(w);
    const again = new FlowTable();
    again.restore(await SnapshotReader.open(await w.finish()));
    expect([again.top, again.size]).toEqual([t.top, t.size]);
    for (const slot of [s, v6]) expect(rowOf(again, slot)).toEqual(rowOf(t, slot));
    expect(rowOf(again, s)).toMatchObject({
      flow_id: 'deadbeef01020304', host: 'fw', run: 'r', ct_id: 42, helper: 'ftp', reply_src: '192.0.2.7', master_flow_id: '00000000000000aa',
      tcp_states: ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'TIME_WAIT'], orig_bytes: 180,
    });
    expect(again.find('fw', 0, 42, tuple(9))).toBe(s);
    expect(again.find('fw6', 0, 43, { ...tuple(10), src: '2001:db8::1', dst: '2001:db8::2' })).toBe(v6);
    expect(again.find('fw', 0, 44, tuple(11))).toBe(-1);
    expect(again.alloc()).toBe(gone); // the free slot is reused first
  });

  it('restores the kernel stamps of a snapshot from before their column (a side map then) into the column', async () => {
    const t = new FlowTable();
    const a = open(t, 'fw', 42, tuple(9), false);
    const b = open(t, 'fw', 43, tuple(10), false);
    t.setTime(a, T.First, 1_795_000_000, 5);
    t.setTime(b, T.First, 1_795_000_000, 5);
    // written as FlowTable.save wrote it before: every column but kernelTimes, the stamps as entries
    const w = new SnapshotWriter();
    w.json('table', { top: t.top });
    for (const [name, arr] of t.columns()) if (name !== 'kernelTimes') w.bytes(`table.${name}`, arr.subarray(0, t.top * SLOT_COLUMNS[name].per));
    w.json('table.pool', ['', 'fw', 'r']);
    for (const side of ['addr6', 'nat', 'master', 'moreStates']) await w.entries(`table.${side}`, []);
    await w.entries('table.stamps', [[a, { start: { sec: 1_794_999_990, nsec: 7 }, stop: { sec: 1_795_000_003, nsec: 0 } }]]);
    const again = new FlowTable();
    again.restore(await SnapshotReader.open(await w.finish()));
    expect(again.kernelTime(a, K.Start)).toEqual({ sec: 1_794_999_990, nsec: 7 });
    expect(again.kernelTime(a, K.Stop)).toEqual({ sec: 1_795_000_003, nsec: 0 });
    expect(again.kernelTime(b, K.Start)).toBeUndefined();
    // the kernel's start, not the first event, begins the duration
    expect(rowOf(again, a, 'destroy', { sec: 1_795_000_010, nsec: 0 }).duration_ms).toBeCloseTo(12_999.999_993, 6);
    expect(rowOf(again, b, 'destroy', { sec: 1_795_000_010, nsec: 0 }).duration_ms).toBeCloseTo(9_999.999_995, 6);
  });
});

describe('compaction', () => {
  it('moves the live slots to the front with their columns and side maps, and finds them there', async () => {
    const t = new FlowTable();
    const slots: number[] = [];
    for (let i = 0; i < 400; i++) {
      const s = open(t, 'fw', 1000 + i, tuple(i, i % 7 === 0), i % 7 === 0);
      t.setTime(s, T.First, 1_795_000_000 + i, i);
      if (i % 5 === 0) t.setReply(s, { ...tuple(i), src: '192.0.2.9' }, tuple(i)); // NAT: a side map entry
      slots.push(s);
    }
    const keep = slots.filter((_, i) => i % 3 === 0);
    const rows = new Map(keep.map((s) => [s, rowOf(t, s)]));
    for (const s of slots) if (!keep.includes(s)) t.release(s);
    const remap = (await t.compact())!;
    expect([t.top, t.size]).toEqual([keep.length, keep.length]);
    for (const [old, row] of rows) expect(rowOf(t, remap[old]!)).toEqual(row);
    for (const [i, old] of slots.entries()) {
      expect(t.find('fw', 0, 1000 + i, tuple(i, i % 7 === 0))).toBe(keep.includes(old) ? remap[old] : -1);
    }
    expect(await t.compact()).toBeUndefined(); // dense now: nothing to do
  });
});

describe('open-flow columns from one list', () => {
  it('gives a reused slot every column at its empty value, whatever the last flow left there', () => {
    const t = new FlowTable();
    const s = t.alloc();
    for (const [, a] of t.columns()) a.fill(7);
    t.release(s);
    expect(t.alloc()).toBe(s);
    for (const [name, a] of t.columns()) {
      const { per } = SLOT_COLUMNS[name];
      const empty = 'empty' in SLOT_COLUMNS[name] ? SLOT_COLUMNS[name].empty : 0;
      expect([name, [...a.subarray(s * per, (s + 1) * per)]]).toEqual([name, Array(per).fill(empty)]);
      expect([name, a[(s + 1) * per]]).toEqual([name, 7]); // the next slot is left alone
    }
  });

  it('holds every typed array of the table in the list, grown together and counted', () => {
    const t = new FlowTable();
    for (let i = 0; i < 3000; i++) t.alloc(); // past two growths
    const arrays = Object.entries(t).filter(([, v]) => ArrayBuffer.isView(v)).map(([k]) => k);
    expect(arrays.sort()).toEqual([...Object.keys(SLOT_COLUMNS), 'idx'].sort());
    for (const [name, a] of t.columns()) expect([name, a.length]).toEqual([name, t.cap * SLOT_COLUMNS[name].per]);
    const bytes = t.columns().reduce((n, [, a]) => n + a.byteLength, 0);
    expect(t.typedBytes()).toBeGreaterThan(bytes); // and the index
    expect(t.typedBytes()).toBeLessThan(bytes + 8 * t.cap);
  });
});

describe('ended keys', () => {
  // few distinct keys: re-endings leave dead ring entries (many keys: evictions at the head);
  // keys equal in lo but not in hi collide in the index
  it.each([[1500, 'evictions'], [20, 'dead entries outnumbering live ones']])('matches an insertion-ordered, bounded Map (%i keys per hi: %s), also after a snapshot', async (keys) => {
    const rnd = mulberry32(11);
    const max = 700;
    const e = new EndedKeys(max);
    const ref = new Map<number, number>();
    for (let step = 0; step < 100_000; step++) {
      const hi = Math.floor(rnd() * 4) * 0x7ffff;
      const lo = Math.floor(rnd() * (keys as number));
      const k = hi * 4294967296 + lo;
      expect(e.get(hi, lo)).toBe(ref.get(k));
      if (rnd() < 0.6) {
        const gen = step & 0xffff;
        e.set(hi, lo, gen);
        ref.delete(k);
        ref.set(k, gen);
        if (ref.size > max) ref.delete(ref.keys().next().value!);
      }
    }
    expect(e.size).toBe(ref.size);
    expect([...e.entries()]).toEqual([...ref]);
    const w = new SnapshotWriter();
    await e.save(w);
    const again = new EndedKeys(max);
    again.restore(await SnapshotReader.open(await w.finish()));
    expect([...again.entries()]).toEqual([...ref]);
    for (const k of ref.keys()) expect(again.get(Math.floor(k / 4294967296), k % 4294967296)).toBe(ref.get(k));
  });
});
