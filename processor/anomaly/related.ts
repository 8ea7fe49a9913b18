/**
 * Related-flow (conntrack helper) anomalies, from expectations as the helpers create them and from
 * RELATED flows as they start (lifecycle-anomaly.md §4.2):
 *
 * | kind | evidence |
 * |---|---|
 * | `related_third_host` | an expectation or RELATED flow with an endpoint that is neither end of its master connection |
 * | `related_privileged_port` | one toward a port below 1024 (FTP data goes to high ports) |
 * | `related_orphan` | a RELATED flow whose master the processor never saw, or that outlived its master deleted while open (`conntrack -D`, a flush) |
 * | `expectation_flood` | more outstanding expectations per master connection than the helper's limit (the kernel's max_expected), or more new ones per host per minute than `perMinute` |
 * | `expectation_unused_burst` | `unusedPerMinute` expectations in a minute that expired unused (destroyed at their timeout, not by a connection or a newer expectation) |
 * | `helper_unexpected_port` | a master connection whose helper is not the one for its port (e.g. ftp on 2121) |
 * | `nat_slipstreaming` | a SIP signalling expectation toward the client itself on a port that is neither its SIP port nor the one it speaks from (Kamkar's NAT Slipstreaming: a browser's REGISTER opening an internal port) |
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
  /** Expectations expiring unused per host per minute that make a burst. */
  unusedPerMinute: number;
  /** Expectations a helper keeps outstanding per master connection at most (the kernel's max_expected). */
  perMaster: Record<string, number>;
  /** The ports each helper is normally attached to. */
  helperPorts: Record<string, number[]>;
}

type Kind = 'related_third_host' | 'related_privileged_port' | 'related_orphan' | 'expectation_flood' | 'expectation_unused_burst'
  | 'helper_unexpected_port' | 'nat_slipstreaming';
const CRITICAL = new Set<Kind>(['related_third_host', 'related_privileged_port', 'nat_slipstreaming']);
/** TCP states of a connection that was closing (FIN or RST seen) rather than cut while open. */
const CLOSING = new Set(['FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE']);
const PERMANENT = 0x1; // NF_CT_EXPECT_PERMANENT: stays after use, so its expiry says nothing
const LIMIT = 10_000; // entries kept per map, the oldest forgotten first

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
  /** Live expectations by id: when each was created and its timeout (s). */
  live: Map<number, [number, number]>;
  unusedMinute: number;
  unusedInMinute: number;
  /** Helper connections cut while open (flow id -> when), for the RELATED flows that outlive them. */
  cut: Map<string, number>;
}

/** A host's state in a checkpoint (the optional parts are newer than some checkpoints). */
type Saved = Pick<HostState, 'open' | 'minute' | 'inMinute'> & Partial<Pick<HostState, 'unusedMinute' | 'unusedInMinute'>>
  & { perMaster: [string, number][]; live?: [number, [number, number]][]; cut?: [string, number][] };

const tupleText = (t: Tuple | undefined) => (t ? `${t.src}:${t.sport ?? ''} -> ${t.dst}:${t.dport ?? ''}/${t.proto}` : '');
const masterKey = (t: Tuple) => `${t.proto}|${t.src}|${t.sport ?? ''}|${t.dst}|${t.dport ?? ''}`;

export type RelatedState = [string, Saved][];

/** Sets `k` last in the map's order (by last use) and forgets the oldest past LIMIT. */
function touch<K, V>(m: Map<K, V>, k: K, v: V): void {
  m.delete(k);
  m.set(k, v);
  if (m.size > LIMIT) m.delete(m.keys().next().value!);
}

export class RelatedDetector {
  private readonly hosts = new Map<string, HostState>();

  constructor(private readonly o: RelatedOptions) {}

  exportState(): RelatedState {
    return [...this.hosts].map(([k, h]) => [k, { ...h, perMaster: [...h.perMaster], live: [...h.live], cut: [...h.cut] }]);
  }

  importState(s: RelatedState): void {
    for (const [k, h] of s) {
      this.hosts.set(k, {
        ...h, unusedMinute: h.unusedMinute ?? 0, unusedInMinute: h.unusedInMinute ?? 0,
        perMaster: new Map(h.perMaster), live: new Map(h.live), cut: new Map(h.cut),
      });
    }
  }

  private host(name: string): HostState {
    let h = this.hosts.get(name);
    if (!h) {
      h = { open: {}, perMaster: new Map(), minute: 0, inMinute: 0, live: new Map(), unusedMinute: 0, unusedInMinute: 0, cut: new Map() };
      this.hosts.set(name, h);
    }
    return h;
  }

