/**
 * `ctpipe process`: a Kafka consumer group member. Per assigned partition it keeps a pipeline
 * (lifecycle engine, statistics, detectors) and a cursor (cursor.ts), and:
 *
 *   1. logs each chunk's offset range (Store.logRange), then writes the chunk's rows under tokens
 *      built from topic, partition and that range;
 *   2. every `checkpoint` interval stores the partition's state with its offset, and only then
 *      commits that offset to Kafka.
 *
 * A processor that restarts, or takes over a partition, loads the checkpoint, resumes from the
 * committed offset, and the cursor cuts the replayed records along the logged ranges: the same
 * rows under the same tokens, which ClickHouse drops as duplicates. Rows are functions of event
 * data only, so the replay produces exactly the rows written before (effectively once, rollups
 * included). Records that cannot be decoded go to `dead_letters` with their coordinates; rows
 * ClickHouse refuses too (writer.ts). A statement the database cannot run stops that partition,
 * loudly, while the others go on.
 */
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import { errorMessage, isCtpipeError } from '../common/errors.js';
import { createGroupConsumer, unreadBatch, type BatchControl, type FetchedBatch, type FetchedMessage } from '../common/kafka.js';
import type { Logger } from '../common/log.js';
import { batchRecordCount, decodeBatch } from '../contract/proto/batch.js';
import type { ErrorCode } from '../common/errors.js';
import { restoreState, saveState, type RestoreTimes } from './checkpoint.js';
import { TakeoverPriority } from './takeover.js';
import { retrying } from './clickhouse/retry.js';
import type { ProcessorConfig } from './config.js';
import { PartitionCursor, type Chunk } from './cursor.js';
import { hostMatcher } from './hosts.js';
import { OpenBudget } from './lifecycle/engine.js';
import { batchLimits, pipelineOptions } from './options.js';
import { Pipeline, type RowNames } from './pipeline.js';
import type { InputKey, Store } from './store.js';

type Message = FetchedMessage;

interface PartitionState {
  pipeline: Pipeline;
  cursor: PartitionCursor<Message>;
  /**
   * The last chunk's insert while the next chunk goes through the engine: true once its rows are
   * stored (the chunk done), false when it gave up or failed (the partition then dropped or stopped).
   */
  writing?: Promise<boolean>;
}

export interface ProcessorHandle {
  stop(): Promise<void>;
  readonly healthy: () => boolean;
  /** Health with what is wrong: stopped partitions with their reason, ClickHouse down, lag. */
  readonly health: () => { ok: boolean; detail: Record<string, unknown> };
  readonly partitions: () => number[];
}

