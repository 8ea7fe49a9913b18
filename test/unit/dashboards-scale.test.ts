/**
 * The dashboard queries rewritten for fleet scale (bench/dashboards-scale.ts) answer as the queries
 * they replace did, and the per-host charts draw the busiest hosts' series as they did. Both run on
 * a synthetic fleet (bench/synthetic-fleet.ts) stored half before schema version 5 (flows_state_1m
 * filled from flows_1m by the migration, version 6's indexes built for the parts stored) and half
 * after, over the whole range and over an hour ending mid-minute, with the variables at "All", at
 * one host, at a protocol and two conn_states, and with an address.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetOf, insertFlows, insertStats, type Fleet } from '../../bench/synthetic-fleet.js';
import { TOP_HOSTS } from '../../dashboards/fleet.js';
import { dashboards } from '../../dashboards/generate.js';
import { queriesOf } from '../../dashboards/lint.js';
import { expand, type Variable } from '../../dashboards/macros.js';
import { REPORT_PANELS, renderReport } from '../../dashboards/report.js';
import { resolveVariables, runDashboard } from '../../dashboards/run-queries.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { MIGRATIONS } from '../../processor/clickhouse/schema.js';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';

/** The queries as they were before the rewrite (dashboards/grafana/dashboards/*.json at 84daae0). */
const BEFORE: Record<string, string> = {
  'ctpipe-fleet panel 3 "New connections/s" A': "SELECT sum(flows) / greatest(1, dateDiff('second', $__fromTime, $__toTime)) AS new_per_s FROM ctpipe.flows_1m WHERE $__timeFilter(minute) AND $__conditionalAll(host IN (${host:singlequote}), $host)",
  'ctpipe-fleet panel 12 "Top hosts" A': "SELECT s.host AS host, ifNull(f.new_per_s, 0) AS new_per_s, s.invalid_per_s, s.peak_fill, s.drops_per_s, ifNull(a.open, 0) AS open_anomalies FROM (SELECT host, sum(invalid) / greatest(1, dateDiff('second', $__fromTime, $__toTime)) AS invalid_per_s, max(entries / greatest(max_entries, 1)) AS peak_fill, sum(early_drop + drop + insert_failed) / greatest(1, dateDiff('second', $__fromTime, $__toTime)) AS drops_per_s FROM ctpipe.host_stats WHERE $__timeFilter(ts) AND $__conditionalAll(host IN (${host:singlequote}), $host) GROUP BY host) AS s LEFT JOIN (SELECT host, sum(flows) / greatest(1, dateDiff('second', $__fromTime, $__toTime)) AS new_per_s FROM ctpipe.flows_1m WHERE $__timeFilter(minute) GROUP BY host) AS f ON s.host = f.host LEFT JOIN (SELECT host, count() AS open FROM ctpipe.anomalies FINAL WHERE $__timeFilter(started_at) AND ended_at IS NULL GROUP BY host) AS a ON s.host = a.host ORDER BY new_per_s DESC LIMIT 50",
  'ctpipe-host panel 11 "Top peers" A': 'SELECT orig_dst_text AS peer, count() AS connections, sum(orig_bytes + reply_bytes) AS bytes FROM ctpipe.flows FINAL WHERE host = ${host:singlequote} AND $__timeFilter(first_seen) GROUP BY peer ORDER BY connections DESC LIMIT 15',
  'ctpipe-flows variable proto': "SELECT DISTINCT proto AS value, multiIf(proto = 6, 'tcp', proto = 17, 'udp', proto = 1, 'icmp', proto = 58, 'icmpv6', proto = 132, 'sctp', toString(proto)) AS text FROM ctpipe.flows_1m WHERE $__timeFilter(minute) ORDER BY value",
  'ctpipe-flows variable conn_state': 'SELECT DISTINCT conn_state FROM ctpipe.flows_1m WHERE $__timeFilter(minute) ORDER BY conn_state',
  'ctpipe-flows panel 2 "Connections by conn_state" A': 'SELECT toStartOfInterval(minute, INTERVAL ${bucket} second) AS time, conn_state, sum(flows) AS connections FROM ctpipe.flows_1m WHERE $__timeFilter(minute) AND $__conditionalAll(host IN (${host:singlequote}), $host) AND $__conditionalAll(proto IN (${proto:csv}), $proto) GROUP BY time, conn_state ORDER BY time',
  'ctpipe-flows panel 3 "Connections" A': "SELECT flow_id, host, netns, first_seen, ended_at, multiIf(proto = 6, 'tcp', proto = 17, 'udp', proto = 1, 'icmp', proto = 58, 'icmpv6', proto = 132, 'sctp', toString(proto)) AS protocol, orig_src_text AS src, orig_sport AS sport, orig_dst_text AS dst, orig_dport AS dport, final_tcp_state AS tcp_state, conn_state, round(duration_ms / 1000, 3) AS duration_s, orig_bytes + reply_bytes AS bytes, helper, related, master_flow_id FROM ctpipe.flows FINAL WHERE $__timeFilter(first_seen) AND $__conditionalAll(host IN (${host:singlequote}), $host) AND $__conditionalAll(netns IN (${netns:singlequote}), $netns) AND $__conditionalAll(proto IN (${proto:csv}), $proto) AND $__conditionalAll(conn_state IN (${conn_state:singlequote}), $conn_state) AND (${address:sqlstring} = '' OR orig_src_text = ${address:sqlstring} OR orig_dst_text = ${address:sqlstring}) ORDER BY first_seen DESC LIMIT 1000",
  'ctpipe-flows panel 4 "Selected flow and its related flows" A': "SELECT flow_id, host, netns, first_seen, ended_at, multiIf(proto = 6, 'tcp', proto = 17, 'udp', proto = 1, 'icmp', proto = 58, 'icmpv6', proto = 132, 'sctp', toString(proto)) AS protocol, orig_src_text AS src, orig_sport AS sport, orig_dst_text AS dst, orig_dport AS dport, final_tcp_state AS tcp_state, conn_state, round(duration_ms / 1000, 3) AS duration_s, orig_bytes + reply_bytes AS bytes, helper, related, master_flow_id FROM ctpipe.flows FINAL WHERE $__timeFilter(first_seen) AND ${flow:sqlstring} != '' AND (flow_id = ${flow:sqlstring} OR master_flow_id = ${flow:sqlstring} OR flow_id IN (SELECT master_flow_id FROM ctpipe.flows WHERE flow_id = ${flow:sqlstring})) ORDER BY first_seen LIMIT 1000",
};

