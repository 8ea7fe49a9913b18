/**
 * `ctpipe replay FILE`: publishes a recorded JSON lines file (`ctpipe collect --output jsonl`) to
 * Kafka as the collector would have: same host keys, runs and sequence numbers, in file order.
 * Malformed lines are counted and reported with their line numbers; they never stop the replay.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Registry } from 'prom-client';
import { createLogger } from '../../common/log.js';
import { createKafkaProducer, type KafkaProducerHandle } from '../../collector/kafka.js';
import { ThreadedProducer } from '../../collector/kafka-thread.js';
import { KafkaPublisher } from '../../collector/sinks/kafka.js';
import { CtpipeError, isCtpipeError } from '../../common/errors.js';
import { fromJsonLine } from '../../contract/json.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';

export const replaySpec: CommandSpec = {
  name: 'replay',
  summary: 'publish a recorded JSON lines file to Kafka, keys, runs and sequence numbers kept',
  usage: 'ctpipe replay FILE|- [--kafka-brokers HOST:PORT,...] [--kafka-topic TOPIC]',
  sections: ['', 'kafka'],
};

export async function runReplay(cfg: Config, _own: unknown, positionals: string[]): Promise<number> {
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new CtpipeError('CONFIG_INVALID', 'usage: ctpipe replay FILE (or - for standard input)');
  const log = createLogger(cfg.log_level, 'ctpipe-replay');
  const k = cfg.kafka;
  const producer: KafkaProducerHandle = k.producer_thread ? new ThreadedProducer(k, cfg.log_level, 'ctpipe-replay') : createKafkaProducer(k, log, 'ctpipe-replay');
  const publishers = new Map<string, KafkaPublisher>();
  const publisherFor = (host: string) => {
    let p = publishers.get(host);
    if (!p) {
      p = new KafkaPublisher({
        producer, topic: k.topic, key: host, batchEvents: k.batch_events, lingerMs: k.linger, bufferBytes: k.buffer_bytes,
        maxSendBytes: k.max_send_bytes, log, registry: new Registry(),
        reportLoss: (l) => log.error({ ...l, host }, 'replay could not publish records'),
      });
      publishers.set(host, p);
    }
    return p;
  };
  const input = file === '-' ? process.stdin : createReadStream(file);
  input.on('error', () => undefined);
  const opened = new Promise<void>((resolve, reject) => {
    if (file === '-') resolve();
    else (input as ReturnType<typeof createReadStream>).once('open', () => resolve()).once('error', (e) => reject(new CtpipeError('CONFIG_FILE', `cannot read ${file}: ${e.message}`)));
  });
  await opened;
  let line = 0;
  let records = 0;
  const bad: number[] = [];
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    try {
      const r = fromJsonLine(text);
      publisherFor(r.host).write(r);
      records++;
    } catch (e) {
      if (!isCtpipeError(e)) throw e;
      bad.push(line);
      if (bad.length <= 10) log.warn({ line, err: e.message }, 'skipped a malformed line');
    }
  }
  for (const p of publishers.values()) await p.close(k.flush_timeout);
  await producer.disconnect();
  const sent = [...publishers.values()].reduce((n, p) => n + p.sentEvents, 0);
  process.stdout.write(`replayed ${sent} of ${records} records from ${line} lines to ${k.topic}` +
    `${bad.length ? `; ${bad.length} malformed line(s) skipped (first: ${bad.slice(0, 5).join(', ')})` : ''}\n`);
  return sent === records ? 0 : 1;
}
