/**
 * `ctpipe record` on the lab firewall's real conntrack, then `ctpipe replay`: the records come back
 * exactly (as JSON lines, and through the Kafka mock cluster decoded from the topic), a replay into
 * chDB at maximum and at recorded speed gives the same rows, a second replay of the file adds none,
 * and a recording cut short keeps every complete frame.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBatch } from '../../contract/proto/batch.js';
import { toJsonLine } from '../../contract/json.js';
import { BIN, exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';
import { consumeAll, KafkaMock } from '../../lab/kafka-mock.js';
import { ADDR, Lab } from '../../lab/lab.js';

let lab: Lab;
let kafka: KafkaMock;
let dir: string;
let file: string;
let recordedLines: string[];
const procs = new Procs();
const ctpipe = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', maxBuffer: 256 << 20, timeout: 120_000 });

beforeAll(async () => {
  dir = tempDir('record');
  file = path.join(dir, 'lab.ctpr');
  kafka = await KafkaMock.start();
  lab = await Lab.create();
  await lab.tcpServer(8080);
  await lab.udpServer(5353);
  await lab.ftpServer();
  const [p, i] = procs.start(['record', file, '--netns', lab.netnsPath('fw'), '--stats-interval', '1s', '--host', 'rec-fw']);
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await procs.waitLog(i, 'recording');
  const began = Date.now();
  for (let k = 0; k < 10; k++) {
    await lab.tcpConnect(ADDR.server4, 8080, 1000);
    await lab.udpExchange(ADDR.server4, 5353, 2, 100);
  }
  await lab.ftpGet('passive');
  await lab.ping(ADDR.server6, 2);
  // Ctrl-C once the traffic is in and at least 12 s (a dozen stats records) have passed: a fixed
  // --duration 12s ended before the last flows on a loaded machine (22 NEW of 23)
  await sleep(Math.max(1000, began + 12_000 - Date.now()));
  p.kill('SIGINT');
  expect(await exited(p), procs.logs[i]).toBe(0);
  expect(out).toMatch(/^recorded \d+ records \(host rec-fw, run [0-9a-f-]+, seq 1-\d+\) to .*lab\.ctpr: \d+ bytes, binary\n$/);
  const r = ctpipe(['replay', file, '--to', 'jsonl']);
  expect(r.status, r.stderr).toBe(0);
  recordedLines = r.stdout.trim().split('\n');
}, 120_000);

afterAll(() => release(lab, kafka, dir));

const count = async (chdb: string, sql: string) => (await queryStore(chdb, sql)).map((r) => Object.values(r).join(' ')).join('\n');
const TABLES = ['flows', 'host_stats', 'pipeline_health', 'anomalies', 'events', 'flows_1m', 'processor_stats'];
const tableCounts = (chdb: string) => count(chdb, `SELECT * FROM (${TABLES.map((t) => `SELECT '${t}' AS t, count() AS n FROM ctpipe.${t}`).join(' UNION ALL ')}) ORDER BY t`);

describe('ctpipe record and ctpipe replay', () => {
  it('records the whole stream: one run, sequence numbers 1..N without a gap, real flows of each protocol', () => {
    const recs = recordedLines.map((l) => JSON.parse(l) as { type: string; run: string; seq: number; proto?: number });
    expect(new Set(recs.map((r) => r.run)).size).toBe(1);
    expect(recs.map((r) => r.seq)).toEqual(recs.map((_, k) => k + 1));
    expect(recs.filter((r) => r.type === 'new').length).toBeGreaterThanOrEqual(23); // 10 TCP, 10 UDP, FTP control + data, ping
    expect(recs.filter((r) => r.type === 'stats').length).toBeGreaterThanOrEqual(8);
    // binary is the compact form: the same records as JSON lines take several times the bytes
    expect(recordedLines.join('\n').length / statSync(file).size).toBeGreaterThan(3);
  });

  it('replays a JSON lines recording to the same records', () => {
    const jsonl = path.join(dir, 'lab.jsonl');
    writeFileSync(jsonl, `${recordedLines.join('\n')}\n`);
    const r = ctpipe(['replay', jsonl, '--to', 'jsonl']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(recordedLines);
    expect(r.stderr).toMatch(new RegExp(`replay .*lab\\.jsonl 100% ${recordedLines.length} records`));
  });

  it('replays into Kafka exactly: host key, run and sequence numbers of every record, in order', async () => {
    const topic = 'replay-exact';
    const r = ctpipe(['replay', file, '--kafka-brokers', kafka.brokers.join(','), '--kafka-topic', topic]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`replayed ${recordedLines.length} of ${recordedLines.length} records from ${file} to Kafka topic ${topic}\n`);
    const msgs = await consumeAll(kafka.brokers, topic, (m) => m.reduce((n, x) => n + decodeBatch(x.value).records.length, 0) >= recordedLines.length);
    expect(new Set(msgs.map((m) => m.key))).toEqual(new Set(['rec-fw']));
    const lines = msgs.sort((a, b) => Number(a.offset) - Number(b.offset)).flatMap((m) => decodeBatch(m.value).records.map(toJsonLine));
    expect(lines).toEqual(recordedLines);
  });

  it('replays into a store at maximum and at recorded speed with the same rows, and a second replay adds none', async () => {
    const fast = path.join(dir, 'fast');
    const slow = path.join(dir, 'slow');
    const first = ctpipe(['replay', file, '--to', 'store', '--clickhouse-url', `chdb:${fast}`]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`replayed ${recordedLines.length} of ${recordedLines.length} records .* \\(${recordedLines.length} processed, 0 already stored`));
    const once = await tableCounts(fast);
    expect(once).toMatch(/^flows [1-9]\d*$/m);
    expect(once).toMatch(/^host_stats [1-9]\d*$/m);
    const again = ctpipe(['replay', file, '--to', 'store', '--clickhouse-url', `chdb:${fast}`]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(new RegExp(`\\(0 processed, ${recordedLines.length} already stored by an earlier replay of this file\\)`));
    expect(await tableCounts(fast)).toBe(once); // raw counts, before any merge: nothing inserted twice
    // a copy of the file is the same recording
    copyFileSync(file, path.join(dir, 'copy.ctpr'));
    expect(ctpipe(['replay', path.join(dir, 'copy.ctpr'), '--to', 'store', '--clickhouse-url', `chdb:${fast}`]).stdout).toMatch(/\(0 processed/);
    expect(await tableCounts(fast)).toBe(once);

    const t0 = Date.now();
    const paced = ctpipe(['replay', file, '--to', 'store', '--speed', 'recorded', '--clickhouse-url', `chdb:${slow}`]);
    expect(paced.status, paced.stderr).toBe(0);
    const span = (JSON.parse(recordedLines.at(-1)!) as { time: string }).time;
    const start = (JSON.parse(recordedLines[0]!) as { time: string }).time;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(Date.parse(span) - Date.parse(start) - 500);
    expect(await tableCounts(slow)).toBe(once);
    const flows = 'SELECT flow_id, conn_state, orig_bytes, reply_bytes, end_reason, version FROM ctpipe.flows FINAL ORDER BY flow_id';
    expect(await count(slow, flows)).toBe(await count(fast, flows));
  });

  it('keeps every complete frame of a recording cut short, and says where it stopped', () => {
    const cut = path.join(dir, 'cut.ctpr');
    copyFileSync(file, cut);
    truncateSync(cut, statSync(file).size - 7);
    const r = ctpipe(['replay', cut, '--to', 'jsonl']);
    expect(r.status, r.stderr).toBe(0); // what could be read was delivered; the rest is reported
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines).toEqual(recordedLines.slice(0, lines.length));
    expect(r.stderr).toMatch(/a frame cut short/);
    expect(r.stderr).toMatch(/1 unreadable part\(s\) skipped \(first at: byte \d+\)/);
    expect(readFileSync(cut).subarray(0, 8).toString()).toBe('CTPREC01');
  });

  it('refuses a file that holds no record at all, exit 1, and says what it expected', () => {
    const garbage = path.join(dir, 'garbage.jsonl');
    writeFileSync(garbage, 'hello\nworld\n');
    const r = ctpipe(['replay', garbage, '--to', 'jsonl']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/holds no record ctpipe can read: is it a recording .* \[RECORD_DECODE\]/);
  });
});