/**
 * The per-host charts before they drew only the TOP_HOSTS hosts with the most of their measure
 * over the range: the value column, and whether the range's measure sums or takes the peak of it.
 */
const BY_HOST: Record<string, { sql: string; value: string; measure: 'sum' | 'max' }> = {
  'ctpipe-fleet panel 8 "New connections/s by host" A': { value: 'new_per_s', measure: 'sum', sql: 'SELECT toStartOfInterval(minute, INTERVAL ${bucket} second) AS time, host, sum(flows) / ${bucket} AS new_per_s FROM ctpipe.flows_1m WHERE $__timeFilter(minute) AND $__conditionalAll(host IN (${host:singlequote}), $host) GROUP BY time, host ORDER BY time' },
  'ctpipe-fleet panel 9 "INVALID/s by host" A': { value: 'invalid_per_s', measure: 'sum', sql: 'SELECT $__timeInterval(ts) AS time, host, sum(invalid) / $__interval_s AS invalid_per_s FROM ctpipe.host_stats WHERE $__timeFilter(ts) AND $__conditionalAll(host IN (${host:singlequote}), $host) GROUP BY time, host ORDER BY time' },
  'ctpipe-fleet panel 10 "Table fill by host" A': { value: 'fill', measure: 'max', sql: 'SELECT $__timeInterval(ts) AS time, host, max(entries / max_entries) AS fill FROM ctpipe.host_stats WHERE $__timeFilter(ts) AND max_entries > 0 AND $__conditionalAll(host IN (${host:singlequote}), $host) GROUP BY time, host ORDER BY time' },
  'ctpipe-fleet panel 11 "Open connections by host" A': { value: 'entries', measure: 'max', sql: 'SELECT $__timeInterval(ts) AS time, host, max(entries) AS entries FROM ctpipe.host_stats WHERE $__timeFilter(ts) AND $__conditionalAll(host IN (${host:singlequote}), $host) GROUP BY time, host ORDER BY time' },
  'ctpipe-pipeline panel 2 "Collector events/s by host" A': { value: 'events_per_s', measure: 'sum', sql: 'SELECT $__timeInterval(ts) AS time, host, sum(collector_events) / $__interval_s AS events_per_s FROM ctpipe.host_stats WHERE $__timeFilter(ts) AND $__conditionalAll(host IN (${host:singlequote}), $host) GROUP BY time, host ORDER BY time' },
};

