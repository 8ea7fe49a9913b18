/**
 * Related-flow (conntrack helper) anomalies, from expectations as the helpers create them and from
 * RELATED flows as they start (lifecycle-anomaly.md §4.2):
 *
 * | kind | evidence |
 * |---|---|
 * | `related_third_host` | an expectation or RELATED flow with an endpoint that is neither end of its master connection |
 * | `related_privileged_port` | one toward a port below 1024 (FTP data goes to high ports) |
 * | `related_orphan` | a RELATED flow whose master the processor never saw or saw end |
 * | `expectation_flood` | more outstanding expectations per master connection than the helper's limit (the kernel's max_expected), or more new ones per host per minute than `perMinute` |
 * | `helper_unexpected_port` | a master connection whose helper is not the one for its port (e.g. ftp on 2121) |
 *
 * Each is one anomaly per (host, kind) while such events keep coming: its evidence lists the first
 * cases (master and child tuples, flow ids), and it closes after `quietS` of event time without
 * one (advanced by the host's statistics, so it closes even without traffic).
 */
import type { CtRecord, ExpRecord, Tuple } from '../../contract/records.js';
import type { FlowRow, Time } from '../lifecycle/flow-row.js';
import { versionOf, type AnomalyRow } from './row.js';

export interface RelatedOptions {
  quietS: number;
  perMinute: number;
  /** Expectations a helper keeps outstanding per master connection at most (the kernel's max_expected). */
  perMaster: Record<string, number>;
  /** The ports each helper is normally attached to. */
  helperPorts: Record<string, number[]>;
}

type Kind = 'related_third_host' | 'related_privileged_port' | 'related_orphan' | 'expectation_flood' | 'helper_unexpected_port';

interface Open {
  startedAt: Time;
  last: Time;
  count: number;
  evidence: Record<string, unknown>[];
  flows: string[];
}

interface HostState {
  open: Partial<Record<Kind, Open>>;
  /** Outstanding expectations per master tuple, and new ones this minute. */
  perMaster: Map<string, number>;
  minute: number;
  inMinute: number;
}

const tupleText = (t: Tuple | undefined) => (t ? `${t.src}:${t.sport ?? ''} -> ${t.dst}:${t.dport ?? ''}/${t.proto}` : '');
const masterKey = (t: Tuple) => `${t.proto}|${t.src}|${t.sport ?? ''}|${t.dst}|${t.dport ?? ''}`;

export type RelatedState = [string, { open: HostState['open']; perMaster: [string, number][]; minute: number; inMinute: number }][];

export class RelatedDetector {
  private readonly hosts = new Map<string, HostState>();

  constructor(private readonly o: RelatedOptions) {}

  exportState(): RelatedState {
    return [...this.hosts].map(([k, h]) => [k, { ...h, perMaster: [...h.perMaster] }]);
  }

  importState(s: RelatedState): void {
    for (const [k, h] of s) this.hosts.set(k, { ...h, perMaster: new Map(h.perMaster) });
  }

  private host(name: string): HostState {
    let h = this.hosts.get(name);
    if (!h) this.hosts.set(name, (h = { open: {}, perMaster: new Map(), minute: 0, inMinute: 0 }));
    return h;
  }

  /** An expectation created by a helper. */
  onExpectation(r: ExpRecord): AnomalyRow[] {
    if (!r.master || !r.expected || r.snapshot) return [];
    const h = this.host(r.host);
    const mk = masterKey(r.master);
    if (r.type === 'exp_destroy') {
      const n = (h.perMaster.get(mk) ?? 0) - 1;
      if (n > 0) h.perMaster.set(mk, n);
      else h.perMaster.delete(mk);
      return [];
    }
    const at = { sec: r.sec, nsec: r.nsec };
    const out: AnomalyRow[] = [];
    const ev = { helper: r.helper ?? '', master: tupleText(r.master), expected: tupleText(r.expected) };
    const anySource = r.mask !== undefined && /^(0\.0\.0\.0|::)$/.test(r.mask.src); // a wildcard source
    if (outsideMaster(r.expected, r.master, anySource)) out.push(this.hit(r.host, h, 'related_third_host', at, ev));
    if (r.expected.dport !== undefined && r.expected.dport < 1024) out.push(this.hit(r.host, h, 'related_privileged_port', at, ev));
    const n = (h.perMaster.get(mk) ?? 0) + 1;
    h.perMaster.delete(mk); // re-insert: the map's order is by last use, the oldest forgotten first
    h.perMaster.set(mk, n);
    if (h.perMaster.size > 10_000) h.perMaster.delete(h.perMaster.keys().next().value!);
    const minute = Math.floor(r.sec / 60);
    if (minute !== h.minute) {
      h.minute = minute;
      h.inMinute = 0;
    }
    h.inMinute++;
    const limit = this.o.perMaster[r.helper ?? ''] ?? Infinity;
    if (n > limit) out.push(this.hit(r.host, h, 'expectation_flood', at, { ...ev, per_master: n, limit }));
    else if (h.inMinute === this.o.perMinute + 1) out.push(this.hit(r.host, h, 'expectation_flood', at, { ...ev, per_minute: h.inMinute, limit: this.o.perMinute }));
    return out;
  }

