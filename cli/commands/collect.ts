/** `ctpipe collect`: wires the collector to its sockets, its sink and the operator endpoint. */
import { appendFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { serveOps } from '../../common/http.js';
import { createLogger, type Logger } from '../../common/log.js';
import { Collector, type CollectorOptions } from '../../collector/collector.js';
import { createKafkaProducer, type KafkaProducerHandle } from '../../common/kafka.js';
import { ThreadedProducer } from '../../collector/kafka-thread.js';
import { collectorMetrics, type CollectorMetrics } from '../../collector/metrics.js';
import { JsonlSink } from '../../collector/sinks/jsonl.js';
import { KafkaPublisher } from '../../collector/sinks/kafka.js';
import type { RecordSink } from '../../contract/sink.js';
import { Stamper } from '../../contract/stamper.js';
import { Spool } from '../../collector/sinks/spool.js';
import { openNetfilterSocket, procfsInNetns, requireNetns } from '../../collector/socket.js';
import { checkSysctls, requireNetAdmin, sysctlPath, type SysctlReport } from '../../collector/system.js';
import { CtpipeError, errorMessage } from '../../common/errors.js';
import { enableConntrack, watchActivation } from '../../collector/activation.js';
import { netnsMode, NetnsFollower, requireSysAdmin } from '../../collector/netns-follower.js';
import { netnsMetrics } from '../../collector/netns-metrics.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';

export const collectSpec: CommandSpec = {
  name: 'collect',
  summary: 'subscribe to conntrack events, dump the table, poll statistics, publish records',
  usage: 'ctpipe collect [--output kafka|jsonl] [--events new,update,destroy,exp_new,exp_destroy] [flags]',
  parts: ['host', 'log', 'ops', 'collector', 'feed', 'output', 'kafka', 'publish', 'spool'],
  own: {
    capture: { type: 'string', description: 'also append every raw event datagram (hex, one per line) to FILE' },
  },
};

/**
 * What every command that collects does first: the capability check, the sysctl report, conntrack
 * activation (--enable-conntrack, a table of this process's own) or a watch for a table that stays
 * empty. Returns the undo, for stop.
 */
export async function prepareCollect(cfg: Config, log: Logger, metrics: CollectorMetrics): Promise<() => Promise<void>> {
  requireNetAdmin();
  const c = cfg.collect;
  const mode = netnsMode(c.netns);
  if (mode) return prepareFollow(cfg, mode);
  requireNetns(c.netns); // before anything that enters it fails less clearly
  const activation = c.enable_conntrack ? await enableConntrack(c.netns, log, () => metrics.conntrackRule.set(0)) : undefined;
  if (activation) metrics.conntrackRule.set(1);
  const unwatch = activation ? () => undefined : watchActivation(() => procfsInNetns(c.netns, '/proc/sys/net/netfilter/nf_conntrack_count'), log);
  const changed: SysctlReport[] = [];
  for (const s of checkSysctls((file, value) => procfsInNetns(c.netns, file, value), c.set_sysctls)) {
    metrics.sysctl.set({ key: s.key }, s.value === undefined ? -1 : Number(s.value));
    if (s.changed) {
      changed.push(s);
      log.info({ sysctl: s.key, value: s.value, was: s.was }, `sysctl turned on (--set-sysctls); it applies to connections created from now on, in the whole network namespace, and ${
        c.restore_sysctls ? `is put back to ${s.was} at stop (--restore-sysctls)` : 'stays on after stop (--restore-sysctls puts it back)'}`);
    } else if (!s.ok) log.warn({ sysctl: s.key, value: s.value ?? 'unreadable' }, `${s.key} is ${s.value ?? 'unreadable'}: ${s.lost}. Fix: sysctl -w ${s.key}=1, or run with --set-sysctls`);
  }
  return async () => {
    unwatch();
    await activation?.release();
    // what --set-sysctls changed is the namespace's, not this process's: said (or undone) at stop too
    for (const s of changed) {
      if (!c.restore_sysctls || s.was === undefined) {
        log.warn({ sysctl: s.key, value: s.value, was: s.was }, `${s.key} stays ${s.value} after this stop (it was ${s.was}; --set-sysctls changed it): sysctl -w ${s.key}=${s.was} puts it back, or run with --restore-sysctls`);
        continue;
      }
      try {
        procfsInNetns(c.netns, sysctlPath(s.key), s.was);
        log.info({ sysctl: s.key, value: s.was }, `${s.key} put back to ${s.was} (--restore-sysctls)`);
      } catch (e) {
        log.error({ sysctl: s.key, err: errorMessage(e) }, `${s.key} could not be put back to ${s.was}`);
      }
    }
  };
}

/**
 * --netns all|containers: namespaces come and go, so what would change one (an nftables table, a
 * sysctl) is refused rather than done to some; each namespace's sysctls are reported when it is
 * picked up (collectorFor).
 */
function prepareFollow(cfg: Config, mode: 'all' | 'containers'): () => Promise<void> {
  const c = cfg.collect;
  const changes = [c.enable_conntrack && '--enable-conntrack', c.set_sysctls && '--set-sysctls'].filter(Boolean);
  if (changes.length) {
    throw new CtpipeError('CONFIG_INVALID', `${changes.join(' and ')} cannot be used with --netns ${mode}: they would change namespaces ctpipe does not own as they come and go. ` +
      'Make conntrack track each namespace and set its sysctls where the namespace is made, or run one collector per namespace with --netns PATH');
  }
  requireSysAdmin(mode);
  return async () => undefined;
}

/** Warns, per namespace, about a conntrack sysctl whose value removes data. */
function reportSysctls(netns: string | undefined, log: Logger): void {
  for (const s of checkSysctls((file, value) => procfsInNetns(netns, file, value), false)) {
    if (!s.ok) log.warn({ sysctl: s.key, value: s.value ?? 'unreadable' }, `${s.key} is ${s.value ?? 'unreadable'} in this namespace: ${s.lost}`);
  }
}

/** One Collector, or with --netns all|containers a NetnsFollower running one per namespace. */
export function collectorFor(cfg: Config, o: CollectorOptions, registry: Registry): Collector | NetnsFollower {
  const mode = netnsMode(cfg.collect.netns);
  if (!mode) return new Collector(o);
  const { netns: _all, ...shared } = o;
  return new NetnsFollower({
    mode, intervalMs: cfg.collect.netns_interval, collector: shared, metrics: netnsMetrics(registry), log: o.log,
    onNamespace: (ns, log) => reportSysctls(ns.path, log),
  });
}

/** The collector's settings, and a new run's Stamper, which the collector's sink shares. */
export function collectorOptions(cfg: Config): Pick<CollectorOptions, 'stamper' | 'events' | 'rcvbuf' | 'rcvbufMax' | 'processingNice' | 'netns' | 'dump' | 'statsIntervalMs' | 'resyncMinIntervalMs' | 'quietWarnMs' | 'nflog' | 'counterDumps'> {
  const c = cfg.collect;
  return {
    stamper: new Stamper(cfg.host), events: c.events, rcvbuf: c.rcvbuf, rcvbufMax: c.rcvbuf_max, processingNice: c.processing_nice, netns: c.netns, dump: c.dump,
    statsIntervalMs: c.stats_interval, resyncMinIntervalMs: c.resync_min_interval, quietWarnMs: c.quiet_warning,
    nflog: c.nflog_group === undefined ? undefined : { group: c.nflog_group, rate: c.nflog_rate, copyRange: 128 },
    // the stop dump is for `ctpipe run`, whose stop writes the open flows' rows (run.ts turns it on)
    counterDumps: { intervalMs: c.counter_dump_interval, maxEntries: c.counter_dump_max_entries, stopTimeoutMs: 0 },
  };
}

/**
 * Resolves on SIGINT/SIGTERM or after `collect.duration`, once `stop` has finished. A second
 * signal while stopping calls `abort` (stop waiting for what may never come), or exits at once.
 */
export function untilStopped(cfg: Config, stop: (why: string) => Promise<void>, abort?: (why: string) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (signals++ === 0) return void stop(sig).then(resolve);
      if (abort) return abort(sig);
      process.exit(130);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    if (cfg.collect.duration > 0) setTimeout(() => void stop('duration elapsed').then(resolve), cfg.collect.duration).unref();
  });
}

