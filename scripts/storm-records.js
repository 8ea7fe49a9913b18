// The DESTROY storm's records as the collector's decoder hands them (address strings from its
// cache), for scripts/bench-cpu.js and scripts/bench-ab.js: one place, kept out of the builds they
// compare (an older build has no such module). `ipv4`: that build's contract/addr.js ipv4.
const EPOCH = 1_795_000_000;

export function stormRecord(ipv4) {
  const b = Buffer.alloc(4);
  const addr = (c) => (b.writeUInt32BE(((10 << 24) | c) >>> 0), ipv4(b, 0));
  return (c, type, seq) => {
    const src = addr(c);
    const dst = '203.0.113.9';
    const orig = { src, dst, proto: 17, sport: 1024 + (c % 60000), dport: 53 };
    return {
      type, host: 'storm', run: 'storm', seq, sec: EPOCH + (type === 'new' ? 0 : 1), nsec: c, id: c + 1, family: 'ipv4', proto: 17, orig,
      reply: { src: dst, dst: src, proto: 17, sport: 53, dport: orig.sport }, status: type === 'new' ? 8 : 14, timeout: 30,
      ...(type === 'destroy' ? { counters: { orig: { packets: 1, bytes: 60 }, reply: { packets: 1, bytes: 120 } } } : {}),
    };
  };
}
