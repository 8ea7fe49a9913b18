/**
 * Publishes records to Kafka: batches of records become one Kafka record (a ctpipe.v1.Batch),
 * keyed by host so a host's records stay in one partition and in order.
 *
 * Nothing is lost silently. Sealed records wait in a memory queue bounded by `bufferBytes`; past
 * it the oldest move to the disk spool (bounded by the spool's own limit); past that they are
 * dropped, counted, and announced in the stream by a `loss` record carrying the dropped seq range.
 * Order: one send in flight at a time; the spool always holds records older than the memory
 * queue, and is drained first when Kafka is back. A sealed batch carries its event count, seq range
 * and loss news (sealed.ts) through the queue and the spool: nothing sent or dropped is decoded again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter, Gauge, type Registry } from 'prom-client';
import { Backoff } from '../../common/backoff.js';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { ProtoWriter } from '../../contract/proto/writer.js';
import type { CtpipeRecord } from '../../contract/records.js';
import type { RecordSink } from '../../contract/sink.js';
import type { LossNews, Stamper } from '../../contract/stamper.js';
import type { ProducerLike } from '../../common/kafka.js';
import { sealBatch, type SealedBatch } from './sealed.js';
import type { Spool } from './spool.js';

export interface PublisherOptions {
  producer: ProducerLike;
  topic: string;
  key: string;
  /** The bootstrap brokers, named in the first failure's message. */
  brokers?: string[];
  batchEvents: number;
  lingerMs: number;
  bufferBytes: number;
  maxSendBytes: number;
  spool?: Spool;
  log: Logger;
  registry: Registry;
  /**
   * Stamps the loss records this publisher puts into its stream (the collector's Stamper). Without
   * one (a replay, whose records belong to runs it must not extend) a loss is only logged.
   */
  stamper?: Stamper;
  retryMinMs?: number;
  retryMaxMs?: number;
}

function publisherMetrics(registry: Registry) {
  return {
    records: new Counter({ name: 'ctpipe_publish_records_total', help: 'Kafka records acknowledged', registers: [registry] }),
    events: new Counter({ name: 'ctpipe_publish_events_total', help: 'Events inside acknowledged Kafka records', registers: [registry] }),
    bytes: new Counter({ name: 'ctpipe_publish_bytes_total', help: 'Encoded bytes acknowledged (before Kafka compression)', registers: [registry] }),
    errors: new Counter({ name: 'ctpipe_publish_errors_total', help: 'Failed Kafka sends (each is retried)', registers: [registry] }),
    spooled: new Counter({ name: 'ctpipe_publish_spooled_records_total', help: 'Kafka records written to the disk spool', registers: [registry] }),
    dropped: new Counter({ name: 'ctpipe_publish_dropped_events_total', help: 'Events dropped because memory and spool were full', registers: [registry] }),
    buffer: new Gauge({ name: 'ctpipe_publish_buffer_bytes', help: 'Encoded bytes waiting in memory', registers: [registry] }),
    spool: new Gauge({ name: 'ctpipe_spool_bytes', help: 'Bytes in the disk spool', registers: [registry] }),
    up: new Gauge({ name: 'ctpipe_kafka_up', help: '1 when the last Kafka send succeeded', registers: [registry] }),
  };
}

export class KafkaPublisher implements RecordSink {
  private pending: CtpipeRecord[] = [];
  private queue: SealedBatch[] = [];
  private queueBytes = 0;
  private inFlight = 0; // records at the head of `queue` being sent
  private lingerTimer?: NodeJS.Timeout;
  private wakeUp?: () => void;
  private closing = false;
  private worker: Promise<void>;
  private readonly writer = new ProtoWriter(1 << 20);
  private readonly m: ReturnType<typeof publisherMetrics>;
  private errorLogs = 0;
  /** Set by close() when its deadline passed: the worker stops retrying. */
  private giveUp = false;
  up = true;
  sentRecords = 0;
  sentEvents = 0;
  droppedEvents = 0;

  constructor(private readonly o: PublisherOptions) {
    this.m = publisherMetrics(o.registry);
    this.m.up.set(1);
    this.worker = this.run();
  }

  write(r: CtpipeRecord): void {
    this.pending.push(r);
    if (this.pending.length >= this.o.batchEvents) this.seal();
    else if (!this.lingerTimer) this.lingerTimer = setTimeout(() => this.seal(), this.o.lingerMs);
  }

