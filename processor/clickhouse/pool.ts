/**
 * A few of one resource (the embedded store's insert connections), each made when first needed and
 * lent to one user at a time; users past `size` wait for one in the order they came.
 */
export class Pool<T> {
  private readonly idle: T[] = [];
  private readonly made: T[] = [];
  private readonly waiting: ((t: T) => void)[] = [];

  constructor(private readonly size: number, private readonly make: () => T) {}

  /** Every one made so far (to close them). */
  get all(): readonly T[] {
    return this.made;
  }

  async use<R>(f: (t: T) => Promise<R>): Promise<R> {
    const t = this.idle.pop() ?? (this.made.length < this.size ? this.add() : await new Promise<T>((r) => this.waiting.push(r)));
    try {
      return await f(t);
    } finally {
      const next = this.waiting.shift();
      if (next) next(t);
      else this.idle.push(t);
    }
  }

  private add(): T {
    const t = this.make();
    this.made.push(t);
    return t;
  }
}
