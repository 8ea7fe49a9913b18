/**
 * librdkafka's mock cluster (Debian kcat), a real Kafka wire-protocol broker on loopback
 * (shared/notes/environment.md). It lives as long as its process (kcat, or lab/kafka-mock.py for
 * topics with a chosen partition count) and keeps nothing on disk; it keeps at most 5 MiB and
 * 100,000 message sets per partition, so producers must stay within that of their consumers.
 * pause()/resume() freeze it with SIGSTOP/SIGCONT: a broker that stops answering, then comes back
 * with its data, which is how an outage looks to a producer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type EachMessagePayload } from 'kafkajs';
import { packageRoot } from '../common/paths.js';
import { which } from './exec.js';

export class KafkaMock {
  private constructor(private readonly proc: ChildProcess, readonly brokers: string[]) {}

  /**
   * `topics` (name: partitions) are created before anyone connects: the mock auto-creates any other
   * topic with 4 partitions and answers no CreateTopics request, so those come from its C API
   * (lab/kafka-mock.py, the librdkafka kcat uses).
   */
  static async start(brokers = 3, topics: Record<string, number> = {}): Promise<KafkaMock> {
    if (!which('kcat')) throw new Error('the Kafka tests need kcat (Debian package kcat): apt-get install kcat');
    const made = Object.entries(topics).map(([t, n]) => `${t}:${n}`);
    const proc = made.length
      ? spawn('/usr/bin/python3', [path.join(packageRoot(), 'lab', 'kafka-mock.py'), String(brokers), ...made], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('kcat', ['-X', `test.mock.num.brokers=${brokers}`, '-d', 'mock', '-b', 'ignored:9092', '-C', '-t', 'keepalive', '-o', 'end'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    const list = await new Promise<string[]>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`the mock cluster did not start: ${buf.slice(0, 500)}`)), 10_000);
      const onData = (d: Buffer) => {
        buf += d.toString();
        const m = /bootstrap\.servers=(\S+)/.exec(buf);
        if (m) {
          clearTimeout(timer);
          buf = '';
          // keep draining the debug log so kcat never blocks on a full pipe
          proc.stderr!.off('data', onData);
          proc.stderr!.on('data', () => {});
          resolve(m[1]!.split(','));
        }
        if (buf.length > 1 << 20) buf = buf.slice(-4096);
      };
      proc.stderr!.on('data', onData);
      proc.once('exit', (code) => reject(new Error(`the mock cluster's process exited (${String(code)}) before it started: ${buf.slice(0, 500)}`)));
    });
    return new KafkaMock(proc, list);
  }

  pause(): void {
    this.proc.kill('SIGSTOP');
  }

  resume(): void {
    this.proc.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    this.proc.kill('SIGCONT');
    this.proc.kill('SIGKILL');
    await new Promise((r) => (this.proc.exitCode !== null ? r(undefined) : this.proc.once('exit', r)));
  }
}

export interface Consumed {
  partition: number;
  offset: string;
  key: string;
  value: Buffer;
}

/** Reads a topic from the beginning until `until(all)` is true or the timeout passes. */
export async function consumeAll(
  brokers: string[],
  topic: string,
  until: (msgs: Consumed[]) => boolean,
  timeoutMs = 30_000,
): Promise<Consumed[]> {
  const kafka = new Kafka({ clientId: 'ctpipe-test', brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `test-${Math.random().toString(16).slice(2)}`, sessionTimeout: 10_000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const msgs: Consumed[] = [];
  let finish!: () => void;
  const done = new Promise<void>((r) => (finish = r));
  await consumer.run({
    eachMessage: async ({ partition, message }: EachMessagePayload) => {
      msgs.push({ partition, offset: message.offset, key: message.key?.toString() ?? '', value: message.value ?? Buffer.alloc(0) });
      if (until(msgs)) finish();
    },
  });
  await Promise.race([done, sleep(timeoutMs)]);
  await consumer.disconnect();
  return msgs;
}
