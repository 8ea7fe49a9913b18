/**
 * A fleet's load for Kafka: the conntrack streams of N hosts, as their collectors would publish
 * them (one `ctpipe.v1.Batch` per host per second of event time, key = host), paced so that no
 * partition's unconsumed data outgrows what the broker keeps.
 *
 * Each host's stream is one template re-stamped per host: its own host name, run id, gap-free
 * sequence numbers, conntrack ids from a per-host base, pod and node addresses of its own, and
 * event times from a shared clock. The template is shaped like the lab's kernel events
 * (bench/lifecycle.ts recordChunks, test/fixtures/netlink): web-like TCP through
 * NEW SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, TIME_WAIT and a DESTROY with counters; DNS-like
 * UDP and pings (NEW, the reply, DESTROY); a few connections never answered (S0) or refused (REJ);
 * long-lived connections (a database pool) opened in the first seconds and closed in the last, so
 * every host holds open flows the whole time. Pods talk to a handful of services and ports, as a
 * Kubernetes node's do, far under every scan detector's threshold. One host can be given a port
 * scan (one outside source, refused on `scanPorts` ports in three seconds): the per-host
 * detectors must report it for that host only.
 *
 * Pacing: the librdkafka mock cluster keeps 5 MiB a partition (shared/notes/environment.md), and a
 * consumer group member that restarts or takes a partition over reads from the group's committed
 * offset. So the producer holds back while any partition has more than `budgetBytes` past that
 * offset (uncompressed batch bytes: the stored, compressed sets are smaller), which it reads from
 * the brokers every 250 ms; a partition at its budget still gets a batch a second (see send).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import kafkajs, { type Admin, type Producer } from 'kafkajs';
import { encodeBatch } from '../contract/proto/batch.js';
import type { CtRecord, Tuple } from '../contract/records.js';

const { CompressionTypes, Kafka, logLevel, Partitioners } = kafkajs;

export interface FleetLoadOptions {
  hosts: number;
  /** Short connections per host over the main phase. */
  flowsPerHost: number;
  /** Long-lived connections per host: opened in the first 10 s, closed in the end phase. */
  openPerHost: number;
  /** Seconds of event time in the main phase (one round each); then END_ROUNDS more. */
  rounds: number;
  /** The host (index) that gets the port scan, or -1 for none. */
  scanHost: number;
  scanRound: number;
  scanPorts: number;
  /** Event time of round 0, epoch ms. */
  epochMs: number;
}

/** Rounds after the main phase: the long-lived connections close, the last short ones end. */
export const END_ROUNDS = 6;
export const SCAN_SOURCE = '198.51.100.66';

const SYN_SENT = 1;
const SYN_RECV = 2;
const ESTABLISHED = 3;
const FIN_WAIT = 4;
const TIME_WAIT = 7;
const CLOSE = 8;
// status bits (contract/kernel.ts): CONFIRMED 0x08, SEEN_REPLY 0x02, ASSURED 0x04
const CONFIRMED = 0x08;
const REPLIED = 0x0a;
const ASSURED = 0x0e;

type Kind = 'web' | 'dns' | 'ping' | 's0' | 'rej' | 'long' | 'scan';

interface Flow {
  kind: Kind;
  id: number;
  orig: Tuple;
  reply: Tuple;
  proto: number;
  bytes: number;
}

/** One event to come: at `at` ms of event time, step `step` of its flow. */
interface Pending {
  at: number;
  flow: Flow;
  step: number;
  last: boolean;
}

/** 32-bit hash of an integer pair (deterministic: the same options give the same streams). */
function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

export const hostName = (h: number): string => `node-${String(h + 1).padStart(4, '0')}`;

/** One host's stream, generated a round (a second of event time) at a time. */
export class HostStream {
  readonly host: string;
  readonly run: string;
  private seq = 0;
  private nextId: number;
  private flows = 0;
  private pending: Pending[] = [];
  private readonly longLived: Flow[] = [];
  /** Connections started and ended so far. */
  started = 0;
  ended = 0;

  constructor(readonly index: number, private readonly o: FleetLoadOptions) {
    this.host = hostName(index);
    this.run = `run-${mix(index, 7).toString(16)}`;
    this.nextId = mix(index, 1);
  }

  get open(): number {
    return this.started - this.ended;
  }

  /** Connections this host makes over the whole stream. */
  static flowsOf(index: number, o: FleetLoadOptions): number {
    return o.flowsPerHost + o.openPerHost + (index === o.scanHost ? o.scanPorts : 0);
  }