/** Rows in a canonical order (the queries order by time only, or not at all). */
const sorted = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r)).sort();

/** The first `n` rows by `count`: the same rows above the last count shown, and the same counts (ties at the cut may differ). */
function expectSameTop(got: Record<string, unknown>[], want: Record<string, unknown>[], count: string, where: string) {
  const counts = (rows: Record<string, unknown>[]) => rows.map((r) => Number(r[count]));
  expect(counts(got), where).toEqual(counts(want));
  const cut = Math.min(...counts(want));
  const above = (rows: Record<string, unknown>[]) => sorted(rows.filter((r) => Number(r[count]) > cut));
  expect(above(got), where).toEqual(above(want));
}

describe('ctpipe report at fleet scale', () => {
  it('draws a chart of a thousand hosts\' series (its first ten) without spreading 200,000 points into an argument list', () => {
    const panel = { id: 1, type: 'timeseries', title: 'by host', gridPos: { h: 8, w: 12, x: 0, y: 0 } } as unknown as dashboard.Panel;
    const rows = Array.from({ length: 200_000 }, (_, i) => ({ time: new Date(Date.UTC(2026, 11, 4) + (i % 200) * 432_000).toISOString().replace('T', ' ').slice(0, 19), host: `fw-${Math.floor(i / 200)}`, v: i % 7 }));
    const meta = [{ name: 'time', type: 'DateTime' }, { name: 'host', type: 'String' }, { name: 'v', type: 'Float64' }];
    const html = renderReport([{ title: 'Fleet', results: [{ where: 'w', panel, format: 0, sql: '', meta, rows }] }], { fromMs: 0, toMs: 1, store: 'chdb:x' });
    expect(html.match(/<path class="series"/g)).toHaveLength(10);
    expect(html).toContain('>6</text>'); // the axis spans the drawn values
  });
});

