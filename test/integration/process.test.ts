/**
 * The Kafka path end to end: lab traffic -> `ctpipe collect` -> Kafka (librdkafka's mock cluster)
 * -> `ctpipe process` -> ClickHouse (chDB), with the processor killed by SIGKILL mid-stream and
 * restarted, and a poison record on the topic. Every connection ends up as exactly one row with the
 * kernel's counts; the rollup counts each flow once; the poison record is a dead letter.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { expectFtpLinked } from '../helpers/flows.js';
import { withProducer } from '../helpers/kafka.js';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { select } from '../helpers/store.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { parseConntrackEvent, type OracleEvent } from '../../lab/oracle.js';

let lab: Lab;
let kafka: KafkaMock;
let dir: string;
let spool: string;
let store: Store;
let oracleText = '';
const topic = `proc-${Date.now()}`;

const procs = Procs.onKafka(() => kafka.brokers, topic);

interface Row {
  ct_id: number; flow_id: string; orig_packets: string; orig_bytes: string; reply_packets: string; reply_bytes: string; conn_state: string;
  proto: number; orig_src: string; orig_dst: string; orig_sport: number; orig_dport: number; final_tcp_state: string; related: boolean; master_flow_id: string; helper: string;
}
let rows: Row[] = [];
let allVersions = 0;
let rollup = 0;
let dead: { offset: string; reason: string }[] = [];
let activity: { partition: number; records: string; dead_letters: string; inserts: string }[] = [];

beforeAll(async () => {
  lab = await Lab.create();
  kafka = await KafkaMock.start();
  dir = tempDir('proc');
  spool = tempDir('proc-spool');
  await lab.tcpServer(8080);
  await lab.udpServer(5353);
  await lab.ftpServer();
  const oracle = lab.spawn('fw', 'conntrack', ['-E', '-o', 'extended,id']);
  oracle.stdout!.on('data', (d: Buffer) => (oracleText += d.toString()));

  const [collector, cl] = procs.start(['collect', '--netns', lab.netnsPath('fw'), '--host', 'lab-fw', '--kafka-spool-dir', spool, '--kafka-linger', '100ms']);
  await procs.waitLog(cl, '"collecting"');
  const procArgs = ['process', '--clickhouse-url', `chdb:${dir}`, '--process-checkpoint', '1s', '--process-session-timeout', '10s'];
  const [p1, l1] = procs.start(procArgs);
  await procs.waitLog(l1, 'joined the consumer group');

  for (let i = 0; i < 3; i++) await lab.tcpConnect(ADDR.server4, 8080, 1000 + i);
  await lab.udpExchange(ADDR.server4, 5353, 2, 50);
  await lab.ping(ADDR.server4, 1);
  await lab.ftpGet('passive');
  // A poison record on the topic, between good ones.
  await withProducer(kafka.brokers, 'poison', (producer) => producer.send({ topic, messages: [{ key: 'lab-fw', value: Buffer.from('this is not a ctpipe batch at all') }] }));
  await sleep(3000);
  p1.kill('SIGKILL'); // mid-stream: rows written since its last checkpoint will be replayed
  await exited(p1);

  for (let i = 0; i < 3; i++) await lab.tcpConnect(ADDR.server4, 8080, 2000 + i);
  await lab.ftpGet('active');
  const [p2, l2] = procs.start(procArgs);
  await procs.waitLog(l2, 'partition assigned');
  await sleep(500);
  await lab.conntrack(['-F']);
  await sleep(1500);
  collector.kill('SIGTERM');
  expect(await exited(collector)).toBe(0);
  await sleep(4000);
  p2.kill('SIGTERM');
  expect(await exited(p2)).toBe(0);
  oracle.kill('SIGTERM');

  store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  const q = <T>(sql: string) => select<T>(store, sql);
  rows = await q<Row>(`SELECT ct_id, flow_id, orig_packets, orig_bytes, reply_packets, reply_bytes, conn_state, proto, orig_src_text AS orig_src,
    orig_dst_text AS orig_dst, orig_sport, orig_dport, final_tcp_state, related, master_flow_id, helper FROM ctpipe.flows FINAL WHERE host = 'lab-fw'`);
  allVersions = Number((await q<{ n: string }>(`SELECT count() n FROM ctpipe.flows WHERE host = 'lab-fw' AND end_reason != 'open'`))[0]!.n);
  rollup = Number((await q<{ n: string }>(`SELECT sum(flows) n FROM ctpipe.flows_1m WHERE host = 'lab-fw'`))[0]!.n);
  dead = await q<{ offset: string; reason: string }>(`SELECT offset, reason FROM ctpipe.dead_letters`);
  activity = await q<{ partition: number; records: string; dead_letters: string; inserts: string }>(
    `SELECT partition, sum(records) AS records, sum(dead_letters) AS dead_letters, sum(inserts) AS inserts FROM ctpipe.processor_stats GROUP BY partition`);
}, 300_000);

afterAll(() => release(store, kafka, lab, dir, spool));

describe('collector -> Kafka -> processor -> ClickHouse, with a processor killed mid-stream', () => {
  it('stores every connection exactly once, with the kernel\'s counts', () => {
    const events = oracleText.split('\n').map(parseConntrackEvent).filter((e): e is OracleEvent => e !== undefined);
    const destroys = events.filter((e) => e.type === 'destroy');
    const lastState = (id: number) => events.filter((e) => e.id === id && e.state).at(-1)?.state;
    expect(destroys.length).toBeGreaterThanOrEqual(12);
    expect(rows.length).toBe(destroys.length);
    for (const d of destroys) {
      const r = rows.find((x) => x.ct_id === d.id);
      expect(r, `flow ${d.id}`).toBeDefined();
      expect([Number(r!.orig_packets), Number(r!.orig_bytes), Number(r!.reply_packets), Number(r!.reply_bytes)])
        .toEqual([d.orig.packets, d.orig.bytes, d.reply.packets, d.reply.bytes]);
      expect([r!.proto, r!.orig_src, r!.orig_dst]).toEqual([d.proto, d.orig.src, d.orig.dst]);
      if (d.orig.sport !== undefined) expect([r!.orig_sport, r!.orig_dport]).toEqual([d.orig.sport, d.orig.dport]);
      if (d.proto === 6) expect(r!.final_tcp_state).toBe(lastState(d.id));
    }
  });

  it('links the FTP data flows (passive, and active after the restart) to their control connections', () => {
    expectFtpLinked(rows);
  });

  it('wrote no duplicate final rows and the rollup counts each flow once, despite the replay', () => {
    expect(allVersions).toBe(rows.length);
    expect(rollup).toBe(rows.length);
  });

  it('restored state after the kill: flows that began before it ended as normal lifecycles', () => {
    expect(procs.logs[2]).toMatch(/state restored from its checkpoint/);
    expect(rows.filter((r) => r.conn_state === 'SF').length).toBeGreaterThanOrEqual(6);
  });

  it('put the poison record in dead_letters and kept going', () => {
    expect(dead.length).toBe(1);
    expect(dead[0]!.reason).toMatch(/ctpipe\.v1\.Batch/);
  });

  it('reported its own activity per partition in processor_stats (the Pipeline health dashboard)', () => {
    expect(activity.length).toBeGreaterThan(0);
    expect(activity.every((a) => a.partition >= 0)).toBe(true);
    expect(activity.reduce((n, a) => n + Number(a.records), 0)).toBeGreaterThan(0);
    expect(activity.reduce((n, a) => n + Number(a.inserts), 0)).toBeGreaterThan(0);
  });
});
