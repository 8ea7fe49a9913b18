/**
 * Hostile values in the dashboards' variables (issue 18 item 2): a host name, an anomaly kind and a
 * conn_state stored with quotes, backslashes, commas, braces and percent signs, each with SQL that
 * would fetch a URL if it escaped its string literal. Every dashboard query, expanded as Grafana and
 * the ClickHouse plugin do (dashboards/macros.ts) and run on chDB, selects exactly that value's rows
 * (the same answer as a database holding only those rows), and nothing reaches the URL. The store is
 * not read-only here, so the escaping itself is what is tested, not ctpipe's read-only guard.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetOf, insertFlows, insertStats } from '../../bench/synthetic-fleet.js';
import { dashboards } from '../../dashboards/generate.js';
import { queriesOf } from '../../dashboards/lint.js';
import { expand, type Variable } from '../../dashboards/macros.js';
import { resolveVariables } from '../../dashboards/run-queries.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { copyRenamed } from '../helpers/hostile.js';

let server: Server;
let hits = 0;
let url = '';
let dir: string;
let store: Store;
const fleet = fleetOf({ hosts: 4, rows: 4000, hours: 2 });

/**
 * SQL that fetches `url` when it runs; `pre` ends the string literal the way a formatter lets it
 * (its own strings are heredocs: quotes in them would be escaped too).
 */
const evil = (pre: string) => `${pre} OR 0 IN (SELECT count() FROM url($$${url}$$, $$LineAsString$$)) --`;
const names = () => ({
  host: evil("!\\'"), // sorts first: the Host detail (and ctpipe report) pick it by default
  kind: evil("{scan,x}%41\\'"),
  state: evil("S0\\'"),
});


