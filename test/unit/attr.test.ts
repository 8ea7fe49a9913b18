/** Address formatting: IPv6 text form must equal Node's own RFC 5952 formatting. */
import { SocketAddress } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ipv4, ipv6 } from '../../collector/netlink/attr.js';
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
      if (rnd() < 0.01) b.writeUInt32BE(0xffff, 8), b.fill(0, 0, 8); // IPv4-mapped
      // Node writes the deprecated IPv4-compatible range (::/96) in dotted form; ctpipe keeps hex there.
      if (b.readUInt32BE(0) === 0 && b.readUInt32BE(4) === 0 && b.readUInt32BE(8) === 0) continue;
      const groups = Array.from({ length: 8 }, (_, g) => b.readUInt16BE(g * 2).toString(16)).join(':');
      const want = new SocketAddress({ address: groups, family: 'ipv6' }).address;
      expect(ipv6(new DataView(b.buffer, b.byteOffset, 16), 0)).toBe(want);
    }
  });
});
