/**
 * `ctpipe replay FILE`: a recording (`ctpipe record`, binary or JSON lines; contract/recording.ts)
 * sent on as the collector sent it, hosts, runs and sequence numbers kept: to Kafka (keyed by
 * host), straight into a store through the processor (effectively once: processor/file-replay.ts),
 * or printed as JSON lines. At maximum speed or at the recorded pace (or N times it). Unreadable
 * frames and lines are counted and reported with where they are; they never stop the replay.
 */
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { Registry } from 'prom-client';
import { createLogger } from '../../common/log.js';
import { redactUrls } from '../../common/redact.js';
import { createKafkaProducer, type KafkaProducerHandle } from '../../common/kafka.js';
import { ThreadedProducer } from '../../collector/kafka-thread.js';
import { JsonlSink } from '../../collector/sinks/jsonl.js';
import { KafkaPublisher } from '../../collector/sinks/kafka.js';
import { CtpipeError, errorMessage } from '../../common/errors.js';
import { readRecording } from '../../contract/recording.js';
import type { CtpipeRecord } from '../../contract/records.js';
import { FileReplay } from '../../processor/file-replay.js';
import { batchLimits, pipelineOptions } from '../../processor/options.js';
import { Pipeline } from '../../processor/pipeline.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';
import { Progress } from '../progress.js';
import { connectMigratedStore } from '../store.js';

export const replaySpec: CommandSpec = {
  name: 'replay',
  summary: 'send a recording (ctpipe record) to Kafka, into a store, or out as JSON lines; keys, runs and sequence numbers kept',
  usage: 'ctpipe replay FILE|- [--to kafka|store|jsonl] [--speed max|recorded|N] [flags]',
  parts: ['log', 'kafka', 'publish', 'limits', 'store', 'database', 'schema', 'pipeline'],
  own: {
    to: { type: 'string', description: 'kafka (default): publish to the topic; store: through the processor into ClickHouse, effectively once; jsonl: print' },
    speed: { type: 'string', description: 'max (default), recorded (the pace the records were collected at) or a factor of it such as 10' },
  },
};

interface Target {
  write(r: CtpipeRecord, index: number): void | Promise<void>;
  /** Finishes; returns how many records were delivered, and a note for the final line. */
  close(): Promise<{ delivered: number; note: string }>;
}

