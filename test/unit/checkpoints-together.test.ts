/**
 * Several partitions' checkpoints in one store call (a member's stop, a takeover's restore), on a
 * real chDB: each partition gets exactly its own state and ranges back, the slots alternate per
 * partition, a superseded snapshot left unmerged is never read for the current one (no FINAL), and
 * one partition's incomplete checkpoint is refused by name; a partition's chunks are stored as soon
 * as its state is given (a stop's next snapshot being made meanwhile), the rows only after all.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Checkpoint, Store } from '../../processor/store.js';
import { tempDir } from '../helpers/resources.js';

const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255));
const hex = (cp: Checkpoint | undefined) => cp && { offset: cp.offset, chunks: cp.chunks.map((c) => c.toString('hex')) };

describe('checkpoints of several partitions together', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = tempDir('checkpoints');
    store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
    await migrate(store, { db: 'ctpipe_cps', flowsTtlDays: 30, eventsTtlDays: 3 });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('saves and loads six partitions in one call each, each its own state, slots alternating, no FINAL needed', async () => {
    const db = store.database('ctpipe_cps');
    const keys = [0, 2, 4, 6, 8, 10].map((partition) => ({ group: 'g', topic: 't', partition }));
    const other = { group: 'g2', topic: 't', partition: 0 }; // another group's partition 0: never confused
    expect(await db.loadCheckpoints([...keys, other])).toEqual(keys.map(() => undefined).concat([undefined]));
    const state = (p: number, round: number) => Array.from({ length: 1 + (p % 3) }, (_, i) => bytes(1000 * (i + 1) + p, p * 7 + round + i));
    for (let round = 1; round <= 3; round++) {
      await db.saveCheckpoints(keys.map((key) => ({ key, offset: round * 100 + key.partition, chunks: state(key.partition, round), version: round * 100 + key.partition + 1 })));
      await db.saveCheckpoint(other, round, [bytes(10, round)], round + 1);
      const got = await db.loadCheckpoints([...keys, other]);
      expect(got.map(hex)).toEqual([
        ...keys.map((k) => ({ offset: round * 100 + k.partition, chunks: state(k.partition, round).map((c) => c.toString('hex')) })),
        { offset: round, chunks: [bytes(10, round).toString('hex')] },
      ]);
    }
    // three rounds in two slots: round 3 overwrote round 1's slot, whose rows may still sit in
    // unmerged parts beside it; a read takes the current snapshot's rows only
    const slots = await store.query<{ partition: number; slot: number }>(
      "SELECT DISTINCT partition, slot FROM ctpipe_cps.processor_checkpoint_chunks WHERE group_id = 'g' ORDER BY partition, slot");
    expect(slots.map((x) => [x.partition, x.slot])).toEqual(keys.flatMap((k) => [[k.partition, 0], [k.partition, 1]]));
    // another store object (no slots cached, as a process that just took the partition over)
    // writes into the slot the current row does not name
    const fresh = store.database('ctpipe_cps');
    await fresh.saveCheckpoints([{ key: keys[0]!, offset: 999, chunks: [bytes(3, 9)], version: 1000 }]);
    expect(hex(await db.loadCheckpoint(keys[1]!))?.offset).toBe(302);
    expect(hex(await db.loadCheckpoint(keys[0]!))).toEqual({ offset: 999, chunks: [bytes(3, 9).toString('hex')] });
    expect(hex((await db.loadCheckpoints([keys[2]!]))[0])?.offset).toBe(304); // round 3's, whole
  });

  it('reads each partition\'s logged ranges past its own offset in one call', async () => {
    const db = store.database('ctpipe_cps');
    const k = (partition: number) => ({ group: 'r', topic: 't', partition });
    for (const p of [1, 3]) for (let i = 0; i < 5; i++) await db.logRange(k(p), { first: i * 10 + p, last: i * 10 + p + 9 });
    await db.logRange(k(1), { first: 21, last: 30 }); // logged twice (a retry): once
    const got = await db.rangesAfter([{ key: k(1), after: 20 }, { key: k(3), after: -1 }, { key: k(5), after: -1 }]);
    expect(got).toEqual([
      [{ first: 21, last: 30 }, { first: 31, last: 40 }, { first: 41, last: 50 }],
      [3, 13, 23, 33, 43].map((first) => ({ first, last: first + 9 })),
      [],
    ]);
    expect(await db.ranges(k(3), 30)).toEqual([{ first: 33, last: 42 }, { first: 43, last: 52 }]);
  });

  it('stores each partition\'s chunks as soon as its state is given, the rows only once all are stored', async () => {
    const db = store.database('ctpipe_cps');
    const keys = [0, 1, 2].map((partition) => ({ group: 'stream', topic: 't', partition }));
    await db.saveCheckpoints(keys.map((key) => ({ key, offset: 1, chunks: [bytes(4, key.partition)], version: 2 })));
    const chunksOf = async (partition: number) => (await store.query<{ n: string }>(
      "SELECT count() AS n FROM ctpipe_cps.processor_checkpoint_chunks WHERE group_id = 'stream' AND partition = {p:UInt32} AND version = 11", { p: partition }))[0]!.n;
    const open: (() => void)[] = [];
    const gates = keys.map(() => ({ promise: new Promise<void>((r) => open.push(r)), resolve: () => undefined as void }));
    gates.forEach((g, i) => (g.resolve = open[i]!));
    const given = keys.map((key, i) => gates[i]!.promise.then(() => ({ key, offset: 10, chunks: [bytes(7, 20 + i), bytes(8, 30 + i)], version: 11 })));
    const saving = db.saveCheckpoints(given);
    gates[0]!.resolve();
    // partition 0's chunks are stored while partition 1's state is still being made
    for (let t = 0; (await chunksOf(0)) !== '2'; t++) {
      if (t > 200) throw new Error('partition 0\'s chunks were not stored while partition 1\'s state was pending');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await chunksOf(1)).toBe('0');
    expect((await db.loadCheckpoints(keys)).map((c) => c?.offset)).toEqual([1, 1, 1]); // not visible yet
    gates[1]!.resolve();
    gates[2]!.resolve();
    await saving;
    expect((await db.loadCheckpoints(keys)).map(hex)).toEqual(keys.map((_, i) => ({ offset: 10, chunks: [bytes(7, 20 + i).toString('hex'), bytes(8, 30 + i).toString('hex')] })));

    // a state that fails after others' chunks are stored: every partition stays at its previous checkpoint
    const broken = Promise.reject(new Error('snapshot failed'));
    broken.catch(() => undefined); // handled by the store, which awaits it after the first's insert (as the consumer marks it)
    const failing = [Promise.resolve({ key: keys[0]!, offset: 20, chunks: [bytes(3, 1)], version: 21 }), broken];
    await expect(db.saveCheckpoints(failing)).rejects.toThrow('snapshot failed');
    expect((await db.loadCheckpoints(keys)).map((c) => c?.offset)).toEqual([10, 10, 10]);
    await db.saveCheckpoints([{ key: keys[0]!, offset: 30, chunks: [bytes(5, 5)], version: 31 }]); // and the next one still lands
    expect(hex(await db.loadCheckpoint(keys[0]!))).toEqual({ offset: 30, chunks: [bytes(5, 5).toString('hex')] });
  });

  it('refuses the partition whose checkpoint misses a chunk, naming it', async () => {
    const db = store.database('ctpipe_cps');
    const keys = [0, 1].map((partition) => ({ group: 'bad', topic: 't', partition }));
    await db.saveCheckpoints(keys.map((key) => ({ key, offset: 5, chunks: [bytes(5, 1), bytes(6, 2)], version: 6 })));
    await store.command("ALTER TABLE ctpipe_cps.processor_checkpoint_chunks DELETE WHERE group_id = 'bad' AND partition = 1 AND seq = 1 SETTINGS mutations_sync = 1");
    await expect(db.loadCheckpoints(keys)).rejects.toMatchObject({ code: 'CHECKPOINT_INVALID', message: expect.stringMatching(/^the checkpoint of t:1 \(snapshot 5-[0-9a-f]{8}\) has 1 of its 2 chunks$/) });
    expect(hex(await db.loadCheckpoint(keys[0]!))?.offset).toBe(5);
  });
});

