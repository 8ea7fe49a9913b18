/**
 * A producer whose kafkajs client lives in a worker thread (collector/kafka-worker.ts). Same
 * interface as the in-thread producer; sends are acknowledged in order because the worker runs
 * one producer with one request in flight and the publisher awaits each send.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { KafkaConfigSection } from '../common/kafka-config.js';
import { packageRoot } from '../common/paths.js';
import type { KafkaMessage, KafkaProducerHandle } from '../common/kafka.js';


export class ThreadedProducer implements KafkaProducerHandle {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private dead: Error | undefined;

  constructor(cfg: KafkaConfigSection, logLevel: string, clientId = 'ctpipe-collector') {
    // Workers load JavaScript: the compiled file in dist/ (built by `npm ci`, `npm test`).
    this.worker = new Worker(path.join(packageRoot(), 'dist', 'collector', 'kafka-worker.js'), {
      workerData: { cfg, logLevel, clientId },
    });
    this.worker.on('message', (m: { id: number; ok: boolean; error?: string }) => {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.ok) p?.resolve();
      else p?.reject(new Error(m.error ?? 'Kafka producer error'));
    });
    const fail = (e: Error) => {
      this.dead = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', () => fail(new Error('the Kafka producer thread exited')));
  }

  private call(msg: Record<string, unknown>): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id });
    });
  }

  connect(): Promise<void> {
    return this.call({ op: 'connect' });
  }

  send(req: { topic: string; messages: KafkaMessage[] }): Promise<void> {
    return this.call({ op: 'send', topic: req.topic, key: req.messages[0]?.key ?? '', values: req.messages.map((m) => m.value) });
  }

  async disconnect(): Promise<void> {
    if (this.dead) return;
    // kafkajs can wait on a broker that never answered: give it a few seconds, then end the thread.
    await Promise.race([this.call({ op: 'close' }).catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
    await this.worker.terminate();
  }
}
