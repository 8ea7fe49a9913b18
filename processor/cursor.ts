/**
 * The position arithmetic of effectively-once processing, for one input (a Kafka partition, a
 * recording file, a collector run): which fetched records go into which chunk, which wait, which
 * position the rows stored so far cover, and when the state is due to be checkpointed. Pure: no
 * I/O, no clock (callers pass `now`); the Kafka consumer, `ctpipe run`'s sink and file replay
 * drive it and do the I/O.
 *
 * Invariants:
 * - A chunk's rows are inserted under a token naming its range (`token`), so a chunk cut again the
 *   same way is stored once. Replays cut again the same way: along the ranges logged before their
 *   rows were written (`restore`), else by rules that depend on the records alone (`boundary`,
 *   `maxRecords`). A new chunk may be split before its range is logged (`split`); a logged one never is.
 * - `applied` only moves when a chunk's rows are stored (`done`), so a checkpoint taken at
 *   `applied` (`checkpointed`) matches the state, and the offset after it is safe to commit.
 * - Records at or below what is applied or already pending are dropped (a re-fetch from an older
 *   committed offset); nothing is handed out twice.
 */

export interface Range {
  first: number;
  last: number;
}

export interface CursorOptions<M> {
  /** Names the input in tokens: `${input}:${first}-${last}`. */
  input: string;
  /** A record's position in the input (offset, index or seq), increasing. */
  position: (m: M) => number;
  /** A record's size for `minSize` (the Kafka consumer: the records of a ctpipe.v1.Batch); read once, when it is added. */
  size?: (m: M) => number;
  checkpointMs: number;
  /** A chunk holds at most this many records. */
  maxRecords?: number;
  /**
   * New records are cut into chunks of this much `size`, each ending at the record that reaches it
   * (fewer, larger inserts while behind); unless flushed, a remainder below it waits. A function is
   * asked at each take (the Kafka consumer: what its rows per record so far make an insert's worth).
   */
  minSize?: number | (() => number);
  /** True where `next` must start a new chunk whose first record is `first` (cuts from the records alone). */
  boundary?: (first: M, next: M) => boolean;
}

export interface Chunk<M> {
  first: number;
  last: number;
  records: M[];
  token: string;
  /** New input: its range is to be logged before its rows are written (replays cut along it). */
  log: boolean;
  /**
   * A replayed range followed by a logged range that starts right after it. Where every range is
   * logged only once the rows of the one before it are stored (the Kafka consumer, one chunk after
   * another per partition), its rows are all stored: a replay rebuilds its state from the records
   * and need not insert them again (the duplicates ClickHouse would drop cost it almost a full insert).
   */
  stored: boolean;
}

export class PartitionCursor<M> {
  /** Position of the last record whose rows are stored (-1: none). */
  applied = -1;
  private checkpointOffset = -1;
  private checkpointedAt: number;
  private lastTook = 0;
  /** Logged ranges past the checkpoint, in order: replays cut along them. */
  private ranges: Range[] = [];
  private pending: M[] = [];
  /** The pending records' sizes (with `size`), in step with `pending`. */
  private sizes: number[] = [];

  constructor(private readonly o: CursorOptions<M>, now: number) {
    this.checkpointedAt = now;
  }

  /** Resumes after a checkpoint at `offset`, with the ranges logged past it. */
  restore(offset: number, ranges: readonly Range[], now: number): void {
    this.applied = this.checkpointOffset = offset;
    this.ranges = ranges.filter((r) => r.first > offset).sort((a, b) => a.first - b.first);
    this.checkpointedAt = now;
    this.pending = [];
    this.sizes = [];
  }

  /** Records waiting for a chunk. */
  get waiting(): number {
    return this.pending.length;
  }

  /** Their size (with `size`: what `minSize` counts). */
  get waitingSize(): number {
    let n = 0;
    for (const x of this.sizes) n += x;
    return n;
  }

  /** The sum of `f` over the records waiting. */
  waitingSum(f: (m: M) => number): number {
    let n = 0;
    for (const m of this.pending) n += f(m);
    return n;
  }

  /** Position of the last record handed in (applied or pending). */
  get received(): number {
    return this.pending.length ? this.o.position(this.pending[this.pending.length - 1]!) : this.applied;
  }

  /** Adds fetched records in position order; those already applied or pending are dropped. */
  add(records: readonly M[]): void {
    const { position, size } = this.o;
    let after = this.received;
    for (const r of records) {
      const at = position(r);
      if (at <= after) continue;
      this.pending.push(r);
      if (size) this.sizes.push(size(r));
      after = at;
    }
  }