  private pod(c: number): string {
    const h = this.index;
    return `10.${64 + (h >> 8)}.${h & 255}.${2 + (c % 200)}`;
  }

  private flow(kind: Kind, src: string, dst: string, proto: number, sport: number, dport: number): Flow {
    const id = this.nextId;
    this.nextId = (this.nextId + 1 + (mix(this.index, this.flows) & 7)) >>> 0;
    const k = this.flows++;
    this.started++;
    const orig: Tuple = proto === 1
      ? { src, dst, proto, icmp_type: 8, icmp_code: 0, icmp_id: k & 0xffff }
      : { src, dst, proto, sport, dport };
    const reply: Tuple = proto === 1
      ? { src: dst, dst: src, proto, icmp_type: 0, icmp_code: 0, icmp_id: k & 0xffff }
      : { src: dst, dst: src, proto, sport: dport, dport: sport };
    return { kind, id, orig, reply, proto, bytes: 200 + (mix(this.index, k) % 20_000) };
  }

  /** Schedules a flow's events: steps at the given offsets (ms) from `at`. */
  private schedule(f: Flow, at: number, offsets: readonly number[]): void {
    offsets.forEach((d, step) => this.pending.push({ at: at + d, flow: f, step, last: step === offsets.length - 1 }));
  }

  private startShort(k: number, at: number): void {
    const u = mix(this.index * 7919 + 1, k) % 1000;
    const c = mix(this.index, k + 1_000_000);
    const src = this.pod(c);
    const sport = 32768 + ((k * 7 + this.index) % 28000);
    const rtt = 1 + (c % 40);
    if (u < 600) {
      const svc = c % 20;
      const f = this.flow('web', src, `10.96.${svc >> 4}.${(svc & 15) + 1}`, 6, sport, [443, 443, 80, 8080, 6379][svc % 5]!);
      const life = 50 + (c % 2500);
      this.schedule(f, at, [0, rtt, 2 * rtt, life, life + 1, life + 900]);
    } else if (u < 860) {
      const f = this.flow('dns', src, '10.96.0.10', 17, sport, 53);
      this.schedule(f, at, [0, rtt, 1000 + (c % 1500)]);
    } else if (u < 950) {
      const f = this.flow('ping', src, `10.250.${this.index >> 8}.${(this.index & 255) ^ (1 + (c % 3))}`, 1, 0, 0);
      this.schedule(f, at, [0, rtt, 1000 + (c % 1000)]);
    } else if (u < 980) {
      // never answered: the kernel drops it at the SYN_SENT timeout (5 s in the lab)
      const f = this.flow('s0', src, `10.96.9.${1 + (c % 20)}`, 6, sport, 8443);
      this.schedule(f, at, [0, 5000]);
    } else {
      const f = this.flow('rej', src, `10.96.8.${1 + (c % 20)}`, 6, sport, 9090);
      this.schedule(f, at, [0, rtt, rtt + 500]);
    }
  }

  private record(p: Pending): CtRecord {
    const { flow: f, step } = p;
    const ms = this.o.epochMs + p.at;
    const type: CtRecord['type'] = step === 0 ? 'new' : p.last ? 'destroy' : 'update';
    let status = CONFIRMED;
    let tcp: number | undefined;
    let timeout = 120;
    switch (f.kind) {
      case 'web':
      case 'long': {
        tcp = [SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, TIME_WAIT, TIME_WAIT][step]!;
        status = step === 0 ? CONFIRMED : step === 1 ? REPLIED : ASSURED;
        timeout = tcp === ESTABLISHED ? 432_000 : tcp === TIME_WAIT ? 120 : 60;
        break;
      }
      case 'dns':
      case 'ping':
        status = step === 0 ? CONFIRMED : REPLIED;
        timeout = 30;
        break;
      case 's0':
        tcp = SYN_SENT;
        break;
      case 'rej':
      case 'scan':
        tcp = step === 0 ? SYN_SENT : CLOSE;
        status = step === 0 ? CONFIRMED : REPLIED;
        timeout = step === 0 ? 120 : 10;
        break;
    }
    return {
      type, host: this.host, run: this.run, seq: ++this.seq, sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000,
      id: f.id, family: 'ipv4', proto: f.proto, orig: f.orig, reply: f.reply, status, tcp_state: tcp, timeout,
      ...(type === 'destroy' ? {
        counters: f.kind === 's0' ? { orig: { packets: 3, bytes: 180 }, reply: { packets: 0, bytes: 0 } }
          : { orig: { packets: 4 + (f.bytes % 30), bytes: 300 + (f.bytes >> 2) }, reply: { packets: 3 + (f.bytes % 40), bytes: f.bytes } },
      } : {}),
    };
  }

