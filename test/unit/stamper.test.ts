/** The run's Stamper: host, run and a gap-free sequence for every record, loss records included. */
import { describe, expect, it } from 'vitest';
import { Stamper } from '../../contract/stamper.js';
import { flowRecord } from '../helpers/records.js';

describe('stamper', () => {
  it('gives each record the host, the run and the next sequence number', () => {
    const s = new Stamper('h1', 'r1', () => ({ sec: 10, nsec: 20 }));
    expect(s.lastSeq).toBe(0);
    const a = s.stamp(flowRecord('other', 'other', 99));
    expect([a.host, a.run, a.seq]).toEqual(['h1', 'r1', 1]);
    expect(s.header()).toEqual({ host: 'h1', run: 'r1', seq: 0, sec: 10, nsec: 20 }); // takes no number
    expect(s.loss({ reason: 'spool_full', count: 4, source: 'publish', first_seq: 7, last_seq: 10 })).toEqual({
      host: 'h1', run: 'r1', seq: 2, sec: 10, nsec: 20, type: 'loss', reason: 'spool_full', count: 4, source: 'publish', first_seq: 7, last_seq: 10, resync: false,
    });
    expect(s.loss({ reason: 'enobufs', count: 1, source: 'events' }, true)).toMatchObject({ seq: 3, resync: true });
    expect(s.lastSeq).toBe(3);
  });

  it('makes a new run id for every run unless one is given', () => {
    const a = new Stamper('h');
    const b = new Stamper('h');
    expect(a.run).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.run).not.toBe(b.run);
  });
});