  private seal(): void {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.pending.length === 0) return;
    const recs = this.pending;
    this.pending = [];
    const batch = sealBatch(recs, this.writer);
    this.queue.push(batch);
    this.queueBytes += batch.value.length;
    if (this.queueBytes > this.o.bufferBytes) this.overflow();
    this.m.buffer.set(this.queueBytes);
    this.wakeUp?.();
  }

  /** Memory is full: move the oldest records not in flight to the spool, or drop them. */
  private overflow(): void {
    const movable = this.queue.slice(this.inFlight);
    let excess = this.queueBytes - this.o.bufferBytes;
    const take: SealedBatch[] = [];
    for (const s of movable) {
      if (excess <= 0) break;
      take.push(s);
      excess -= s.value.length;
    }
    if (take.length === 0) return;
    this.queue.splice(this.inFlight, take.length);
    for (const s of take) this.queueBytes -= s.value.length;
    if (this.o.spool) {
      try {
        this.o.spool.append(take);
        this.m.spooled.inc(take.length);
        this.m.spool.set(this.o.spool.bytes);
        return;
      } catch (e) {
        this.o.log.error({ err: errorMessage(e), records: take.length }, 'the spool refused records: dropping them');
      }
    }
    const events = take.reduce((n, s) => n + s.events, 0);
    this.droppedEvents += events;
    this.m.dropped.inc(events);
    this.reportLoss({
      reason: this.o.spool ? 'spool_full' : 'buffer_full', count: events, source: 'publish',
      first_seq: take[0]!.firstSeq, last_seq: take[take.length - 1]!.lastSeq,
    });
    // Loss records among the dropped ones would take their news with them: report those again.
    for (const s of take) for (const l of s.losses) this.reportLoss(l);
  }

  /** Puts a loss into this publisher's own stream, behind what it holds. */
  private reportLoss(news: LossNews): void {
    if (this.o.stamper) this.write(this.o.stamper.loss(news));
    else this.o.log.error({ ...news, host: this.o.key }, 'could not publish records');
  }

  private async run(): Promise<void> {
    for (;;) {
      const spool = this.o.spool;
      if (spool && !spool.empty && this.inFlight === 0) {
        const seg = spool.peek()!;
        if (!(await this.sendAll(seg.batches))) return;
        spool.commit(seg.segment);
        this.m.spool.set(spool.bytes);
        continue;
      }
      if (this.queue.length === 0) {
        if (this.closing) return;
        await new Promise<void>((resolve) => (this.wakeUp = resolve));
        this.wakeUp = undefined;
        continue;
      }
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.value.length <= this.o.maxSendBytes)) {
        bytes += this.queue[n]!.value.length;
        n++;
      }
      this.inFlight = n;
      const group = this.queue.slice(0, n);
      const ok = await this.sendAll(group);
      this.inFlight = 0;
      if (!ok) return;
      this.queue.splice(0, n);
      this.queueBytes -= bytes;
      this.m.buffer.set(this.queueBytes);
    }
  }

  /** Sends batches in order, retrying with backoff until acknowledged; false when closing gave up. */
  private async sendAll(batches: SealedBatch[]): Promise<boolean> {
    let start = 0;
    const backoff = new Backoff(this.o.retryMinMs ?? 200, this.o.retryMaxMs ?? 5000);
    while (start < batches.length) {
      let end = start;
      let bytes = 0;
      while (end < batches.length && (end === start || bytes + batches[end]!.value.length <= this.o.maxSendBytes)) bytes += batches[end++]!.value.length;
      const chunk = batches.slice(start, end);
      try {
        await this.o.producer.send({ topic: this.o.topic, messages: chunk.map((b) => ({ key: this.o.key, value: b.value })) });
        const events = chunk.reduce((n, b) => n + b.events, 0);
        this.sentEvents += events;
        this.sentRecords += chunk.length;
        this.m.records.inc(chunk.length);
        this.m.bytes.inc(bytes);
        this.m.events.inc(events);
        if (!this.up) this.o.log.info('Kafka is reachable again; draining the backlog');
        this.up = true;
        this.m.up.set(1);
        start = end;
        backoff.reset();
      } catch (e) {
        this.m.errors.inc();
        this.up = false;
        this.m.up.set(0);
        if (this.errorLogs++ === 0) {
          this.o.log.error({ err: errorMessage(e), brokers: this.o.brokers, topic: this.o.topic },
            `Kafka at ${this.o.brokers?.join(',') ?? '?'} does not take records (${errorMessage(e)}). Check that the brokers run and are reachable ` +
            `from this host, that kafka.brokers (--kafka-brokers, CTPIPE_KAFKA_BROKERS) and the TLS/SASL settings are right, and that topic ` +
            `${this.o.topic} exists. Nothing is lost meanwhile: records wait in memory, then in the spool${this.o.spool ? ` (${this.o.spool.dir})` : ' (none configured: kafka.spool_dir)'}, and go when Kafka answers.`);
        } else if (this.errorLogs < 5 || this.errorLogs % 100 === 0) {
          this.o.log.warn({ err: errorMessage(e), buffered: this.queueBytes, spooled: this.o.spool?.bytes ?? 0 }, 'Kafka send failed; buffering and retrying');
        }
        if (this.closing && this.giveUp) return false;
        await backoff.wait();
        if (this.closing && this.giveUp) return false;
      }
    }
    return true;
  }

  get bufferedBytes(): number {
    return this.queueBytes;
  }

  async flush(): Promise<void> {
    this.seal();
    while (this.queue.length > 0 || (this.o.spool && !this.o.spool.empty)) {
      if (this.giveUp) return;
      await sleep(20);
    }
  }

  /**
   * Flushes for up to `timeoutMs`; whatever Kafka has not acknowledged by then goes to the spool
   * (when configured) so the next start sends it.
   */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closing = true;
    this.seal();
    this.wakeUp?.();
    const done = this.flush().then(() => true);
    const drained = await Promise.race([done, sleep(timeoutMs).then(() => false)]);
    this.giveUp = true;
    this.wakeUp?.();
    if (!drained) {
      const rest = this.queue.splice(0);
      this.queueBytes = 0;
      if (rest.length && this.o.spool) {
        try {
          this.o.spool.append(rest);
          this.o.log.warn({ records: rest.length }, 'Kafka unreachable at shutdown: records kept in the spool for the next start');
        } catch (e) {
          const events = rest.reduce((n, s) => n + s.events, 0);
          this.droppedEvents += events;
          this.o.log.error({ err: errorMessage(e), events }, 'Kafka unreachable and the spool refused records at shutdown: events lost');
        }
      } else if (rest.length) {
        const events = rest.reduce((n, s) => n + s.events, 0);
        this.droppedEvents += events;
        this.o.log.error({ events }, 'Kafka unreachable at shutdown and no spool configured: events lost');
      }
    }
    await Promise.race([this.worker, sleep(1000)]);
    this.o.spool?.close();
  }
}

