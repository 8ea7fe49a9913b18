/**
 * The contract's checks (contract/validate.ts) on every input path: each field of the one list of
 * ranges is checked at its bound, both ways; JSON lines that are hostile (values out of range,
 * addresses that would have been text in an insert, wrong shapes, a line without end) are rejected
 * with a clear reason and never throw anything else; a batch keeps its good records and names the
 * bad ones; batch bounds hold before any record is read. The validator's cost against zod's on the
 * hot path is printed.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isCtpipeError } from '../../common/errors.js';
import { fromJsonLine, toJsonLine } from '../../contract/json.js';
import { decodeBatch, encodeBatch } from '../../contract/proto/batch.js';
import type { CtRecord, CtpipeRecord } from '../../contract/records.js';
import { encodeFrame, MAGIC, readRecording, type RecordingItem } from '../../contract/recording.js';
import { DEFAULT_BATCH_LIMITS, RANGES, validateRecord } from '../../contract/validate.js';
import { mulberry32 } from '../helpers/random.js';

const stamp = (seq: number) => ({ host: 'fw-1', run: 'run-x', seq, sec: 1_795_239_000, nsec: 5 });
const tuple = (sport: number) => ({ src: '198.51.100.7', dst: '203.0.113.2', proto: 6, sport, dport: 443 });

function flow(seq: number): CtRecord {
  const orig = tuple(40000 + seq);
  return {
    ...stamp(seq), type: 'destroy', id: 77 + seq, family: 'ipv4', proto: 6, orig, reply: { src: orig.dst, dst: orig.src, proto: 6, sport: 443, dport: orig.sport },
    status: 14, tcp_state: 3, mark: 7, zone: 1, timeout: 120, counters: { orig: { packets: 3, bytes: 180 }, reply: { packets: 2, bytes: 120 } },
    start: '1795238990000000000', helper: 'ftp', labels: '0001', kernel_time: true,
  };
}

/** Where each RANGES entry's fields live in a record that has them all. */
function holders(): Record<keyof typeof RANGES, { rec: () => CtpipeRecord; at: (r: CtpipeRecord) => Record<string, unknown> }> {
  const cpu = () => ({ cpu: 0, found: 1, invalid: 2, insert: 3, insert_failed: 0, drop: 0, early_drop: 0, error: 0, search_restart: 0, clash_resolve: 0, chaintoolong: 0 });
  const stats = (): CtpipeRecord => ({
    ...stamp(1), type: 'stats', cpus: [cpu()], totals: { ...cpu(), cpu: undefined } as never, entries: 1, max_entries: 2,
    exp_new: 0, exp_create: 0, exp_delete: 0, collector: { events: 1, drops: 0, enobufs: 0, rejected: 0 },
  });
  const full = (): CtpipeRecord => ({
    ...flow(1), tcp_wscale_orig: 7, tcp_wscale_reply: 7, tcp_flags_orig: 3, tcp_flags_reply: 3, sctp_state: 1, sctp_vtag_orig: 1, sctp_vtag_reply: 1,
    dccp_state: 1, dccp_role: 1, use: 1, secmark: 1, orig: { ...tuple(1), icmp_type: 1, icmp_code: 1, icmp_id: 1, zone: 1 },
    seqadj_orig: { correction_pos: 1, offset_before: 1, offset_after: 1 }, synproxy: { isn: 1, its: 1, tsoff: 1 }, unknown: [{ path: 'ct', type: 99, hex: 'ab' }],
  });
  const exp = (): CtpipeRecord => ({ ...stamp(1), type: 'exp_new', family: 'ipv4', id: 1, timeout: 1, zone: 1, flags: 1, class: 1, nat_dir: 1 });
  return {
    stamp: { rec: () => flow(1), at: (r) => r as never },
    tuple: { rec: full, at: (r) => (r as CtRecord).orig as never },
    flow: { rec: full, at: (r) => r as never },
    seqadj: { rec: full, at: (r) => (r as CtRecord).seqadj_orig as never },
    synproxy: { rec: full, at: (r) => (r as CtRecord).synproxy as never },
    unknown: { rec: full, at: (r) => (r as CtRecord).unknown![0] as never },
    exp: { rec: exp, at: (r) => r as never },
    cpu: { rec: stats, at: (r) => (r as unknown as { cpus: never[] }).cpus[0]! },
    totals: { rec: stats, at: (r) => (r as unknown as { totals: never }).totals },
    stats: { rec: stats, at: (r) => r as never },
    collector: { rec: stats, at: (r) => (r as unknown as { collector: never }).collector },
    loss: { rec: () => ({ ...stamp(1), type: 'loss', reason: 'buffer_full', count: 5, source: 'publish', first_seq: 1, last_seq: 5, resync: false }), at: (r) => r as never },
    invalid_packet: {
      rec: () => ({ ...stamp(1), type: 'invalid_packet', family: 'ipv4', proto: 6, src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, icmp_type: 1, icmp_code: 1, length: 40, mark: 1, weight: 1 }),
      at: (r) => r as never,
    },
    dump_end: { rec: () => ({ ...stamp(1), type: 'dump_end', why: 'start', start_seq: 1, flows: 1, expectations: 1 }), at: (r) => r as never },
  };
}

