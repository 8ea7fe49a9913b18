import { describe, expect, it } from 'vitest';
import { Pool } from '../../processor/clickhouse/pool.js';

describe('Pool', () => {
  it('makes at most its size, each lent to one user at a time; the rest wait in the order they came', async () => {
    let made = 0;
    const pool = new Pool(2, () => ++made);
    const order: string[] = [];
    const gates = new Map<string, () => void>();
    const user = (name: string) => pool.use(async (t) => {
      order.push(`${name} got ${t}`);
      await new Promise<void>((r) => gates.set(name, r));
      order.push(`${name} done`);
    });
    const all = ['a', 'b', 'c', 'd'].map(user);
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['a got 1', 'b got 2']);
    gates.get('b')!();
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['a got 1', 'b got 2', 'b done', 'c got 2']);
    gates.get('a')!();
    await new Promise((r) => setImmediate(r));
    gates.get('c')!();
    gates.get('d')!();
    await Promise.all(all);
    expect(order.slice(4)).toEqual(['a done', 'd got 1', 'c done', 'd done']);
    expect([made, pool.all]).toEqual([2, [1, 2]]);
    // a user that fails gives its one back
    await expect(pool.use(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(await pool.use(async (t) => t)).toBeGreaterThan(0);
    expect(made).toBe(2);
  });
});