export async function runCollect(cfg: Config, own: Record<string, string | boolean | string[] | undefined>): Promise<number> {
  const log = createLogger(cfg.log_level, 'ctpipe-collect');
  const registry = new Registry();
  const metrics = collectorMetrics(registry, { perCpu: cfg.collect.metrics_per_cpu });
  const undo = await prepareCollect(cfg, log, metrics);
  const c = cfg.collect;

  const options = collectorOptions(cfg);
  let sink: RecordSink;
  let publisher: KafkaPublisher | undefined;
  let producer: KafkaProducerHandle | undefined;
  if (c.output === 'jsonl') {
    sink = new JsonlSink(process.stdout);
  } else {
    const k = cfg.kafka;
    producer = k.producer_thread ? new ThreadedProducer(k, cfg.log_level) : createKafkaProducer(k, log);
    const spool = k.spool_dir ? new Spool(k.spool_dir, k.spool_max_bytes) : undefined;
    if (spool && !spool.empty) log.info({ dir: spool.dir, bytes: spool.bytes }, 'records left in the spool by an earlier run will be sent first');
    publisher = new KafkaPublisher({
      producer, topic: k.topic, key: cfg.host, brokers: k.brokers, batchEvents: k.batch_events, lingerMs: k.linger,
      bufferBytes: k.buffer_bytes, maxSendBytes: k.max_send_bytes, spool, log, registry,
      stamper: options.stamper,
    });
    sink = publisher;
  }

  const capture = typeof own.capture === 'string' ? own.capture : undefined;
  const collector = collectorFor(cfg, {
    ...options,
    sink,
    sockets: openNetfilterSocket,
    metrics,
    log,
    capture: capture ? (d, sec, nsec) => appendFileSync(capture, `${sec}.${String(nsec).padStart(9, '0')} ${d.toString('hex')}\n`) : undefined,
  }, registry);

  if (cfg.metrics.enabled) {
    await serveOps(cfg.metrics.listen, registry, () => ({
      ok: collector.healthy,
      detail: { run: collector.run, seq: collector.lastSeq, kafka_up: publisher?.up, buffered_bytes: publisher?.bufferedBytes, error: collector.lastError },
    }));
  }

  let stopping: Promise<void> | undefined;
  const stop = (why: string) => {
    stopping ??= (async () => {
      log.info({ why }, 'stopping: flushing records');
      await collector.stop();
      if (publisher) await publisher.close(cfg.kafka.flush_timeout);
      else await sink.close();
      await producer?.disconnect().catch(() => undefined);
      await undo();
      log.info({ seq: collector.lastSeq, sent: publisher?.sentEvents, dropped: publisher?.droppedEvents }, 'stopped');
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    })();
    return stopping;
  };
  const done = untilStopped(cfg, stop);
  await collector.start();
  log.info({ host: cfg.host, run: collector.run, output: c.output }, 'collecting');
  await done;
  return 0;
}
