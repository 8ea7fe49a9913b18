/** A pipeline's options from the configuration (shared by `ctpipe run` and `ctpipe process`). */
import type { Registry } from 'prom-client';
import type { Logger } from '../common/log.js';
import type { DetectOptions } from './anomaly/detectors.js';
import type { OpenBudget } from './lifecycle/engine.js';
import type { Store } from './store.js';
import type { BatchLimits } from '../contract/validate.js';
import type { DetectConfig, ProcessorConfig } from './config.js';
import type { PipelineOptions, RowNames } from './pipeline.js';

/** `graceMs`: the engine's wait for a DESTROY past a flow's timeout, which rows can be late by. */
export function detectOptions(d: DetectConfig, graceMs: number): DetectOptions {
  return {
    episode: { openAfter: d.open_after, window: Math.max(d.open_window, d.open_after), closeAfter: d.close_after, cooldownS: d.cooldown / 1000 },
    invalid: { minRate: d.invalid_min_rate, z: d.invalid_z, clearZ: d.invalid_clear_z, history: d.invalid_history, warmup: 30, alpha: 0.1, minSpread: 0.1 },
    table: { warnFill: d.table_warn, criticalFill: d.table_critical, minDropRate: d.drops_min_rate, trendPoints: 12 },
    related: {
      quietS: d.related_quiet / 1000, perMinute: d.expectations_per_minute, unusedPerMinute: d.expectations_unused_per_minute,
      perMaster: { ftp: 1, tftp: 1, sane: 1, amanda: 3 }, // max_expected of the kernel's helpers
      helperPorts: { ftp: [21], tftp: [69], sip: [5060], irc: [6667], h323: [1720], amanda: [10080], sane: [6566], 'netbios-ns': [137], snmp: [161], pptp: [1723] },
    },
    scans: { windowS: d.scan_window / 1000, s0: d.s0_per_source, rej: d.rej_per_source, ports: d.ports_per_source, hosts: d.hosts_per_source, closeAfter: d.close_after,
      lateS: graceMs / 1000 + 5 }, // + a few seconds for the engine's tick
  };
}

export function pipelineOptions(cfg: Pick<ProcessorConfig, 'clickhouse' | 'process' | 'detect'>, store: Store, log: Logger, registry: Registry, budget?: OpenBudget, names?: RowNames): PipelineOptions {
  const p = cfg.process;
  return {
    store, rawEvents: cfg.clickhouse.raw_events, log, registry, names,
    engine: { maxOpen: p.max_open_flows, budget, refreshMs: p.refresh, graceMs: p.grace },
    detect: detectOptions(cfg.detect, p.grace),
  };
}

/** The bounds on what a processor reads (Kafka batches, recordings): process.max_*. */
export function batchLimits(p: Pick<ProcessorConfig['process'], 'max_batch_bytes' | 'max_batch_records' | 'max_string_length'>): BatchLimits {
  return { maxBytes: p.max_batch_bytes, maxRecords: p.max_batch_records, maxString: p.max_string_length };
}
