/**
 * `ctpipe process` when ClickHouse refuses something for good, through the mock Kafka cluster into
 * chDB:
 * - a record whose rows cannot be stored (an event time in 2302: the contract takes a kernel's u64
 *   of nanoseconds, DateTime64(9) ends in 2262): its row goes to dead_letters with the reason and
 *   every other row is stored (a time before 1970 breaks the contract itself and is dead-lettered
 *   as it is decoded: hostile-records.test.ts);
 * - a flows table without a column the processor writes: it refuses to start, naming the column;
 * - a database missing a table the flows insert needs at run time (a rollup its view writes): the
 *   partition stops with a clear message, /healthz says so and `ctpipe_processor_partition_stopped`
 *   is 1; nothing is dropped, and once the table is back a restart stores every connection once.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toJsonLine } from '../../contract/json.js';
import type { CtRecord } from '../../contract/records.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { metric } from '../faults/harness.js';
import { queryStore } from '../helpers/store.js';
import { exited, Procs } from '../helpers/procs.js';

const CONNS = 50;
let kafka: KafkaMock;
let dir: string;
const procs = new Procs(() => ({ CTPIPE_KAFKA_BROKERS: kafka.brokers.join(',') }));

/** NEW and DESTROY for `n` connections of `host`; `late` connection ids carry a time past DateTime64(9)'s end. */
function connections(host: string, n: number, late = new Set<number>()): CtRecord[] {
  const out: CtRecord[] = [];
  for (let c = 0; c < n; c++) {
    const orig = { src: '198.51.100.7', dst: '203.0.113.2', proto: 17, sport: 30000 + c, dport: 53 };
    for (const type of ['new', 'destroy'] as const) {
      out.push({
        type, host, run: 'run-1', seq: out.length + 1, sec: late.has(c) ? 10_500_000_000 : 1_795_000_000 + out.length, nsec: 0, id: 500 + c,
        family: 'ipv4', proto: 17, orig, reply: { src: orig.dst, dst: orig.src, proto: 17, sport: 53, dport: orig.sport }, status: 8, timeout: 30,
      });
    }
  }
  return out;
}

async function publish(topic: string, records: CtRecord[]): Promise<void> {
  const file = path.join(dir, `${topic}.jsonl`);
  writeFileSync(file, records.map(toJsonLine).join('\n') + '\n');
  const [p] = procs.start(['replay', file, '--kafka-topic', topic]);
  expect(await exited(p)).toBe(0);
}

/** Starts `ctpipe process` on `topic` into chDB at `chdb`; returns the process, its log and its metrics port. */
function processor(topic: string, chdb: string) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const [p, log] = procs.start(['process', '--kafka-topic', topic, '--clickhouse-url', `chdb:${chdb}`, '--metrics-listen', `127.0.0.1:${port}`,
    '--process-checkpoint', '1s', '--process-session-timeout', '6s']);
  const scrape = () => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => '');
  const health = () => fetch(`http://127.0.0.1:${port}/healthz`).then(async (r) => ({ status: r.status, body: await r.text() }), () => ({ status: 0, body: '' }));
  return { p, log, scrape, health };
}


beforeAll(async () => {
  kafka = await KafkaMock.start();
  dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-store-errors-'));
});