describe('dashboard queries rewritten for fleet scale give the answers of the queries they replace', () => {
  let dir: string;
  let store: Store;
  let fleet: Fleet;
  const ctx = { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 3 };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-dash-scale-'));
    store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
    await migrate(store, ctx, 4);
    fleet = fleetOf({ hosts: 40, rows: 60_000, hours: 6 });
    await insertFlows(store, fleet, 0, 30_000);
    expect((await migrate(store, ctx)).applied).toEqual(MIGRATIONS.filter((m) => m.version > 4).map((m) => m.version)); // 5 and 6 among them
    // version 6 builds its indexes for the parts stored before in the background
    while (Number((await store.query<{ n: string }>("SELECT count() n FROM system.mutations WHERE database = 'ctpipe' AND NOT is_done"))[0]!.n) > 0) {
      await sleep(100);
    }
    // the newer half keeps its open rows beside the final ones, as recent data does before merges
    await store.command('SYSTEM STOP MERGES ctpipe.flows');
    await insertFlows(store, fleet, 30_000, 30_000);
    await insertStats(store, fleet);
  }, 300_000);

  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('flows_state_1m holds what flows_1m holds, without the port: the stored half from the migration, the rest from its view', async () => {
    const totals = (table: string) => store.query(`SELECT host, minute, proto, conn_state, sum(flows) f, sum(related) r, sum(orig_bytes) ob, sum(reply_bytes) rb,
      sum(orig_packets) op, sum(reply_packets) rp, round(sum(duration_ms_sum), 3) d FROM ctpipe.${table} GROUP BY ALL ORDER BY ALL`);
    const want = await totals('flows_1m');
    expect(want.length).toBeGreaterThan(1000);
    expect(await totals('flows_state_1m')).toEqual(want);
    expect(await store.query("SELECT count() n FROM ctpipe.flows WHERE end_reason != 'open'")).toEqual(await store.query('SELECT sum(flows) n FROM ctpipe.flows_state_1m'));
    // rows FINAL collapses are there, so the queries that read without FINAL are put to the test
    const [v] = await store.query<{ rows: string; flows: string }>('SELECT count() rows, uniqExact(flow_id) flows FROM ctpipe.flows');
    expect(Number(v!.rows)).toBeGreaterThan(Number(v!.flows));
  });

  /** An FTP control connection of the busiest host with its data connections (the Flow id box). */
  const ftpMaster = async () => (await store.query<{ m: string }>("SELECT master_flow_id m FROM ctpipe.flows WHERE host = 'fw-0001' AND related AND master_flow_id != '' ORDER BY first_seen DESC LIMIT 1"))[0]!.m;

  const cases: { name: string; range: () => [number, number]; pick: (vars: Record<string, Variable>) => void; address?: string; flow?: boolean }[] = [
    { name: 'the whole range, all hosts', range: () => [fleet.fromMs, fleet.toMs], pick: () => undefined },
    { name: 'an hour ending mid-minute, all hosts', range: () => [fleet.toMs - 3_630_500, fleet.toMs - 30_500], pick: () => undefined },
    { name: 'the whole range, the busiest host', range: () => [fleet.fromMs, fleet.toMs], pick: (v) => void (v.host = { values: ['fw-0001'] }) },
    {
      name: 'an hour ending mid-minute, two hosts, TCP, SF and S0', range: () => [fleet.toMs - 3_630_500, fleet.toMs - 30_500],
      pick: (v) => Object.assign(v, { host: { values: ['fw-0001', 'fw-0007'] }, proto: { values: ['6'] }, conn_state: { values: ['SF', 'S0'] } }),
    },
    { name: 'a rare conn_state on one host (fewer than 1,000 lifecycles)', range: () => [fleet.fromMs, fleet.toMs], pick: (v) => Object.assign(v, { host: { values: ['fw-0003'] }, conn_state: { values: ['OTH'] } }) },
    { name: 'an address, all hosts', range: () => [fleet.fromMs, fleet.toMs], pick: () => undefined, address: '198.18.0.0' },
    { name: 'a flow id with its master and related flows, all hosts', range: () => [fleet.fromMs, fleet.toMs], pick: () => undefined, flow: true },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const [fromMs, toMs] = c.range();
      const at = { fromMs, toMs, intervalMs: 60_000 };
      let compared = 0;
      for (const d of dashboards('ctpipe')) {
        const vars = await resolveVariables(store, d, at, 'all', { address: c.address ?? '', flow: c.flow ? await ftpMaster() : '' });
        c.pick(vars);
        // a single-value host variable (Host detail) takes the first of the hosts picked
        if (!d.templating?.list?.find((v) => v.name === 'host')?.multi) vars.host = { values: vars.host!.values.slice(0, 1) };
        for (const q of queriesOf(d)) {
          const before = BEFORE[q.where];
          if (!before) continue;
          expect(q.sql, `${q.where} is rewritten`).not.toBe(before);
          const run = async (sql: string) => (await store.queryWithMeta(expand(sql, { ...at, vars }))).rows;
          const [got, want] = [await run(q.sql), await run(before)];
          if (q.where.includes('Top peers')) expectSameTop(got, want, 'connections', q.where);
          else if (/"(Connections|Selected flow and its related flows)" A/.test(q.where)) expect(got, q.where).toEqual(want); // ordered by first_seen, unique here
          else if (q.where.includes(' variable ')) {
            // a variable offers the same options; a multi-value one's values are encoded now (dashboards/selection.ts)
            const shown = (rows: Record<string, unknown>[]) => rows.map((r) => String('text' in r ? r.text : Object.values(r)[0])).sort();
            expect(shown(got), q.where).toEqual(shown(want));
          } else expect(sorted(got), q.where).toEqual(sorted(want));
          if (c.flow && q.where.includes('Selected flow')) expect(got.length, q.where).toBeGreaterThan(1); // the master and its data connection
          compared++;
        }
      }
      expect(compared).toBe(Object.keys(BEFORE).length);
    });
  }

  it(`the per-host charts draw the ${TOP_HOSTS} hosts with the most over the range, each as before; all of them when fewer are selected`, async () => {
    const at = { fromMs: fleet.fromMs, toMs: fleet.toMs, intervalMs: 60_000 };
    let compared = 0;
    for (const d of dashboards('ctpipe')) {
      for (const hosts of [undefined, ['fw-0002', 'fw-0005', 'fw-0011']]) {
        const vars = await resolveVariables(store, d, at, 'all');
        if (hosts) vars.host = { values: hosts };
        for (const q of queriesOf(d)) {
          const before = BY_HOST[q.where];
          if (!before) continue;
          const run = async (sql: string) => (await store.queryWithMeta(expand(sql, { ...at, vars }))).rows;
          const [got, all] = [await run(q.sql), await run(before.sql)];
          // the range's measure per host, from the old chart's buckets (per-second sums back to counts)
          const measure = new Map<string, number>();
          for (const r of all) {
            const v = Number(r[before.value]);
            const h = String(r.host);
            measure.set(h, before.measure === 'sum' ? (measure.get(h) ?? 0) + v * 60 : Math.max(measure.get(h) ?? -Infinity, v));
          }
          const ranked = [...measure].map(([h, v]) => [h, before.measure === 'sum' ? Math.round(v) : v] as const)
            .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([h]) => h);
          const top = new Set(ranked.slice(0, TOP_HOSTS));
          expect(top.size, q.where).toBe(hosts ? hosts.length : TOP_HOSTS);
          expect(new Set(got.map((r) => String(r.host))), q.where).toEqual(top);
          expect(sorted(got), q.where).toEqual(sorted(all.filter((r) => top.has(String(r.host)))));
          compared++;
        }
      }
    }
    expect(compared).toBe(2 * Object.keys(BY_HOST).length);
  });

  it('an address as either end, and a flow with its master and related flows, skip granules through one bloom filter each (version 6)', async () => {
    const granules = async (where: string) => {
      const plan = (await store.query<{ explain: string }>(`EXPLAIN indexes = 1 SELECT count() FROM ctpipe.flows WHERE ${where}`)).map((r) => r.explain.trim());
      const at = plan.findIndex((l) => /^Name: (addresses_bf|flow_ids_bf)$/.test(l));
      expect(at, where).toBeGreaterThan(0);
      const [, kept, all] = plan.slice(at).find((l) => l.startsWith('Granules:'))!.match(/(\d+)\/(\d+)/)!;
      return [Number(kept), Number(all)] as const;
    };
    const [row] = await store.query<{ a: string; f: string }>("SELECT orig_src_text a, master_flow_id f FROM ctpipe.flows WHERE host = 'fw-0001' AND related AND master_flow_id != '' LIMIT 1");
    const [kept, all] = await granules(`orig_src = toIPv6('${row!.a}') OR orig_dst = toIPv6('${row!.a}')`);
    expect(kept).toBeLessThan(all);
    const [keptF, allF] = await granules(`flow_id = '${row!.f}' OR master_flow_id = '${row!.f}'`);
    expect(keptF).toBeLessThan(allF);
  });

  it('ctpipe report runs only the queries of the panels it shows (no heatmap, variables or annotations run again)', async () => {
    const d = dashboards('ctpipe').find((x) => x.uid === 'ctpipe-host')!;
    const at = { fromMs: fleet.toMs - 3_600_000, toMs: fleet.toMs, intervalMs: 60_000 };
    const vars = await resolveVariables(store, d, at, 'all');
    const seen: string[] = [];
    const counting = { queryWithMeta: (sql: string) => (seen.push(sql), store.queryWithMeta(sql)) };
    const keep = REPORT_PANELS['ctpipe-host']!;
    const results = await runDashboard(counting, d, { ...at, vars }, keep);
    const shown = queriesOf(d).filter((q) => q.panel && keep(q.panel));
    expect(shown.length).toBeLessThan(queriesOf(d).length - 3); // variables, the annotation and the heatmap left out
    expect(seen).toHaveLength(shown.length);
    expect(results.map((r) => r.where)).toEqual(shown.map((q) => q.where));
  });

  it('the newest lifecycles fill the table where the range holds more than 1,000, so the bound from the rollup applied', async () => {
    const d = dashboards('ctpipe').find((x) => x.uid === 'ctpipe-flows')!;
    const at = { fromMs: fleet.fromMs, toMs: fleet.toMs, intervalMs: 60_000 };
    const vars = await resolveVariables(store, d, at, 'all', { address: '' });
    const q = queriesOf(d).find((x) => x.where.includes('"Connections" A'))!;
    const rows = (await store.queryWithMeta(expand(q.sql, { ...at, vars }))).rows;
    expect(rows.length).toBe(1000);
    // the rows read: a few minutes of flows, not the range
    const bound = /first_seen >= (\(SELECT max\(minute\)[\s\S]*WHERE newer >= 1000\))/.exec(expand(q.sql, { ...at, vars }))![1]!;
    const [b] = await store.query<{ m: string }>(`SELECT toUnixTimestamp(${bound}) * 1000 AS m`);
    expect(Number(b!.m)).toBeGreaterThan(fleet.toMs - 20 * 60_000);
    expect(Number(b!.m)).toBeLessThanOrEqual(Date.parse(`${String(rows[rows.length - 1]!.first_seen).replace(' ', 'T')}Z`));
  });
});
