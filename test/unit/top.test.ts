import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fetchTop, renderTop, suggestWindow, type TopData } from '../../cli/top.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { tempDir } from '../helpers/resources.js';

const data: TopData = {
  at: Date.parse('2026-11-21T10:00:05Z'),
  windowS: 60,
  hosts: [
    { host: 'fw-1', active: 9000, new_per_s: 123.4, failed: 12, bytes: 5_300_000, entries: 9_000, max_entries: 10_000, invalid_per_s: 0.5 },
    { host: 'lb-22', active: 130, new_per_s: 2, failed: 0, bytes: 900, entries: 10, max_entries: 262_144, invalid_per_s: 0 },
  ],
  ports: [{ proto: 6, port: 443, flows: 7000, sources: 40, bytes: 5_000_000 }, { proto: 1, port: 0, flows: 3, sources: 1, bytes: 252 }],
  states: [{ conn_state: 'SF', flows: 75 }, { conn_state: 'REJ', flows: 25 }],
};

describe('ctpipe top rendering', () => {
  it('shows hosts with rates, table fill and INVALID, ports and the share of each state, in aligned columns', () => {
    const lines = renderTop(data).split('\n');
    expect(lines[0]).toBe('ctpipe top: last 60 s at 10:00:05 UTC');
    const hosts = lines.slice(lines.indexOf('HOSTS') + 1, lines.indexOf('HOSTS') + 4);
    expect(hosts[0]).toMatch(/^host\s+active\s+new\/s\s+failed\s+bytes\s+table\s+fill\s+invalid\/s$/);
    expect(hosts[1]).toMatch(/^fw-1 {3}\s*9000\s+123\s+12\s+5\.3M\s+9000\/10000\s+90\.0%\s+0\.50$/);
    expect(hosts[2]).toMatch(/^lb-22\s+130\s+2\.00\s+0\s+900\s+10\/262144\s+0\.0%\s+0\.00$/);
    expect(new Set(hosts.map((l) => l.length)).size).toBe(1); // right-aligned to one width
    expect(lines).toContain('STATES');
    expect(lines.find((l) => l.startsWith('SF'))).toMatch(/75\s+75\.0%$/);
    expect(lines.find((l) => l.startsWith('REJ'))).toMatch(/25\s+25\.0%$/);
    expect(lines.find((l) => l.startsWith('tcp/443'))).toMatch(/7000\s+40\s+5\.0M$/);
    expect(lines.find((l) => l.startsWith('icmp'))).toMatch(/^icmp\s+3\s+1\s+252$/);
  });

  it('says when the window holds nothing', () => {
    const text = renderTop({ ...data, hosts: [], ports: [], states: [] });
    expect(text).toContain('HOSTS\n  no flows in this window');
    expect(text).toContain('STATES\n  none');
  });

  it('says which window would show data when this one is empty, or that nothing is stored', () => {
    const at = Date.parse('2026-11-21T10:00:00Z');
    expect(renderTop({ ...data, at, hosts: [], ports: [], states: [], latest: at - 500_000 }))
      .toContain('HOSTS\n  nothing in the last 1 min; the latest flow was active at 2026-11-21 09:51:40 UTC: try ctpipe top --window 10m');
    expect(renderTop({ ...data, hosts: [], ports: [], states: [], latest: null })).toContain('nothing in the last 1 min: no flows are stored yet');
    expect(suggestWindow(at, at - 3 * 86_400_000)).toBe('7d');
    expect(suggestWindow(at, at - 100 * 86_400_000)).toBeUndefined();
  });
});

