/**
 * The only file that imports kafkajs, so that swapping the Kafka client changes this file alone.
 * Both sides get client-neutral interfaces: the collector a producer with ordering kept per
 * partition (one request in flight), the processor a consumer group member that hands over
 * fetched batches and commits offsets. Client configuration (brokers, TLS, SASL) comes from the
 * `kafka` section; credentials from env or files, never from logs; kafkajs logs go to pino.
 */
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { gzip, unzip } from 'node:zlib';
import kafkajs, { type Consumer, type KafkaConfig, type SASLOptions } from 'kafkajs';
import { CtpipeError, errorMessage } from './errors.js';

// kafkajs is CommonJS; CompressionCodecs is not visible as a named ESM export.
const { CompressionCodecs, CompressionTypes, Kafka, logLevel, Partitioners } = kafkajs;
import type { Logger } from './log.js';
import type { KafkaConfigSection } from './kafka-config.js';

export interface KafkaMessage {
  key: string;
  value: Buffer;
}

/** The slice of a producer the collector's publisher uses (injected; tests pass fakes). */
export interface ProducerLike {
  send(req: { topic: string; messages: KafkaMessage[] }): Promise<unknown>;
}

export function kafkaClientConfig(cfg: KafkaConfigSection, log: Logger, clientId: string): KafkaConfig {
  const kc: KafkaConfig = {
    clientId,
    brokers: cfg.brokers,
    connectionTimeout: cfg.connection_timeout_ms,
    requestTimeout: cfg.request_timeout_ms,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 2000 },
    logLevel: log.isLevelEnabled('debug') ? logLevel.DEBUG : logLevel.WARN,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      // kafkajs logs every failed connection attempt as an error; ctpipe reports outages itself
      // (rate-limited), so kafkajs's own lines stay at debug (--log-level debug shows them).
      log.debug({ kafka: entry.namespace, ...rest }, String(message));
    },
  };
  if (cfg.tls.enabled) {
    kc.ssl = {
      rejectUnauthorized: cfg.tls.reject_unauthorized,
      ca: cfg.tls.ca_file ? [readFileSync(cfg.tls.ca_file, 'utf8')] : undefined,
      cert: cfg.tls.cert_file ? readFileSync(cfg.tls.cert_file, 'utf8') : undefined,
      key: cfg.tls.key_file ? readFileSync(cfg.tls.key_file, 'utf8') : undefined,
    };
  }
  if (cfg.sasl.mechanism !== 'none') {
    const password = cfg.sasl.password_file ? readFileSync(cfg.sasl.password_file, 'utf8').trim() : (cfg.sasl.password ?? '');
    kc.sasl = { mechanism: cfg.sasl.mechanism, username: cfg.sasl.username ?? '', password } as SASLOptions;
  }
  return kc;
}

const gzipAsync = promisify(gzip);
const unzipAsync = promisify(unzip);

/** The largest output chunk a decompression allocates at once. */
const OUT_CHUNK_MAX = 16 << 20;

/** What the gzip codec does: its level (producers), and the most a record batch may decompress to (consumers). */
const gzipSettings = { level: 6, maxBytes: Infinity };

/**
 * Kafka's bytes per decompressed byte of each record batch decompressed here, by the memory the
 * decompressed batch is in: a fetched value (a slice of it) is then sized in Kafka's bytes, as
 * `process.fetch_min_bytes` counts them, not in its own (about five times more for ctpipe batches).
 */
const compression = new WeakMap<ArrayBufferLike, number>();

/** The Kafka bytes a fetched value stands for: its share of its compressed record batch, or its own length when not compressed. */
export function kafkaBytes(value: Buffer): number {
  const r = compression.get(value.buffer);
  return r === undefined ? value.length : Math.ceil(value.length * r);
}

/**
 * A record batch whose records could not be decompressed stands for its records as placeholders
 * (unreadBatch): values no ctpipe.v1.Batch can start with (0xff is a field of wire type 7).
 */
const UNREAD = Buffer.from('\xffctpipe-unread\n', 'latin1');

