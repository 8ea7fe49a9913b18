/**
 * The ctnetlink decoder on bytes captured from the real kernel in the lab
 * (test/fixtures/netlink, `npm run capture-fixtures`): every field it must decode, attribute order
 * independence, unknown attributes, padding, truncation at every prefix, and a fuzz run.
 */
import { describe, expect, it } from 'vitest';
import { IPS_EXPECTED, TCP_STATE_NAMES } from '../../contract/kernel.js';
import { decodeDatagram } from '../../collector/conntrack/decode.js';
import { ErrorCodes } from '../../common/errors.js';
import { NlWriter } from '../../collector/netlink/writer.js';
import { decodeBuffers, emptyDecoded, fixtureBuffers, handlerFor } from '../helpers/decode.js';
import { mulberry32 } from '../helpers/random.js';

const events = fixtureBuffers('events');
const dump = fixtureBuffers('dump');
const stats = fixtureBuffers('stats');
const all = [...events, ...dump, ...stats];

describe('decoding captured kernel messages', () => {
  const d = decodeBuffers(all);

  it('decodes every captured message without a rejection', () => {
    expect(d.rejects).toEqual([]);
    expect(d.ct.length).toBeGreaterThan(40);
  });

  it('tells NEW from UPDATE by the header flags, DESTROY by type, dump rows by NLM_F_MULTI', () => {
    const ev = decodeBuffers(events).ct;
    const types = new Set(ev.map((r) => r.type));
    expect([...types].sort()).toEqual(['destroy', 'new', 'update']);
    for (const id of new Set(ev.map((r) => r.id))) expect(ev.filter((r) => r.id === id)[0]!.type).not.toBe('update');
    expect(decodeBuffers(dump).ct.every((r) => r.type === 'snapshot')).toBe(true);
  });

  it('decodes IPv4 and IPv6 tuples, TCP states, window scales and flags', () => {
    const syn = d.ct.find((r) => r.type === 'new' && r.orig.dport === 8080 && r.family === 'ipv4')!;
    expect(syn.orig).toMatchObject({ src: '198.51.100.2', dst: '203.0.113.2', proto: 6, dport: 8080 });
    expect(syn.reply).toMatchObject({ src: '203.0.113.2', dst: '198.51.100.2', sport: 8080, dport: syn.orig.sport });
    expect(TCP_STATE_NAMES[syn.tcp_state!]).toBe('SYN_SENT');
    expect(syn.tcp_wscale_orig).toBeGreaterThan(0);
    expect(syn.tcp_flags_orig! & 0x3).toBe(0x3); // WINDOW_SCALE | SACK_PERM
    expect(syn.timeout).toBe(120);
    const v6 = d.ct.find((r) => r.family === 'ipv6' && r.proto === 6)!;
    expect(v6.orig.src).toBe('2001:db8:c::2');
    expect(v6.orig.dst).toBe('2001:db8:5::2');
  });

  it('decodes ICMP and ICMPv6 type, code and id', () => {
    const icmp = d.ct.find((r) => r.proto === 1)!;
    expect([icmp.orig.icmp_type, icmp.orig.icmp_code, icmp.reply.icmp_type]).toEqual([8, 0, 0]);
    expect(icmp.orig.icmp_id).toBe(icmp.reply.icmp_id);
    const icmp6 = d.ct.find((r) => r.proto === 58)!;
    expect([icmp6.orig.icmp_type, icmp6.reply.icmp_type]).toEqual([128, 129]);
  });

  it('decodes 64-bit counters and kernel timestamps on DESTROY', () => {
    const udp = d.ct.find((r) => r.type === 'destroy' && r.proto === 17 && r.orig.dport === 5353)!;
    expect(udp.counters).toEqual({ orig: { packets: 2, bytes: 2 * (64 + 28) }, reply: { packets: 2, bytes: 2 * (64 + 28) } });
    // Nanoseconds since the epoch exceed 2^53: exact decimal strings, never rounded numbers.
    expect(typeof udp.start).toBe('string');
    expect(BigInt(udp.stop!)).toBeGreaterThanOrEqual(BigInt(udp.start!));
    expect(Number(BigInt(udp.start!) / 1_000_000_000n)).toBeGreaterThan(1_700_000_000);
    expect(udp.kernel_time).toBe(true);
  });

  it('decodes the helper, the master tuple of RELATED flows, and expectations', () => {
    const control = d.ct.find((r) => r.helper === 'ftp')!;
    expect(control.orig.dport).toBe(21);
    const data = d.ct.filter((r) => r.type === 'new' && (r.status & IPS_EXPECTED) !== 0);
    expect(data.length).toBe(2);
    for (const r of data) expect(r.master!.dport).toBe(21);
    const e = d.exp.find((x) => x.type === 'exp_new')!;
    expect(e.helper).toBe('ftp');
    expect(e.master!.dport).toBe(21);
    expect(e.mask!.src).toBe('255.255.255.255');
    expect(e.expected!.proto).toBe(6);
    expect(e.timeout).toBeGreaterThan(0);
    expect(d.exp.some((x) => x.type === 'exp_destroy')).toBe(true);
  });

  it('decodes marks, zones and the dump-only use count', () => {
    const marked = d.ct.find((r) => r.mark === 7)!;
    expect(marked.zone).toBe(4);
    expect(marked.orig.src).toBe('192.0.2.1');
    expect(decodeBuffers(dump).ct.every((r) => r.use !== undefined)).toBe(true);
  });

  it('decodes per-CPU and global statistics', () => {
    const s = decodeBuffers(stats);
    expect(s.cpu.length).toBeGreaterThan(0);
    expect(s.cpu.map((c) => c.cpu)).toEqual([...s.cpu.keys()]);
    expect(Object.keys(s.cpu[0]!).sort()).toEqual(['chaintoolong', 'clash_resolve', 'cpu', 'drop', 'early_drop', 'error', 'found', 'insert', 'insert_failed', 'invalid', 'search_restart']);
    expect(s.global[0]!.max_entries).toBeGreaterThan(0);
    expect(s.expStats.length).toBeGreaterThan(0);
    expect(s.done.length).toBeGreaterThanOrEqual(3);
  });
});

