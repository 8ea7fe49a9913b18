/**
 * Flow control from the kernel's sockets to a sink that processes records as they come (`ctpipe
 * run`): while the sink has no room (RecordSink.hasRoom), the raw chunks a socket's reader hands
 * over are kept as they are, a few hundred bytes an event instead of a record object, and given to
 * the decoder in order once it has. Bounded: past `maxBytes` the oldest go on regardless, and the
 * sink's own bound counts what it must drop.
 *
 * The loop gets a turn every TURN_MS, however chunks come. Releasing goes from the sink's promise
 * to the gate's and back, which would hold the loop until everything held is gone (seconds in a
 * 1M-entry flush: /metrics, timers and the inserts' completions waited). And a socket's reader
 * hands over what it has queued (up to 256 MiB) in one callback of the loop (Node's threadsafe
 * functions dispatch up to 1,000 calls a turn), each chunk decoded and its records run through the
 * sink's microtasks on the spot: 2.4 s in a 1M-entry table's dump. Past TURN_MS without a turn,
 * chunks are held and released after one.
 */
import type { RecordSink } from '../contract/sink.js';

export type Room = Pick<RecordSink, 'hasRoom' | 'whenRoom'>;

/** Releasing at most this long before the event loop gets a turn. */
const TURN_MS = 100;

export class ChunkGate<T> {
  private held: T[] = [];
  private heldBytes = 0;
  private releasing: Promise<void> = Promise.resolve();
  /** Since when chunks have been taken straight through without the loop turning (a setImmediate says when it does). */
  private busySince = -1;

  constructor(
    private readonly room: Room,
    private readonly take: (item: T) => void,
    private readonly size: (item: T) => number,
    private readonly maxBytes: number,
    private readonly onHeld: (bytes: number) => void = () => {},
  ) {}

  /** Bytes kept for now. */
  get bytes(): number {
    return this.heldBytes;
  }

  push(item: T): void {
    if (this.held.length === 0 && this.room.hasRoom?.() !== false && !this.overdue()) {
      this.take(item);
      return;
    }
    this.held.push(item);
    this.heldBytes += this.size(item);
    while (this.heldBytes > this.maxBytes) this.takeOldest();
    this.onHeld(this.heldBytes);
    if (this.held.length === 1) this.releasing = this.release();
  }

  /** Resolves once everything kept has been taken. */
  drained(): Promise<void> {
    return this.releasing;
  }

  /** Whether the loop has gone TURN_MS without a turn while chunks were taken straight through. */
  private overdue(): boolean {
    if (this.busySince < 0) {
      this.busySince = performance.now();
      setImmediate(() => (this.busySince = -1));
      return false;
    }
    return performance.now() - this.busySince >= TURN_MS;
  }

  private async release(): Promise<void> {
    // an overdue loop turns before anything is released
    let since = this.busySince < 0 ? performance.now() : this.busySince;
    while (this.held.length) {
      if (this.room.hasRoom?.() === false) await this.room.whenRoom?.();
      if (performance.now() - since >= TURN_MS) {
        await new Promise<void>((r) => setImmediate(r));
        since = performance.now();
        continue; // what is held, and the room, may have changed meanwhile
      }
      this.takeOldest();
      this.onHeld(this.heldBytes);
    }
  }

  private takeOldest(): void {
    const item = this.held.shift();
    if (item === undefined) return;
    this.heldBytes -= this.size(item);
    this.take(item);
  }
}
