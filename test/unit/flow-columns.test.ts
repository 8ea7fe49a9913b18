/**
 * The `flows` columns declared once (processor/clickhouse/flow-columns.ts): the migrated table
 * matches the list, and the check after migrations names every difference; rows made by the
 * engine have exactly the listed columns with values of their types; a row with a distinct value
 * in every column goes through the pipeline's insert into chDB and comes back whole.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { chTypeName, type ChType } from '../../processor/clickhouse/ch-type.js';
import { FLOW_COLUMN_DEFS, type FlowRow } from '../../processor/clickhouse/flow-columns.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { FLOW_COLUMNS } from '../../processor/clickhouse/rows.js';
import { checkFlowsTable, FLOWS_TABLE_COLUMNS, liveColumns } from '../../processor/clickhouse/schema-check.js';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { tsvEncoder } from '../../processor/clickhouse/tsv.js';
import { LifecycleEngine } from '../../processor/lifecycle/engine.js';
import { Pipeline } from '../../processor/pipeline.js';
import { decodeBuffers, fixtureBuffers } from '../helpers/decode.js';
import { lifecycleRecords } from '../helpers/records.js';

const ctx = { flowsTtlDays: 30, eventsTtlDays: 3 };
const listed = FLOWS_TABLE_COLUMNS.map((c) => ({ name: c.name, type: chTypeName(c.type) }));

/** Whether `v` is a value a column of type `c` takes (as rowOf must give it). */
function fits(c: ChType, v: unknown): boolean {
  switch (c.t) {
    case 'Nullable': return v === null || fits(c.of, v);
    case 'LowCardinality': return fits(c.of, v);
    case 'Array': return Array.isArray(v) && v.every((x) => fits(c.of, x));
    case 'String': case 'IPv6': return typeof v === 'string';
    case 'Enum8': return typeof v === 'string' && v in c.values;
    case 'Bool': return typeof v === 'boolean';
    case 'DateTime64': {
      const t = v as { sec?: unknown; nsec?: unknown };
      return Number.isInteger(t.sec) && Number.isInteger(t.nsec) && (t.nsec as number) >= 0 && (t.nsec as number) < 1e9;
    }
    case 'Float64': return typeof v === 'number' && Number.isFinite(v);
    case 'Int32': case 'Int64': return Number.isInteger(v);
    default: {
      const bits = { UInt8: 8, UInt16: 16, UInt32: 32, UInt64: 53 }[c.t];
      return Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** bits;
    }
  }
}