  /** The records of round `r` (event time [r, r + 1) s), in time order; empty when nothing happens. */
  round(r: number): CtRecord[] {
    const o = this.o;
    const t0 = r * 1000;
    if (r < 10) {
      // the long-lived pool opens in the first 10 s and stays established
      for (let k = Math.floor((o.openPerHost * r) / 10); k < Math.floor((o.openPerHost * (r + 1)) / 10); k++) {
        const c = mix(this.index, k + 2_000_000);
        const f = this.flow('long', this.pod(c), `10.96.1.${1 + (k % 8)}`, 6, 40000 + k, 5432);
        this.longLived.push(f);
        const at = t0 + (c % 997);
        for (let step = 0; step < 3; step++) this.pending.push({ at: at + step, flow: f, step, last: false });
      }
    }
    if (r < o.rounds) {
      const first = Math.floor((o.flowsPerHost * r) / o.rounds);
      const last = Math.floor((o.flowsPerHost * (r + 1)) / o.rounds);
      for (let k = first; k < last; k++) this.startShort(k, t0 + Math.floor(((k - first) * 1000) / (last - first)));
    }
    if (this.index === o.scanHost && r >= o.scanRound && r < o.scanRound + 3) {
      // a SYN to each port, refused by RST: 3 s, one source, `scanPorts` distinct ports
      const per = Math.ceil(o.scanPorts / 3);
      const node = `10.250.${this.index >> 8}.${this.index & 255}`;
      for (let i = (r - o.scanRound) * per; i < Math.min(o.scanPorts, (r - o.scanRound + 1) * per); i++) {
        const f = this.flow('scan', SCAN_SOURCE, node, 6, 61000, 1 + i);
        this.schedule(f, t0 + Math.floor(((i % per) * 1000) / per), [0, 1, 500]);
      }
    }
    if (r >= o.rounds && r < o.rounds + 3) {
      // the long-lived pool closes: FIN, TIME_WAIT, DESTROY
      const n = this.longLived.length;
      for (let k = Math.floor((n * (r - o.rounds)) / 3); k < Math.floor((n * (r - o.rounds + 1)) / 3); k++) {
        const f = this.longLived[k]!;
        const at = t0 + (mix(this.index, k) % 900);
        this.pending.push({ at, flow: f, step: 3, last: false }, { at: at + 20, flow: f, step: 4, last: false }, { at: at + 60, flow: f, step: 5, last: true });
      }
    }
    const end = t0 + 1000;
    const due = this.pending.filter((p) => p.at < end).sort((a, b) => a.at - b.at);
    if (due.length) this.pending = this.pending.filter((p) => p.at >= end);
    const out = due.map((p) => this.record(p));
    for (const p of due) if (p.last) this.ended++;
    return out;
  }
}

/** Every host's stream, round by round. */
export class FleetLoad {
  readonly streams: HostStream[];
  constructor(readonly o: FleetLoadOptions) {
    this.streams = Array.from({ length: o.hosts }, (_, h) => new HostStream(h, o));
  }

  get totalRounds(): number {
    return this.o.rounds + END_ROUNDS;
  }

  /** Connections of the whole stream. */
  get flows(): number {
    return this.streams.reduce((n, s) => n + HostStream.flowsOf(s.index, this.o), 0);
  }

  get ended(): number {
    return this.streams.reduce((n, s) => n + s.ended, 0);
  }

  get open(): number {
    return this.streams.reduce((n, s) => n + s.open, 0);
  }

  /** Round `r`'s messages: one batch a host (hosts without an event in it send none). */
  round(r: number): { host: string; value: Buffer; records: number }[] {
    const out = [];
    for (const s of this.streams) {
      const recs = s.round(r);
      if (recs.length) out.push({ host: s.host, value: encodeBatch(recs), records: recs.length });
    }
    return out;
  }
}

