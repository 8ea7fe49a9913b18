/**
 * Flow control from the kernel's sockets to a sink that processes records as they come (`ctpipe
 * run`): while the sink has no room (RecordSink.hasRoom), the raw chunks a socket's reader hands
 * over are kept as they are, a few hundred bytes an event instead of a record object, and given to
 * the decoder in order once it has. Bounded: past `maxBytes` the oldest go on regardless, and the
 * sink's own bound counts what it must drop.
 *
 * Releasing goes from the sink's promise to the gate's and back, so it would hold the event loop
 * until everything held is gone (seconds in a 1M-entry flush: /metrics, timers and the inserts'
 * completions waited): it lets the loop turn every TURN_MS.
 */
import type { RecordSink } from '../contract/sink.js';

export type Room = Pick<RecordSink, 'hasRoom' | 'whenRoom'>;

/** Releasing at most this long before the event loop gets a turn. */
const TURN_MS = 100;

export class ChunkGate<T> {
  private held: T[] = [];
  private heldBytes = 0;
  private releasing: Promise<void> = Promise.resolve();

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
    if (this.held.length === 0 && this.room.hasRoom?.() !== false) {
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

  private async release(): Promise<void> {
    let since = performance.now();
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