/** Why a fetched value is a placeholder for records that could not be read (too large, corrupt), or undefined. */
export function unreadBatch(value: Buffer): string | undefined {
  return value.length > UNREAD.length && value.subarray(0, UNREAD.length).equals(UNREAD) ? value.subarray(UNREAD.length).toString('utf8') : undefined;
}

/** Placeholder records kafkajs decodes in place of a batch's `count` records (Kafka's record v2 encoding). */
function placeholders(count: number, why: string): Buffer {
  const value = Buffer.concat([UNREAD, Buffer.from(why)]);
  const zz = (n: number) => (n << 1) ^ (n >> 31); // zigzag, as Kafka's varints are
  const varint = (n: number, out: number[]) => {
    let v = zz(n) >>> 0;
    while (v > 127) {
      out.push((v & 127) | 128);
      v >>>= 7;
    }
    out.push(v);
  };
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const body: number[] = [0, 0]; // attributes, timestamp delta 0
    varint(i, body); // offset delta: the records' own offsets
    body.push(1); // key: null (-1)
    varint(value.length, body);
    const tail = [0]; // no headers
    const head: number[] = [];
    varint(body.length + value.length + tail.length, head);
    parts.push(Buffer.from([...head, ...body]), value, Buffer.from(tail));
  }
  return Buffer.concat(parts);
}

/**
 * kafkajs decodes a compressed record batch by reading its record count (Int32), then handing the
 * rest to the codec: the count is the four bytes before what decompress() gets (kafkajs 2.2.4,
 * protocol/recordBatch/v0/decoder.js; the integration test with a gzip bomb pins it).
 */
function recordCount(compressed: Buffer): number {
  if (compressed.byteOffset < 4) return -1;
  return Buffer.from(compressed.buffer, compressed.byteOffset - 4, 4).readInt32BE(0);
}

/**
 * kafkajs compresses with zlib's default level (6), which made compression the publish path's
 * bottleneck (docs/PERFORMANCE.md). Same gzip format, configurable level, still on libuv's thread
 * pool so the event loop keeps encoding meanwhile. Decompression stops at `maxBytes`: a 0.49 MB
 * record batch expanded to 503 MB and drove a processor to 4.4 GB. A batch past it, or one that is
 * not gzip, comes out as placeholders carrying the reason, so the consumer dead-letters its records
 * and the partition goes on (an exception here would fail the fetch, and every fetch after it).
 */