beforeAll(async () => {
  server = createServer((_req, res) => {
    hits++;
    res.end('1\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/fetched`;
  dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-inject-'));
  store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  const ctx = (db: string) => ({ db, flowsTtlDays: 30, eventsTtlDays: 3 });
  for (const db of ['gen', 'ctpipe', 'only']) await migrate(store.database(db), ctx(db));
  const gen = store.database('gen');
  await insertFlows(gen, fleet, 0, 4000);
  await insertStats(gen, fleet);
  // fw-0001's rows become the hostile host's (with a hostile conn_state and kind on some), in
  // `ctpipe` beside the other hosts and in `only` alone
  await copyRenamed(store, 'gen', 'ctpipe', 'fw-0001', names());
  await copyRenamed(store, 'gen', 'only', 'fw-0001', names(), true);
}, 300_000);

afterAll(async () => {
  await store?.close();
  server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const sorted = (rows: Record<string, unknown>[]) => rows.map((r) => JSON.stringify(r)).sort();

describe('hostile values in dashboard variables', () => {
  it('the data hold the hostile names, and the old :singlequote filter runs their SQL (the test can fail)', async () => {
    const n = names();
    const [row] = await store.query<{ h: string; k: string; s: string }>(
      `SELECT (SELECT count() FROM ctpipe.host_stats WHERE host = {h:String}) AS h, (SELECT count() FROM ctpipe.anomalies WHERE kind = {k:String}) AS k,
              (SELECT count() FROM ctpipe.flows WHERE conn_state = {s:String}) AS s`, { h: n.host, k: n.kind, s: n.state });
    expect(Number(row!.h)).toBeGreaterThan(100);
    expect(Number(row!.k)).toBeGreaterThan(0);
    expect(Number(row!.s)).toBeGreaterThan(0);
    const before = hits;
    const at = { fromMs: 0, toMs: Date.now() + 3_600_000, intervalMs: 60_000 };
    await store.query(expand('SELECT count() FROM ctpipe.host_stats WHERE host = ${host:singlequote}', { ...at, vars: { host: { values: [n.host] } } }));
    expect(hits).toBeGreaterThan(before); // what the dashboards did before dashboards/selection.ts
  });

  for (const uid of ['ctpipe-fleet', 'ctpipe-host', 'ctpipe-flows', 'ctpipe-anomalies', 'ctpipe-pipeline']) {
    it(`${uid}: every query with the hostile host selected answers as a database holding only that host, and fetches nothing`, async () => {
      hits = 0;
      const n = names();
      const at = { fromMs: fleet.fromMs - 60_000, toMs: fleet.toMs + 60_000, intervalMs: 60_000 };
      const [enc] = await store.query<{ h: string; k: string; s: string }>(
        'SELECT encodeURLComponent({h:String}) AS h, encodeURLComponent({k:String}) AS k, encodeURLComponent({s:String}) AS s', { h: n.host, k: n.kind, s: n.state });
      const d = dashboards('ctpipe').find((x) => x.uid === uid)!;
      const dOnly = dashboards('only').find((x) => x.uid === uid)!;
      const vars = await resolveVariables(store, d, at, 'all', { address: '', flow: '' });
      const varsOnly = await resolveVariables(store, dOnly, at, 'all', { address: '', flow: '' });
      const multi = d.templating?.list?.find((v) => v.name === 'host')?.multi;
      if (multi) {
        // the hostile host is one of the options the variable's query offers, encoded
        expect(vars.host!.options).toContain(enc!.h);
        vars.host = { values: [enc!.h], multi: true };
      } else {
        expect(vars.host!.values).toEqual([n.host]); // sorted first
        expect(varsOnly.host!.values).toEqual([n.host]);
      }
      let compared = 0;
      let withRows = 0;
      const qs = queriesOf(d);
      const qsOnly = queriesOf(dOnly);
      for (const [i, q] of qs.entries()) {
        if (!q.panel && !q.where.includes('annotation')) continue; // a variable's query lists every host
        const got = await store.queryWithMeta(expand(q.sql, { ...at, vars }));
        const want = await store.queryWithMeta(expand(qsOnly[i]!.sql, { ...at, vars: varsOnly }));
        if (/ORDER BY connections DESC LIMIT \d+$/.test(q.sql)) {
          // the top N by a count: ties at the cut may come in any order, the rest is the same
          const counts = (rows: Record<string, unknown>[]) => rows.map((r) => Number(r.connections));
          expect(counts(got.rows), q.where).toEqual(counts(want.rows));
          const cut = Math.min(...counts(want.rows));
          const above = (rows: Record<string, unknown>[]) => sorted(rows.filter((r) => Number(r.connections) > cut));
          expect(above(got.rows), q.where).toEqual(above(want.rows));
        } else {
          expect(sorted(got.rows), q.where).toEqual(sorted(want.rows));
        }
        for (const r of got.rows) if ('host' in r) expect(r.host, q.where).toBe(n.host);
        compared++;
        if (got.rows.length) withRows++;
      }
      expect(compared).toBe(qs.filter((q) => q.panel || q.where.includes('annotation')).length);
      expect(withRows).toBeGreaterThan(compared / 2); // the answers compared are not all empty
      expect(hits).toBe(0);
    });
  }

  it('a hostile kind and conn_state select exactly their rows, alone and beside another', async () => {
    hits = 0;
    const n = names();
    const at = { fromMs: 0, toMs: Date.now() + 3_600_000, intervalMs: 60_000 };
    const [enc] = await store.query<{ k: string; s: string; x: string }>(
      "SELECT encodeURLComponent({k:String}) AS k, encodeURLComponent({s:String}) AS s, encodeURLComponent('SF') AS x", { k: n.kind, s: n.state });
    const run = async (uid: string, title: string, vars: Record<string, Variable>) => {
      const q = queriesOf(dashboards('ctpipe').find((x) => x.uid === uid)!).find((x) => x.where.includes(title))!;
      return (await store.queryWithMeta(expand(q.sql, { ...at, vars }))).rows;
    };
    const all = { values: [], all: true, multi: true };
    const kinds = await run('ctpipe-anomalies', '"By kind"', { host: all, kind: { values: [enc!.k], multi: true } });
    const [k] = await store.query<{ n: string }>('SELECT count() AS n FROM ctpipe.anomalies FINAL WHERE kind = {k:String}', { k: n.kind });
    expect(kinds).toEqual([expect.objectContaining({ kind: n.kind, anomalies: k!.n })]);
    const flowVars = { host: all, proto: all, address: { values: [''] }, flow: { values: [''] }, bucket: { values: ['60'] } };
    const states = await run('ctpipe-flows', '"Connections" A', { ...flowVars, conn_state: { values: [enc!.s, enc!.x], multi: true } });
    expect(states.length).toBeGreaterThan(0);
    expect(new Set(states.map((r) => r.conn_state))).toEqual(new Set([n.state, 'SF']));
    expect(hits).toBe(0);
  });

  it('an address or flow id typed with quotes and backslashes is a value, not SQL', async () => {
    hits = 0;
    const n = names();
    const at = { fromMs: 0, toMs: Date.now() + 3_600_000, intervalMs: 60_000 };
    const d = dashboards('ctpipe').find((x) => x.uid === 'ctpipe-flows')!;
    const all = { values: [], all: true, multi: true };
    for (const q of queriesOf(d).filter((x) => x.panel)) {
      const vars = { host: all, proto: all, conn_state: all, address: { values: [n.host] }, flow: { values: [n.kind] }, bucket: { values: [evil('60')] } };
      const rows = (await store.queryWithMeta(expand(q.sql, { ...at, vars }))).rows;
      if (!q.where.includes('by conn_state')) expect(rows, q.where).toEqual([]); // no such address or flow
    }
    expect(hits).toBe(0);
  });
});
