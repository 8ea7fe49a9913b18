/**
 * The only file that imports kafkajs on the collector side: builds a producer from configuration
 * (brokers, TLS, SASL) with ordering kept per partition (one request in flight) and kafkajs logs
 * routed to pino. Credentials come from the config (env or files), never from logs.
 */
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { gzip, unzip } from 'node:zlib';
import kafkajs, { type KafkaConfig, type SASLOptions } from 'kafkajs';

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
