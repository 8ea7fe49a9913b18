/**
 * Fault: the collector killed with SIGKILL and restarted while connections are open. The restart
 * shows as a new run (its own run_start in pipeline_health); the new run's table dump brings back
 * every open connection, whose lifecycle continues as the same flow; no connection is stored twice.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CtRecord } from '../../contract/records.js';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { queryStore } from '../helpers/store.js';
import { KafkaMock } from '../../lab/kafka-mock.js';
import { ADDR, Lab } from '../../lab/lab.js';
import { collectArgs, processTopic, topicRecords } from './harness.js';
import { scale, writeLedger } from './ledger.js';

const topic = `collector-kill-${Date.now()}`;
const HELD = scale(20, 200);
const SHORT = scale(10, 100);
let lab: Lab;
let kafka: KafkaMock;
let dir: string;
const procs = new Procs();

const HOLD = [
  'import socket, sys, time, json',
  `cs = [socket.create_connection(("${ADDR.server4}", 8080)) for _ in range(${HELD})]`,
  'for c in cs: c.sendall(b"x" * 10)',
  'print(json.dumps([c.getsockname()[1] for c in cs]), flush=True)',
  'time.sleep(600)',
].join('\n');

beforeAll(async () => {
  kafka = await KafkaMock.start(1);
  lab = await Lab.create();
  for (const t of ['tcp_timeout_time_wait', 'tcp_timeout_close', 'tcp_timeout_fin_wait', 'tcp_timeout_last_ack', 'tcp_timeout_close_wait']) {
    await lab.sysctl('fw', `net.netfilter.nf_conntrack_${t}`, '2');
  }
  await lab.tcpServer(8080);
  dir = tempDir('collector-kill');
});

afterAll(() => release(lab, kafka, dir));

const collect = () => procs.start(collectArgs({ lab, brokers: kafka.brokers, topic, host: 'ck', spool: path.join(dir, 'spool') }));

describe('fault: the collector killed (SIGKILL) and restarted', () => {
  it('restarts as a new run whose dump restores the open connections; nothing is stored twice', async () => {
    const [a, ia] = collect();
    await procs.waitLog(ia, '"msg":"collecting"');
    const short: number[] = [];
    for (let k = 0; k < SHORT; k++) short.push((await lab.tcpConnect(ADDR.server4, 8080, 200)).local);
    const holder = lab.spawn('client', '/usr/bin/python3', ['-c', HOLD]);
    const held = await new Promise<number[]>((resolve) => holder.stdout!.once('data', (d: Buffer) => resolve(JSON.parse(d.toString()) as number[])));
    await sleep(1500); // their NEW and ESTABLISHED reach Kafka
    a.kill('SIGKILL');
    expect(await exited(a)).toBe(null);
    const killedAt = Date.now();

    const [b, ib] = collect();
    await procs.waitLog(ib, '"msg":"collecting"');
    const recoveryS = (Date.now() - killedAt) / 1000;
    holder.kill('SIGTERM'); // the kernel closes the held connections: FIN both ways, then DESTROY
    for (let t = 0; t < 15_000; t += 1000) {
      await lab.conntrack(['-L'], { allowFail: true }); // evicts expired entries now
      await sleep(1000);
    }
    b.kill('SIGTERM');
    expect(await exited(b), procs.logs[ib]).toBe(0);
    const runs = [ia, ib].map((i) => procs.logLine<{ run: string }>(i, '"msg":"collecting"').run);
    const lastSeq = procs.logLine<{ seq: number }>(ib, '"msg":"stopped"').seq;

    const recs = await topicRecords(kafka.brokers, topic, (rs) => rs.some((r) => r.run === runs[1] && r.seq === lastSeq));
    expect(new Set(recs.map((r) => r.run))).toEqual(new Set(runs));
    const flows = recs.filter((r): r is CtRecord => ['new', 'update', 'destroy', 'snapshot'].includes(r.type) && (r as CtRecord).orig.dport === 8080);
    const snap = new Set(flows.filter((r) => r.run === runs[1] && r.type === 'snapshot').map((r) => r.orig.sport));
    for (const port of held) expect(snap.has(port), `held connection from port ${port} in the new run's dump`).toBe(true);

    const chdb = path.join(dir, 'chdb');
    await processTopic(kafka.brokers, topic, chdb, recs.length, procs);
    const final = await queryStore<{ sport: number; n: string; reason: string }>(chdb,
      'SELECT orig_sport AS sport, count() AS n, any(end_reason) AS reason FROM ctpipe.flows FINAL WHERE orig_dport = 8080 GROUP BY orig_sport');
    const raw = new Map((await queryStore<{ sport: number; raw: string }>(chdb,
      "SELECT orig_sport AS sport, count() AS raw FROM ctpipe.flows WHERE orig_dport = 8080 AND end_reason != 'open' GROUP BY orig_sport")).map((r) => [Number(r.sport), r.raw]));
    const rows = final.map((r) => ({ ...r, raw: raw.get(Number(r.sport)) ?? '0' }));
    const bySport = new Map(rows.map((r) => [Number(r.sport), r]));
    for (const port of [...held, ...short]) {
      const r = bySport.get(port);
      expect(r?.n, `connection from ${port}`).toBe('1');
      expect(r?.reason, `connection from ${port}`).toBe('destroy');
      expect(r?.raw, `final rows of ${port}`).toBe('1');
    }
    const starts = await queryStore<{ run: string }>(chdb, "SELECT run FROM ctpipe.pipeline_health WHERE host = 'ck' AND kind = 'run_start' ORDER BY ts");
    expect(starts.map((s) => s.run)).toEqual(runs);
    const stored = [...held, ...short].filter((port) => bySport.get(port)?.n === '1').length;
    writeLedger({
      fault: 'collector SIGKILL and restart', injected: `SIGKILL with ${HELD} connections open, restart at once`,
      sent: HELD + SHORT, received: new Set(flows.map((r) => r.orig.sport)).size, stored, duplicated: rows.reduce((n, r) => n + Number(r.raw) - 1, 0),
      lost: HELD + SHORT - stored, recovery_s: recoveryS, notes: `new run ${runs[1]!.slice(0, 8)}; its dump held all ${HELD} open connections`,
    });
  });
});
