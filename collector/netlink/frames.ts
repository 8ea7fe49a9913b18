/**
 * Chunks from the native reader (collector/native/netlink.cc) hold datagrams framed as:
 *
 *   frame := u32 length, u32 flags (bit 0: truncated), u32 recv seconds, u32 recv nanoseconds,
 *            datagram[length], pad to 8
 *
 * all host order (little-endian). A datagram holds one or more netlink messages.
 */
export const FRAME_HEADER = 16;
export const FRAME_TRUNCATED = 1;

export type FrameVisitor = (off: number, len: number, sec: number, nsec: number, truncated: boolean) => void;

export function forEachFrame(chunk: Buffer, visit: FrameVisitor): void {
  const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  let o = 0;
  while (o + FRAME_HEADER <= chunk.length) {
    const len = dv.getUint32(o, true);
    const flags = dv.getUint32(o + 4, true);
    const sec = dv.getUint32(o + 8, true);
    const nsec = dv.getUint32(o + 12, true);
    if (o + FRAME_HEADER + len > chunk.length) break;
    visit(o + FRAME_HEADER, len, sec, nsec, (flags & FRAME_TRUNCATED) !== 0);
    o += FRAME_HEADER + ((len + 7) & ~7);
  }
}

/** Builds a chunk from datagrams: the inverse of forEachFrame, for tests, fixtures and replay. */
export function frameDatagrams(datagrams: Buffer[], sec = 0, nsec = 0): Buffer {
  let size = 0;
  for (const d of datagrams) size += FRAME_HEADER + ((d.length + 7) & ~7);
  const out = Buffer.alloc(size);
  let o = 0;
  for (const d of datagrams) {
    out.writeUInt32LE(d.length, o);
    out.writeUInt32LE(0, o + 4);
    out.writeUInt32LE(sec, o + 8);
    out.writeUInt32LE(nsec, o + 12);
    d.copy(out, o + FRAME_HEADER);
    o += FRAME_HEADER + ((d.length + 7) & ~7);
  }
  return out;
}
