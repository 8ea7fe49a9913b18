/** Producing to Kafka (the lab's mock cluster) from a test. */
import kafkajs, { type Producer } from 'kafkajs';
import { encodeBatch } from '../../contract/proto/batch.js';
import type { CtRecord } from '../../contract/records.js';

/** A kafkajs producer on `brokers` for `send`: connected before, disconnected after. */
export async function withProducer(brokers: string[], clientId: string, send: (producer: Producer) => Promise<unknown>): Promise<void> {
  const producer = new kafkajs.Kafka({ clientId, brokers, logLevel: kafkajs.logLevel.NOTHING }).producer();
  await producer.connect();
  await send(producer);
  await producer.disconnect();
}

/** Each host's records to `topic` in batches of `perBatch`, keyed by host: one send a host. */
export function produceBatches(brokers: string[], clientId: string, topic: string, hosts: CtRecord[][], perBatch: number): Promise<void> {
  return withProducer(brokers, clientId, async (producer) => {
    for (const recs of hosts) {
      const messages = [];
      for (let i = 0; i < recs.length; i += perBatch) messages.push({ key: recs[0]!.host, value: encodeBatch(recs.slice(i, i + perBatch)) });
      if (messages.length) await producer.send({ topic, messages });
    }
  });
}
