/** `ctpipe process`: a member of the processors' Kafka consumer group (processor/consumer.ts). */
import { Registry } from 'prom-client';
import { serveOps } from '../../common/http.js';
import { createLogger } from '../../common/log.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { startProcessor } from '../../processor/consumer.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';
import { connectStore, schemaContext } from '../store.js';

export const processSpec: CommandSpec = {
  name: 'process',
  summary: 'consume collector records from Kafka, rebuild lifecycles, write ClickHouse (scale out: more processors, up to the partitions)',
  usage: 'ctpipe process [--kafka-brokers HOST:PORT,...] [--clickhouse-url http://HOST:8123] [flags]',
  sections: ['', 'kafka', 'metrics', 'clickhouse', 'process'],
};

export async function runProcess(cfg: Config): Promise<number> {
  const log = createLogger(cfg.log_level, 'ctpipe-process');
  const store = await connectStore(cfg);
  await migrate(store, schemaContext(cfg));
  const registry = new Registry();
  const p = await startProcessor(cfg, store, log, registry, cfg.process.checkpoint);
  if (cfg.metrics.enabled) {
    await serveOps(cfg.metrics.listen, registry, () => ({ ok: p.healthy(), detail: { partitions: p.partitions() } }));
  }
  log.info({ topic: cfg.kafka.topic, group: cfg.process.group_id, store: cfg.clickhouse.url }, 'processing');
  await new Promise<void>((resolve) => {
    const stop = (why: string) => {
      log.info({ why }, 'stopping: checkpointing and committing');
      void p.stop().then(() => store.close()).then(() => new Promise<void>((r) => log.flush(() => r()))).then(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}