describe('ctpipe top on chDB: what was active in the window', () => {
  const NOW = Date.parse('2026-11-21T10:00:00Z');
  const ts = (msAgo: number) => `'${new Date(NOW - msAgo).toISOString().replace('T', ' ').replace('Z', '')}'`;
  // host, flow, first_seen, ended_at (null: open row), conn_state, port, version
  const flow = (id: string, first: number, ended: number | null, state: string, port: number, version: number) =>
    `('fw-1', '${id}', ${ts(first)}, ${ended === null ? 'NULL' : ts(ended)}, '${ended === null ? 'open' : 'destroy'}', '${state}', 6, ${port}, '::ffff:10.0.0.1', 100, 200, ${version})`;

  it('counts flows that started before the window and ended in it or are open, once each (FINAL), and names the window of an idle store', async () => {
    const dir = tempDir('top-unit');
    const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
    try {
      await migrate(store, { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 7 });
      const empty = await fetchTop(store, 'ctpipe', 60, NOW);
      expect(empty.hosts).toEqual([]);
      expect(empty.latest).toBeNull();
      await store.command(`INSERT INTO ctpipe.flows (host, flow_id, first_seen, ended_at, end_reason, conn_state, proto, orig_dport, orig_src, orig_bytes, reply_bytes, version)
        SELECT * FROM values('host String, flow_id String, first_seen DateTime64(3, \\'UTC\\'), ended_at Nullable(DateTime64(3, \\'UTC\\')), end_reason String, conn_state String, proto UInt8, orig_dport UInt16, orig_src IPv6, orig_bytes UInt64, reply_bytes UInt64, version UInt64',
        ${[
          flow('tcp-time-wait', 150_000, null, 'S1', 443, 4), // its refresh row while open...
          flow('tcp-time-wait', 150_000, 20_000, 'SF', 443, 7), // ...and its closed row, destroyed after TIME_WAIT
          flow('long-open', 300_000, null, 'S1', 22, 8), // open, started 5 minutes ago
          flow('ended-before', 200_000, null, 'S1', 8080, 2), // an open version superseded by...
          flow('ended-before', 200_000, 100_000, 'SF', 8080, 5), // ...its end, before the window
          flow('new-refused', 30_000, 25_000, 'REJ', 80, 3), // started and ended inside it
          flow('older-than-lookback', 2 * 3600_000, null, 'S1', 25, 2),
        ].join(',\n')})`);
      const d = await fetchTop(store, 'ctpipe', 60, NOW);
      expect(d.hosts).toEqual([{ host: 'fw-1', active: 3, new_per_s: 1 / 60, failed: 1, bytes: 900, entries: 0, max_entries: 0, invalid_per_s: 0 }]);
      expect(d.states).toEqual([{ conn_state: 'REJ', flows: 1 }, { conn_state: 'S1', flows: 1 }, { conn_state: 'SF', flows: 1 }]);
      expect(d.ports.map((p) => p.port).sort((a, b) => a - b)).toEqual([22, 80, 443]);
      expect(d.latest).toBeUndefined();
      // two network namespaces (--netns all): the table shown is the fullest one's latest, not whichever wrote last
      await store.command(`INSERT INTO ctpipe.host_stats (host, netns, ts, interval_s, entries, max_entries, invalid)
        SELECT * FROM values('host String, netns String, ts DateTime64(3, \\'UTC\\'), interval_s Float64, entries UInt32, max_entries UInt32, invalid UInt64',
        ('fw-1', 'ns-a', ${ts(40_000)}, 10, 950, 1000, 0), ('fw-1', 'ns-a', ${ts(30_000)}, 10, 900, 1000, 60),
        ('fw-1', 'ns-b', ${ts(10_000)}, 10, 100, 1000, 0))`);
      expect((await fetchTop(store, 'ctpipe', 60, NOW)).hosts[0]).toMatchObject({ entries: 900, max_entries: 1000, invalid_per_s: 1 });
      // (through first_seen alone, as before, only the refused connection showed)
      // the open flow ends; a view 8 minutes later: nothing in its minute, the latest activity, and a window that shows it
      await store.command(`INSERT INTO ctpipe.flows (host, flow_id, first_seen, ended_at, end_reason, conn_state, proto, orig_dport, orig_src, orig_bytes, reply_bytes, version)
        SELECT 'fw-1', 'long-open', toDateTime64(${ts(300_000)}, 3, 'UTC'), toDateTime64(${ts(45_000)}, 3, 'UTC'), 'destroy', 'SF', 6, 22, toIPv6('::ffff:10.0.0.1'), 100, 200, 9`);
      const idle = await fetchTop(store, 'ctpipe', 60, NOW + 480_000);
      expect(idle.hosts).toEqual([]);
      expect(idle.latest).toBe(NOW - 20_000); // the TIME_WAIT connection's end
      const text = renderTop(idle);
      expect(text).toContain('nothing in the last 1 min; the latest flow was active at 2026-11-21 09:59:40 UTC: try ctpipe top --window 10m');
      const wider = await fetchTop(store, 'ctpipe', 600, NOW + 480_000);
      expect(wider.hosts.map((h) => [h.host, h.active])).toEqual([['fw-1', 4]]); // each ended in the last 10 minutes
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