export async function startProcessor(
  cfg: ProcessorConfig, store: Store, log: Logger, registry: Registry, checkpointMs = 10_000, onCrash?: (e: Error) => void, names?: RowNames,
): Promise<ProcessorHandle> {
  const topic = cfg.kafka.topic;
  const group = cfg.process.group_id;
  const processorName = `${hostname()}:${process.pid}`; // processor_stats rows: one series per process
  const key = (partition: number): InputKey => ({ group, topic, partition });
  const consumer = await createGroupConsumer(cfg.kafka, log, {
    groupId: group, topic, clientId: 'ctpipe-processor', sessionTimeoutMs: cfg.process.session_timeout,
    minBytes: cfg.process.fetch_min_bytes, maxWaitMs: cfg.process.flush, maxBatchBytes: cfg.process.max_batch_bytes,
    concurrency: cfg.process.partitions_concurrently,
  });
  const limits = batchLimits(cfg.process);
  const accepted = hostMatcher(cfg.process.hosts);
  const parts = new Map<number, PartitionState>();
  /** Partitions stopped by a failure the store cannot mend, with the reason. */
  const stopped = new Map<number, string>();
  /** A stopped partition's last applied offset: its lag keeps growing from there. */
  const stoppedAt = new Map<number, number>();
  const deadLetters = new Counter({
    name: 'ctpipe_processor_dead_letters_total', labelNames: ['reason'], registers: [registry],
    help: 'Kafka records (or records of a batch) sent to dead_letters, by reason: RECORD_DECODE (not a batch), RECORD_TOO_LARGE (past process.max_batch_*), RECORD_INVALID (breaks the contract), RECORD_FORGED (host not its key, or not in process.hosts)',
  });
  for (const reason of ['RECORD_DECODE', 'RECORD_TOO_LARGE', 'RECORD_INVALID', 'RECORD_FORGED']) deadLetters.inc({ reason }, 0);
  const lag = new Gauge({ name: 'ctpipe_processor_lag_records', help: 'Kafka records behind the end of each partition', labelNames: ['partition'], registers: [registry] });
  const stoppedGauge = new Gauge({ name: 'ctpipe_processor_partition_stopped', help: '1 for a partition stopped by a ClickHouse failure retrying cannot mend (see the log)', labelNames: ['partition'], registers: [registry] });
  let stopping = false;
  let storeDown = false;
  /** Partitions assigned to this member, and per partition the last offset applied and the end seen. */
  let assigned: number[] = [];
  const lags = new Map<number, number>();

  /** A store call retried while ClickHouse is away; the batch (and so the partition) waits. */
  const stored = <T>(what: string, fn: () => Promise<T>, running: () => boolean = () => true): Promise<T> =>
    retrying(fn, {
      shouldStop: () => stopping || !running(),
      onError: (e, attempt, failure) => {
        if (failure !== 'transient') return;
        if (attempt === 1) log.warn({ err: e.message, what }, 'ClickHouse call failed; pausing this partition and retrying');
        storeDown = true;
      },
    }).then((v) => {
      if (storeDown) log.info({ what }, 'ClickHouse answers again');
      storeDown = false;
      return v;
    });

  // one bound on open flows for all the partitions of this processor
  const budget = new OpenBudget(cfg.process.max_open_flows);
  const newPipeline = () => new Pipeline(pipelineOptions(cfg, store, log, registry, budget, names));

  /** Forgets a partition's state (its flows leave the budget); its next owner restores the checkpoint. */
  function drop(partition: number): void {
    parts.get(partition)?.pipeline.dispose();
    parts.delete(partition);
  }

  // Inserts of about process.insert_rows rows, as `ctpipe run` makes them: lab-shaped flows make a
  // row every 8 records, and chunks of 100,000 records made inserts of 12,500 rows, whose parts and
  // merges cost more than the rows (docs/PERFORMANCE.md). A chunk is cut at the records that make
  // that many rows at the partition's rows per record so far (at most process.insert_records), and
  // split where its rows reach it should the records make more.
  const made = new Map<number, { rows: number; records: number }>();
  const chunkRecords = (partition: number) => {
    const m = made.get(partition);
    const perRecord = m?.records ? m.rows / m.records : 1;
    return perRecord > 0 ? Math.min(cfg.process.insert_records, Math.ceil(cfg.process.insert_rows / perRecord)) : cfg.process.insert_records;
  };
  const newCursor = (partition: number) => new PartitionCursor<Message>({
    input: `${topic}:${partition}`, position: (m) => m.offset, size: (m) => batchRecordCount(m.value), checkpointMs, minSize: () => chunkRecords(partition),
  }, Date.now());

  /**
   * Restores partitions from their checkpoints: the checkpoints of all of them in one read and
   * their logged ranges in another (a takeover's cost is a few statements, not a few per
   * partition), then each state decoded, all at once. Should the joint read fail (one partition's
   * checkpoint is invalid), each partition is read on its own, so only that one fails.
   */
  function loadAll(partitions: readonly number[], running: () => boolean): Promise<PartitionState>[] {
    const t0 = Date.now();
    const keys = partitions.map(key);
    const read = (async () => {
      const cps = await stored('load checkpoints', () => store.loadCheckpoints(keys), running);
      const ranges = await stored('load batch ranges', () => store.rangesAfter(keys.map((k, i) => ({ key: k, after: cps[i]?.offset ?? -1 }))), running);
      return { cps, ranges, readMs: Date.now() - t0 };
    })();
    return partitions.map((partition, i) => read.then(async ({ cps, ranges, readMs }) => {
      const pipeline = newPipeline();
      const cursor = newCursor(partition);
      const offset = cps[i]?.offset ?? -1;
      let times: RestoreTimes | undefined;
      try {
        if (cps[i]) times = await restoreState(pipeline, cps[i].chunks);
      } catch (e) {
        pipeline.dispose();
        throw e;
      }
      cursor.restore(offset, ranges[i]!, Date.now());
      log.info({ partition, checkpoint: offset, open: pipeline.engine.openCount, restoreMs: Date.now() - t0, readMs, ...times, together: partitions.length, replayRanges: ranges[i]!.length },
        'partition assigned: state restored from its checkpoint');
      return { pipeline, cursor };
    }, (e: unknown) => {
      if (partitions.length > 1) return loadAll([partition], running)[0]!;
      throw e;
    }));
  }

  /**
   * Stores the states of partitions in one store call (a member's stop saves them together: their
   * next owners wait for it), then commits each offset. The snapshots are made one after another
   * and the store takes each one's chunks as soon as it is made, so storing one overlaps making the
   * next (all made first and then all stored took their sum); the checkpoint rows go last.
   */
  async function checkpoint(list: readonly (readonly [number, PartitionState])[], running: () => boolean): Promise<{ snapshotMs: number; storeMs: number }> {
    const t0 = Date.now();
    let t1 = t0;
    let prev: Promise<unknown> = Promise.resolve();
    const offsets = list.map(([, st]) => st.cursor.applied);
    const saves = list.map(([partition, st], i) => {
      const offset = offsets[i]!;
      const made = prev.then(async () => {
        const chunks = await saveState(st.pipeline);
        t1 = Date.now();
        return { key: key(partition), offset, chunks, version: offset + 1 };
      });
      made.catch(() => undefined); // awaited by the store in turn; a later one may fail first
      prev = made;
      return made;
    });
    await stored('checkpoint', () => store.saveCheckpoints(saves), running);
    const t2 = Date.now();
    const took = t2 - t0;
    await Promise.all(list.map(async ([partition, st], i) => {
      const offset = offsets[i]!;
      const next = st.cursor.checkpointed(offset, Date.now(), took);
      try {
        await consumer.commit(partition, next);
      } catch (e) {
        // The checkpoint is stored, so this is safe: the partition's next owner restores it and
        // skips the records up to its offset. (kafkajs reports a rebalance here as a fatal error.)
        log.warn({ partition, offset, err: errorMessage(e) }, 'offset commit failed; the stored checkpoint covers it');
      }
    }));
    return { snapshotMs: t1 - t0, storeMs: t2 - t1 };
  }

  // Partitions just taken over (their state restored, their first batch the records of the pause)
  // go first: the kept ones' periodic checkpoints wait for them (takeover.ts)
  const takingOver = new TakeoverPriority(checkpointMs);

  /** Logged dead letters, so a flood of them is summed up rather than logged line by line. */
  let lettersLogged = 0;

  function letter(st: PartitionState, partition: number, offset: number, code: ErrorCode, reason: string, payload: Buffer): void {
    deadLetters.inc({ reason: code });
    st.pipeline.deadLetter({ topic, partition, offset: String(offset), reason: `${code}: ${reason}`, payload_hex: payload.subarray(0, 4096).toString('hex') });
    if (lettersLogged++ < 20 || lettersLogged % 1000 === 0) log.warn({ partition, offset, code, reason, letters: lettersLogged }, 'dead letter: a record that is not accepted');
  }

  /**
   * Applies the records of fetched messages, one message (one Batch, about 1,000 records) at a
   * time: its records go through the engine while they are young, rather than a whole chunk's
   * (up to a fetch: hundreds of thousands) decoded first and held until the last was decoded, which
   * outlived the young generation and was copied and promoted. The engine's pass over the open flows
   * (tick) runs once per chunk, as before. What is not accepted goes to dead_letters with its
   * reason: records that could not be read (placeholders for a record batch past
   * process.max_batch_bytes once decompressed, or not gzip), batches that do not decode or exceed the
   * bounds, batches whose host is not their Kafka key or not in process.hosts, and records that
   * break the contract (the rest of their batch is kept). Returns how many messages it took: all,
   * or (`maxRows`) those up to the one whose rows reached that many.
   */
  function apply(messages: readonly Message[], partition: number, st: PartitionState, maxRows = Infinity): number {
    const rows0 = st.pipeline.pendingRows;
    let records = 0;
    let n = 0;
    for (const m of messages) {
      if (n > 0 && st.pipeline.pendingRows - rows0 >= maxRows) break;
      n++;
      const unread = unreadBatch(m.value);
      if (unread !== undefined) {
        const code = unread.startsWith('RECORD_TOO_LARGE: ') ? 'RECORD_TOO_LARGE' : 'RECORD_DECODE';
        letter(st, partition, m.offset, code, unread.slice(code.length + 2), Buffer.alloc(0));
        continue;
      }
      let b: ReturnType<typeof decodeBatch>;
      try {
        b = decodeBatch(m.value, limits);
      } catch (e) {
        letter(st, partition, m.offset, isCtpipeError(e) ? e.code : 'RECORD_DECODE', errorMessage(e), m.value);
        continue;
      }
      if (b.host !== m.key) {
        letter(st, partition, m.offset, 'RECORD_FORGED', `a batch of host ${JSON.stringify(b.host)} under the Kafka key ${m.key === undefined ? '(none)' : JSON.stringify(m.key.slice(0, 300))}: collectors key their records by host, so one host's records do not pass for another's`, m.value);
        continue;
      }
      if (!accepted(b.host)) {
        letter(st, partition, m.offset, 'RECORD_FORGED', `host ${JSON.stringify(b.host)} is not one process.hosts accepts`, m.value);
        continue;
      }
      for (const r of b.rejected) letter(st, partition, m.offset, 'RECORD_INVALID', `record seq ${r.seq} (number ${r.index} of the batch): ${r.reason}`, r.bytes);
      st.pipeline.process(b.records, false);
      records += b.records.length;
    }
    st.pipeline.tick();
    const m = made.get(partition) ?? { rows: 0, records: 0 };
    made.set(partition, { rows: m.rows + st.pipeline.pendingRows - rows0, records: m.records + records });
    return n;
  }

  /** What a failure of a partition's batch or insert does: the partition stops, or is dropped (the next owner restores the checkpoint). */
  function failed(partition: number, e: unknown): void {
    if (isCtpipeError(e, 'STORE_SCHEMA') || isCtpipeError(e, 'STORE_ROWS_REFUSED')) stopPartition(partition, e);
    else if (isCtpipeError(e, 'STORE_UNAVAILABLE')) drop(partition);
    else throw e;
  }

  /** A failure the store cannot mend: this partition stops (its state dropped), the others go on. */
  function stopPartition(partition: number, e: unknown): void {
    stoppedAt.set(partition, parts.get(partition)?.cursor.applied ?? -1);
    drop(partition);
    stopped.set(partition, errorMessage(e));
    stoppedGauge.set({ partition: String(partition) }, 1);
    consumer.pause([partition]);
    log.error({ partition, err: errorMessage(e) },
      'ClickHouse cannot run a statement this partition needs (a missing table or column, or no permission); the partition is stopped. ' +
      'Fix the database (ctpipe migrate, or the user\'s grants) and restart the processor: it resumes from the last checkpoint, nothing is lost');
  }

  let inFlight = 0;
  let drained: (() => void) | undefined;

  async function onBatch(b: FetchedBatch, c: BatchControl): Promise<void> {
    inFlight++;
    try {
      await handleBatch(b, c);
    } catch (e) {
      failed(b.partition, e);
    } finally {
      if (--inFlight === 0) drained?.();
    }
  }

  /**
   * Starts inserting the rows of `ch` (applied): the engine goes on with the next chunk meanwhile, as
   * `ctpipe run`'s does. The chunk is done once they are stored; the next chunk's range is logged
   * only after that (a logged successor tells a replay that a range's rows are stored).
   */
  function startWrite(partition: number, st: PartitionState, ch: Chunk<Message>, end: number): void {
    const write = st.pipeline.write(ch.token, { origin: { input: topic, partition, offset: ch.first }, shouldStop: () => stopping || parts.get(partition) !== st });
    st.writing = write.then((ok) => {
      // Gave up (stopping, or the partition is moving): the state has records whose rows are not
      // stored, so drop it; whoever owns the partition next restores the checkpoint.
      if (!ok) {
        if (parts.get(partition) === st) drop(partition);
        return false;
      }
      finished(partition, st, ch, end);
      return true;
    }, (e: unknown) => {
      if (parts.get(partition) !== st) return false;
      try {
        failed(partition, e);
      } catch (unknown) {
        // not a store failure: thrown from this partition's next batch, as when the insert was awaited there
        log.error({ partition, err: errorMessage(unknown) }, 'inserting a chunk\'s rows failed');
        throw unknown;
      }
      return false;
    });
    st.writing.catch(() => undefined); // awaited by the partition's next batch, or by the stop
  }

  function finished(partition: number, st: PartitionState, ch: Chunk<Message>, end: number): void {
    st.cursor.done(ch);
    takingOver.stored(partition);
    setLag(partition, st.cursor.lag(end));
    log.debug({ partition, first: ch.first, last: ch.last, open: st.pipeline.engine.openCount, ...(ch.log ? {} : { replay: ch.stored ? 'not resent' : 'resent' }) }, 'batch stored');
  }

  /** Waits for the partition's insert in flight: false when it gave up or failed (the state is gone). */
  async function settled(st: PartitionState): Promise<boolean> {
    const w = st.writing;
    st.writing = undefined;
    return w === undefined || w;
  }

  async function handleBatch(b: FetchedBatch, c: BatchControl): Promise<void> {
    const partition = b.partition;
    if (stopped.has(partition)) return;
    const running = () => c.running() && !stopping;
    let st = parts.get(partition);
    if (!st) {
      const early = loading.get(partition);
      loading.delete(partition);
      st = await (early ?? loadAll([partition], running)[0]!);
      parts.set(partition, st);
    }
    st.cursor.add(b.messages);
    const fetchedTo = b.messages.at(-1)?.offset;
    // Behind the partition's end by insert_rows records or more (an insert's worth at a row a
    // record, the least it can be), fetches are gathered into chunks of about process.insert_rows
    // rows, as `ctpipe run` inserts: each insert (flows, the views it feeds, the logged range) has
    // a fixed cost in ClickHouse and makes parts to merge, so a lagging processor catches up with
    // fewer, larger ones; what is left at the end goes in one. Less behind, the records that would
    // fill a chunk are not in Kafka yet, and waiting for them would cost freshness (2 s for
    // 100,000 at 50,000 events/s; flushing every fetch instead made more inserts than the
    // processor kept up with): fetches are gathered up to process.fetch_min_bytes of Kafka data.
    // At the end of the partition what is there goes now. The Kafka records past this fetch are
    // counted at the pending ones' mean.
    const waiting = st.cursor.waiting;
    const waitingSize = st.cursor.waitingSize;
    const atEnd = fetchedTo === undefined || fetchedTo >= b.end;
    const ahead = atEnd ? 0 : (b.end - fetchedTo) * (waiting ? waitingSize / waiting : 1);
    const far = waitingSize + ahead >= cfg.process.insert_rows;
    const chunks = st.cursor.take(atEnd || (!far && st.cursor.waitingSum((m) => m.bytes) >= cfg.process.fetch_min_bytes));
    for (let i = 0; i < chunks.length; i++) {
      // stopped early (stopping, the partition lost, or a rebalance to rejoin promptly): the rest
      // is kept for this member's next fetch, or forgotten with the partition if it moves
      if (!running() || c.rebalancing()) {
        st.cursor.keep(chunks.slice(i));
        break;
      }
      let ch = chunks[i]!;
      if (parts.get(partition) !== st) return; // the insert in flight failed: the state is gone
      // through the engine while the previous chunk's rows are inserted, then its range logged
      // once they are stored; a new chunk ends where its rows reach an insert's worth
      const took = apply(ch.records, partition, st, ch.log ? cfg.process.insert_rows : Infinity);
      if (took < ch.records.length) {
        const [head, rest] = st.cursor.split(ch, took);
        chunks.splice(i, 1, head, rest);
        ch = head;
      }
      if (!(await settled(st))) return;
      if (ch.log) await stored('log batch range', () => store.logRange(key(partition), ch), running);
      // a replayed range whose successor was logged: its rows are stored (the successor was logged
      // after they were), so the state is rebuilt and the rows, the same ones, are not sent again
      // (its activity goes into the next processor_stats row written)
      if (!ch.stored) st.pipeline.noteActivity(processorName, partition, Math.max(0, b.end - ch.last), Date.now(), checkpointMs);
      if (ch.stored) {
        st.pipeline.takeRows();
        finished(partition, st, ch, b.end);
      } else startWrite(partition, st, ch, b.end);
      c.resolve(ch.last);
      await c.heartbeat();
    }
    // a rebalance or a stop: the insert in flight ends before the member rejoins or leaves
    if ((!running() || c.rebalancing()) && !(await settled(st))) return;
    // Kept records are in memory: the fetch position moves on (commits follow `applied`, not this)
    if (fetchedTo !== undefined) c.resolve(fetchedTo);
    if (!st.writing) setLag(partition, st.cursor.lag(b.end)); // else set once its rows are stored
    // in a rebalance the checkpoint waits for the next batch: the group waits for this member.
    // The state holds the records whose insert is in flight: a checkpoint waits for it.
    if (st.writing && st.cursor.due(Date.now(), true) && !c.rebalancing() && !(await settled(st))) return;
    if (st.cursor.due(Date.now()) && !c.rebalancing() && !takingOver.defers(partition, Date.now())) await checkpoint([[partition, st]], running);
  }

  function setLag(partition: number, n: number): void {
    lags.set(partition, n);
    lag.set({ partition: String(partition) }, n);
  }

  // A partition waiting on ClickHouse, or stopped, fetches nothing, so its lag is asked of the
  // brokers too: the metric and /healthz keep telling how far behind it falls, and so do the
  // processor_stats rows of one that processes slowly (written with its next rows, at their time).
  const lagTimer = setInterval(() => {
    consumer.endOffsets().then((ends) => {
      for (const p of assigned) {
        const end = ends.get(p);
        const st = parts.get(p);
        if (end !== undefined && st) {
          const behind = st.cursor.lag(end);
          setLag(p, behind);
          st.pipeline.noteActivity(processorName, p, behind, Date.now(), checkpointMs);
        } else if (end !== undefined && stopped.has(p)) setLag(p, Math.max(0, end - (stoppedAt.get(p) ?? -1)));
      }
    }, (e: unknown) => log.debug({ err: errorMessage(e) }, 'cannot read the partitions\' end offsets'));
  }, Math.min(checkpointMs, 5000));
  lagTimer.unref();

  let crashed: Error | undefined;
  consumer.onCrash((e, restart) => {
    log.error({ err: String(e), restart }, 'the Kafka consumer crashed');
    // kafkajs restarts the consumer itself when it can; when it cannot, report unhealthy and let
    // the caller exit rather than idle as a dead group member.
    if (!restart) {
      crashed = e;
      onCrash?.(e);
    }
  });
  /**
   * Checkpoints restored as soon as their partitions are assigned, all at once (loadAll), rather
   * than each at its partition's first batch, one after another behind the member's other batches:
   * what a rebalance hands over waits for one joint read and the slowest decode. Taken by the first batch.
   */
  const loading = new Map<number, Promise<PartitionState>>();
  function restoreEarly(partitions: readonly number[]): void {
    const todo = partitions.filter((p) => !parts.has(p) && !loading.has(p) && !stopped.has(p));
    if (todo.length === 0) return;
    const early = loadAll(todo, () => !stopping && todo.some((p) => assigned.includes(p)));
    todo.forEach((p, i) => {
      early[i]!.catch(() => undefined); // the batch that takes it reports a failure
      loading.set(p, early[i]!);
    });
  }

  consumer.onAssigned((partitions) => {
    assigned = partitions;
    takingOver.assigned(partitions.filter((p) => !parts.has(p) && !stopped.has(p)), Date.now());
    const mine = new Set(partitions);
    for (const p of [...parts.keys()]) if (!mine.has(p)) drop(p); // its new owner restores it
    for (const [p, early] of [...loading]) {
      if (mine.has(p)) continue;
      loading.delete(p);
      void early.then((st) => st.pipeline.dispose(), () => undefined);
    }
    // A rejoin starts every partition's fetch at its committed offset, up to a checkpoint interval
    // back: the partitions this member keeps resume after what their cursors already hold.
    for (const [p, st] of parts) consumer.seek(p, st.cursor.received + 1);
    log.info({ partitions }, 'joined the consumer group');
    restoreEarly(partitions);
  });
  await consumer.run(onBatch);

  const healthy = () => !crashed && !storeDown && stopped.size === 0 && [...parts.values()].every((s) => s.pipeline.storeUp);
  return {
    healthy,
    health: () => ({
      ok: healthy(),
      detail: {
        partitions: [...parts.keys()], store_up: !storeDown && [...parts.values()].every((s) => s.pipeline.storeUp),
        lag: Object.fromEntries(lags), stopped: Object.fromEntries(stopped), ...(crashed ? { crashed: crashed.message } : {}),
      },
    }),
    partitions: () => [...parts.keys()],
    async stop() {
      // Pause, let the batch in hand finish, then checkpoint and commit while still a member
      // (kafkajs cannot commit once stopped), then leave the group.
      // The partitions' next owners wait for this member to leave, so the final checkpoints go
      // together rather than one after another.
      stopping = true;
      const t0 = Date.now();
      clearInterval(lagTimer);
      consumer.pause();
      if (inFlight > 0) await new Promise<void>((r) => (drained = r));
      await Promise.all([...parts.values()].map((st) => settled(st).catch(() => false))); // the inserts in flight, so the state matches what is stored
      const t1 = Date.now();
      const due = [...parts].filter(([, st]) => st.cursor.due(Infinity));
      const took = await checkpoint(due, () => false)
        .catch((e: unknown) => log.warn({ partitions: due.map(([p]) => p), err: errorMessage(e) }, 'final checkpoints failed; the next owners replay from the previous ones'));
      const t2 = Date.now();
      await consumer.disconnect();
      log.info({ batchMs: t1 - t0, checkpoints: due.length, checkpointMs: t2 - t1, ...took, leaveMs: Date.now() - t2 }, 'stopped: final checkpoints stored, left the group');
    },
  };
}