/** A kafkajs producer that places each host's batches on the partition its key hashes to, paced against the group's commits. */
export class PacedProducer {
  private readonly producer: Producer;
  private readonly admin: Admin;
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private readonly meta;
  /** Per partition: [next offset, bytes produced before it] after each send. */
  private readonly marks: [number, number][][];
  private readonly produced: number[];
  private committed: number[];
  private readAt = 0;
  private readonly nudged: number[];
  /** Time spent waiting for room (ms), and the largest backlog seen (bytes). */
  waitedMs = 0;
  maxBacklog = 0;
  events = 0;
  bytes = 0;

  constructor(brokers: string[], private readonly topic: string, private readonly groupId: string, readonly partitions: number, private readonly budgetBytes: number) {
    const kafka = new Kafka({ clientId: 'ctpipe-fleet-load', brokers, logLevel: logLevel.NOTHING });
    this.producer = kafka.producer({ allowAutoTopicCreation: false });
    this.admin = kafka.admin();
    this.meta = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));
    this.marks = Array.from({ length: partitions }, () => [[0, 0]]);
    this.produced = new Array<number>(partitions).fill(0);
    this.committed = new Array<number>(partitions).fill(0);
    this.nudged = new Array<number>(partitions).fill(0);
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    await this.admin.connect();
  }

  async disconnect(): Promise<void> {
    await this.producer.disconnect();
    await this.admin.disconnect();
  }

  partitionOf(host: string): number {
    return this.partitioner({ topic: this.topic, partitionMetadata: this.meta, message: { key: host, value: null } });
  }

  /** Bytes past the group's committed offset, per partition. */
  backlog(): number[] {
    return this.produced.map((bytes, p) => {
      const c = this.committed[p]!;
      let at = 0;
      for (const [next, before] of this.marks[p]!) if (next <= c) at = before;
      return bytes - at;
    });
  }

  private async readCommitted(): Promise<void> {
    const [t] = await this.admin.fetchOffsets({ groupId: this.groupId, topics: [this.topic] });
    for (const p of t?.partitions ?? []) this.committed[p.partition] = Math.max(0, Number(p.offset));
    for (let p = 0; p < this.partitions; p++) {
      const m = this.marks[p]!;
      let k = 0;
      while (k + 1 < m.length && m[k + 1]![0] <= this.committed[p]!) k++;
      if (k > 0) m.splice(0, k);
    }
    this.readAt = Date.now();
  }

  /**
   * Sends one round's batches, each to its host's partition, in order per partition, as room
   * comes. A partition at its budget still gets one batch a second: its consumer checkpoints, and
   * so commits, only when records arrive, so holding them all back would wait forever.
   */
  async send(batches: { host: string; value: Buffer; records: number }[]): Promise<void> {
    const queues: { key: string; value: Buffer; partition: number }[][] = Array.from({ length: this.partitions }, () => []);
    for (const b of batches) {
      const partition = this.partitionOf(b.host);
      queues[partition]!.push({ key: b.host, value: b.value, partition });
      this.events += b.records;
      this.bytes += b.value.length;
    }
    while (queues.some((q) => q.length)) {
      if (Date.now() - this.readAt >= 250) await this.readCommitted();
      const backlog = this.backlog();
      const out = [];
      const now = Date.now();
      for (let p = 0; p < this.partitions; p++) {
        const q = queues[p]!;
        let room = this.budgetBytes - backlog[p]!;
        if (q.length && q[0]!.value.length > room && now - this.nudged[p]! >= 1000) {
          out.push(q.shift()!);
          this.nudged[p] = now;
        }
        while (q.length && q[0]!.value.length <= room) {
          room -= q[0]!.value.length;
          out.push(q.shift()!);
        }
      }
      if (out.length) await this.produce(out);
      else {
        await sleep(100);
        this.waitedMs += 100;
      }
    }
    this.maxBacklog = Math.max(this.maxBacklog, ...this.backlog());
  }

  private async produce(messages: { key: string; value: Buffer; partition: number }[]): Promise<void> {
    const res = await this.producer.send({ topic: this.topic, messages, acks: -1, compression: CompressionTypes.GZIP });
    const count = new Array<number>(this.partitions).fill(0);
    const bytes = new Array<number>(this.partitions).fill(0);
    for (const m of messages) {
      count[m.partition]!++;
      bytes[m.partition]! += m.value.length;
    }
    for (const r of res) {
      const p = r.partition;
      this.produced[p]! += bytes[p]!;
      this.marks[p]!.push([Number(r.baseOffset) + count[p]!, this.produced[p]!]);
    }
  }
}
