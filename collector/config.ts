/** The collector's configuration section (`collect`); composed with the others by cli/config.ts. */
import { z } from 'zod';
import { duration, size } from '../common/config-kinds.js';

export const EVENT_KINDS = ['new', 'update', 'destroy', 'exp_new', 'exp_destroy'] as const;

export const collectSection = z.strictObject({
  output: z.enum(['kafka', 'jsonl']).default('kafka').describe('Where records go: Kafka, or JSON lines on stdout'),
  events: z.array(z.enum(EVENT_KINDS)).min(1).default([...EVENT_KINDS])
    .describe('Event groups to subscribe to (e.g. destroy only: fewer events, still every flow)'),
  netns: z.string().optional().describe('Watch another network namespace, by path (e.g. /run/netns/NAME); `all`: every named namespace (/run/netns/*), `containers`: those and every running process\'s (/proc/*/ns/net), each picked up when it appears and let go when removed, its records and rows tagged with its name (else inode:N). Entering a namespace needs CAP_SYS_ADMIN as well as CAP_NET_ADMIN'),
  netns_interval: duration('2s', 'With netns all or containers: how often to look for namespaces created or removed', { min: 100 }),
  rcvbuf: size('512MiB', 'Netlink receive buffer (SO_RCVBUFFORCE, needs CAP_NET_ADMIN): the kernel holds events here while the reader catches up in a storm (a 1M-entry flush is ~1 GB of events); memory is used only while events wait', { min: 64 << 10, max: 1 << 30 }),
  processing_nice: z.number().int().min(0).max(19).default(5).describe('Nice value of every thread but the netlink readers, so the readers drain the kernel first in a storm and no event is dropped while the rest is busy (0: leave the priorities alone)'),
  rcvbuf_max: size('1GiB', 'Upper bound when the buffer is doubled after an overrun (the kernel takes at most 1GiB: twice the value must fit a C int)', { min: 64 << 10, max: 1 << 30 }),
  dump: z.boolean().default(true).describe('Dump the table at start and emit it as snapshot records'),
  stats_interval: duration('10s', 'How often to poll per-CPU conntrack statistics and the table\'s entries and limit (the stats records, the ctpipe_conntrack_* metrics)', { min: 100 }),
  metrics_per_cpu: z.boolean().default(false).describe('Give the ctpipe_conntrack_stat_* counters a cpu label (one series per CPU) instead of summing them over the CPUs'),
  resync_min_interval: duration('10s', 'Least time between two resync dumps after overruns', { min: 0 }),
  set_sysctls: z.boolean().default(false).describe('Turn on nf_conntrack_events, _acct and _timestamp at start (they stay on after stop unless restore_sysctls; they apply to the whole network namespace)'),
  restore_sysctls: z.boolean().default(false).describe('With set_sysctls: put back at stop the values set_sysctls changed'),
  enable_conntrack: z.boolean().default(false).describe('Make conntrack track this network namespace: add an nftables table of this process\'s own, inet ctpipe_conntrack_p<pid>_n<ns> (rules that only count new connections), while running'),
  quiet_warning: duration('5m', 'Warn (log CONNTRACK_QUIET, gauge ctpipe_collector_conntrack_quiet) when no conntrack event has come for this long after events came before (0: never)', { min: 0 }),
  nflog_group: z.number().int().min(0).max(65535).optional().describe('NFLOG group fed by `ct state invalid log group N` (INVALID packet samples; off when unset)'),
  nflog_rate: z.number().int().min(1).default(100).describe('INVALID packet samples per second at most (the rest are counted in the next sample\'s weight)'),
  counter_dump_interval: duration('60s', 'How often to dump the table so that open flows\' refresh rows carry the kernel\'s byte and packet counters (the kernel sends them only in DESTROY events and dumps); 0: never. Skipped above counter_dump_max_entries', { min: 0 }),
  counter_dump_max_entries: z.number().int().min(0).default(250_000).describe('No counter dump (periodic, or at the stop of ctpipe run) while the table holds more entries than this: a dump costs the collector 3 to 4 us of CPU per entry, and as many records go through Kafka (docs/PERFORMANCE.md)'),
  counter_dump_at_stop: duration('10s', 'ctpipe run: dump the table at stop, at most this long, so the rows of the flows still open carry their counters (0: no dump at stop)', { min: 0 }),
  duration: duration('0s', 'Stop after this long (0: run until SIGINT/SIGTERM)', { min: 0 }),
});

export type CollectConfig = z.output<typeof collectSection>;