  /** An expectation created by a helper. */
  onExpectation(r: ExpRecord): AnomalyRow[] {
    if (!r.master || !r.expected || r.snapshot) return [];
    const h = this.host(r.host);
    const mk = masterKey(r.master);
    const at = { sec: r.sec, nsec: r.nsec };
    const ev = { helper: r.helper ?? '', master: tupleText(r.master), expected: tupleText(r.expected) };
    if (r.type === 'exp_destroy') {
      const n = (h.perMaster.get(mk) ?? 0) - 1;
      if (n > 0) h.perMaster.set(mk, n);
      else h.perMaster.delete(mk);
      return this.expired(r, h, at, ev);
    }
    const out: AnomalyRow[] = [];
    if (r.id !== undefined && r.timeout !== undefined && !((r.flags ?? 0) & PERMANENT)) touch(h.live, r.id, [r.sec + r.nsec / 1e9, r.timeout]);
    if (r.helper === 'sip' && !r.class && r.expected.dst === r.master.src && r.expected.dport !== undefined
      && r.expected.dport !== r.master.sport && !(this.o.helperPorts.sip ?? []).includes(r.expected.dport)) {
      out.push(this.hit(r.host, h, 'nat_slipstreaming', at, ev));
    }
    const anySource = r.mask !== undefined && /^(0\.0\.0\.0|::)$/.test(r.mask.src); // a wildcard source
    if (outsideMaster(r.expected, r.master, anySource)) out.push(this.hit(r.host, h, 'related_third_host', at, ev));
    if (r.expected.dport !== undefined && r.expected.dport < 1024) out.push(this.hit(r.host, h, 'related_privileged_port', at, ev));
    const n = (h.perMaster.get(mk) ?? 0) + 1;
    touch(h.perMaster, mk, n);
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

  /**
   * An expectation gone: expired unused when it lived its whole timeout (one taken by a connection
   * or evicted by a newer one goes earlier). A minute with `unusedPerMinute` of them is a burst.
   */
  private expired(r: ExpRecord, h: HostState, at: Time, ev: Record<string, unknown>): AnomalyRow[] {
    const born = r.id === undefined ? undefined : h.live.get(r.id);
    if (!born) return [];
    h.live.delete(r.id!);
    const lived = r.sec + r.nsec / 1e9 - born[0];
    if (lived < born[1] - 1) return []; // the timeout is whole seconds left when it was created
    const minute = Math.floor(r.sec / 60);
    if (minute !== h.unusedMinute) {
      h.unusedMinute = minute;
      h.unusedInMinute = 0;
    }
    if (++h.unusedInMinute < this.o.unusedPerMinute) return [];
    return [this.hit(r.host, h, 'expectation_unused_burst', at, { ...ev, lived_s: Math.round(lived * 10) / 10, in_minute: h.unusedInMinute })];
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

  /**
   * A finished lifecycle. A helper's TCP connection destroyed while still open (not closing) was
   * cut; a RELATED one is an orphan when its master was never linked, or was cut before it ended.
   * (A DESTROY event carries no master tuple, so this is judged on rows, where the link is kept.)
   */
  onFlow(row: FlowRow): AnomalyRow[] {
    if (row.end_reason === 'open') return [];
    const end = (row.ended_at ?? row.first_seen).sec;
    if (row.helper !== '' && !row.related && row.proto === 6 && row.end_reason === 'destroy' && !CLOSING.has(row.final_tcp_state)) {
      touch(this.host(row.host).cut, row.flow_id, end);
    }
    if (!row.related) return [];
    const h = this.hosts.get(row.host);
    const cutAt = row.master_flow_id === '' ? undefined : h?.cut.get(row.master_flow_id);
    if (row.master_flow_id !== '' && (cutAt === undefined || cutAt > end)) return [];
    const ev = { related: `${row.orig_src}:${row.orig_sport} -> ${row.orig_dst}:${row.orig_dport}/${row.proto}`, helper: row.helper,
      master: row.master_flow_id === '' ? 'unknown' : 'cut while open', master_flow_id: row.master_flow_id };
    const at = cutAt === undefined ? row.first_seen : (row.ended_at ?? row.first_seen);
    return [this.hit(row.host, this.host(row.host), 'related_orphan', at, ev, row.flow_id)];
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
      host, kind, severity: CRITICAL.has(kind) ? 'critical' : 'warning',
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
