/**
 * Hostile records on the topic and in files, through the mock Kafka cluster and `ctpipe replay`
 * into chDB. Whatever arrives, the processor dead-letters what it does not accept, with the reason,
 * counts it by reason, and goes on with the partition; no good record is lost:
 * - a valid ctpipe.v1 batch holding records the contract does not allow (an event time before
 *   1970, a port of 70000, a mark of 2^40): those records, the rest of the batch kept;
 * - a forged host (key `evil`, payload host `victim-fw-1`) and a host outside process.hosts;
 * - a gzip bomb: a 0.49 MB record batch that decompresses to 503 MB (a 125 MB helper name four
 *   times), which drove the processor to 4.4 GB: dead-lettered unread, memory bounded;
 * - `ctpipe replay --to store` of JSON lines that are out of range, inject text, have the wrong
 *   shape, or hold a time ClickHouse's column cannot (year 2300, refused and dead-lettered): the
 *   replay ends, the good lines are stored, nothing else is.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toJsonLine } from '../../contract/json.js';
import { encodeBatch } from '../../contract/proto/batch.js';
import type { CtRecord, CtpipeRecord } from '../../contract/records.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { Endpoint } from '../faults/harness.js';
import { withProducer } from '../helpers/kafka.js';
import { exited, Procs } from '../helpers/procs.js';
import { lifecycleRecords } from '../helpers/records.js';
import { release, tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';

let kafka: KafkaMock;
let dir: string;
const procs = new Procs(() => ({ CTPIPE_KAFKA_BROKERS: kafka.brokers.join(',') }));

beforeAll(async () => {
  kafka = await KafkaMock.start();
  dir = tempDir('hostile');
});
afterAll(() => release(procs, kafka, dir));

/** A labelled sample's value from /metrics text, NaN if absent. */
const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : NaN;
};

/** Peak resident memory of a process (VmHWM), in MB. */
const peakMb = (pid: number): number => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

/** Sends each value as its own produce request (its own record batch), keyed `key`. */
async function send(topic: string, items: { key: string; value: Buffer }[], gzip = false): Promise<void> {
  await withProducer(kafka.brokers, 'hostile-test', async (producer) => {
    for (const m of items) await producer.send({ topic, messages: [m], compression: gzip ? kafkajs.CompressionTypes.GZIP : kafkajs.CompressionTypes.None, acks: -1 });
  });
}

describe('ctpipe process on a hostile topic', () => {
  it('dead-letters bad records, forged and unknown hosts and a gzip bomb, with reasons and counts, stores every good record, and stays small', async () => {
    const topic = `hostile-${Date.now()}`;
    const chdb = path.join(dir, 'process');
    const conns = lifecycleRecords('edge-1', 'run-1', 60); // 180 records, seq 1..180
    const good1 = conns.slice(0, 60);
    // a valid batch whose records 2, 5 and 8 break the contract; the rest is whole connections
    const mixed = conns.slice(60, 120).map((r, i) => {
      if (i === 1) return { ...r, sec: -5 };
      if (i === 4) return { ...r, orig: { ...r.orig, sport: 70000 } };
      if (i === 7) return { ...r, mark: 2 ** 40 };
      return r;
    });
    const good2 = conns.slice(120);
    const bomb = encodeBatch(Array.from({ length: 4 }, (_, i) => ({ ...conns[0]!, seq: 1000 + i, helper: 'x'.repeat(125_000_000) })));
    expect(bomb.length).toBeGreaterThan(500_000_000);

    await send(topic, [{ key: 'edge-1', value: encodeBatch(good1) }]);
    await send(topic, [{ key: 'edge-1', value: bomb }], true);
    await send(topic, [
      { key: 'edge-1', value: encodeBatch(mixed) },
      { key: 'evil', value: encodeBatch(lifecycleRecords('victim-fw-1', 'run-v', 5)) },
      { key: 'intruder', value: encodeBatch(lifecycleRecords('intruder', 'run-i', 5)) },
      { key: 'edge-1', value: encodeBatch(good2) },
    ]);
    // victim-fw-1 is accepted: its batch is refused for its key alone
    const ops = new Endpoint();
    const [p] = procs.start(['process', '--kafka-topic', topic, '--clickhouse-url', `chdb:${chdb}`, '--metrics-listen', ops.listen,
      '--process-checkpoint', '1s', '--process-hosts', 'edge-*,victim-fw-1']);
    await procs.until('every batch seen', async () => {
      const m = await ops.metrics().catch(() => '');
      return sample(m, 'ctpipe_processor_records_total') >= 180 - 3 && sample(m, 'ctpipe_processor_dead_letters_total{reason="RECORD_FORGED"}') === 2;
    }, 120_000);
    await sleep(1500);
    const m = await ops.metrics();
    expect(sample(m, 'ctpipe_processor_dead_letters_total{reason="RECORD_INVALID"}')).toBe(3);
    expect(sample(m, 'ctpipe_processor_dead_letters_total{reason="RECORD_TOO_LARGE"}')).toBe(1);
    expect(sample(m, 'ctpipe_processor_dead_letters_total{reason="RECORD_FORGED"}')).toBe(2);
    expect(sample(m, 'ctpipe_processor_dead_letters_total{reason="RECORD_DECODE"}')).toBe(0);
    expect(await ops.health()).toBe(200);
    const peak = peakMb(p.pid!);
    console.log(`processor peak RSS with the bomb: ${peak.toFixed(0)} MB`);
    expect(peak).toBeLessThan(1200); // it reached 4.4 GB
    p.kill('SIGTERM');
    expect(await exited(p)).toBe(0);

    const flows = await queryStore<{ host: string; n: string }>(chdb, "SELECT host, count() n FROM ctpipe.flows FINAL WHERE end_reason = 'destroy' GROUP BY host");
    expect(flows.map((f) => f.host)).toEqual(['edge-1']);
    const [stored] = await queryStore<{ n: string; sports: string }>(chdb, "SELECT count() n, max(orig_sport) sports FROM ctpipe.flows FINAL WHERE host = 'edge-1'");
    expect(Number(stored!.n)).toBe(60); // connections 20 to 22 lost their UPDATE only; none has a narrowed port (70000 would be 4464)
    expect(Number(stored!.sports)).toBeLessThan(10_060);
    const dead = await queryStore<{ reason: string }>(chdb, 'SELECT reason FROM ctpipe.dead_letters');
    expect(dead.map((d) => d.reason.replace(/\d+ bytes gzip/, 'N bytes gzip')).sort()).toEqual([
      'RECORD_TOO_LARGE: a Kafka record batch of 1 record(s), N bytes gzip, decompresses to more than 16777216 bytes (process.max_batch_bytes); not read',
      'RECORD_INVALID: record seq 62 (number 1 of the batch): sec -5 is not an integer from 0 to 18446744072',
      'RECORD_INVALID: record seq 65 (number 4 of the batch): orig.sport 70000 is not an integer from 0 to 65535',
      'RECORD_INVALID: record seq 68 (number 7 of the batch): mark 1099511627776 is not an integer from 0 to 4294967295',
      'RECORD_FORGED: a batch of host "victim-fw-1" under the Kafka key "evil": collectors key their records by host, so one host\'s records do not pass for another\'s',
      'RECORD_FORGED: host "intruder" is not one process.hosts accepts',
    ].sort());
    const gaps = await queryStore<{ n: string }>(chdb, "SELECT sum(count) n FROM ctpipe.pipeline_health WHERE kind = 'gap' AND host = 'edge-1'");
    expect(Number(gaps[0]!.n)).toBe(3); // the three records left out show as the loss they are
  }, 300_000);
});

