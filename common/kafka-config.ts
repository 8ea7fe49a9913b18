/** The `kafka` configuration section, shared by the collector (producer) and the processor (consumer). */
import { z } from 'zod';
import { duration, MAX_TIMER_MS, size } from './config-kinds.js';

export const kafkaSection = z.strictObject({
  brokers: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'a broker is HOST:PORT')).min(1).default(['localhost:9092'])
    .describe('Kafka bootstrap brokers, HOST:PORT (comma-separated in env and flags)'),
  topic: z.string().min(1).default('ctpipe.events.v1').describe('Topic for collector records (the schema version is in the name)'),
  compression: z.enum(['gzip', 'none']).default('gzip').describe('Kafka compression of record batches'),
  compression_level: z.number().int().min(1).max(9).default(1).describe('gzip level: 1 is fastest (about 4x smaller on ctpipe batches), 9 smallest'),
  producer_thread: z.boolean().default(true).describe('Run the Kafka client in its own thread (keeps the netlink event loop free; uses the second core)'),
  batch_events: z.number().int().min(1).max(100_000).default(1000).describe('Records per Kafka record (one ctpipe.v1.Batch)'),
  linger: duration('50ms', 'Longest a record waits for its batch to fill', { min: 0 }),
  buffer_bytes: size('64MiB', 'Encoded records kept in memory while Kafka is slow or unreachable; past this they go to the spool', { min: 64 << 10, max: 2 ** 34 }),
  max_send_bytes: size('2MiB', 'Largest produce request before compression; keep it times the compression ratio (about 1/3.5) under the brokers\' message.max.bytes (1 MB by default)', { min: 64 << 10, max: 1 << 30 }),
  spool_dir: z.string().default('/var/lib/ctpipe/spool').describe('Disk spool for records Kafka could not take (empty string: no spool)'),
  spool_max_bytes: size('1GiB', 'Spool bound; records past it are dropped, counted and reported as a loss record'),
  connection_timeout_ms: z.number().int().min(100).max(MAX_TIMER_MS).default(3000).describe('Kafka connection timeout (ms)'),
  request_timeout_ms: z.number().int().min(100).max(MAX_TIMER_MS).default(10000).describe('Kafka request timeout (ms)'),
  flush_timeout: duration('10s', 'On shutdown, how long to wait for Kafka before spooling the rest', { min: 0 }),
  tls: z.strictObject({
    enabled: z.boolean().default(false).describe('Connect with TLS'),
    ca_file: z.string().optional().describe('PEM file of the CA to trust'),
    cert_file: z.string().optional().describe('PEM client certificate (mutual TLS)'),
    key_file: z.string().optional().describe('PEM client key (mutual TLS)'),
    reject_unauthorized: z.boolean().default(true).describe('Verify the broker certificate'),
  }).prefault({}),
  sasl: z.strictObject({
    mechanism: z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512']).default('none').describe('SASL mechanism'),
    username: z.string().optional().describe('SASL user name'),
    password: z.string().optional().describe('SASL password (prefer CTPIPE_KAFKA_SASL_PASSWORD or password_file; never logged)'),
    password_file: z.string().optional().describe('File holding the SASL password'),
  }).prefault({}),
});

export type KafkaConfigSection = z.output<typeof kafkaSection>;
