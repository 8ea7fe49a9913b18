/** `ctpipe process`: a member of the processors' Kafka consumer group (processor/consumer.ts). */
import { Registry } from 'prom-client';
import { serveOps } from '../../common/http.js';
import { createLogger } from '../../common/log.js';
import { redactUrls } from '../../common/redact.js';
import { startProcessor } from '../../processor/consumer.js';
import { startKubernetesNames } from '../../processor/k8s/client.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';
import { connectMigratedStore } from '../store.js';
import { watchNetworks } from './networks.js';

export const processSpec: CommandSpec = {
  name: 'process',
  summary: 'consume collector records from Kafka, rebuild lifecycles, write ClickHouse (scale out: more processors, up to the partitions)',
  usage: 'ctpipe process [--kafka-brokers HOST:PORT,...] [--clickhouse-url http://HOST:8123] [flags]',
  parts: ['log', 'ops', 'kafka', 'consume', 'limits', 'store', 'database', 'schema', 'pipeline', 'live', 'k8s', 'enrich'],
};

export async function runProcess(cfg: Config): Promise<number> {
  const log = createLogger(cfg.log_level, 'ctpipe-process');
  const store = await connectMigratedStore(cfg, log);
  const networks = await watchNetworks(cfg, store, log, cfg.process.group_id).catch(async (e: unknown) => {
    await store.close().catch(() => undefined);
    throw e;
  });
  const registry = new Registry();
  const k8s = await startKubernetesNames(cfg, log, registry).catch(async (e: unknown) => {
    await store.close();
    throw e;
  });
  // The consumer can crash while it is still joining, before the handlers below exist.
  let crashed: Error | undefined;
  let crash: (e: Error) => void = (e) => void (crashed = e);
  const p = await startProcessor(cfg, store, log, registry, cfg.process.checkpoint, (e) => crash(e), k8s?.names);
  if (cfg.metrics.enabled) {
    await serveOps(cfg.metrics.listen, registry, () => p.health());
  }
  // A consumer kafkajs cannot restart must not look alive: exit 1 so the supervisor restarts it.
  return new Promise<number>((resolve) => {
    const stop = (why: string, code: number) => {
      log.info({ why }, 'stopping: checkpointing and committing');
      void p.stop().catch(() => undefined).then(() => networks?.stop()).then(() => k8s?.stop()).then(() => store.close()).then(() => resolve(code));
    };
    process.once('SIGINT', () => stop('SIGINT', 0));
    process.once('SIGTERM', () => stop('SIGTERM', 0));
    crash = (e) => stop(`the Kafka consumer crashed: ${e.message}`, 1);
    // said once the handlers exist: a signal sent on this line stops cleanly (in the full suite one
    // came before them, and SIGTERM's default ended the process with no exit code)
    log.info({ topic: cfg.kafka.topic, group: cfg.process.group_id, store: redactUrls(cfg.clickhouse.url) }, 'processing');
    if (crashed) crash(crashed);
  });
}
