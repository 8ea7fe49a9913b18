/**
 * `ctpipe process`: a Kafka consumer group member. Per assigned partition it keeps a pipeline
 * (lifecycle engine + statistics) and:
 *
 *   1. logs each batch's offset range in `processor_batches`, then inserts the batch's rows under
 *      tokens built from topic, partition and that range;
 *   2. every `checkpoint` interval stores the partition's state with its offset in
 *      `processor_checkpoints`, and only then commits that offset to Kafka.
 *
 * A processor that restarts, or takes over a partition, loads the checkpoint, resumes from the
 * committed offset, and cuts the replayed records along the logged ranges: the same rows under
 * the same tokens, which ClickHouse drops as duplicates. Rows are functions of event data only,
 * so the replay produces exactly the rows written before (effectively once, rollups included).
 * Records that cannot be decoded go to `dead_letters` with their coordinates.
 */
import { hostname } from 'node:os';
import kafkajs, { type Consumer, type EachBatchPayload, type KafkaMessage } from 'kafkajs';
import type { Registry } from 'prom-client';
import { Counter, Gauge } from 'prom-client';
import { kafkaClientConfig } from '../common/kafka.js';
import type { Logger } from '../common/log.js';
import { decodeBatch } from '../contract/proto/batch.js';
import type { CtpipeRecord } from '../contract/records.js';
import { CtpipeError, errorMessage } from '../common/errors.js';
import { loadCheckpoint, saveCheckpoint } from './clickhouse/checkpoints.js';
import { retrying } from './clickhouse/retry.js';
import type { Store } from './clickhouse/store.js';
import type { ProcessorConfig } from './config.js';
import { pipelineOptions } from './options.js';
import { Pipeline } from './pipeline.js';

const { Kafka } = kafkajs;

interface PartitionState {
  pipeline: Pipeline;
  /** Offset of the last record applied to the state (-1: none). */
  applied: number;
  /** Logged ranges beyond the checkpoint: replays cut along them. */
  ranges: { first: number; last: number }[];
  checkpointedAt: number;
  checkpointOffset: number;
  /** Fetched records not applied yet: a logged range's head, or small fetches being gathered. */
  carry: KafkaMessage[];
}

export interface ProcessorHandle {
  stop(): Promise<void>;
  readonly healthy: () => boolean;
  readonly partitions: () => number[];
}