function useGzip(): void {
  (CompressionCodecs as Record<number, () => unknown>)[CompressionTypes.GZIP] = () => ({
    compress: (encoder: { buffer: Buffer }) => gzipAsync(encoder.buffer, { level: gzipSettings.level }),
    decompress: async (buffer: Buffer) => {
      const max = gzipSettings.maxBytes;
      try {
        // zlib's output in one chunk of about the whole batch (ctpipe batches compress about 5x):
        // in its default 16 KiB chunks, each a callback and a copy on the event loop, a fetch cost
        // 2 to 4 times the inflate itself, most of it on the main thread (docs/PERFORMANCE.md)
        const chunkSize = Math.min(OUT_CHUNK_MAX, Math.max(64 << 10, buffer.length * 8));
        let out = await unzipAsync(buffer, Number.isFinite(max) ? { chunkSize, maxOutputLength: max } : { chunkSize });
        if (out.length > 0 && out.length < out.buffer.byteLength) {
          // part of a chunk: copied into a buffer of its own, so the values kafkajs slices from it
          // keep no slack alive (and are sized by it)
          const own = Buffer.allocUnsafeSlow(out.length);
          out.copy(own);
          out = own;
        }
        if (out.length > 0 && out.byteOffset === 0 && out.byteLength === out.buffer.byteLength) compression.set(out.buffer, buffer.length / out.length);
        return out;
      } catch (e) {
        const count = recordCount(buffer);
        if (count <= 0 || count > 1_000_000) throw e;
        const tooLarge = (e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
        const why = tooLarge
          ? `RECORD_TOO_LARGE: a Kafka record batch of ${count} record(s), ${buffer.length} bytes gzip, decompresses to more than ${max} bytes (process.max_batch_bytes); not read`
          : `RECORD_DECODE: a Kafka record batch of ${count} record(s), ${buffer.length} bytes, is not gzip: ${errorMessage(e)}`;
        return placeholders(count, why);
      }
    },
  });
}

export function useGzipLevel(level: number): void {
  gzipSettings.level = level;
  useGzip();
}

/** Consumers: the most a compressed record batch may decompress to. */
export function limitGzip(maxBytes: number): void {
  gzipSettings.maxBytes = maxBytes;
  useGzip();
}

export interface KafkaProducerHandle extends ProducerLike {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

export function createKafkaProducer(cfg: KafkaConfigSection, log: Logger, clientId = 'ctpipe-collector'): KafkaProducerHandle {
  const kafka = new Kafka(kafkaClientConfig(cfg, log, clientId));
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: true,
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 2000 },
  });
  const compression = cfg.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  if (cfg.compression === 'gzip') useGzipLevel(cfg.compression_level);
  let connected = false;
  return {
    async connect() {
      await producer.connect();
      connected = true;
    },
    async disconnect() {
      if (connected) await producer.disconnect();
    },
    async send(req) {
      if (!connected) {
        await producer.connect();
        connected = true;
      }
      await producer.send({ topic: req.topic, messages: req.messages, acks: -1, compression });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The processor's side: a consumer group member.

/** A record fetched from a partition: its offset, key and value. */
export interface FetchedMessage {
  offset: number;
  /** The record's key as text (collectors key by host), undefined when it has none. */
  key: string | undefined;
  value: Buffer;
  /** Its size in Kafka: its share of its record batch's compressed bytes (kafkaBytes). */
  bytes: number;
}

export interface FetchedBatch {
  partition: number;
  /** Offset of the partition's last record when fetched (high watermark - 1). */
  end: number;
  messages: FetchedMessage[];
}

export interface BatchControl {
  /** False once the member stops or loses the partition: stop work on the batch. */
  running(): boolean;
  /**
   * True once a heartbeat has heard that the group is rebalancing: finish the chunk in hand, keep
   * the rest for later and return, so this member rejoins at once (partitions that moved wait for
   * every member to rejoin). Unlike `running`, the partition is not lost: no write is abandoned.
   */
  rebalancing(): boolean;
  /** The fetch position may move past `offset` (records up to it are taken). */
  resolve(offset: number): void;
  /** A heartbeat (when one is due); a rebalance it hears of is not thrown but shows in `rebalancing`. */
  heartbeat(): Promise<void>;
}

export interface GroupOptions {
  groupId: string;
  topic: string;
  clientId: string;
  sessionTimeoutMs: number;
  /** A fetch waits for this many bytes, at most maxWaitMs. */
  minBytes: number;
  maxWaitMs: number;
  /** A compressed record batch decompresses to at most this many bytes; past it its records arrive as placeholders (unreadBatch). */
  maxBatchBytes?: number;
  /** Batches of this many partitions handled at once (each partition's still one at a time, in order); default 1. */
  concurrency?: number;
}

export interface GroupConsumer {
  /** Joins the group and hands each fetched batch to `onBatch`, one partition's batches in order. */
  run(onBatch: (b: FetchedBatch, c: BatchControl) => Promise<void>): Promise<void>;
  /** Commits `next`, the offset the partition's next owner starts at. */
  commit(partition: number, next: number): Promise<void>;
  /**
   * The next fetch of a partition starts at `next` (not at the committed offset, where a rejoin
   * would start it again): what this member already holds of a partition it keeps is not fetched twice.
   */
  seek(partition: number, next: number): void;
  /** Stops fetching the given partitions (all when none are given). */
  pause(partitions?: number[]): void;
  /** Each partition's last offset now (high watermark - 1), asked of the brokers. */
  endOffsets(): Promise<Map<number, number>>;
  disconnect(): Promise<void>;
  /** Partitions assigned to this member at each rebalance. */
  onAssigned(cb: (partitions: number[]) => void): void;
  /** The client failed; `restart` says whether it restarts itself. */
  onCrash(cb: (e: Error, restart: boolean) => void): void;
}

function fetched(offset: string, key: Buffer | null, v: Buffer | null): FetchedMessage {
  const value = v ?? Buffer.alloc(0);
  return { offset: Number(offset), key: key?.toString('utf8'), value, bytes: kafkaBytes(value) };
}

/** kafkajs's errors that mean "rejoin the group" (its own isRebalancing, which it does not export). */
const REBALANCE_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'ILLEGAL_GENERATION']);
export const isRebalance = (e: unknown): boolean =>
  typeof e === 'object' && e !== null && REBALANCE_ERRORS.has(String((e as { type?: unknown }).type));