describe('ctpipe replay --to store of hostile JSON lines', () => {
  it('ends, stores the good lines, dead-letters the row a column cannot hold, and stores nothing of the bad lines', async () => {
    const conns = lifecycleRecords('edge-2', 'run-2', 10);
    const line = (r: CtpipeRecord, patch: Record<string, unknown> = {}) => JSON.stringify({ ...JSON.parse(toJsonLine(r)), ...patch });
    const r0 = conns[0]! as CtRecord;
    const lines = [
      ...conns.map((r) => line(r)),
      line({ ...r0, seq: 100, id: 1 }, { orig: { ...r0.orig, sport: 70000 } }),
      line({ ...r0, seq: 101, id: 2 }, { mark: 2 ** 40 }),
      line({ ...r0, seq: 102, id: 3 }, { orig: { ...r0.orig, src: "198.51.100.1\t\\N\n'); DROP TABLE ctpipe.flows; --" } }),
      line({ ...r0, seq: 103, id: 4 }, { orig: 'nope' }),
      line({ ...r0, seq: 104, id: 5 }, { time: '1969-12-31T23:59:00Z' }),
      line({ ...r0, seq: 105, id: 6, type: 'destroy' }, { time: '2300-01-01T00:00:00Z' }), // the contract allows it, DateTime64(9) does not
      `{"type":"new","host":"edge-2","run":"x","time":"2026-01-01T00:00:00Z","orig":{"src":"${'9'.repeat(40 << 20)}"}}`, // a 40 MB line
    ];
    const file = path.join(dir, 'hostile.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const chdb = path.join(dir, 'replay');
    const t0 = Date.now();
    const [p, log] = procs.start(['replay', file, '--to', 'store', '--clickhouse-url', `chdb:${chdb}`]);
    const out: string[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d.toString()));
    expect(await exited(p), procs.logs[log]).toBe(0);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(out.join('')).toMatch(/replayed 31 of 31 records .*; 6 unreadable part\(s\) skipped \(first at: line 31, line 32, line 33, line 34, line 35\)/);
    expect(procs.logs[log]).toContain('orig.sport 70000 is not an integer from 0 to 65535');
    expect(procs.logs[log]).toContain('a line longer than 16777216 bytes');
    const flows = await queryStore<{ n: string; u: string }>(chdb, "SELECT count() n, uniqExact(orig_src) u FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'");
    expect([Number(flows[0]!.n), Number(flows[0]!.u)]).toEqual([10, 1]);
    const dead = await queryStore<{ topic: string; reason: string }>(chdb, 'SELECT topic, reason FROM ctpipe.dead_letters');
    // the year-2300 DESTROY's row, and the gap row its sequence number opened at that time
    expect(dead.map((d) => d.topic).sort()).toEqual(['rows:flows', 'rows:pipeline_health']);
    for (const d of dead) expect(d.reason).toMatch(/outside DateTime64\(9\)'s range/);
  }, 180_000);
});
