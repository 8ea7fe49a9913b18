/**
 * IPv4 addresses carried as numbers from the decoders to the row (issue 19): the netlink and
 * protobuf decoders' tuples hold src4/dst4 beside their text (-1 when not IPv4), the open-flow table
 * takes them instead of parsing the text, and a row's address columns are written from them. Rows
 * are the same, byte for byte, whether a flow's records came with numbers (decoded) or text only
 * (built by hand, JSON lines); and the record's JSON and protobuf forms carry no new field.
 */
import { describe, expect, it } from 'vitest';
import { decodeTuple } from '../../collector/conntrack/tuple.js';
import * as C from '../../collector/conntrack/constants.js';
import { NlWriter } from '../../collector/netlink/writer.js';
import { ipv4ToU32, u32ToIpv4 } from '../../contract/addr.js';
import { fromJsonLine, toJsonLine } from '../../contract/json.js';
import { decodeBatch, encodeBatch } from '../../contract/proto/batch.js';
import { blankTuple, type CtRecord, type CtpipeRecord, type Tuple } from '../../contract/records.js';
import { FLOW_COLUMN_DEFS, type FlowRow } from '../../processor/clickhouse/flow-columns.js';
import { ByteSink } from '../../processor/clickhouse/rowbinary.js';
import { codecOf } from '../../processor/clickhouse/table-rows.js';
import { LifecycleEngine } from '../../processor/lifecycle/engine.js';
import { FlowTable } from '../../processor/lifecycle/flow-table.js';
import { decodeBuffers, fixtureBuffers } from '../helpers/decode.js';
import { mulberry32 } from '../helpers/random.js';

const TUPLE_FIELDS = ['src', 'dst', 'proto', 'sport', 'dport', 'icmp_type', 'icmp_code', 'icmp_id', 'zone'];

function tuplesOf(r: CtpipeRecord): Tuple[] {
  if (r.type === 'new' || r.type === 'update' || r.type === 'destroy' || r.type === 'snapshot') return [r.orig, r.reply, ...(r.master ? [r.master] : [])];
  if (r.type === 'exp_new' || r.type === 'exp_destroy') return [r.master, r.expected, r.mask, r.nat].filter((t): t is Tuple => t !== undefined);
  return [];
}

/** Each tuple's numbers are its text's (ipv4ToU32: -1 for what is not IPv4); counts the kinds seen. */
function expectNumbersMatchText(records: readonly CtpipeRecord[]): { v4: number; v6: number } {
  const seen = { v4: 0, v6: 0 };
  for (const r of records) {
    for (const t of tuplesOf(r)) {
      expect([t.src, t.src4]).toEqual([t.src, ipv4ToU32(t.src)]);
      expect([t.dst, t.dst4]).toEqual([t.dst, ipv4ToU32(t.dst)]);
      if (t.src4! >= 0) seen.v4++;
      else seen.v6++;
    }
  }
  return seen;
}

/** A CTA_TUPLE_ORIG's children as the kernel sends them, with the given address attributes. */
function tupleBytes(addrs: [type: number, bytes: number[]][]): Buffer {
  const w = new NlWriter();
  w.nest(C.CTA_TUPLE_IP, (x) => {
    for (const [type, b] of addrs) x.attr(type, Buffer.from(b));
  });
  w.nest(C.CTA_TUPLE_PROTO, (x) => x.u8(C.CTA_PROTO_NUM, 17).be16(C.CTA_PROTO_SRC_PORT, 5353).be16(C.CTA_PROTO_DST_PORT, 53));
  return w.bytes();
}

function decodeOne(b: Buffer): Tuple {
  return decodeTuple(b, new DataView(b.buffer, b.byteOffset, b.byteLength), 0, b.length, 'ct.tuple_orig', []);
}

const V6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
const MAPPED = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1];

const stamp = (seq: number) => ({ host: 'fw-1', run: 'run-x', seq, sec: 1_795_239_000 + seq, nsec: 123_456_789 });