afterAll(async () => {
  await procs.killAll();
  await kafka?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('ctpipe process when ClickHouse refuses for good', () => {
  it('dead-letters the rows that cannot be stored, with the reason, and stores the rest', async () => {
    const topic = `refused-${Date.now()}`;
    const chdb = path.join(dir, 'refused');
    await publish(topic, connections('edge-1', CONNS, new Set([7])));
    const { p, log, scrape } = processor(topic, chdb);
    await procs.until('every record processed', async () => metric(await scrape(), 'ctpipe_processor_records_total') >= CONNS * 2);
    await sleep(1500);
    expect(metric(await scrape(), 'ctpipe_processor_rows_refused_total')).toBe(1);
    expect(metric(await scrape(), 'process_resident_memory_bytes')).toBeGreaterThan(10 << 20); // the process's own metrics too (docs/OPERATIONS.md)
    p.kill('SIGTERM');
    expect(await exited(p)).toBe(0);
    expect(procs.logs[log]).toContain('ClickHouse refused a row; it is in dead_letters and the input goes on');
    const [n] = await queryStore<{ n: string }>(chdb, "SELECT count() n FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'");
    expect(Number(n!.n)).toBe(CONNS - 1);
    const letters = await queryStore<{ topic: string; reason: string }>(chdb, 'SELECT topic, reason FROM ctpipe.dead_letters');
    expect(letters.map((l) => l.topic)).toEqual(['rows:flows']);
    // refused by the RowBinary encoder, as ClickHouse's text parser refused it before
    expect(letters[0]!.reason).toMatch(/^ctpipe's RowBinary encoder refused flows\.\w+: \{"sec":10500000000,"nsec":0\} is outside DateTime64\(9\)'s range /);
  });

  it('refuses to start on a flows table without a column it writes, naming it', async () => {
    const chdb = path.join(dir, 'mismatch');
    const [m] = procs.start(['migrate', '--clickhouse-url', `chdb:${chdb}`]);
    expect(await exited(m)).toBe(0);
    await queryStore(chdb, 'ALTER TABLE ctpipe.flows DROP COLUMN resynced');
    const { p, log } = processor(`mismatch-${Date.now()}`, chdb);
    expect(await exited(p)).not.toBe(0);
    expect(procs.logs[log]).toMatch(/missing column resynced Bool.*\[SCHEMA_MISMATCH\]/);
  });

  it('stops the partition on a missing table, says why, and loses nothing once the table is back', async () => {
    const topic = `schema-${Date.now()}`;
    const chdb = path.join(dir, 'schema');
    // the schema as ctpipe makes it, then the rollup a view of flows writes gone
    const [m] = procs.start(['migrate', '--clickhouse-url', `chdb:${chdb}`]);
    expect(await exited(m)).toBe(0);
    const [rollup] = await queryStore<{ q: string }>(chdb, "SELECT create_table_query q FROM system.tables WHERE database = 'ctpipe' AND name = 'flows_state_1m'");
    await queryStore(chdb, 'DROP TABLE ctpipe.flows_state_1m');
    await publish(topic, connections('edge-2', CONNS));

    const first = processor(topic, chdb);
    await procs.waitLog(first.log, 'the partition is stopped');
    expect(procs.logs[first.log]).toMatch(/UNKNOWN_TABLE 60: .*flows_state_1m/);
    expect(metric(await first.scrape(), 'ctpipe_processor_partition_stopped')).toBe(1);
    const h = await first.health();
    expect(h.status).toBe(503);
    const stopped = (JSON.parse(h.body) as { detail: { stopped: Record<string, string> } }).detail.stopped;
    expect(Object.values(stopped)).toEqual([expect.stringMatching(/UNKNOWN_TABLE/)]); // one host: one partition
    await sleep(2000); // stopped, not retrying: the partition's records wait in Kafka, and its lag says so
    expect(procs.logs[first.log]).not.toContain('pausing this partition and retrying');
    expect(metric(await first.scrape(), 'ctpipe_processor_lag_records')).toBeGreaterThan(0);
    first.p.kill('SIGTERM');
    expect(await exited(first.p)).toBe(0);

    await queryStore(chdb, rollup!.q);
    const second = processor(topic, chdb);
    await procs.until('every record processed', async () => metric(await second.scrape(), 'ctpipe_processor_records_total') >= CONNS * 2);
    await sleep(1500);
    expect((await second.health()).status).toBe(200);
    expect(metric(await second.scrape(), 'ctpipe_processor_lag_records')).toBe(0);
    second.p.kill('SIGTERM');
    expect(await exited(second.p)).toBe(0);
    const [n] = await queryStore<{ n: string; u: string }>(chdb, "SELECT count() n, uniqExact(flow_id) u FROM ctpipe.flows WHERE end_reason = 'destroy'");
    expect([Number(n!.n), Number(n!.u)]).toEqual([CONNS, CONNS]);
    const [r] = await queryStore<{ n: string }>(chdb, "SELECT sum(flows) n FROM ctpipe.flows_state_1m WHERE host = 'edge-2'");
    expect(Number(r!.n)).toBe(CONNS); // the view wrote the rollup once more
    expect(await queryStore(chdb, 'SELECT * FROM ctpipe.dead_letters')).toEqual([]);
  });
});