/** Splits one message into header bytes and its top-level attributes. */
function split(msg: Buffer): { head: Buffer; attrs: Buffer[] } {
  const attrs: Buffer[] = [];
  let o = 20;
  while (o + 4 <= msg.length) {
    const len = msg.readUInt16LE(o);
    attrs.push(msg.subarray(o, o + ((len + 3) & ~3)));
    o += (len + 3) & ~3;
  }
  return { head: msg.subarray(0, 20), attrs };
}

function join(head: Buffer, attrs: Buffer[]): Buffer {
  const out = Buffer.concat([head, ...attrs]);
  out.writeUInt32LE(out.length, 0);
  return out;
}

describe('decoder robustness', () => {
  const newTcp = events.find((b) => {
    const r = decodeBuffers([b]).ct[0];
    return r?.type === 'new' && r.proto === 6;
  })!;
  const destroy = events.find((b) => decodeBuffers([b]).ct[0]?.type === 'destroy')!;

  it('does not depend on attribute order', () => {
    for (const msg of [newTcp, destroy]) {
      const want = decodeBuffers([msg]).ct[0];
      const { head, attrs } = split(msg);
      const rnd = mulberry32(7);
      for (let i = 0; i < 20; i++) {
        const shuffled = [...attrs].sort(() => rnd() - 0.5);
        expect(decodeBuffers([join(head, shuffled)]).ct[0]).toEqual(want);
      }
    }
  });

  it('keeps unknown attributes as raw bytes, counted, and decodes the rest', () => {
    const want = decodeBuffers([newTcp]).ct[0]!;
    const { head, attrs } = split(newTcp);
    const extra = new NlWriter().begin(0, 0, 0, 0).attr(99, Buffer.from([1, 2, 3, 4])).end().bytes().subarray(20);
    const d = decodeBuffers([join(head, [...attrs, extra])]);
    expect(d.rejects).toEqual([]);
    expect(d.ct[0]!.unknown).toEqual([{ path: 'ct', type: 99, hex: '01020304' }]);
    expect(d.unknown.length).toBe(1);
    expect({ ...d.ct[0], unknown: undefined }).toEqual({ ...want, unknown: undefined });
  });

  it('treats zero-length attributes as padding that never overwrites a value', () => {
    const want = decodeBuffers([newTcp]).ct[0]!;
    const { head, attrs } = split(newTcp);
    const pad = Buffer.from([4, 0, 3, 0]); // CTA_STATUS with no payload
    expect(decodeBuffers([join(head, [...attrs, pad])]).ct[0]!.status).toBe(want.status);
  });

  it('rejects a wrong-size attribute with a stable code', () => {
    const { head, attrs } = split(newTcp);
    const badStatus = Buffer.from([6, 0, 3, 0, 1, 2, 0, 0]); // CTA_STATUS with 2 bytes
    const d = decodeBuffers([join(head, [...attrs, badStatus])]);
    expect(d.ct).toEqual([]);
    expect(d.rejects.map((e) => e.code)).toEqual(['CT_BAD_ATTRIBUTE']);
  });

  it('rejects every truncated prefix of every captured datagram with a stable code, never throwing', () => {
    const codes = new Set<string>();
    for (const full of all) {
      // message boundaries: a prefix ending exactly at one is a valid, shorter datagram
      const bounds = new Set<number>([0]);
      for (let o = 0; o < full.length; o += (full.readUInt32LE(o) + 3) & ~3) bounds.add(o);
      for (let len = 1; len < full.length; len++) {
        const d = emptyDecoded();
        const b = full.subarray(0, len);
        expect(() => decodeDatagram(b, new DataView(b.buffer, b.byteOffset, b.byteLength), 0, len, 0, 0, handlerFor(d))).not.toThrow();
        if (!bounds.has(len)) expect(d.rejects.length).toBeGreaterThan(0);
        for (const e of d.rejects) codes.add(e.code);
      }
    }
    expect([...codes].every((c) => c in ErrorCodes && c !== 'DECODE_INTERNAL')).toBe(true);
  });

  // 1,000,000 in the fault suite's full run (npm run test:faults)
  const CASES = process.env.FAULT_SUITE === 'full' ? 1_000_000 : 100_000;
  it(`survives ${CASES.toLocaleString('en')} mutated messages without a crash or an internal error`, () => {
    const rnd = mulberry32(2026);
    const d = emptyDecoded();
    const h = handlerFor(d);
    for (let i = 0; i < CASES; i++) {
      const src = all[Math.floor(rnd() * all.length)]!;
      const b = Buffer.from(src);
      const kind = rnd();
      if (kind < 0.5) {
        for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      } else if (kind < 0.8) {
        // corrupt a length field: an nlattr or the nlmsghdr
        const at = rnd() < 0.2 ? 0 : 20 + 4 * Math.floor((rnd() * (b.length - 20)) / 4);
        if (at + 2 <= b.length) b.writeUInt16LE(Math.floor(rnd() * 65536), at);
      } else {
        b.writeUInt32LE(Math.floor(rnd() * b.length * 2), 0);
      }
      const cut = rnd() < 0.3 ? Math.floor(rnd() * b.length) : b.length;
      decodeDatagram(b, new DataView(b.buffer, b.byteOffset, b.byteLength), 0, cut, 0, 0, h);
    }
    expect(d.rejects.filter((e) => e.code === 'DECODE_INTERNAL').map((e) => e.message)).toEqual([]);
    expect(d.rejects.length).toBeGreaterThan(CASES / 10);
    expect(d.ct.length).toBeGreaterThan(1_000);
  });

  it('reports kernel errors and acknowledgements', () => {
    const err = Buffer.alloc(4);
    err.writeInt32LE(-16);
    const ack = Buffer.alloc(4);
    const b = new NlWriter().raw(2, 0, 41, err).raw(2, 0, 42, ack).raw(3, 2, 43, Buffer.alloc(4)).bytes();
    const d = decodeBuffers([b]);
    expect(d.errors).toEqual([16]);
    expect(d.done).toEqual([42, 43]);
  });
});