function parseSpeed(v: unknown): number {
  if (v === undefined || v === 'max') return Infinity;
  if (v === 'recorded') return 1;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new CtpipeError('CONFIG_INVALID', `--speed must be max, recorded or a positive factor such as 10, not "${String(v)}"`);
  return n;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export async function runReplay(cfg: Config, own: Record<string, unknown>, positionals: string[]): Promise<number> {
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new CtpipeError('CONFIG_INVALID', 'usage: ctpipe replay FILE (or - for standard input) [--to kafka|store|jsonl]');
  const to = (own.to as string | undefined) ?? 'kafka';
  if (!['kafka', 'store', 'jsonl'].includes(to)) throw new CtpipeError('CONFIG_INVALID', `--to must be kafka, store or jsonl, not "${to}"`);
  const speed = parseSpeed(own.speed);
  let size = 0;
  if (file !== '-') {
    try {
      size = statSync(file).size;
    } catch (e) {
      throw new CtpipeError('CONFIG_FILE', `cannot read ${file}: ${errorMessage(e)}`);
    }
  } else if (to === 'store') {
    throw new CtpipeError('CONFIG_INVALID', 'replay --to store needs a file (its digest makes the replay idempotent), not standard input');
  }
  const log = createLogger(cfg.log_level, 'ctpipe-replay');
  const target = to === 'kafka' ? kafkaTarget(cfg, log) : to === 'store' ? await storeTarget(cfg, log, file) : jsonlTarget();

  const progress = new Progress(`replay ${file === '-' ? 'stdin' : file}`, size);
  let index = 0;
  let bad = 0;
  const firstBad: string[] = [];
  let pace: { wall: number; ns: number } | undefined;
  for await (const item of readRecording(file === '-' ? process.stdin : createReadStream(file), { limits: batchLimits(cfg.process) })) {
    if ('bad' in item) {
      bad++;
      if (firstBad.length < 5) firstBad.push(item.where);
      if (bad <= 10) log.warn({ where: item.where, err: item.bad }, 'skipped what could not be read');
    } else {
      for (const r of item.records) {
        if (speed !== Infinity) {
          const ns = r.sec * 1e9 + r.nsec;
          pace ??= { wall: Date.now(), ns };
          const wait = pace.wall + (ns - pace.ns) / 1e6 / speed - Date.now();
          if (wait > 1) await new Promise((res) => setTimeout(res, wait));
        }
        await target.write(r, index++);
      }
    }
    progress.update(item.bytes, `${index.toLocaleString('en')} records`);
  }
  const { delivered, note } = await target.close();
  progress.done(`${index.toLocaleString('en')} records`);
  const line = `replayed ${delivered} of ${index} records from ${file} ${note}` +
    `${bad ? `; ${bad} unreadable part(s) skipped (first at: ${firstBad.join(', ')})` : ''}\n`;
  (to === 'jsonl' ? process.stderr : process.stdout).write(line); // jsonl: stdout holds the records
  if (index === 0 && bad > 0) {
    // nothing readable at all: not a recording (a file with some bad parts still replays the rest)
    throw new CtpipeError('RECORD_DECODE', `${file} holds no record ctpipe can read: is it a recording (ctpipe record, binary or JSON lines)?`);
  }
  return delivered === index ? 0 : 1;
}

function kafkaTarget(cfg: Config, log: ReturnType<typeof createLogger>): Target {
  const k = cfg.kafka;
  const producer: KafkaProducerHandle = k.producer_thread ? new ThreadedProducer(k, cfg.log_level, 'ctpipe-replay') : createKafkaProducer(k, log, 'ctpipe-replay');
  const publishers = new Map<string, KafkaPublisher>();
  return {
    write(r) {
      let p = publishers.get(r.host);
      if (!p) {
        p = new KafkaPublisher({
          producer, topic: k.topic, key: r.host, brokers: k.brokers, batchEvents: k.batch_events, lingerMs: k.linger, bufferBytes: k.buffer_bytes,
          maxSendBytes: k.max_send_bytes, log, registry: new Registry(),
        });
        publishers.set(r.host, p);
      }
      p.write(r);
    },
    async close() {
      for (const p of publishers.values()) await p.close(k.flush_timeout);
      await producer.disconnect();
      return { delivered: [...publishers.values()].reduce((n, p) => n + p.sentEvents, 0), note: `to Kafka topic ${k.topic}` };
    },
  };
}

async function storeTarget(cfg: Config, log: ReturnType<typeof createLogger>, file: string): Promise<Target> {
  const digest = await sha256(file);
  const store = await connectMigratedStore(cfg, log);
  const replay = new FileReplay({ store, digest, pipeline: new Pipeline(pipelineOptions(cfg, store, log, new Registry())) });
  const resumeAfter = await replay.resume();
  if (resumeAfter >= 0) log.info({ digest, after: resumeAfter }, 'this file was replayed into the store before: records up to its checkpoint are skipped');
  return {
    write: (r, index) => replay.push(r, index),
    async close() {
      await replay.finish();
      await store.close();
      return {
        delivered: replay.written + replay.skipped,
        note: `into ${redactUrls(cfg.clickhouse.url)} (${replay.written} processed, ${replay.skipped} already stored by an earlier replay of this file)`,
      };
    },
  };
}

function jsonlTarget(): Target {
  const sink = new JsonlSink(process.stdout);
  let n = 0;
  return {
    write(r) {
      sink.write(r);
      n++;
    },
    async close() {
      await sink.close();
      return { delivered: n, note: 'as JSON lines' };
    },
  };
}
