/**
 * The record contract: the protobuf encoding matches contract/ctpipe.v1.proto as another tool reads
 * it (protobufjs loading the .proto), both ways; the JSON lines form round-trips exactly; poison
 * input is rejected with RECORD_DECODE, never a crash.
 */
import path from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { isCtpipeError } from '../../common/errors.js';
import { packageRoot } from '../../common/paths.js';
import { fromJsonLine, toJsonLine } from '../../contract/json.js';
import { addrToBytes } from '../../contract/addr.js';
import { batchRecordCount, decodeBatch, encodeBatch } from '../../contract/proto/batch.js';
import { sumCpus } from '../../contract/records.js';
import type { CtRecord, CtpipeRecord, StatsRecord } from '../../contract/records.js';
import { decodeBuffers, fixtureBuffers } from '../helpers/decode.js';
import { mulberry32 } from '../helpers/random.js';

const stamp = (seq: number) => ({ host: 'fw-1', run: 'run-x', seq, sec: 1_795_239_000, nsec: 123_456_789 });

function sample(): CtpipeRecord[] {
  const d = decodeBuffers(fixtureBuffers());
  const recs: CtpipeRecord[] = [...d.ct, ...d.exp];
  const stats: StatsRecord = {
    ...stamp(0), type: 'stats', cpus: d.cpu, totals: sumCpus(d.cpu), entries: 12, max_entries: 262144,
    exp_new: 1, exp_create: 2, exp_delete: 3, collector: { events: 10, drops: 0, enobufs: 0, rejected: 1 },
  };
  recs.push(stats);
  recs.push({ ...stamp(0), type: 'loss', reason: 'enobufs', count: 42, source: 'events', resync: true });
  recs.push({ ...stamp(0), type: 'loss', reason: 'spool_full', count: 1000, source: 'publish', first_seq: 5, last_seq: 1004, resync: false });
  recs.push({
    ...stamp(0), type: 'invalid_packet', family: 'ipv4', proto: 6, src: '198.51.100.2', dst: '203.0.113.2', sport: 2000,
    dport: 80, tcp_flags: 'FSR', length: 40, indev: 'eth0', prefix: 'ct-invalid', weight: 3,
  });
  recs.push({ ...stamp(0), type: 'dump_end', why: 'resync', start_seq: 7, flows: 1234, expectations: 5 });
  recs.forEach((r, i) => Object.assign(r, stamp(i + 1)));
  return recs;
}

/** Drops undefined-valued keys, as any encoding does. */
function clean<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

