/**
 * A fleet of N hosts through Kafka into two `ctpipe process` members of one group (issue: scale,
 * item 6). The load generator (bench/fleet-load.ts) plays every host's stream into a topic of 12
 * partitions on librdkafka's mock cluster, paced to its retention; two processors share one
 * ClickHouse (chDB behind ClickHouse's HTTP interface, lab/clickhouse-front.ts: two processes
 * cannot open one chDB directory). One host gets a port scan.
 *
 * At each kill point (the first SIGTERM, then SIGKILL if asked) the members have caught up and each
 * holds the state of about half the hosts: their memory is read (RSS over the hosts they hold, and
 * their open flows), the older member is stopped while the load goes on, and the survivor's own log
 * times the takeover: the group rejoined, each moved partition's checkpoint restored, and the first
 * batch of each stored. The stopped member then joins again for the next kill point. At the end,
 * every connection must be one row (count, uniqExact(flow_id), per host), none lost, no gap, and the
 * scan reported for its host only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { heartbeatMs, useGzipLevel } from '../common/kafka.js';
import { packageRoot } from '../common/paths.js';
import { KafkaMock } from '../lab/kafka-mock.js';
import { migrate } from '../processor/clickhouse/migrate.js';
import { openStore } from '../processor/clickhouse/store.js';
import type { Store } from '../processor/store.js';
import { FleetLoad, HostStream, PacedProducer, SCAN_SOURCE, type FleetLoadOptions } from './fleet-load.js';
import { cpuMsOf, joinGroup, Member, type LogLine } from './fleet-members.js';

export interface FleetOptions {
  hosts: number;
  flowsPerHost: number;
  openPerHost: number;
  rounds: number;
  partitions: number;
  /** How the member is stopped at each kill point, in order. */
  kills: ('SIGTERM' | 'SIGKILL')[];
  /** Unconsumed bytes a partition may hold past the group's commit (the mock keeps 5 MiB). */
  budgetBytes: number;
  /** `process.checkpoint` and `process.session_timeout` of the members, in seconds. */
  checkpointS: number;
  sessionTimeoutS: number;
  /** The members' `process.partitions_concurrently` (their default when absent). */
  concurrency?: number;
}

export const FLEET_DEFAULTS: FleetOptions = {
  hosts: 1000, flowsPerHost: 1000, openPerHost: 300, rounds: 200, partitions: 12, kills: ['SIGTERM', 'SIGKILL'],
  budgetBytes: 3 << 20, checkpointS: 10, sessionTimeoutS: 10,
};

export interface MemberMemory {
  member: string;
  partitions: number;
  hosts: number;
  /** Open flows: the processor's gauge, and what the generator left open on its hosts. */
  openFlows: number;
  openGenerated: number;
  rssMiB: number;
  hwmMiB: number;
  /** RSS per host held, and per open flow, over the member's RSS before any record. */
  rssPerHostKiB: number;
  rssPerOpenFlowB: number;
  idleRssMiB: number;
}

export interface Takeover {
  signal: 'SIGTERM' | 'SIGKILL';
  round: number;
  movedPartitions: number;
  movedHosts: number;
  /** Open flows in the moved partitions' checkpoints, as the survivor restored them. */
  movedOpenFlows: number;
  /** Milliseconds from the signal: the victim gone, the survivor in the group with every partition, the restores done, a batch stored on each moved partition. */
  victimExitMs: number;
  /** The victim's stop (SIGTERM): the batch in hand finished, its final checkpoints stored together, the group left. */
  victimStop?: { batchMs: number; checkpointMs: number; leaveMs: number; snapshotMs?: number; storeMs?: number };
  /**
   * The group rebalancing, as the survivor first hears it (a heartbeat answered "rebalancing"; its
   * JoinGroup when none is logged). After a SIGTERM the victim's LeaveGroup starts it; after a
   * SIGKILL the coordinator's session expiry: nobody can notice a member killed without leaving
   * sooner than the session timeout. The coordinator began it at most a heartbeat interval before.
   */
  rebalanceMs: number;
  /** processingMs and processingLessElectionMs counted from the rebalance instead of the signal. */
  fromRebalanceMs: number;
  fromRebalanceLessElectionMs: number;
  /** CPU the survivor and the ClickHouse front used from the signal until a batch was stored on every moved partition (ms). */
  survivorCpuMs: number;
  frontCpuMs: number;
  /** The survivor's JoinGroup sent (it noticed the rebalance at a heartbeat), and how long the coordinator held it. */
  noticedMs: number;
  electionWaitMs: number;
  rejoinedMs: number;
  restoredMs: number;
  processingMs: number;
  /**
   * processingMs less the coordinator's hold: librdkafka's mock elects a leader on a timer
   * (session timeout - 1 s after a member leaves, rd_kafka_mock_cgrp_rebalance) where a Kafka broker
   * answers as soon as every remaining member has rejoined, here the survivor alone.
   */
  processingLessElectionMs: number;
  /** Restore time per moved partition as the survivor logged it (load checkpoint + decode + ranges). */
  restoreMsEach: number[];
  /** Per moved partition, ms after the signal: its first batch stored. */
  firstBatchMsEach: number[];
  /** Of it, the store reads (the moved partitions' checkpoints and ranges, read together where the processor does). */
  readMsEach: number[];
  /** Of it, opening each snapshot (its JSON sections inflated on libuv's pool) and applying it on the event loop. */
  openMsEach: number[];
  applyMsEach: number[];
  replayRanges: number;
  /** Of the replayed ranges' batches until then, those not sent to ClickHouse again (their rows known stored). */
  replayNotResent: number;
  loadavg: number[];
}