export async function startProcessor(
  cfg: ProcessorConfig, store: Store, log: Logger, registry: Registry, checkpointMs = 10_000, onCrash?: (e: Error) => void,
): Promise<ProcessorHandle> {
  const db = cfg.clickhouse.database;
  const topic = cfg.kafka.topic;
  const group = cfg.process.group_id;
  const processorName = `${hostname()}:${process.pid}`; // processor_stats rows: one series per process
  const kafka = new Kafka(kafkaClientConfig(cfg.kafka, log, 'ctpipe-processor'));
  const consumer: Consumer = kafka.consumer({ groupId: group, sessionTimeout: cfg.process.session_timeout, heartbeatInterval: Math.min(3000, cfg.process.session_timeout / 3), maxBytesPerPartition: 16 << 20, minBytes: cfg.process.fetch_min_bytes, maxWaitTimeInMs: cfg.process.flush });
  const parts = new Map<number, PartitionState>();
  const deadLetters = new Counter({ name: 'ctpipe_processor_dead_letters_total', help: 'Kafka records that could not be decoded', registers: [registry] });
  const lag = new Gauge({ name: 'ctpipe_processor_lag_records', help: 'Kafka records behind the end of each partition', labelNames: ['partition'], registers: [registry] });
  let stopping = false;
  let storeDown = false;
  /** A store call retried while ClickHouse is away; the batch (and so the partition) waits. */
  const stored = <T>(what: string, fn: () => Promise<T>, running: () => boolean = () => true): Promise<T> =>
    retrying(fn, {
      shouldStop: () => stopping || !running(),
      onError: (e, attempt) => {
        if (attempt === 1) log.warn({ err: e.message, what }, 'ClickHouse call failed; pausing this partition and retrying');
        storeDown = true;
      },
    }).then((v) => {
      if (storeDown) log.info({ what }, 'ClickHouse answers again');
      storeDown = false;
      return v;
    });

  const newPipeline = () => new Pipeline(pipelineOptions(cfg, store, log, registry));

  async function load(partition: number, running: () => boolean): Promise<PartitionState> {
    const pipeline = newPipeline();
    const cp = await stored('load checkpoint', () => loadCheckpoint(store, { db, group, topic, partition }), running);
    let offset = -1;
    if (cp) {
      offset = cp.offset;
      pipeline.importState(cp.state);
    }
    const b = await stored('load batch ranges', () => store.query({
      query: `SELECT DISTINCT first_offset, last_offset FROM ${db}.processor_batches WHERE group_id = {g:String} AND topic = {t:String} AND partition = {p:UInt32} AND first_offset > {o:Int64} ORDER BY first_offset`,
      query_params: { g: group, t: topic, p: partition, o: offset }, format: 'JSONEachRow',
    }).then((x) => x.json()), running);
    const ranges = (b as { first_offset: string; last_offset: string }[]).map((x) => ({ first: Number(x.first_offset), last: Number(x.last_offset) }));
    log.info({ partition, checkpoint: offset, open: pipeline.engine.openCount, replayRanges: ranges.length }, 'partition assigned: state restored from its checkpoint');
    return { pipeline, applied: offset, ranges, checkpointedAt: Date.now(), checkpointOffset: offset, carry: [] };
  }

  async function checkpoint(partition: number, st: PartitionState, running: () => boolean): Promise<void> {
    if (st.applied <= st.checkpointOffset) return;
    await stored('checkpoint', () => saveCheckpoint(store, { db, group, topic, partition }, st.applied, st.pipeline.exportState()), running);
    try {
      await consumer.commitOffsets([{ topic, partition, offset: String(st.applied + 1) }]);
    } catch (e) {
      // The checkpoint is stored, so this is safe: the partition's next owner restores it and
      // skips the records up to its offset. (kafkajs reports a rebalance here as a fatal error.)
      log.warn({ partition, offset: st.applied, err: errorMessage(e) }, 'offset commit failed; the stored checkpoint covers it');
    }
    st.checkpointOffset = st.applied;
    st.checkpointedAt = Date.now();
    st.ranges = st.ranges.filter((x) => x.first > st.applied);
  }

  function decode(messages: KafkaMessage[], partition: number, st: PartitionState): CtpipeRecord[] {
    const out: CtpipeRecord[] = [];
    for (const m of messages) {
      try {
        out.push(...decodeBatch(m.value ?? Buffer.alloc(0)).records);
      } catch (e) {
        deadLetters.inc();
        st.pipeline.deadLetter({ topic, partition, offset: m.offset, reason: errorMessage(e), payload_hex: (m.value ?? Buffer.alloc(0)).subarray(0, 4096).toString('hex') });
        log.warn({ partition, offset: m.offset, err: errorMessage(e) }, 'dead letter: a record that cannot be decoded');
      }
    }
    return out;
  }

  let inFlight = 0;
  let drained: (() => void) | undefined;

  async function eachBatch(p: EachBatchPayload): Promise<void> {
    inFlight++;
    try {
      await handleBatch(p);
    } finally {
      if (--inFlight === 0) drained?.();
    }
  }

  async function handleBatch(p: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = p;
    const partition = batch.partition;
    const running = () => isRunning() && !isStale();
    const hb = setInterval(() => void heartbeat().catch(() => undefined), 2000);
    try {
      let st = parts.get(partition);
      if (!st) {
        st = await load(partition, running);
        parts.set(partition, st);
      }
      // A fetch may hold only part of the partition: records already applied (a replay from an
      // older commit) and the head of a logged range are skipped past, or carried to the next
      // batch, so the fetch position always moves on. Commits follow `applied`, not this.
      const carried = st.carry.length ? Number(st.carry[st.carry.length - 1]!.offset) : st.applied;
      let msgs = [...st.carry, ...batch.messages.filter((m) => Number(m.offset) > Math.max(carried, st!.applied))];
      st.carry = [];
      const fetchedTo = batch.messages.length ? batch.messages[batch.messages.length - 1]!.offset : undefined;
      // Behind the partition's end, small fetches are gathered into one batch: each insert has a
      // fixed cost, so a lagging processor catches up with fewer, larger ones. At the end of the
      // partition what is there goes now, so freshness does not wait on a timer.
      const behind = fetchedTo !== undefined && Number(batch.highWatermark) - 1 > Number(fetchedTo);
      if (behind && msgs.length && !st.ranges.some((x) => x.first === Number(msgs[0]!.offset)) &&
        msgs.reduce((n, m) => n + (m.value?.length ?? 0), 0) < cfg.process.fetch_min_bytes) {
        st.carry = msgs;
        resolveOffset(fetchedTo);
        return;
      }
      while (msgs.length && isRunning() && !isStale() && !stopping) {
        // Replays follow the logged cuts; new input is cut where the fetch ended.
        const logged = st.ranges.find((x) => x.first === Number(msgs[0]!.offset));
        let chunk = msgs;
        if (logged) {
          chunk = msgs.filter((m) => Number(m.offset) <= logged.last);
          if (Number(chunk[chunk.length - 1]!.offset) < logged.last) {
            st.carry = msgs; // the rest of the range comes in a later fetch
            break;
          }
        }
        const first = Number(chunk[0]!.offset);
        const last = Number(chunk[chunk.length - 1]!.offset);
        if (!logged) {
          await stored('log batch range', () => store.insert({ table: `${db}.processor_batches`, values: [{ group_id: group, topic, partition, first_offset: first, last_offset: last }], format: 'JSONEachRow' }), running);
        }
        st.pipeline.process(decode(chunk, partition, st));
        st.pipeline.noteActivity(processorName, partition, Math.max(0, Number(batch.highWatermark) - 1 - last), Date.now(), checkpointMs);
        const ok = await st.pipeline.write(`${topic}:${partition}:${first}-${last}`, () => stopping || !running());
        if (!ok) {
          // Gave up (stopping, or the partition is moving): the state has records whose rows are
          // not stored, so drop it; whoever owns the partition next restores the checkpoint.
          parts.delete(partition);
          return;
        }
        st.applied = last;
        resolveOffset(String(last));
        log.debug({ partition, first, last, open: st.pipeline.engine.openCount }, 'batch stored');
        msgs = msgs.slice(chunk.length);
        await heartbeat();
      }
      if (msgs.length && !st.carry.length) st.carry = msgs; // stopped early: keep what was fetched
      if (fetchedTo !== undefined) resolveOffset(fetchedTo);
      lag.set({ partition: String(partition) }, Math.max(0, Number(batch.highWatermark) - 1 - st.applied));
      if (Date.now() - st.checkpointedAt >= checkpointMs) await checkpoint(partition, st, running);
    } finally {
      clearInterval(hb);
    }
  }

  let crashed: Error | undefined;
  consumer.on(consumer.events.CRASH, (e) => {
    log.error({ err: String(e.payload.error), restart: e.payload.restart }, 'the Kafka consumer crashed');
    // kafkajs restarts the consumer itself when it can; when it cannot, report unhealthy and let
    // the caller exit rather than idle as a dead group member.
    if (!e.payload.restart) {
      crashed = e.payload.error;
      onCrash?.(e.payload.error);
    }
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const mine = new Set((e.payload.memberAssignment[topic] ?? []) as number[]);
    for (const p of [...parts.keys()]) if (!mine.has(p)) parts.delete(p); // its new owner restores it
    log.info({ partitions: [...mine] }, 'joined the consumer group');
  });
  try {
    await consumer.connect();
  } catch (e) {
    throw new CtpipeError('KAFKA_UNAVAILABLE', `Kafka at ${cfg.kafka.brokers.join(',')} cannot be reached (${errorMessage(e)}). Check that the ` +
      'brokers run and are reachable from this host, and that kafka.brokers (--kafka-brokers, CTPIPE_KAFKA_BROKERS) and the TLS/SASL settings are right.');
  }
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch });

  return {
    healthy: () => !crashed && !storeDown && [...parts.values()].every((s) => s.pipeline.storeUp),
    partitions: () => [...parts.keys()],
    async stop() {
      // Pause, let the batch in hand finish, then checkpoint and commit while still a member
      // (kafkajs cannot commit once stopped), then leave the group.
      stopping = true;
      consumer.pause([{ topic }]);
      if (inFlight > 0) await new Promise<void>((r) => (drained = r));
      for (const [partition, st] of parts) {
        await checkpoint(partition, st, () => false).catch((e: unknown) => log.warn({ partition, err: errorMessage(e) }, 'final checkpoint failed; the next owner replays from the previous one'));
      }
      await consumer.disconnect();
    },
  };
}