/** Flow records built by hand (text only): IPv4, IPv6, IPv4-mapped IPv6, NAT, ICMP; each opened, updated, and most closed. */
function handMade(n: number): CtRecord[] {
  const rnd = mulberry32(26);
  const out: CtRecord[] = [];
  let seq = 0;
  for (let i = 0; i < n; i++) {
    const kind = i % 5;
    const v6 = kind === 1 || kind === 2;
    const src = kind === 1 ? `2001:db8::${(i + 1).toString(16)}` : kind === 2 ? `::ffff:10.0.${i & 255}.${(i * 3) & 255}` : `10.${i & 255}.${(i >> 8) & 255}.${(i * 7) & 255}`;
    const dst = v6 ? '2001:db8:1::2' : ['203.0.113.9', '0.0.0.0', '255.255.255.255'][i % 3]!;
    const proto = kind === 4 ? 1 : rnd() < 0.5 ? 6 : 17;
    const orig: Tuple = proto === 1
      ? { src, dst, proto, icmp_type: 8, icmp_code: 0, icmp_id: i & 0xffff }
      : { src, dst, proto, sport: 1024 + i, dport: 443 };
    const mirror: Tuple = proto === 1
      ? { src: dst, dst: src, proto, icmp_type: 0, icmp_code: 0, icmp_id: i & 0xffff }
      : { src: dst, dst: src, proto, sport: 443, dport: 1024 + i };
    // NAT: a reply from another address (DNAT) on every third IPv4 flow
    const reply: Tuple = kind === 3 && i % 3 === 0 ? { ...mirror, src: '192.0.2.50', sport: 8443 } : mirror;
    const family = v6 ? 'ipv6' : 'ipv4';
    const rec = (type: CtRecord['type'], status: number): CtRecord => ({ ...stamp(++seq), type, id: i + 1, family, proto, orig, reply, status, timeout: 120 });
    out.push(rec('new', 8), rec('update', 14));
    if (i % 4 !== 0) out.push({ ...rec('destroy', 14), counters: { orig: { packets: 3, bytes: 180 + i }, reply: { packets: 2, bytes: 120 } } });
  }
  return out;
}

/** The rows an engine makes of the records (every flow, open ones flushed), and their RowBinary bytes. */
function rowsOf(records: readonly CtpipeRecord[]): { rows: FlowRow[]; bytes: Buffer } {
  const rows: FlowRow[] = [];
  const e = new LifecycleEngine({ maxOpen: 100_000, refreshMs: 60_000, graceMs: 30_000, onHealth: () => {}, onRow: (r) => rows.push(r) });
  for (const r of records) e.apply(r);
  e.flushOpen();
  const codec = codecOf(FLOW_COLUMN_DEFS);
  const sink = new ByteSink(1 << 12);
  for (const r of rows) codec.encode(sink, r);
  return { rows, bytes: Buffer.concat(sink.pieces(0, sink.offset)) };
}

/** A record's copy with plain tuples (text only), as JSON lines give it back. */
const viaJson = (r: CtpipeRecord): CtpipeRecord => fromJsonLine(toJsonLine(r));

