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

/**
 * kafkajs compresses with zlib's default level (6), which made compression the publish path's
 * bottleneck (docs/PERFORMANCE.md). Same gzip format, configurable level, still on libuv's thread
 * pool so the event loop keeps encoding meanwhile.
 */
export function useGzipLevel(level: number): void {
  (CompressionCodecs as Record<number, () => unknown>)[CompressionTypes.GZIP] = () => ({
    compress: (encoder: { buffer: Buffer }) => gzipAsync(encoder.buffer, { level }),
    decompress: (buffer: Buffer) => unzipAsync(buffer),
  });
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

/** A record fetched from a partition: its offset and its value. */
export interface FetchedMessage {
  offset: number;
  value: Buffer;
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
  /** The fetch position may move past `offset` (records up to it are taken). */
  resolve(offset: number): void;
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
}

export interface GroupConsumer {
  /** Joins the group and hands each fetched batch to `onBatch`, one partition's batches in order. */
  run(onBatch: (b: FetchedBatch, c: BatchControl) => Promise<void>): Promise<void>;
  /** Commits `next`, the offset the partition's next owner starts at. */
  commit(partition: number, next: number): Promise<void>;
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

/** How often a group member heartbeats: 1 s, or a third of a shorter session. */
export const heartbeatMs = (sessionTimeoutMs: number): number => Math.min(1000, Math.floor(sessionTimeoutMs / 3));

export async function createGroupConsumer(cfg: KafkaConfigSection, log: Logger, o: GroupOptions): Promise<GroupConsumer> {
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
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          // a batch can take longer than a session (ClickHouse away): keep the membership alive
          const hb = setInterval(() => void heartbeat().catch(() => undefined), heartbeatMs(o.sessionTimeoutMs));
          try {
            await onBatch(
              { partition: batch.partition, end: Number(batch.highWatermark) - 1, messages: batch.messages.map((m) => ({ offset: Number(m.offset), value: m.value ?? Buffer.alloc(0) })) },
              { running: () => isRunning() && !isStale(), resolve: (offset) => resolveOffset(String(offset)), heartbeat },
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