export interface FleetResult {
  options: FleetOptions;
  machine: string;
  loadavg: { start: number[]; end: number[] };
  hosts: number;
  flows: number;
  events: number;
  bytes: number;
  seconds: number;
  eventsPerSecond: number;
  producerWaitS: number;
  maxBacklogMiB: number;
  memory: MemberMemory[][];
  takeovers: Takeover[];
  store: {
    finalRows: number; rawFinalRows: number; uniqFlowIds: number; lost: number; rollupFlows: number;
    hostsStored: number; hostsWrong: string[]; gaps: number; losses: number;
  };
  scan: { host: string; kinds: string[]; wrongHosts: string[]; otherKinds: string[] };
}

const loadavg = () => os.loadavg().map((l) => Math.round(l * 100) / 100);
const MiB = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

export async function runFleet(opts: Partial<FleetOptions> = {}, progress: (line: string) => void = () => {}): Promise<FleetResult> {
  const o: FleetOptions = { ...FLEET_DEFAULTS, ...opts };
  const topic = `fleet-${Date.now()}`;
  const group = 'ctpipe-processor';
  const lo: FleetLoadOptions = {
    hosts: o.hosts, flowsPerHost: o.flowsPerHost, openPerHost: o.openPerHost, rounds: o.rounds,
    scanHost: Math.floor(o.hosts * 0.42), scanRound: 10, scanPorts: 300,
    epochMs: Math.floor(Date.now() / 1000) * 1000 - 3_600_000,
  };
  const load = new FleetLoad(lo);
  const start = loadavg();
  const kafka = await KafkaMock.start(3, { [topic]: o.partitions });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ctpipe-fleet-'));
  const members: Member[] = [];
  let front: ChildProcess | undefined;
  let store: Store | undefined;
  useGzipLevel(1); // what a collector sends (kafka.compression_level)
  const producer = new PacedProducer(kafka.brokers, topic, group, o.partitions, o.budgetBytes);
  try {
    const f = (front = spawn(process.execPath, [path.join(packageRoot(), 'dist', 'bench', 'fleet-front.js'), path.join(dir, 'ch')], { stdio: ['ignore', 'pipe', 'inherit'] }));
    const url = await new Promise<string>((resolve, reject) => {
      f.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
      f.once('exit', (code) => reject(new Error(`the ClickHouse front exited (${String(code)})`)));
    });
    const st = (store = await openStore({ url, database: 'ctpipe' }));
    await migrate(st, { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 3 });
    await producer.connect();
    const one = async (sql: string) => Number(Object.values((await st.query<Record<string, string>>(sql))[0]!)[0]);
    const args = ['--clickhouse-url', url, '--process-checkpoint', `${o.checkpointS}s`, '--process-session-timeout', `${o.sessionTimeoutS}s`,
      ...(o.concurrency ? ['--process-partitions-concurrently', String(o.concurrency)] : [])];
    const sessionMs = o.sessionTimeoutS * 1000;
    const heartbeat = heartbeatMs(sessionMs);
    const env = { CTPIPE_KAFKA_BROKERS: kafka.brokers.join(','), CTPIPE_KAFKA_TOPIC: topic };
    const hostsOn = new Map<number, number[]>(); // partition -> host indexes
    for (const s of load.streams) {
      const p = producer.partitionOf(s.host);
      hostsOn.set(p, [...(hostsOn.get(p) ?? []), s.index]);
    }
    const idle = new Map<Member, number>();
    const startMember = async (name: string, leader?: Member) => {
      const m = leader ? await joinGroup(name, args, env, leader, heartbeat, sessionMs) : await Member.start(name, args, env);
      if (!leader) await m.waitFor('the group', (l) => l.msg === 'joined the consumer group');
      idle.set(m, m.memory().rss);
      members.push(m);
      return m;
    };
    let a = await startMember('A');
    const joinedAt = Date.now();
    let b = await startMember('B', a);
    await a.waitFor('the rebalance', (l) => l.msg === 'joined the consumer group', joinedAt);
    progress(`two members: A ${JSON.stringify(a.partitions)}, B ${JSON.stringify(b.partitions)}; ${o.hosts} hosts, ${load.flows.toLocaleString()} connections`);

    const t0 = Date.now();
    const caughtUp = async (why: string) => {
      const tc = Date.now();
      for (;;) {
        const stored = await one("SELECT count() FROM ctpipe.flows WHERE end_reason != 'open'");
        const live = members.filter((m) => m.exitedAt === undefined);
        // (a member that has had no record yet has no gauge: it holds nothing)
        const open = (await Promise.all(live.map((m) => m.metric('ctpipe_processor_open_flows')))).reduce((x, y) => x + (y || 0), 0);
        // (not the commits: a member checkpoints on its next batch, and the load is paused)
        if (stored >= load.ended && open === load.open) return;
        if (Date.now() - tc > 600_000) throw new Error(`${why}: not caught up in 10 min: ${stored}/${load.ended} rows, ${open}/${load.open} open`);
        await sleep(500);
      }
    };
    const memoryOf = async (live: Member[]): Promise<MemberMemory[]> => Promise.all(live.map(async (m) => {
      const hosts = m.partitions.flatMap((p) => hostsOn.get(p) ?? []);
      const { rss, hwm } = m.memory();
      const openFlows = await m.metric('ctpipe_processor_open_flows');
      const base = idle.get(m) ?? 0;
      return {
        member: m.name, partitions: m.partitions.length, hosts: hosts.length, openFlows,
        openGenerated: hosts.reduce((n, h) => n + load.streams[h]!.open, 0), rssMiB: MiB(rss), hwmMiB: MiB(hwm),
        rssPerHostKiB: Math.round((rss - base) / 1024 / Math.max(1, hosts.length)), rssPerOpenFlowB: Math.round((rss - base) / Math.max(1, openFlows)),
        idleRssMiB: MiB(base),
      };
    }));

    const memory: MemberMemory[][] = [];
    const takeovers: Takeover[] = [];
    const killAt = o.kills.map((_, i) => Math.floor((o.rounds * (i + 1.5)) / (o.kills.length + 1.5)));
    let watching: Promise<Takeover> | undefined;
    let round = 0;
    // a kill point waits until the group is whole again and every member has had records since
    let readyFrom = 0;
    let k = 0;
    for (let r = 0; r < load.totalRounds; r++) {
      round = r;
      // a kill point reached while the last takeover (or its victim's successor's join) is under
      // way: the load waits for it, so a small fleet's rounds do not run out before every kill
      if (k > 0 && k < killAt.length && r >= killAt[k]! && r < o.rounds - 3 && readyFrom === Infinity && watching) await watching;
      if (k < killAt.length && r >= killAt[k]! && r >= readyFrom && r < o.rounds) {
        if (watching) takeovers.push(await watching);
        watching = undefined;
        progress(`round ${r}: waiting for both members to catch up`);
        await caughtUp(`kill ${k}`);
        const mem = await memoryOf([a, b]);
        memory.push(mem);
        for (const m of mem) progress(`  ${m.member}: ${m.hosts} hosts, ${m.openFlows.toLocaleString()} open flows, RSS ${m.rssMiB} MiB (idle ${m.idleRssMiB}), ${m.rssPerHostKiB} KiB a host`);
        const signal = o.kills[k]!;
        const last = k + 1 === o.kills.length;
        const [victim, survivor] = [a, b];
        watching = takeover(signal, r, victim, survivor, hostsOn, f.pid!);
        const took = watching;
        took.catch(() => undefined); // awaited below; a failure must not end the process as unhandled first
        // the next kill point needs two members: the victim's successor joins once the takeover is done
        watching = took.then(async (t) => {
          progress(`${signal}: moved ${t.movedPartitions} partitions (${t.movedHosts} hosts, ${t.movedOpenFlows.toLocaleString()} open flows); victim gone ${t.victimExitMs} ms (${JSON.stringify(t.victimStop ?? {})}), JoinGroup sent ${t.noticedMs} ms, held ${t.electionWaitMs} ms by the mock's election timer, rejoined ${t.rejoinedMs} ms, restored ${t.restoredMs} ms, processing ${t.processingMs} ms after the signal (${t.processingLessElectionMs} ms without the mock's timer); rebalance heard ${t.rebalanceMs} ms, processing ${t.fromRebalanceMs} ms after it (${t.fromRebalanceLessElectionMs} ms without the timer); CPU survivor ${t.survivorCpuMs} ms, front ${t.frontCpuMs} ms`);
          if (!last) {
            const since = Date.now();
            const next = await startMember(victim.name === 'A' ? 'A2' : `${victim.name}2`, survivor);
            await survivor.waitFor('the rebalance', (l) => l.msg === 'joined the consumer group', since);
            [a, b] = [survivor, next];
          }
          readyFrom = round + 3;
          return t;
        });
        watching.catch(() => undefined);
        readyFrom = Infinity;
        k++;
      }
      const batches = load.round(r);
      await producer.send(batches);
      if (r % 20 === 0) {
        const s = (Date.now() - t0) / 1000;
        progress(`round ${r}/${load.totalRounds}: ${producer.events.toLocaleString()} events in ${s.toFixed(0)} s (${Math.round(producer.events / s).toLocaleString()}/s), open ${load.open.toLocaleString()}, waited ${(producer.waitedMs / 1000).toFixed(0)} s for room, load ${os.loadavg()[0]!.toFixed(1)}`);
      }
    }
    if (watching) takeovers.push(await watching);
    progress('all rounds sent: waiting for the rows');
    await caughtUp('the end');
    const seconds = (Date.now() - t0) / 1000;
    memory.push(await memoryOf(members.filter((m) => m.exitedAt === undefined)));
    await sleep(3000); // a duplicate would have time to land
    const live = members.filter((m) => m.exitedAt === undefined);
    for (const m of live) m.kill('SIGTERM');
    for (const m of live) await m.exited;

    const perHost = new Map((await st.query<{ host: string; n: string }>("SELECT host, count() n FROM ctpipe.flows FINAL WHERE end_reason = 'destroy' GROUP BY host"))
      .map((x) => [x.host, Number(x.n)]));
    const hostsWrong = load.streams.filter((s) => perHost.get(s.host) !== HostStream.flowsOf(s.index, lo)).map((s) => `${s.host}: ${perHost.get(s.host) ?? 0}/${HostStream.flowsOf(s.index, lo)}`);
    const anomalies = await st.query<{ host: string; kind: string; sources: string }>('SELECT host, kind, toString(details) sources FROM ctpipe.anomalies FINAL');
    const scanHost = load.streams[lo.scanHost]!.host;
    const scanKinds = ['port_scan', 'host_scan', 'handshake_failures', 'rej_storm'];
    return {
      options: o, machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
      loadavg: { start, end: loadavg() }, hosts: o.hosts, flows: load.flows, events: producer.events, bytes: producer.bytes, seconds,
      eventsPerSecond: Math.round(producer.events / seconds), producerWaitS: Math.round(producer.waitedMs / 1000), maxBacklogMiB: MiB(producer.maxBacklog),
      memory, takeovers,
      store: {
        finalRows: await one("SELECT count() FROM ctpipe.flows FINAL WHERE end_reason = 'destroy'"),
        rawFinalRows: await one("SELECT count() FROM ctpipe.flows WHERE end_reason != 'open'"),
        uniqFlowIds: await one('SELECT uniqExact(flow_id) FROM ctpipe.flows'),
        lost: await one("SELECT count() FROM ctpipe.flows FINAL WHERE end_reason = 'lost'"),
        rollupFlows: await one('SELECT sum(flows) FROM ctpipe.flows_1m'),
        hostsStored: perHost.size, hostsWrong,
        gaps: await one("SELECT count() FROM ctpipe.pipeline_health WHERE kind = 'gap'"),
        losses: await one("SELECT count() FROM ctpipe.pipeline_health WHERE kind = 'loss'"),
      },
      scan: {
        host: scanHost,
        kinds: [...new Set(anomalies.filter((x) => x.host === scanHost && x.sources.includes(SCAN_SOURCE)).map((x) => x.kind))].sort(),
        wrongHosts: [...new Set(anomalies.filter((x) => x.host !== scanHost).map((x) => `${x.host} ${x.kind}`))],
        otherKinds: [...new Set(anomalies.filter((x) => x.host === scanHost && !scanKinds.includes(x.kind)).map((x) => x.kind))],
      },
    };
  } finally {
    for (const m of members) if (m.exitedAt === undefined) m.kill('SIGKILL');
    await Promise.all(members.map((m) => m.exited));
    await producer.disconnect().catch(() => undefined);
    await store?.close();
    if (front && front.exitCode === null) {
      const gone = new Promise((r) => front!.once('exit', r));
      front.kill('SIGTERM');
      await gone;
    }
    await kafka.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Stops `victim` with `signal` and times `survivor` taking its partitions over, from the
 * survivor's own log: rejoined with every partition, each moved partition's checkpoint restored,
 * then a batch of it stored.
 */
async function takeover(signal: 'SIGTERM' | 'SIGKILL', round: number, victim: Member, survivor: Member, hostsOn: Map<number, number[]>, frontPid: number): Promise<Takeover> {
  const moved = victim.partitions;
  const la = loadavg();
  const cpu0 = [survivor.cpuMs(), cpuMsOf(frontPid)];
  const t0 = Date.now();
  victim.kill(signal);
  const within = signal === 'SIGKILL' ? 180_000 : 60_000;
  const asked = await survivor.waitFor('a JoinGroup request', (l) => l.msg.startsWith('Request JoinGroup'), t0, within);
  const answered = await survivor.waitFor('a JoinGroup response', (l) => l.msg.startsWith('Response JoinGroup'), asked.time, within);
  const joined = await survivor.waitFor('the group with every partition', (l) => l.msg === 'joined the consumer group' && moved.every((p) => l.partitions?.includes(p)), t0, within);
  const restored: LogLine[] = [];
  const stored: LogLine[] = [];
  for (const p of moved) {
    const r = await survivor.waitFor(`partition ${p} restored`, (l) => l.msg.startsWith('partition assigned') && l.partition === p, joined.time, within);
    restored.push(r);
    stored.push(await survivor.waitFor(`a batch of partition ${p}`, (l) => l.msg === 'batch stored' && l.partition === p, r.time, within));
  }
  const cpu1 = [survivor.cpuMs(), cpuMsOf(frontPid)];
  await victim.exited;
  const stop = victim.find((l) => l.msg.startsWith('stopped'), t0);
  const heard = survivor.find((l) => l.msg.startsWith('Response Heartbeat') && /rebalanc/i.test(l.error ?? ''), t0);
  const rebalanceAt = Math.min(heard?.time ?? asked.time, asked.time);
  const end = Math.max(...stored.map((l) => l.time));
  const election = answered.time - asked.time;
  return {
    victimStop: stop ? { batchMs: stop.batchMs ?? -1, checkpointMs: stop.checkpointMs ?? -1, leaveMs: stop.leaveMs ?? -1, snapshotMs: stop.snapshotMs, storeMs: stop.storeMs } : undefined,
    signal, round, movedPartitions: moved.length, movedHosts: moved.reduce((n, p) => n + (hostsOn.get(p)?.length ?? 0), 0),
    movedOpenFlows: restored.reduce((n, l) => n + (l.open ?? 0), 0),
    victimExitMs: victim.exitedAt! - t0, noticedMs: asked.time - t0, electionWaitMs: answered.time - asked.time, rejoinedMs: joined.time - t0,
    restoredMs: Math.max(...restored.map((l) => l.time)) - t0, processingMs: Math.max(...stored.map((l) => l.time)) - t0,
    processingLessElectionMs: end - t0 - election,
    rebalanceMs: rebalanceAt - t0, fromRebalanceMs: end - rebalanceAt, fromRebalanceLessElectionMs: end - rebalanceAt - election,
    survivorCpuMs: Math.round(cpu1[0]! - cpu0[0]!), frontCpuMs: Math.round(cpu1[1]! - cpu0[1]!),
    restoreMsEach: restored.map((l) => l.restoreMs ?? -1), firstBatchMsEach: stored.map((l) => l.time - t0), readMsEach: restored.map((l) => l.readMs ?? -1),
    openMsEach: restored.map((l) => l.openMs ?? -1), applyMsEach: restored.map((l) => l.applyMs ?? -1), replayRanges: restored.reduce((n, l) => n + (l.replayRanges ?? 0), 0),
    replayNotResent: survivor.lines.filter((l) => l.time >= t0 && l.time <= end && l.replay === 'not resent').length, loadavg: la,
  };
}
