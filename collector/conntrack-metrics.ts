/**
 * The conntrack table for Prometheus, as node_exporter names it (`node_nf_conntrack_entries`,
 * `_entries_limit`, `node_nf_conntrack_stat_*`) under `ctpipe_conntrack_`, and more: every per-CPU
 * statistic the kernel sends, expectations, and the events received by type. Each series carries
 * `netns`, the namespace the collector watches ("host" for its own), so one registry can hold several.
 *
 * Values come from the collector's statistics poll (collect.stats_interval): the same ctnetlink
 * requests as `conntrack -S` and the table's entry count and limit (`conntrack -C`, nf_conntrack_max).
 * The kernel's per-CPU counters are u32 and wrap; each is followed per CPU and only its increase
 * (mod 2^32) is added, so the exported counters start at the kernel's sum and never go backwards.
 */
import path from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import { STAT_FIELDS, type StatField, type StatsRecord } from '../contract/records.js';
import { CounterTallies, type Tally } from './metric-tally.js';

const U32 = 2 ** 32;

/** Record types of the event socket, as the `type` label of ctpipe_conntrack_events_total. */
export const EVENT_TYPES = ['new', 'update', 'destroy', 'exp_new', 'exp_destroy'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Counts of one namespace's events by type (ctpipe_conntrack_events_total). */
export type EventCounts = Record<EventType, Tally>;

const EXP_FIELDS = ['exp_new', 'exp_create', 'exp_delete'] as const;

const STAT_HELP: Record<StatField, string> = {
  found: 'Lookups that found an existing entry',
  invalid: 'Packets conntrack could not track (INVALID; they create no entry and no event)',
  insert: 'Entries inserted into the table',
  insert_failed: 'Entries that could not be inserted (e.g. a clash that could not be resolved); the packet is dropped',
  drop: 'Packets dropped because a new entry could not be made (table full, no early drop possible)',
  early_drop: 'Entries evicted early to make room in a full table',
  error: 'Packets with an error the L4 tracker found (e.g. ICMP errors with a bad inner header)',
  search_restart: 'Lookups restarted because the hash table was resized or a bucket moved under them',
  clash_resolve: 'Insert clashes (two packets of one new flow on two CPUs) resolved without a drop',
  chaintoolong: 'Hash chains found longer than the kernel allows (a sign of a hash flood)',
};

/** The `netns` label of a namespace the collector watches: "host" for its own, a /run/netns name, else the path. */
export function netnsLabel(netns: string | undefined): string {
  if (!netns) return 'host';
  const dir = path.dirname(netns);
  return dir === '/run/netns' || dir === '/var/run/netns' ? path.basename(netns) : netns;
}

export class ConntrackMetrics {
  readonly entries: Gauge;
  readonly limit: Gauge;
  readonly expectations: Gauge;
  readonly events: Counter;
  readonly stats: Record<StatField, Counter>;
  readonly expStats: Record<(typeof EXP_FIELDS)[number], Counter>;
  /** Last raw u32 per netns, CPU and field: what the next poll's increase is measured from. */
  private readonly last = new Map<string, number>();
  /** Events counted in plain numbers per namespace and type, published at each read (metric-tally.ts). */
  private readonly eventTallies = new CounterTallies();
  private readonly eventsByNetns = new Map<string, EventCounts>();

  /** `perCpu`: a `cpu` label on the statistics counters (one series per CPU) instead of their sum. */
  constructor(registry: Registry, readonly perCpu = false) {
    const statLabels = perCpu ? ['netns', 'cpu'] : ['netns'];
    this.entries = new Gauge({ name: 'ctpipe_conntrack_entries', help: 'Entries in the conntrack table (conntrack -C, nf_conntrack_count), at the last statistics poll', labelNames: ['netns'], registers: [registry] });
    this.limit = new Gauge({ name: 'ctpipe_conntrack_entries_limit', help: 'Most entries the conntrack table may hold (nf_conntrack_max), at the last statistics poll', labelNames: ['netns'], registers: [registry] });
    this.expectations = new Gauge({ name: 'ctpipe_conntrack_expect_entries', help: 'Expectations (helper-announced related connections) in the table: created minus deleted', labelNames: ['netns'], registers: [registry] });
    this.events = new Counter({ name: 'ctpipe_conntrack_events_total', help: 'Conntrack events received on the event socket, by type (new, update, destroy, exp_new, exp_destroy)', labelNames: ['netns', 'type'], registers: [registry], collect: () => this.eventTallies.publish() });
    this.eventTallies.attach(this.events);
    this.stats = {} as Record<StatField, Counter>;
    for (const f of STAT_FIELDS) {
      this.stats[f] = new Counter({ name: `ctpipe_conntrack_stat_${f}_total`, help: `${STAT_HELP[f]} (kernel per-CPU statistic${perCpu ? '' : ', summed over CPUs'})`, labelNames: statLabels, registers: [registry] });
    }
    this.expStats = {
      exp_new: new Counter({ name: 'ctpipe_conntrack_stat_expect_new_total', help: 'Expectations that matched a new connection (kernel statistic, summed over CPUs)', labelNames: ['netns'], registers: [registry] }),
      exp_create: new Counter({ name: 'ctpipe_conntrack_stat_expect_create_total', help: 'Expectations created (kernel statistic, summed over CPUs)', labelNames: ['netns'], registers: [registry] }),
      exp_delete: new Counter({ name: 'ctpipe_conntrack_stat_expect_delete_total', help: 'Expectations deleted: used, expired or removed (kernel statistic, summed over CPUs)', labelNames: ['netns'], registers: [registry] }),
    };
  }

  /** One event from the event socket. */
  event(netns: string, type: EventType): void {
    this.eventCounts(netns)[type].n++;
  }

  /** A namespace's event counts by type: the collector adds to them directly, one increment an event. */
  eventCounts(netns: string): EventCounts {
    let c = this.eventsByNetns.get(netns);
    if (c === undefined) {
      const t = (type: EventType) => this.eventTallies.of({ netns, type });
      c = { new: t('new'), update: t('update'), destroy: t('destroy'), exp_new: t('exp_new'), exp_destroy: t('exp_destroy') };
      this.eventsByNetns.set(netns, c);
    }
    return c;
  }

  /** A statistics poll's record: entries and limit set, counters moved by what each CPU's counter grew. */
  observe(netns: string, rec: Pick<StatsRecord, 'cpus' | 'entries' | 'max_entries' | 'exp_new' | 'exp_create' | 'exp_delete'>): void {
    if (rec.entries !== undefined) this.entries.set({ netns }, rec.entries);
    if (rec.max_entries !== undefined) this.limit.set({ netns }, rec.max_entries);
    for (const c of rec.cpus) {
      const labels = this.perCpu ? { netns, cpu: String(c.cpu) } : { netns };
      for (const f of STAT_FIELDS) {
        // an increase of 0 still makes the series exist from the first poll
        this.stats[f].inc(labels, this.grow(`${netns}\0${c.cpu}\0${f}`, c[f]));
      }
    }
    // The kernel's expectation statistics come summed over CPUs already (query: one sum per poll).
    for (const f of EXP_FIELDS) {
      const v = rec[f];
      if (v === undefined) continue;
      this.expStats[f].inc({ netns }, this.grow(`${netns}\0exp\0${f}`, v));
    }
    if (rec.exp_create !== undefined && rec.exp_delete !== undefined) {
      // Every insert counts exp_create, every unlink exp_delete (nf_conntrack_expect.c), on
      // whichever CPU: the difference of the sums, mod 2^32, is the table's expectation count.
      this.expectations.set({ netns }, (((rec.exp_create - rec.exp_delete) % U32) + U32) % U32);
    }
  }

  /** A namespace let go (--netns all, containers): its series go with it, so the label set stays bounded. */
  forget(netns: string): void {
    for (const m of [this.entries, this.limit, this.expectations, ...Object.values(this.expStats)]) m.remove({ netns });
    this.eventTallies.drop((l) => l.netns === netns);
    this.eventsByNetns.delete(netns);
    for (const type of EVENT_TYPES) this.events.remove({ netns, type });
    const cpus = new Set<string>();
    for (const key of [...this.last.keys()]) {
      const [ns, cpu] = key.split('\0');
      if (ns !== netns) continue;
      if (cpu !== 'exp') cpus.add(cpu!);
      this.last.delete(key);
    }
    for (const c of Object.values(this.stats)) {
      if (!this.perCpu) c.remove({ netns });
      else for (const cpu of cpus) c.remove({ netns, cpu });
    }
  }

  /** The increase of a wrapping u32 (or a sum of them) since the last poll; its whole value at the first. */
  private grow(key: string, raw: number): number {
    const before = this.last.get(key);
    this.last.set(key, raw);
    if (before === undefined) return raw;
    return (raw - before + U32) % U32;
  }
}
