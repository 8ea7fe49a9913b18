/**
 * A pipeline's state as binary chunks: named sections of raw bytes (the open-flow table's typed
 * arrays, the ended keys' ring) or JSON (strings, maps, the detectors), cut into pieces of at
 * most PIECE bytes and each compressed on libuv's thread pool, so that a million open flows are
 * saved without one giant string and without holding the event loop.
 *
 *   chunk 0   = "CTPS1\n" + JSON manifest: [{ name, kind: "bytes" | "json", pieces, bytes }...]
 *   chunk 1.. = the sections' pieces in manifest order, each deflate-raw
 *
 * Sections written from views (`bytes`) are read by the compressor after `finish()` is called: the
 * caller keeps the state still until finish() resolves (the consumer and the run sink checkpoint
 * between batches, when the engine is idle).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { promisify } from 'node:util';
import { deflateRaw, inflateRaw, inflateRawSync } from 'node:zlib';
import { CtpipeError } from '../common/errors.js';

const MAGIC = 'CTPS1\n';
/** Largest piece of a section: pieces compress in parallel and bound a chunk's size. */
const PIECE = 4 << 20;
/** JSON entries serialized between two turns of the event loop. */
const ENTRIES_PER_SLICE = 20_000;

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

interface Section {
  name: string;
  kind: 'bytes' | 'json';
  pieces: Uint8Array[];
}

/** A section as read: JSON pieces inflated, byte pieces still compressed; `bytes` their raw length. */
interface ReadSection {
  kind: string;
  bytes: number;
  pieces: Buffer[];
}

export class SnapshotWriter {
  private readonly sections: Section[] = [];

  /** A typed array's bytes (a view: not copied). */
  bytes(name: string, data: ArrayBufferView): void {
    const all = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const pieces: Uint8Array[] = [];
    for (let at = 0; at < all.length; at += PIECE) pieces.push(all.subarray(at, Math.min(all.length, at + PIECE)));
    this.sections.push({ name, kind: 'bytes', pieces });
  }

  /** A value small enough to stringify at once. */
  json(name: string, value: unknown): void {
    this.sections.push({ name, kind: 'json', pieces: [Buffer.from(JSON.stringify(value ?? null))] });
  }

  /** Entries of a large collection, a JSON array per slice, yielding to the event loop between slices. */
  async entries(name: string, entries: Iterable<unknown>): Promise<void> {
    const pieces: Uint8Array[] = [];
    let slice: unknown[] = [];
    for (const e of entries) {
      slice.push(e);
      if (slice.length === ENTRIES_PER_SLICE) {
        pieces.push(Buffer.from(JSON.stringify(slice)));
        slice = [];
        await yieldToLoop();
      }
    }
    if (slice.length || pieces.length === 0) pieces.push(Buffer.from(JSON.stringify(slice)));
    this.sections.push({ name, kind: 'json', pieces });
  }

  /** The chunks: the manifest, then every piece compressed (in parallel, off the event loop). */
  async finish(): Promise<Buffer[]> {
    const manifest = this.sections.map((s) => ({ name: s.name, kind: s.kind, pieces: s.pieces.length, bytes: s.pieces.reduce((n, p) => n + p.length, 0) }));
    const pieces = this.sections.flatMap((s) => s.pieces);
    const compressed = await Promise.all(pieces.map((p) => deflate(p, { level: 1 })));
    return [Buffer.from(MAGIC + JSON.stringify(manifest)), ...compressed];
  }
}

/** Whether chunks hold a binary snapshot (else: a checkpoint from before them). */
export function isSnapshot(chunks: readonly Buffer[]): boolean {
  return chunks.length > 0 && chunks[0]!.subarray(0, MAGIC.length).toString('latin1') === MAGIC;
}

export class SnapshotReader {
  private constructor(private readonly sections: Map<string, ReadSection>) {}

  static async open(chunks: readonly Buffer[]): Promise<SnapshotReader> {
    if (!isSnapshot(chunks)) throw new CtpipeError('CHECKPOINT_INVALID', 'not a ctpipe state snapshot');
    const manifest = JSON.parse(chunks[0]!.subarray(MAGIC.length).toString()) as { name: string; kind: string; pieces: number; bytes: number }[];
    const expected = manifest.reduce((n, s) => n + s.pieces, 0);
    if (chunks.length - 1 !== expected) throw new CtpipeError('CHECKPOINT_INVALID', `a state snapshot has ${chunks.length - 1} of its ${expected} pieces`);
    // JSON sections are inflated now (restore reads them synchronously); byte sections when read,
    // one at a time, into their arrays: a million flows' columns never sit in memory twice
    const sections = new Map<string, ReadSection>();
    let at = 1;
    for (const s of manifest) {
      const pieces = chunks.slice(at, at + s.pieces);
      sections.set(s.name, { kind: s.kind, bytes: s.bytes, pieces: s.kind === 'json' ? await Promise.all(pieces.map((c) => inflate(c))) : pieces });
      at += s.pieces;
    }
    return new SnapshotReader(sections);
  }

  has(name: string): boolean {
    return this.sections.has(name);
  }

  private section(name: string, kind: string): Buffer[] {
    const s = this.sections.get(name);
    if (!s || s.kind !== kind) throw new CtpipeError('CHECKPOINT_INVALID', `a state snapshot lacks its ${kind} section "${name}"`);
    return s.pieces;
  }

  /** A `bytes` section into `target` (inflated piece by piece), whose length must be the section's. */
  into(name: string, target: ArrayBufferView): void {
    const view = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
    let at = 0;
    for (const p of this.section(name, 'bytes')) {
      const raw = inflateRawSync(p, { maxOutputLength: Math.max(1, view.length - at) });
      view.set(raw, at);
      at += raw.length;
    }
    if (at !== view.length) throw new CtpipeError('CHECKPOINT_INVALID', `section "${name}" of a state snapshot has ${at} bytes, not ${view.length}`);
  }

  /** A `bytes` section's length in bytes. */
  size(name: string): number {
    this.section(name, 'bytes');
    return this.sections.get(name)!.bytes;
  }

  json<T>(name: string): T {
    return JSON.parse(this.section(name, 'json')[0]!.toString()) as T;
  }

  /** An `entries` section's entries, slice after slice. */
  *entries<T>(name: string): Generator<T> {
    for (const p of this.section(name, 'json')) yield* JSON.parse(p.toString()) as T[];
  }
}