describe('attributes the lab cannot produce (SELinux, NAT helpers, DCCP tracker, labels)', () => {
  const tuple = (w: NlWriter, src: number[], dst: number[], proto: number, sport: number, dport: number, zone?: number) => {
    const v6 = src.length === 16 ? 2 : 0; // CTA_IP_V6_SRC/DST are 3/4
    w.nest(1, (x) => x.attr(1 + v6, Buffer.from(src)).attr(2 + v6, Buffer.from(dst)));
    w.nest(2, (x) => x.u8(1, proto).be16(2, sport).be16(3, dport));
    if (zone !== undefined) w.be16(3, zone);
  };

  it('decodes every conntrack attribute into its field', () => {
    const w = new NlWriter().begin(0x0102, 0, 0, 2);
    w.nest(1, (x) => tuple(x, [10, 0, 0, 1], [10, 0, 0, 2], 33, 1000, 2000, 7));
    w.nest(2, (x) => tuple(x, [10, 0, 0, 2], [10, 0, 0, 1], 33, 2000, 1000, 8));
    w.be32(12, 0xdeadbeef).be32(3, 0x2042).be32(7, 99).be32(8, 5).be32(11, 2).be16(18, 3).be32(17, 9);
    w.nest(4, (x) => x.nest(2, (y) => y.u8(1, 4).u8(2, 1).be64(3, 12345678901n)));
    w.nest(5, (x) => x.str(1, 'sip').attr(2, Buffer.from([1, 2])));
    w.nest(19, (x) => x.str(1, 'system_u:object_r:unlabeled_t:s0'));
    w.attr(22, Buffer.from('0100000000000000000000000000f000', 'hex'));
    w.nest(14, (x) => tuple(x, [10, 0, 0, 1], [10, 0, 0, 2], 6, 1111, 5060));
    w.nest(15, (x) => x.be32(1, 100).be32(2, 4).be32(3, 8));
    w.nest(16, (x) => x.be32(1, 200).be32(2, 16).be32(3, 32));
    w.nest(24, (x) => x.be32(1, 1).be32(2, 2).be32(3, 3));
    w.nest(9, (x) => x.be32(3, 10).be32(4, 1000)); // 32-bit counters (old kernels)
    w.nest(10, (x) => x.be64(1, 2n ** 60n).be64(2, 2n ** 53n + 1n));
    w.nest(20, (x) => x.be64(1, 1_795_000_000_123_456_789n).be64(2, 1_795_000_001_000_000_001n));
    w.be64(27, 1_795_000_002_000_000_005n);
    const d = decodeBuffers([w.end().bytes()]);
    expect(d.rejects).toEqual([]);
    const r = d.ct[0]!;
    expect(r).toMatchObject({
      type: 'destroy', id: 0xdeadbeef, status: 0x2042, timeout: 99, mark: 5, use: 2, zone: 3, secmark: 9,
      dccp_state: 4, dccp_role: 1, dccp_handshake_seq: 12345678901, helper: 'sip', helper_info: '0102',
      secctx: 'system_u:object_r:unlabeled_t:s0', labels: '0100000000000000000000000000f000',
      seqadj_orig: { correction_pos: 100, offset_before: 4, offset_after: 8 },
      seqadj_reply: { correction_pos: 200, offset_before: 16, offset_after: 32 },
      synproxy: { isn: 1, its: 2, tsoff: 3 },
      counters: { orig: { packets: 10, bytes: 1000 }, reply: { packets: String(2n ** 60n), bytes: String(2n ** 53n + 1n) } },
      start: '1795000000123456789', stop: '1795000001000000001', sec: 1_795_000_002, nsec: 5, kernel_time: true,
    });
    expect(r.orig).toMatchObject({ src: '10.0.0.1', proto: 33, sport: 1000, zone: 7 });
    expect(r.reply.zone).toBe(8);
    expect(r.master).toMatchObject({ dport: 5060, proto: 6 });
  });

  it('decodes every expectation attribute into its field', () => {
    const w = new NlWriter().begin(0x0200, 0x600, 0, 10);
    const v6 = (last: number) => [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), last];
    w.nest(1, (x) => tuple(x, v6(1), v6(2), 17, 5060, 5060));
    w.nest(2, (x) => tuple(x, v6(3), v6(1), 17, 0, 16384));
    w.nest(3, (x) => tuple(x, Array(16).fill(0xff), Array(16).fill(0xff), 17, 0, 0xffff));
    w.be32(4, 180).be32(5, 77).str(6, 'sip').be16(7, 12).be32(8, 0x5).be32(9, 1).str(11, 'sip_media');
    w.nest(10, (x) => {
      x.be32(1, 1);
      x.nest(2, (y) => tuple(y, v6(9), v6(8), 17, 0, 4000));
    });
    const d = decodeBuffers([w.end().bytes()]);
    expect(d.rejects).toEqual([]);
    expect(d.exp[0]).toMatchObject({
      type: 'exp_new', family: 'ipv6', timeout: 180, id: 77, helper: 'sip', zone: 12, flags: 5, class: 1, fn: 'sip_media',
      nat_dir: 1, nat: { src: '2001:db8::9', dport: 4000 }, master: { src: '2001:db8::1', dport: 5060 },
      expected: { src: '2001:db8::3', dport: 16384 }, mask: { src: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', dport: 65535 },
    });
  });
});