  /**
   * The chunks ready now, in order. Logged ranges come back whole (a partial one waits for the rest);
   * new records are cut at `maxRecords`, `boundary` and `minSize`, and the remainder waits unless
   * `flush` (the end of the input for now: a timer, the partition's end, the file's end).
   */
  take(flush: boolean): Chunk<M>[] {
    const pos = this.o.position;
    const minSize = this.minSize;
    const out: Chunk<M>[] = [];
    let start = 0;
    const left = () => this.pending.length - start;
    while (left() > 0) {
      const head = this.pending[start]!;
      const logged = this.ranges.length ? this.ranges.find((r) => r.first === pos(head)) : undefined;
      let n: number;
      if (logged) {
        n = 0;
        while (n < left() && pos(this.pending[start + n]!) <= logged.last) n++;
        if (pos(this.pending[start + n - 1]!) < logged.last) break; // the rest of the range comes later
      } else {
        n = Math.min(left(), this.o.maxRecords ?? Infinity);
        if (this.o.boundary) {
          for (let i = 1; i < n; i++) {
            if (this.o.boundary(head, this.pending[start + i]!)) {
              n = i;
              break;
            }
          }
        }
        let full = false;
        if (minSize !== undefined && this.o.size) {
          for (let i = 0, s = 0; i < n; i++) {
            s += this.sizes[start + i]!;
            if (s >= minSize) {
              n = i + 1;
              full = true;
              break;
            }
          }
        }
        const cut = full || n < left() || n === this.o.maxRecords;
        if (!cut && !flush) break;
      }
      const stored = logged !== undefined && this.ranges.some((r) => r.first === logged.last + 1);
      out.push(this.chunkOf(this.pending.slice(start, start + n), !logged, stored));
      start += n;
    }
    const all = start === this.pending.length;
    this.pending = all ? [] : this.pending.slice(start);
    if (this.o.size) this.sizes = all ? [] : this.sizes.slice(start);
    return out;
  }

  private get minSize(): number | undefined {
    return typeof this.o.minSize === 'function' ? this.o.minSize() : this.o.minSize;
  }

  /** A chunk of `records` (in order), named by its range. */
  private chunkOf(records: M[], log: boolean, stored: boolean): Chunk<M> {
    const first = this.o.position(records[0]!);
    const last = this.o.position(records[records.length - 1]!);
    return { first, last, records, token: `${this.o.input}:${first}-${last}`, log, stored };
  }

  /**
   * A new chunk cut after its first `n` records (the Kafka consumer: its rows reached an insert's
   * worth): two chunks in its place, the second to be applied next. A logged range is never split.
   */
  split(c: Chunk<M>, n: number): [Chunk<M>, Chunk<M>] {
    if (!c.log || n <= 0 || n >= c.records.length) throw new Error(`cannot split the chunk ${c.token} after ${n} of its ${c.records.length} records`);
    return [this.chunkOf(c.records.slice(0, n), true, false), this.chunkOf(c.records.slice(n), true, false)];
  }

  /** A chunk's rows are stored: the state now reflects it. */
  done(c: Chunk<M>): void {
    this.applied = c.last;
    if (c.log) this.ranges.push({ first: c.first, last: c.last });
  }

  /** Chunks taken but not applied (the caller stopped): they wait again, ahead of anything pending. */
  keep(chunks: readonly Chunk<M>[]): void {
    const back = chunks.flatMap((c) => c.records);
    this.pending = [...back, ...this.pending];
    const size = this.o.size;
    if (size) this.sizes = [...back.map((r) => size(r)), ...this.sizes];
  }

  /**
   * A checkpoint is due: something new is applied and the interval has passed since the last:
   * `checkpointMs`, or ten times what the last checkpoint took if that is longer (a large state
   * spends at most about a tenth of the time being saved). `ahead`: whether the interval has passed
   * alone (records whose rows are being stored count as applied).
   */
  due(now: number, ahead = false): boolean {
    return (ahead || this.applied > this.checkpointOffset) && now - this.checkpointedAt >= Math.max(this.o.checkpointMs, 10 * this.lastTook);
  }

  /** The state at `applied` is stored (it took `tookMs`); returns the position to commit (the next to read). */
  checkpointed(offset: number, now: number, tookMs = 0): number {
    this.checkpointOffset = offset;
    this.checkpointedAt = now;
    this.lastTook = tookMs;
    this.ranges = this.ranges.filter((r) => r.first > offset);
    return offset + 1;
  }

  /** How far `end` (the input's last position) is past what is applied. */
  lag(end: number): number {
    return Math.max(0, end - this.applied);
  }
}
