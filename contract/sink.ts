import type { CtpipeRecord } from './records.js';

/** Where the collector puts records. write() never blocks: sinks buffer and account for loss. */
export interface RecordSink {
  write(r: CtpipeRecord): void;
  /** Resolves when everything written so far is delivered (or safely spooled). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /**
   * Flow control, for a sink that processes records as they come (`ctpipe run`): false while it
   * holds as many as it wants. The collector then keeps the kernel's raw events, a few hundred
   * bytes each, instead of records, until `whenRoom` resolves.
   */
  hasRoom?(): boolean;
  whenRoom?(): Promise<void>;
}

/** Collects records in memory: tests and the in-process pipeline of `ctpipe run`. */
export class MemorySink implements RecordSink {
  readonly records: CtpipeRecord[] = [];
  write(r: CtpipeRecord): void {
    this.records.push(r);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
