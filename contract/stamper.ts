/**
 * One collector run's identity and sequence: every record the run puts into its stream gets the
 * host, the run id and the next sequence number here. The collector and the sink it writes to
 * share one Stamper, so a loss the sink reports in its own stream (memory and spool full, a full
 * backlog) takes its place in the same gap-free sequence as the records the collector stamps.
 */
import { randomUUID } from 'node:crypto';
import type { CtpipeRecord, LossRecord, Stamp } from './records.js';

/** What a loss record says of the loss (the rest is the stamp and whether a resync follows). */
export type LossNews = Pick<LossRecord, 'reason' | 'count' | 'source' | 'first_seq' | 'last_seq'>;

export type Clock = () => { sec: number; nsec: number };

export const wallClock: Clock = () => {
  const ms = Date.now();
  const hr = process.hrtime();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 + (hr[1] % 1e6) };
};

export class Stamper {
  private seq = 0;

  /** `run` is new on every start (a random UUID unless given), so sequence numbers restart visibly. */
  constructor(readonly host: string, readonly run: string = randomUUID(), private readonly now: Clock = wallClock) {}

  /** The sequence number of the last record stamped (0 before the first). */
  get lastSeq(): number {
    return this.seq;
  }

  /** Sets host, run and the next sequence number. */
  stamp<R extends CtpipeRecord>(r: R): R {
    r.host = this.host;
    r.run = this.run;
    r.seq = ++this.seq;
    return r;
  }

  /** The stamp of a record made now, its seq still to be assigned by stamp(). */
  header(): Stamp {
    const t = this.now();
    return { host: this.host, run: this.run, seq: 0, sec: t.sec, nsec: t.nsec };
  }

  /** A stamped loss record, made now. */
  loss(news: LossNews, resync = false): LossRecord {
    return this.stamp({ ...this.header(), type: 'loss', ...news, resync });
  }
}