describe('flows columns from one list', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-columns-'));
    store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates a fresh database to exactly the listed columns, names and types in order', async () => {
    await migrate(store, { ...ctx, db: 'cols_fresh' });
    expect(await liveColumns(store, 'cols_fresh', 'flows')).toEqual(listed);
  });

  it('brings a first-release database to the same columns', async () => {
    await migrate(store, { ...ctx, db: 'cols_v1' }, 1);
    expect((await liveColumns(store, 'cols_v1', 'flows')).map((c) => c.name)).not.toContain('resynced');
    await migrate(store, { ...ctx, db: 'cols_v1' });
    expect(await liveColumns(store, 'cols_v1', 'flows')).toEqual(listed);
  });

  it('refuses a flows table that differs, naming each missing, unexpected and mistyped column', async () => {
    await migrate(store, { ...ctx, db: 'cols_altered' });
    await store.command('ALTER TABLE cols_altered.flows DROP COLUMN resynced');
    await store.command('ALTER TABLE cols_altered.flows ADD COLUMN shiny String');
    await store.command('ALTER TABLE cols_altered.flows MODIFY COLUMN mark UInt64');
    const why = 'table cols_altered.flows does not match the columns this processor writes (processor/clickhouse/flow-columns.ts): ' +
      'column mark is UInt64, expected UInt32; missing column resynced Bool; unexpected column shiny String';
    await expect(checkFlowsTable(store, 'cols_altered')).rejects.toThrow(why);
    // migrations are all applied: migrate changes nothing and still refuses
    await expect(migrate(store, { ...ctx, db: 'cols_altered' })).rejects.toThrow(why);
  });

  it('gives every engine row exactly the listed columns, each value of its column\'s type', () => {
    const rows: FlowRow[] = [];
    const e = new LifecycleEngine({ maxOpen: 10_000, refreshMs: 1000, graceMs: 5000, onRow: (r) => rows.push(r), onHealth: () => {} });
    decodeBuffers(fixtureBuffers('events')).ct.forEach((r, i) => e.apply({ ...r, host: 'fw', run: 'r', seq: i + 1 }));
    // a table dump of another host: flows still open
    decodeBuffers(fixtureBuffers('dump')).ct.forEach((r, i) => e.apply({ ...r, type: 'snapshot', host: 'fw2', run: 'r', seq: i + 1 }));
    e.flushOpen();
    lifecycleRecords('h', 'r', 20).forEach((r) => e.apply(r));
    expect(new Set(rows.map((r) => r.end_reason))).toEqual(new Set(['destroy', 'open']));
    for (const r of rows) {
      expect(Object.keys(r)).toEqual(FLOW_COLUMNS);
      for (const c of FLOW_COLUMN_DEFS) {
        const v = r[c.name];
        expect([c.name, fits(c.type, v) && (!('values' in c) || (c.values as readonly unknown[]).includes(v))]).toEqual([c.name, true]);
      }
    }
  });

  it('stores a row with a distinct value in every column and reads every one back as written', async () => {
    await migrate(store, { ...ctx, db: 'cols_round' });
    const at = (sec: number, nsec: number) => ({ sec: 1_795_000_000 + sec, nsec });
    const row: FlowRow = {
      host: "fw\t'1'\\", netns: 'ns\t1', run: 'run\nb', flow_id: '0123456789abcdef', ct_id: 4_000_000_001, family: 'ipv6', proto: 132,
      orig_src: '2001:db8::1', orig_dst: '198.51.100.2', orig_sport: 40_001, orig_dport: 40_002,
      reply_src: '2001:db8::3', reply_dst: '203.0.113.4', reply_sport: 40_003, reply_dport: 40_004,
      icmp_type: 201, icmp_code: 202,
      first_seen: at(1, 1), established_at: at(2, 20), seen_reply_at: at(3, 300), assured_at: at(4, 4000), ended_at: at(9, 999_999_999),
      end_reason: 'lost', lost_by: 'evicted', duration_ms: 1234.5678,
      tcp_states: ['SYN_SENT', 'ESTABLISHED'], tcp_state_times: [at(5, 50_000), at(6, 600_000)], final_tcp_state: 'TIME_WAIT',
      assured: true, seen_reply: true, conn_state: 'RST', handshake_ms: 98.765,
      orig_packets: 2 ** 40 + 1, orig_bytes: 2 ** 41 + 3, reply_packets: 2 ** 42 + 5, reply_bytes: 2 ** 43 + 7,
      helper: 'ftp\r\0x', related: true, master_flow_id: 'fedcba9876543210', mark: 4_000_000_005, zone: 65_001,
      nat: 'snat+dnat', nat_src: '198.51.100.77:61000', nat_dst: '[2001:db8::99]:8443', snapshot: true, resynced: true,
      version: 2 ** 44 + 9,
      orig_src_k8s_namespace: "ns\t'a'", orig_src_k8s_pod: 'pod\\a', orig_src_k8s_workload: 'wl-a', orig_src_k8s_node: 'node-a',
      orig_dst_k8s_namespace: 'ns-b', orig_dst_k8s_pod: 'pod-b', orig_dst_k8s_workload: 'wl-b', orig_dst_k8s_node: 'node-b',
      orig_dst_k8s_service: 'svc-b',
    };
    // distinct everywhere types allow (booleans all true), nothing null or empty
    const values = FLOW_COLUMN_DEFS.filter((c) => c.type.t !== 'Bool').map((c) => JSON.stringify(row[c.name]));
    expect(new Set(values).size).toBe(values.length);
    const unset = (v: unknown) => v === null || v === false || v === '' || v === 0 || (Array.isArray(v) && v.length < 2);
    for (const c of FLOW_COLUMN_DEFS) expect([c.name, unset(row[c.name])]).toEqual([c.name, false]);

    const p = new Pipeline({ store: store.database('cols_round'), rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 10, refreshMs: 60_000, graceMs: 5000 } });
    const rows = p.takeRows();
    rows.flows.push(row);
    expect(await p.writeRows(rows, 'test:0:1-1')).toBe(true);

    const back = await store.query(`SELECT ${FLOW_COLUMNS.join(', ')} FROM cols_round.flows SETTINGS date_time_output_format = 'unix_timestamp'`);
    expect(back).toHaveLength(1);
    expect(Object.keys(back[0]!)).toEqual(FLOW_COLUMNS);
    // what ClickHouse gives back, in the row's terms: times as seconds.nanoseconds, 64-bit integers
    // as strings, IPv4 addresses IPv4-mapped
    const time = (t: { sec: number; nsec: number }) => `${t.sec}.${String(t.nsec).padStart(9, '0')}`;
    const expected = (c: ChType, v: unknown): unknown => {
      switch (c.t) {
        case 'Nullable': case 'LowCardinality': return expected(c.of, v);
        case 'Array': return (v as unknown[]).map((x) => expected(c.of, x));
        case 'DateTime64': return time(v as { sec: number; nsec: number });
        case 'UInt64': return String(v);
        case 'IPv6': return (v as string).includes(':') ? v : `::ffff:${v as string}`;
        default: return v;
      }
    };
    for (const c of FLOW_COLUMN_DEFS) expect([c.name, back[0]![c.name]]).toEqual([c.name, expected(c.type, row[c.name])]);
  });

  it('generates encoders only from plain column names', () => {
    expect(() => tsvEncoder([{ name: 'a}`; x(); `${b', type: { t: 'String' } }])).toThrow(/not an identifier/);
  });
});
