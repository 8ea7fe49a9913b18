/** The collector's Prometheus metrics; names are stable (dashboards and alerts use them). */
import { Counter, Gauge, Registry } from 'prom-client';
import type { RecordType } from '../contract/records.js';
import { ConntrackMetrics } from './conntrack-metrics.js';
import { CounterTallies, type Tally } from './metric-tally.js';

/** `perCpu`: the conntrack statistics with a `cpu` label (collect.metrics_per_cpu). */
export function collectorMetrics(registry = new Registry(), opts: { perCpu?: boolean } = {}) {
  // Records by type are counted in plain numbers (one per record) and published at each read.
  const recordTallies = new CounterTallies();
  const t = (type: RecordType) => recordTallies.of({ type });
  const m = {
    registry,
    records: new Counter({ name: 'ctpipe_collector_records_total', help: 'Records emitted, by type', labelNames: ['type'], registers: [registry], collect: () => recordTallies.publish() }),
    /** ctpipe_collector_records_total's counts by type, as the collector adds to them. */
    recordsByType: {
      new: t('new'), update: t('update'), destroy: t('destroy'), snapshot: t('snapshot'), exp_new: t('exp_new'), exp_destroy: t('exp_destroy'),
      stats: t('stats'), loss: t('loss'), invalid_packet: t('invalid_packet'), dump_end: t('dump_end'),
    } satisfies Record<RecordType, Tally>,
    rejected: new Counter({ name: 'ctpipe_collector_decode_rejected_total', help: 'Netlink messages rejected as malformed, by error code', labelNames: ['code'], registers: [registry] }),
    unknownAttrs: new Counter({ name: 'ctpipe_collector_unknown_attributes_total', help: 'Attributes the decoder did not know (kept as raw bytes)', registers: [registry] }),
    kernelDrops: new Counter({ name: 'ctpipe_collector_netlink_drops_total', help: 'Messages the kernel dropped on a collector socket (sk_drops)', labelNames: ['socket'], registers: [registry] }),
    enobufs: new Counter({ name: 'ctpipe_collector_enobufs_total', help: 'ENOBUFS errors on the event socket (receive buffer overrun)', labelNames: ['socket'], registers: [registry] }),
    resyncs: new Counter({ name: 'ctpipe_collector_resyncs_total', help: 'Table dumps done after a loss', registers: [registry] }),
    snapshotRows: new Counter({ name: 'ctpipe_collector_snapshot_rows_total', help: 'Rows emitted from table dumps', registers: [registry] }),
    rcvbuf: new Gauge({ name: 'ctpipe_collector_socket_rcvbuf_bytes', help: 'Effective receive buffer of the event socket', registers: [registry] }),
    backlog: new Gauge({ name: 'ctpipe_collector_socket_backlog_bytes', help: 'Bytes queued in the kernel for the event socket', registers: [registry] }),
    held: new Gauge({ name: 'ctpipe_collector_held_bytes', help: 'Raw events kept while the processor of ctpipe run catches up (decoded when it has room)', registers: [registry] }),
    readerQueue: new Gauge({ name: 'ctpipe_collector_reader_queued_bytes', help: 'Bytes the event socket\'s reader thread has read and JavaScript has not yet taken', registers: [registry] }),
    seq: new Gauge({ name: 'ctpipe_collector_seq', help: 'Last sequence number emitted in this run', registers: [registry] }),
    invalidSuppressed: new Counter({ name: 'ctpipe_collector_invalid_samples_suppressed_total', help: 'INVALID packet samples folded into a later sample by the rate limit', registers: [registry] }),
    conntrackRule: new Gauge({ name: 'ctpipe_collector_conntrack_rule_up', help: '1 while the table --enable-conntrack added for this process is in place, 0 once it is gone (conntrack may have stopped tracking)', registers: [registry] }),
    eventAge: new Gauge({ name: 'ctpipe_collector_event_age_seconds', help: 'Seconds since the last conntrack event came in (updated at each statistics poll)', registers: [registry] }),
    quiet: new Gauge({ name: 'ctpipe_collector_conntrack_quiet', help: '1 while no conntrack event has come for collect.quiet_warning after events came before (conntrack may have stopped tracking the namespace)', registers: [registry] }),
    sysctl: new Gauge({ name: 'ctpipe_collector_sysctl', help: 'Conntrack sysctl values seen at start (-1 unreadable)', labelNames: ['key'], registers: [registry] }),
    /** The table itself, node_exporter's way and more (conntrack-metrics.ts). */
    conntrack: new ConntrackMetrics(registry, opts.perCpu),
  };
  recordTallies.attach(m.records);
  return m;
}

export type CollectorMetrics = ReturnType<typeof collectorMetrics>;