describe('the contract\'s ranges', () => {
  it('checks every field of the list at its bound: the largest value passes, one more and a fraction, a negative, a string fail', () => {
    const h = holders();
    for (const [where, fields] of Object.entries(RANGES) as [keyof typeof RANGES, Record<string, number>][]) {
      for (const [field, max] of Object.entries(fields)) {
        const ok = h[where].rec();
        h[where].at(ok)[field] = max;
        if (where === 'flow' && field === 'proto') (ok as CtRecord).orig.proto = max; // a flow's proto is its tuple's
        if (where === 'tuple' && field === 'proto') (ok as CtRecord).proto = max;
        expect(validateRecord(ok), `${where}.${field} = ${max}`).toBeUndefined();
        for (const bad of [max + 1, 0.5, -1, String(max)]) {
          const r = h[where].rec();
          h[where].at(r)[field] = bad;
          expect(validateRecord(r), `${where}.${field} = ${String(bad)}`).toMatch(new RegExp(`\\b${field} `));
        }
      }
    }
  });

  it('rejects strings past the bound, control characters in a host, bad hex, and addresses of the wrong family or none', () => {
    const cases: [Partial<CtRecord> | Record<string, unknown>, RegExp][] = [
      [{ host: 'x'.repeat(1025) }, /^host is 1025 characters long, more than 1024/],
      [{ host: 'fw\n1' }, /^host holds a control character/],
      [{ host: '' }, /^host is empty/],
      [{ run: undefined }, /^run is missing/],
      [{ helper: 'h'.repeat(125_000_000 / 1000) }, /^helper is 125000 characters long/],
      [{ labels: 'zz' }, /^labels is not lower-case hex/],
      [{ sec: -5 }, /^sec -5 is not an integer/],
      [{ orig: { ...tuple(1), src: "10.0.0.1', 'evil" } }, /^orig\.src .* is not an IPv4 address/],
      [{ orig: { ...tuple(1), src: '2001:db8::1' } }, /^orig\.src .* is not an IPv4 address/],
      [{ family: 'ipv6' }, /^orig\.src .* is not an IPv6 address/],
      [{ reply: undefined }, /^reply is missing/],
      [{ counters: { orig: { packets: -1, bytes: 0 } } }, /^counters\.orig\.packets -1/],
      [{ start: '18446744073709551616' }, /^start "18446744073709551616"/],
      [{ proto: 17 }, /^proto 17 is not the original tuple's 6/],
      [{ kernel_time: 'yes' }, /^kernel_time is not true or false/],
    ];
    for (const [patch, why] of cases) expect(validateRecord({ ...flow(1), ...patch }), JSON.stringify(patch).slice(0, 80)).toMatch(why);
    expect(validateRecord({ ...flow(1), start: '18446744073709551615' })).toBeUndefined(); // u64's largest, as a decimal string
    expect(validateRecord({ ...flow(1), host: 'x'.repeat(2000) }, { maxString: 4096 })).toBeUndefined();
  });
});

describe('JSON lines', () => {
  const line = (patch: Record<string, unknown>) => JSON.stringify({ ...JSON.parse(toJsonLine(flow(1))), ...patch });

  it('rejects the values that used to be narrowed to fit (sport 70000 was stored as 4464, mark 2^40 as 0) with the field named', () => {
    expect(() => fromJsonLine(line({ orig: { ...tuple(70000) } }))).toThrow(/^orig\.sport 70000 is not an integer from 0 to 65535$/);
    expect(() => fromJsonLine(line({ mark: 2 ** 40 }))).toThrow(/^mark 1099511627776 is not an integer from 0 to 4294967295$/);
    expect(() => fromJsonLine(line({ time: '1969-12-31T23:59:59Z' }))).toThrow(/^sec -1 /);
    expect(() => fromJsonLine(line({ orig: { ...tuple(1), src: '10.0.0.1\t0\t0\n' } }))).toThrow(expect.objectContaining({ code: 'RECORD_INVALID' }));
    expect(fromJsonLine(line({}))).toMatchObject({ orig: { sport: 40001 }, mark: 7 });
  });

  it('answers every mutation of a line with a record that passes or a RECORD_ error, never anything else', () => {
    const rnd = mulberry32(18);
    const base = JSON.parse(toJsonLine(flow(1))) as Record<string, unknown>;
    const odd = [null, -1, 2 ** 64, 1e308, 'x', '', [], {}, [1, 'a'], true, { src: 1 }, '10.0.0.1\'; DROP TABLE flows; --'];
    const keys = [...Object.keys(base), 'cpus', 'totals', 'collector', 'unknown', 'master', 'seqadj_orig', 'synproxy'];
    for (let i = 0; i < 5000; i++) {
      const o = structuredClone(base);
      for (let k = 0; k < 1 + Math.floor(rnd() * 3); k++) {
        const key = keys[Math.floor(rnd() * keys.length)]!;
        const v = structuredClone(odd[Math.floor(rnd() * odd.length)]);
        if (rnd() < 0.3 && typeof o.orig === 'object' && o.orig) (o.orig as Record<string, unknown>)[['src', 'dst', 'proto', 'sport'][k]!] = v;
        else o[key] = v;
      }
      if (rnd() < 0.2) o.type = ['stats', 'loss', 'exp_new', 'invalid_packet', 'dump_end'][Math.floor(rnd() * 5)];
      try {
        const r = fromJsonLine(JSON.stringify(o));
        expect(validateRecord(r)).toBeUndefined();
      } catch (e) {
        if (!isCtpipeError(e, 'RECORD_INVALID') && !isCtpipeError(e, 'RECORD_DECODE')) throw e;
      }
    }
  });

  async function read(chunks: Buffer[], limits = DEFAULT_BATCH_LIMITS): Promise<RecordingItem[]> {
    const out: RecordingItem[] = [];
    for await (const item of readRecording(Readable.from(chunks), { limits })) out.push(item);
    return out;
  }

  it('reports a line longer than the bound and reads on, in linear time and bounded memory (128 MB without a newline)', async () => {
    const chunk = Buffer.alloc(64 << 10, 0x61); // "aaaa...": no newline in 128 MB
    const chunks = [Buffer.from(`${toJsonLine(flow(1))}\n{"type":"new","host":"`), ...Array.from({ length: 2048 }, () => chunk), Buffer.from(`"}\n${toJsonLine(flow(2))}\n`)];
    const t0 = Date.now();
    const rss0 = process.memoryUsage().rss;
    const items = await read(chunks);
    expect(Date.now() - t0).toBeLessThan(5000); // it took 120 s
    expect(process.memoryUsage().rss - rss0).toBeLessThan(100 << 20);
    expect(items.map((i) => ('bad' in i ? `${i.where}: ${i.bad}` : `${i.records.length} record`))).toEqual([
      '1 record', 'line 2: a line longer than 16777216 bytes (process.max_batch_bytes); skipped unread', '1 record',
    ]);
  });

  it('reads a binary frame\'s good records and names its bad one', async () => {
    const bad = { ...flow(2), mark: 2 ** 40 };
    const items = await read([MAGIC, encodeFrame([flow(1), bad, flow(3)])]);
    expect(items.map((i) => ('bad' in i ? `${i.where}: ${i.bad}` : i.records.map((r) => r.seq).join(',')))).toEqual([
      'byte 8, record 1 of the frame: record seq 2: mark 1099511627776 is not an integer from 0 to 4294967295', '1,3',
    ]);
  });
});

describe('batches', () => {
  it('keeps the good records of a batch and leaves out the bad ones, with their bytes', () => {
    const recs = [flow(1), { ...flow(2), orig: tuple(70000), reply: { ...tuple(443), sport: 443, dport: 70000 } }, flow(3)];
    const b = decodeBatch(encodeBatch(recs));
    expect(b.records.map((r) => r.seq)).toEqual([1, 3]);
    expect(b.rejected).toMatchObject([{ index: 1, seq: 2, reason: 'orig.sport 70000 is not an integer from 0 to 65535' }]);
    expect(b.rejected[0]!.bytes.length).toBeGreaterThan(20);
  });

  it('refuses a batch past its bounds before reading its records, and a batch whose host breaks the contract', () => {
    const buf = encodeBatch([flow(1), flow(2), flow(3)]);
    expect(() => decodeBatch(buf, { ...DEFAULT_BATCH_LIMITS, maxRecords: 2 })).toThrow(/more than 2 records \(process\.max_batch_records\)/);
    expect(() => decodeBatch(buf, { ...DEFAULT_BATCH_LIMITS, maxBytes: 100 })).toThrow(/^a batch of \d+ bytes, more than 100 \(process\.max_batch_bytes\)/);
    const evil = encodeBatch([{ ...flow(1), host: 'h'.repeat(5000) }]);
    expect(() => decodeBatch(evil)).toThrow(expect.objectContaining({ code: 'RECORD_INVALID', message: expect.stringMatching(/^a batch whose host is 5000 characters long/) }));
  });
});

describe('cost on the hot path', () => {
  it('costs a fraction of decoding on the Kafka path, and less than zod (figures printed)', () => {
    const buf = encodeBatch(Array.from({ length: 1000 }, (_, i) => flow(i + 1)));
    const recs = decodeBatch(buf).records;
    const tupleZ = z.object({ src: z.ipv4(), dst: z.ipv4(), proto: z.number().int().min(0).max(255), sport: z.number().int().min(0).max(65535).optional(), dport: z.number().int().min(0).max(65535).optional() });
    const flowZ = z.object({
      host: z.string().min(1).max(1024), run: z.string().min(1).max(1024), seq: z.number().int().min(0), sec: z.number().int().min(0), nsec: z.number().int().min(0).max(999_999_999),
      type: z.enum(['new', 'update', 'destroy', 'snapshot']), id: z.number().int().min(0).max(2 ** 32 - 1), family: z.enum(['ipv4', 'ipv6']), proto: z.number().int().min(0).max(255),
      orig: tupleZ, reply: tupleZ, status: z.number().int().min(0).max(2 ** 32 - 1), mark: z.number().int().min(0).max(2 ** 32 - 1).optional(),
      tcp_state: z.number().int().min(0).max(255).optional(), helper: z.string().max(1024).optional(), labels: z.string().max(1024).optional(),
    });
    // CPU time, best of 5 rounds: the machine is shared
    const time = (f: () => void) => {
      let best = Infinity;
      for (let round = 0; round < 5; round++) {
        const t0 = process.cpuUsage().user;
        for (let k = 0; k < 20; k++) f();
        best = Math.min(best, (process.cpuUsage().user - t0) / 20 / recs.length);
      }
      return best; // us per record
    };
    const decoded = time(() => { for (const r of recs) if (validateRecord(r, undefined, true)) throw new Error('rejected'); });
    const text = time(() => { for (const r of recs) if (validateRecord(r)) throw new Error('rejected'); });
    const decode = time(() => decodeBatch(buf));
    const zods = time(() => { for (const r of recs) flowZ.parse(r); });
    console.log(`per flow record: decodeBatch ${decode.toFixed(3)} us (checks included), its checks ${decoded.toFixed(3)} us, ` +
      `the same for a JSON line's record (addresses parsed) ${text.toFixed(3)} us, zod on fewer fields ${zods.toFixed(3)} us`);
    expect(decoded).toBeLessThan(decode / 2);
    expect(text).toBeLessThan(zods);
  });
});