/** How often a group member heartbeats: 1 s, or a third of a shorter session. */
export const heartbeatMs = (sessionTimeoutMs: number): number => Math.min(1000, Math.floor(sessionTimeoutMs / 3));

export async function createGroupConsumer(cfg: KafkaConfigSection, log: Logger, o: GroupOptions): Promise<GroupConsumer> {
  limitGzip(o.maxBatchBytes ?? Infinity);
  const kafka = new Kafka(kafkaClientConfig(cfg, log, o.clientId));
  // A member learns of a rebalance (another left or joined) only from its next heartbeat's answer,
  // so the interval bounds how long partitions that moved wait for their new owner: 1 s, not the
  // 3 s Kafka clients default to (docs/PERFORMANCE.md, the fleet's takeover).
  const consumer: Consumer = kafka.consumer({
    groupId: o.groupId, sessionTimeout: o.sessionTimeoutMs, heartbeatInterval: heartbeatMs(o.sessionTimeoutMs),
    maxBytesPerPartition: 16 << 20, minBytes: o.minBytes, maxWaitTimeInMs: o.maxWaitMs,
  });
  try {
    await consumer.connect();
  } catch (e) {
    throw new CtpipeError('KAFKA_UNAVAILABLE', `Kafka at ${cfg.brokers.join(',')} cannot be reached (${errorMessage(e)}). Check that the ` +
      'brokers run and are reachable from this host, and that kafka.brokers (--kafka-brokers, CTPIPE_KAFKA_BROKERS) and the TLS/SASL settings are right.');
  }
  await consumer.subscribe({ topic: o.topic, fromBeginning: true });
  const admin = kafka.admin();
  let adminUp: Promise<void> | undefined;
  return {
    async run(onBatch) {
      await consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: o.concurrency ?? 1,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          // A batch can take longer than a session (ClickHouse away): heartbeats keep the membership
          // alive. One that hears of a rebalance tells the batch to wrap up; kafkajs's own heartbeat
          // after the batch hears it again (a failed one is not counted as sent) and rejoins.
          let rebalancing = false;
          const beat = async () => {
            if (rebalancing) return;
            try {
              await heartbeat();
            } catch (e) {
              if (!isRebalance(e)) throw e;
              rebalancing = true;
            }
          };
          const hb = setInterval(() => void beat().catch(() => undefined), heartbeatMs(o.sessionTimeoutMs));
          try {
            await onBatch(
              { partition: batch.partition, end: Number(batch.highWatermark) - 1, messages: batch.messages.map((m) => fetched(m.offset, m.key, m.value)) },
              { running: () => isRunning() && !isStale(), rebalancing: () => rebalancing, resolve: (offset) => resolveOffset(String(offset)), heartbeat: beat },
            );
          } finally {
            clearInterval(hb);
          }
        },
      });
    },
    async commit(partition, next) {
      await consumer.commitOffsets([{ topic: o.topic, partition, offset: String(next) }]);
    },
    seek(partition, next) {
      consumer.seek({ topic: o.topic, partition, offset: String(next) });
    },
    pause(partitions) {
      consumer.pause([partitions ? { topic: o.topic, partitions } : { topic: o.topic }]);
    },
    async endOffsets() {
      await (adminUp ??= admin.connect().catch((e: unknown) => {
        adminUp = undefined;
        throw e;
      }));
      return new Map((await admin.fetchTopicOffsets(o.topic)).map((x) => [x.partition, Number(x.high) - 1]));
    },
    async disconnect() {
      await consumer.disconnect();
      if (adminUp) await admin.disconnect();
    },
    onAssigned(cb) {
      consumer.on(consumer.events.GROUP_JOIN, (e) => cb((e.payload.memberAssignment[o.topic] ?? []) as number[]));
    },
    onCrash(cb) {
      consumer.on(consumer.events.CRASH, (e) => cb(e.payload.error, e.payload.restart));
    },
  };
}