  /** A flow record: RELATED flows as they start, and masters whose helper sits on an odd port. */
  onFlowRecord(r: CtRecord): AnomalyRow[] {
    if (r.type !== 'new') return [];
    const at = { sec: r.sec, nsec: r.nsec };
    const out: AnomalyRow[] = [];
    if (r.master) {
      const h = this.host(r.host);
      const ev = { master: tupleText(r.master), related: tupleText(r.orig), helper: r.helper ?? '' };
      if (outsideMaster(r.orig, r.master)) out.push(this.hit(r.host, h, 'related_third_host', at, ev));
      if (r.orig.dport !== undefined && r.orig.dport < 1024) out.push(this.hit(r.host, h, 'related_privileged_port', at, ev));
    }
    if (r.helper && !r.master) {
      const ports = this.o.helperPorts[r.helper];
      if (ports && r.orig.dport !== undefined && !ports.includes(r.orig.dport)) {
        out.push(this.hit(r.host, this.host(r.host), 'helper_unexpected_port', at, { helper: r.helper, master: tupleText(r.orig), expected_ports: ports }));
      }
    }
    return out;
  }

  /** A finished lifecycle: a RELATED one whose master was never linked is an orphan. */
  onFlow(row: FlowRow): AnomalyRow[] {
    if (!row.related || row.master_flow_id !== '' || row.end_reason === 'open') return [];
    return [this.hit(row.host, this.host(row.host), 'related_orphan', row.first_seen,
      { related: `${row.orig_src}:${row.orig_sport} -> ${row.orig_dst}:${row.orig_dport}/${row.proto}`, helper: row.helper }, row.flow_id)];
  }

  /** Event time moved on for a host: anomalies quiet for `quietS` close. */
  advance(host: string, t: Time): AnomalyRow[] {
    const h = this.hosts.get(host);
    if (!h) return [];
    const out: AnomalyRow[] = [];
    for (const [kind, a] of Object.entries(h.open) as [Kind, Open][]) {
      if (t.sec - a.last.sec < this.o.quietS) continue;
      out.push(this.row(host, kind, a, t));
      delete h.open[kind];
    }
    return out;
  }

  private hit(host: string, h: HostState, kind: Kind, at: Time, evidence: Record<string, unknown>, flowId?: string): AnomalyRow {
    let a = h.open[kind];
    if (!a) h.open[kind] = a = { startedAt: at, last: at, count: 0, evidence: [], flows: [] };
    a.count++;
    if (at.sec > a.last.sec || (at.sec === a.last.sec && at.nsec > a.last.nsec)) a.last = at;
    if (a.evidence.length < 20) a.evidence.push({ at: at.sec, ...evidence });
    if (flowId && a.flows.length < 20) a.flows.push(flowId);
    return this.row(host, kind, a);
  }

  private row(host: string, kind: Kind, a: Open, endedAt?: Time): AnomalyRow {
    return {
      host, kind, severity: kind === 'related_third_host' || kind === 'related_privileged_port' ? 'critical' : 'warning',
      started_at: a.startedAt, ended_at: endedAt ?? null, score: a.count, baseline: 0, observed: a.count,
      details: { cases: a.count, evidence: a.evidence }, flow_ids: a.flows, version: versionOf(endedAt ?? a.last) * 1000 + (endedAt ? 999 : a.count % 999),
    };
  }
}

/** An endpoint of `t` that is neither end of the master connection (addresses only). */
function outsideMaster(t: Tuple, master: Tuple, anySource = false): boolean {
  const ends = new Set([master.src, master.dst]);
  return (!anySource && !ends.has(t.src)) || !ends.has(t.dst);
}