describe('protobuf batch', () => {
  const recs = sample();

  it('round-trips every record kind exactly', () => {
    const b = decodeBatch(encodeBatch(recs));
    expect(b.host).toBe('fw-1');
    expect(b.firstSeq).toBe(1);
    expect(clean(b.records)).toEqual(clean(recs));
  });

  it('is readable by protobufjs from the published .proto, and reads what protobufjs writes', async () => {
    const root = await protobuf.load(path.join(packageRoot(), 'contract', 'ctpipe.v1.proto'));
    const Batch = root.lookupType('ctpipe.v1.Batch');
    const bytes = encodeBatch(recs);
    const theirs = Batch.toObject(Batch.decode(bytes), { longs: String, enums: String, bytes: String }) as {
      host: string; run: string; records: { type: string; seq: string; flow?: { orig: { src: string; dport: number }; status: number }; exp?: { helper: string } }[];
    };
    expect(theirs.host).toBe('fw-1');
    expect(theirs.records.length).toBe(recs.length);
    const firstFlow = recs.findIndex((r) => r.type === 'new');
    expect(theirs.records[firstFlow]!.type).toBe('NEW');
    const src = Buffer.from(theirs.records[firstFlow]!.flow!.orig.src, 'base64');
    expect(src).toEqual(addrToBytes((recs[firstFlow] as { orig: { src: string } }).orig.src));
    expect(src.length).toBe(4);
    expect(theirs.records.filter((r) => r.exp?.helper === 'ftp').length).toBeGreaterThan(0);
    // and back: protobufjs re-encodes, ctpipe decodes the same records
    const again = Batch.encode(Batch.decode(bytes)).finish();
    expect(clean(decodeBatch(Buffer.from(again)).records)).toEqual(clean(recs));
  });

  it('leaves out a reply tuple that mirrors the original one, and only then', () => {
    const base = recs.find((r) => r.type === 'new' && r.proto === 6) as CtRecord;
    const nat: CtRecord = { ...base, reply: { ...base.reply, src: '192.0.2.99' } };
    const plain = encodeBatch([base]).length;
    const translated = encodeBatch([nat]).length;
    expect(translated).toBeGreaterThan(plain + 8);
    expect(decodeBatch(encodeBatch([nat])).records[0]).toMatchObject({ reply: { src: '192.0.2.99' } });
    const icmp = recs.find((r) => r.type === 'new' && r.proto === 1) as CtRecord;
    expect(clean(decodeBatch(encodeBatch([icmp])).records[0])).toEqual(clean(icmp));
  });

  it('reads nested messages in place: every nested field of IPv4 and IPv6 flows, around a record the contract leaves out', () => {
    const v6: CtRecord = {
      ...stamp(1), type: 'destroy', family: 'ipv6', proto: 6, id: 7, status: 14, tcp_state: 7, mark: 3, zone: 2,
      orig: { src: '2001:db8::1', dst: '2001:db8:0:1::ffff:2', proto: 6, sport: 40000, dport: 443, zone: 2 },
      reply: { src: '2001:db8:0:1::ffff:2', dst: '::ffff:192.0.2.7', proto: 6, sport: 443, dport: 40000 },
      master: { src: 'fe80::1', dst: '2001:db8::2', proto: 6, sport: 21, dport: 50000 },
      counters: { orig: { packets: 2 ** 53 - 1, bytes: '18446744073709551615' }, reply: { packets: 1, bytes: 60 } },
      seqadj_orig: { correction_pos: 1, offset_before: 2, offset_after: 3 }, seqadj_reply: { correction_pos: 4, offset_before: 5, offset_after: 6 },
      synproxy: { isn: 7, its: 8, tsoff: 9 }, helper: 'ftp', helper_info: '0a0b', labels: '01ff', start: 10, stop: 20,
      unknown: [{ path: 'flow', type: 99, hex: 'c0ffee' }, { path: 'orig.proto', type: 42, hex: '' }],
    };
    const v4: CtRecord = {
      ...stamp(3), type: 'new', family: 'ipv4', proto: 1, id: 8, status: 8,
      orig: { src: '192.0.2.1', dst: '198.51.100.9', proto: 1, icmp_id: 5, icmp_type: 8, icmp_code: 0 },
      reply: { src: '198.51.100.9', dst: '192.0.2.1', proto: 1, icmp_id: 5, icmp_type: 0, icmp_code: 0 },
      unknown: [{ path: 'flow', type: 77, hex: 'ab' }],
    };
    const bad: CtRecord = { ...v4, ...stamp(2), mark: 2 ** 40 };
    const b = decodeBatch(encodeBatch([v6, bad, v4]));
    expect(clean(b.records)).toEqual(clean([v6, v4]));
    expect(b.rejected.map((r) => [r.index, r.seq])).toEqual([[1, 2]]);
    // the left-out record's own bytes, read alone, are the record
    const alone = decodeBatch(encodeBatch([bad]));
    expect(alone.rejected[0]!.bytes.toString('hex')).toBe(b.rejected[0]!.bytes.toString('hex'));
  });

  it('rejects poison bytes with RECORD_DECODE and never crashes', () => {
    const rnd = mulberry32(99);
    const good = encodeBatch(recs.slice(0, 20));
    let rejected = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = i % 2 ? Buffer.from(good) : Buffer.alloc(1 + Math.floor(rnd() * 200));
      for (let k = 0; k < 1 + Math.floor(rnd() * 8); k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        decodeBatch(b.subarray(0, Math.max(1, Math.floor(rnd() * b.length))));
      } catch (e) {
        expect(isCtpipeError(e, 'RECORD_DECODE')).toBe(true);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(10_000);
  });

  it('counts a batch\'s records from its fields alone, as decoding finds them; poison counts at least one, never throws', () => {
    for (const n of [1, 7, recs.length]) expect(batchRecordCount(encodeBatch(recs.slice(0, n)))).toBe(decodeBatch(encodeBatch(recs.slice(0, n))).records.length);
    const rnd = mulberry32(7);
    const good = encodeBatch(recs);
    for (let i = 0; i < 5_000; i++) {
      const b = Buffer.from(good.subarray(0, Math.floor(rnd() * good.length)));
      for (let k = 0; k < Math.floor(rnd() * 4); k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      const n = batchRecordCount(b);
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(Math.max(1, b.length / 2)); // a record's field takes two bytes at least
    }
  });
});

describe('JSON lines form', () => {
  it('round-trips every record kind exactly', () => {
    for (const r of sample()) expect(clean(fromJsonLine(toJsonLine(r)))).toEqual(clean(r));
  });

  it('uses names, RFC 3339 times with nanoseconds, and omits absent fields', () => {
    const r = sample().find((x) => x.type === 'destroy' && x.proto === 6)!;
    const o = JSON.parse(toJsonLine(r)) as Record<string, unknown>;
    expect(Object.keys(o).slice(0, 5)).toEqual(['type', 'host', 'run', 'seq', 'time']);
    expect(o.time).toBe(`${new Date(1_795_239_000_000).toISOString().slice(0, 19)}.123456789Z`);
    expect(o.status).toContain('CONFIRMED');
    expect(typeof o.tcp_state).toBe('string');
    expect(o.start).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect(o).not.toHaveProperty('sec');
    expect(o).not.toHaveProperty('helper');
  });

  it('rejects malformed lines with RECORD_DECODE', () => {
    for (const line of ['', 'nope', '{}', '{"type":"new","time":"yesterday"}', '{"type":"alien","time":"2026-01-01T00:00:00Z"}', '{"type":"new","time":"2026-01-01T00:00:00Z","status":["NOT_A_FLAG"]}']) {
      expect(() => fromJsonLine(line), line).toThrow(expect.objectContaining({ code: 'RECORD_DECODE' }));
    }
  });
});
