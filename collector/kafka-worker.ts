/**
 * The Kafka producer's thread: kafkajs encodes record batches, computes CRCs and drives sockets
 * here, so that work runs on the second core and never stalls the event loop that drains netlink.
 * Messages: {op: 'connect' | 'send' | 'close', id, ...} in, {id, ok, error?} out.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { KafkaConfigSection } from '../common/kafka-config.js';
import { createLogger } from '../common/log.js';
import { createKafkaProducer } from '../common/kafka.js';

import { errorMessage } from '../common/errors.js';
interface Data {
  cfg: KafkaConfigSection;
  logLevel: string;
  clientId: string;
}

type Request =
  | { op: 'connect'; id: number }
  | { op: 'close'; id: number }
  | { op: 'send'; id: number; topic: string; key: string; values: Uint8Array[] };

const { cfg, logLevel, clientId } = workerData as Data;
const producer = createKafkaProducer(cfg, createLogger(logLevel, 'ctpipe-kafka'), clientId);
const port = parentPort!;

port.on('message', (req: Request) => {
  const reply = (p: Promise<unknown>) =>
    p.then(
      () => port.postMessage({ id: req.id, ok: true }),
      (e: unknown) => port.postMessage({ id: req.id, ok: false, error: errorMessage(e) }),
    );
  switch (req.op) {
    case 'connect':
      void reply(producer.connect());
      break;
    case 'send':
      void reply(producer.send({
        topic: req.topic,
        messages: req.values.map((v) => ({ key: req.key, value: Buffer.from(v.buffer, v.byteOffset, v.byteLength) })),
      }));
      break;
    case 'close':
      void reply(producer.disconnect()).then(() => port.close());
      break;
  }
});
