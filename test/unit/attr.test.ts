/** Address formatting: IPv6 text form must equal Node's own RFC 5952 formatting. */
import { SocketAddress } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ipv4, ipv6 } from '../../contract/addr.js';
import { mulberry32 } from '../helpers/random.js';

describe('address text', () => {
  it('formats IPv4', () => {
    expect(ipv4(Buffer.from([198, 51, 100, 2]), 0)).toBe('198.51.100.2');
    expect(ipv4(Buffer.from([0, 0, 0, 0]), 0)).toBe('0.0.0.0');
  });

  it('formats IPv6 exactly as RFC 5952 (Node net.SocketAddress), including zero runs anywhere', () => {
    const rnd = mulberry32(5);
    for (let i = 0; i < 20_000; i++) {
      const b = Buffer.alloc(16);
      // mostly zeros and small values, so zero runs of every length and position appear
      for (let g = 0; g < 8; g++) b.writeUInt16BE(rnd() < 0.5 ? 0 : rnd() < 0.5 ? Math.floor(rnd() * 16) : Math.floor(rnd() * 65536), g * 2);
      if (rnd() < 0.01) b.fill(0, 0, 8).writeUInt32BE(0xffff, 8); // IPv4-mapped
      // Node writes the deprecated IPv4-compatible range (::/96) in dotted form; ctpipe keeps hex there.
      if (b.readUInt32BE(0) === 0 && b.readUInt32BE(4) === 0 && b.readUInt32BE(8) === 0) continue;
      const groups = Array.from({ length: 8 }, (_, g) => b.readUInt16BE(g * 2).toString(16)).join(':');
      const want = new SocketAddress({ address: groups, family: 'ipv6' }).address;
      expect(ipv6(new DataView(b.buffer, b.byteOffset, 16), 0)).toBe(want);
    }
  });
});

describe('address bytes', () => {
  it('parses every text form back to the bytes it came from', async () => {
    const { addrToBytes, bytesToAddr, parseAddr } = await import('../../contract/addr.js');
    const rnd = mulberry32(11);
    for (let i = 0; i < 5000; i++) {
      const v6 = rnd() < 0.7;
      const b = Buffer.alloc(v6 ? 16 : 4);
      for (let k = 0; k < b.length; k++) b[k] = rnd() < 0.4 ? 0 : Math.floor(rnd() * 256);
      if (v6 && rnd() < 0.1) b.fill(0, 0, 10).writeUInt16BE(0xffff, 10);
      const text = bytesToAddr(b, 0, b.length);
      expect(addrToBytes(text)).toEqual(b);
    }
    expect(parseAddr('::ffff:192.0.2.1').toString('hex')).toBe('00000000000000000000ffffc0000201');
    for (const bad of ['', '1.2.3', '1.2.3.256', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9']) {
      expect(() => parseAddr(bad), bad).toThrow(/not an IP address/);
    }
  });
});

describe('IPv4 numbers', () => {
  it('round-trips text and numbers, each number to the string the decoder made for its bytes, colliding cache slots included', async () => {
    const { ipv4ToU32, u32ToIpv4 } = await import('../../contract/addr.js');
    const rnd = mulberry32(5);
    const values = [0, 1, 255, 256, 0x7fffffff, 0x80000000, 0xffffffff, 0xc0000201];
    for (let i = 0; i < 50_000; i++) values.push(Math.floor(rnd() * 2 ** 32));
    for (const v of values) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(v);
      const text = [...b].join('.');
      expect(u32ToIpv4(v)).toBe(text);
      expect(ipv4ToU32(text)).toBe(v);
      expect(u32ToIpv4(v) === ipv4(b, 0)).toBe(true); // one string, from the one cache
    }
    // the last answers kept: any order of repeats, and text that is not an address, still right
    const seq = ['192.0.2.1', '10.0.0.1', '192.0.2.1', '1.2.3', '10.0.0.1', '10.0.0.1', '::1', '192.0.2.1', '256.0.0.1', '198.51.100.7', '1.2.3'];
    expect(seq.map((t) => ipv4ToU32(t))).toEqual([0xc0000201, 0x0a000001, 0xc0000201, -1, 0x0a000001, 0x0a000001, -1, 0xc0000201, -1, 0xc6336407, -1]);
    // a signed 32-bit value (as Int32Array holds) names the same address
    expect(u32ToIpv4(0xc0000201 | 0)).toBe('192.0.2.1');
  });
});

describe('64-bit values', () => {
  it('splits nanoseconds and prints big values exactly, as BigInt would', async () => {
    const { be64, be64time } = await import('../../collector/netlink/attr.js');
    const rnd = mulberry32(3);
    const b = Buffer.alloc(8);
    const dv = new DataView(b.buffer, b.byteOffset, 8);
    for (let i = 0; i < 20_000; i++) {
      const v = i === 0 ? 0xffffffffffffffffn : (BigInt(Math.floor(rnd() * 2 ** 32)) << 32n) | BigInt(Math.floor(rnd() * 2 ** 32));
      b.writeBigUInt64BE(v);
      expect(be64time(dv, 0, 8, 't')).toEqual([Number(v / 1_000_000_000n), Number(v % 1_000_000_000n)]);
      const got = be64(dv, 0, 8, 'v');
      expect(String(got)).toBe(v.toString());
      expect(typeof got).toBe(v <= BigInt(Number.MAX_SAFE_INTEGER) ? 'number' : 'string');
    }
  });
});
