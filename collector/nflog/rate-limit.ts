/**
 * Token bucket for INVALID packet samples: `rate` samples per second, a burst of at most `rate`.
 * A refused packet is not forgotten: it rides on the weight of the next sample taken, so the
 * samples' weights still add up to every packet NFLOG delivered.
 */
export class SampleLimiter {
  private tokens = 0;
  private at = 0;
  private suppressed = 0;

  constructor(private readonly rate: number, private readonly now: () => number = Date.now) {}

  /** Packets refused since the last sample taken. */
  get pending(): number {
    return this.suppressed;
  }

  /** The weight of a sample taken now (1 + the packets refused since the last), or 0 when refused. */
  take(): number {
    const now = this.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) / 1000) * this.rate);
    this.at = now;
    if (this.tokens < 1) {
      this.suppressed++;
      return 0;
    }
    this.tokens -= 1;
    const weight = 1 + this.suppressed;
    this.suppressed = 0;
    return weight;
  }
}