describe('IPv4 addresses as numbers from the decoders', () => {
  const fixture = decodeBuffers(fixtureBuffers());
  const netlink: CtpipeRecord[] = [...fixture.ct, ...fixture.exp];
  netlink.forEach((r, i) => Object.assign(r, stamp(i + 1)));

  it('the netlink decoder\'s tuples carry numbers matching their text: IPv4, IPv6 (-1), and both in one tuple', () => {
    const seen = expectNumbersMatchText(netlink);
    // the captured kernel messages hold IPv4 and IPv6 flows
    expect(seen.v4).toBeGreaterThan(10);
    expect(seen.v6).toBeGreaterThan(2);
    const v4 = decodeOne(tupleBytes([[C.CTA_IP_V4_SRC, [192, 0, 2, 1]], [C.CTA_IP_V4_DST, [255, 255, 255, 255]]]));
    expect([v4.src, v4.src4, v4.dst, v4.dst4]).toEqual(['192.0.2.1', 0xc0000201, '255.255.255.255', 0xffffffff]);
    const v6 = decodeOne(tupleBytes([[C.CTA_IP_V6_SRC, V6], [C.CTA_IP_V6_DST, MAPPED]]));
    expect([v6.src, v6.src4, v6.dst, v6.dst4]).toEqual(['2001:db8::1', -1, '::ffff:192.0.2.1', -1]);
    // a tuple mixing the families, and an address sent twice (the last one counts, text and number alike)
    const mixed = decodeOne(tupleBytes([[C.CTA_IP_V6_SRC, V6], [C.CTA_IP_V4_DST, [0, 0, 0, 0]], [C.CTA_IP_V4_SRC, [10, 0, 0, 1]], [C.CTA_IP_V6_DST, V6]]));
    expect([mixed.src, mixed.src4, mixed.dst, mixed.dst4]).toEqual(['10.0.0.1', 0x0a000001, '2001:db8::1', -1]);
  });

  it('the protobuf decoder\'s tuples carry numbers matching their text, the mirrored reply a batch leaves out included', () => {
    const hand = handMade(60);
    const decoded = decodeBatch(encodeBatch([...netlink, ...hand])).records;
    expect(decoded.length).toBe(netlink.length + hand.length);
    const seen = expectNumbersMatchText(decoded);
    expect(seen.v4).toBeGreaterThan(100);
    expect(seen.v6).toBeGreaterThan(50);
    // the replies the batch left out (mirrors) came back as decoders' tuples, with their numbers
    const flows = decoded.filter((r): r is CtRecord => 'orig' in r);
    const v4flow = flows.find((r) => r.family === 'ipv4' && r.orig.sport !== undefined && r.reply.src === r.orig.dst)!;
    expect([v4flow.reply.src4, v4flow.reply.dst4]).toEqual([ipv4ToU32(v4flow.orig.dst), ipv4ToU32(v4flow.orig.src)]);
    expect(v4flow.reply.src4).toBeGreaterThanOrEqual(0);
    // hand-made tuples have no numbers: the readers parse their text
    expect(hand[0]!.orig.src4).toBeUndefined();
  });

  it('keeps the numbers out of the JSON lines and protobuf forms: the same bytes as the same records with plain tuples', () => {
    const decoded = decodeBatch(encodeBatch([...netlink, ...handMade(30)])).records;
    for (const r of [...netlink, ...decoded]) {
      for (const t of tuplesOf(r)) {
        expect(Object.keys(t)).toEqual(TUPLE_FIELDS);
        expect(JSON.stringify(t)).not.toContain('src4');
        expect({ ...t }).not.toHaveProperty('src4');
        expect(t.src4).toBeTypeOf('number'); // yet there, for the flow table
      }
      const plain = viaJson(r);
      for (const t of tuplesOf(plain)) expect(t.src4).toBeUndefined();
      expect(toJsonLine(r)).toBe(toJsonLine(plain));
      expect(JSON.stringify(r)).not.toMatch(/src4|dst4/);
      expect(encodeBatch([r]).equals(encodeBatch([plain]))).toBe(true);
    }
  });

  it('gives the same rows and RowBinary bytes for flows from decoded records (numbers) as from hand-made ones (text only)', () => {
    const hand = handMade(400);
    const fromText = rowsOf(hand);
    const fromProto = rowsOf(decodeBatch(encodeBatch(hand)).records);
    expect(fromText.rows.length).toBe(400);
    expect(fromProto.rows).toEqual(fromText.rows);
    expect(fromProto.bytes.equals(fromText.bytes)).toBe(true);
    // the rows held what they were made to: IPv6, IPv4-mapped, NAT, ICMP
    const rows = fromText.rows;
    expect(rows.some((r) => r.family === 'ipv6' && r.orig_src.startsWith('::ffff:'))).toBe(true);
    expect(rows.some((r) => r.nat !== '' && r.family === 'ipv4')).toBe(true);
    expect(rows.some((r) => r.icmp_type !== null)).toBe(true);
    // the kernel's own captured flows: netlink-decoded records against their JSON lines copies
    const ct = netlink.filter((r): r is CtRecord => 'orig' in r);
    const kernel = rowsOf(ct);
    const kernelText = rowsOf(ct.map(viaJson));
    expect(kernel.rows.length).toBeGreaterThan(10);
    expect(kernel.rows).toEqual(kernelText.rows);
    expect(kernel.bytes.equals(kernelText.bytes)).toBe(true);
  });

  it('the flow table takes a decoded tuple\'s numbers rather than parsing its text, and parses text when there are none', () => {
    const t = new FlowTable();
    const decoded = blankTuple();
    Object.assign(decoded, { src: '192.0.2.1', dst: '198.51.100.7', proto: 17, sport: 1, dport: 2 });
    // numbers that disagree with the text (never so from a decoder) show which one the table read
    decoded.src4 = 0x0a000001;
    decoded.dst4 = 0x0a000002;
    const s = t.alloc();
    t.ctId[s] = 7;
    t.setTuple(s, decoded, 4);
    expect([t.src(s), t.dst(s)]).toEqual(['10.0.0.1', '10.0.0.2']);
    t.index(s);
    t.hostIdx[s] = t.intern('h');
    expect(t.find('h', 0, 7, decoded)).toBe(s);
    // text only: parsed
    const plain: Tuple = { src: '10.0.0.1', dst: '10.0.0.2', proto: 17, sport: 1, dport: 2 };
    expect(t.find('h', 0, 7, plain)).toBe(s);
    const s2 = t.alloc();
    t.setTuple(s2, { ...plain, src: '203.0.113.5' }, 4);
    expect([t.src(s2), t.dst(s2)]).toEqual(['203.0.113.5', '10.0.0.2']);
    // an IPv6 tuple (numbers -1) in an IPv4 record keeps its text
    const v6 = blankTuple();
    Object.assign(v6, { src: '2001:db8::1', dst: '2001:db8::2', proto: 6 });
    const s3 = t.alloc();
    t.setTuple(s3, v6, 4);
    expect([t.family[s3], t.src(s3), t.dst(s3)]).toEqual([6, '2001:db8::1', '2001:db8::2']);
  });

  it('answers ipv4ToU32 right in any order of u32ToIpv4 and ipv4ToU32 calls (the memo the row writer reads)', () => {
    const rnd = mulberry32(7);
    const pool = [0xc0000201, 0x0a000001, 0, 0xffffffff, 0xcb007109];
    for (let i = 0; i < 20_000; i++) {
      const v = pool[Math.floor(rnd() * pool.length)]!;
      const text = `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
      const step = rnd();
      if (step < 0.4) expect(u32ToIpv4(v)).toBe(text);
      else if (step < 0.7) expect(ipv4ToU32(u32ToIpv4(v))).toBe(v);
      else if (step < 0.9) expect(ipv4ToU32(text)).toBe(v);
      else expect(ipv4ToU32(`${text}.1`)).toBe(-1);
    }
  });
});
