/**
 * The Grafana table-full alert per network namespace, evaluated on chDB: each namespace has its own
 * table, so a full one fires even when another namespace of the host wrote the latest row (by
 * host alone, argMax over ts took whichever namespace wrote last).
 */
import { rmSync } from 'node:fs';
import { expect, it } from 'vitest';
import { alertRules } from '../../dashboards/alerts.js';
import { evaluateRule } from '../../dashboards/run-queries.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { tempDir } from '../helpers/resources.js';

it('fires for the full namespace of a host and not for its other one, or for a host of one namespace (netns \'\')', async () => {
  const dir = tempDir('table-alert');
  const store = await openStore({ url: `chdb:${dir}`, database: 'ctpipe' });
  try {
    await migrate(store, { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 7 });
    const now = Date.now();
    const row = (host: string, netns: string, agoMs: number, entries: number) =>
      `('${host}', '${netns}', fromUnixTimestamp64Milli(toInt64(${now - agoMs}), 'UTC'), ${entries}, 1000)`;
    await store.command(`INSERT INTO ctpipe.host_stats (host, netns, ts, entries, max_entries)
      SELECT * FROM values('host String, netns String, ts DateTime64(3, \\'UTC\\'), entries UInt32, max_entries UInt32',
      ${[row('fw', 'ns-full', 20_000, 950), row('fw', 'ns-idle', 10_000, 100), row('solo', '', 10_000, 920), row('calm', '', 10_000, 500)].join(', ')})`);
    const rule = alertRules('ctpipe').groups[0]!.rules.find((r) => r.uid === 'ctpipe-table-full')!;
    const r = await evaluateRule(store, rule, now);
    expect(r.firing.map((f) => f.labels).sort((a, b) => String(a.host).localeCompare(String(b.host)))).toEqual([{ host: 'fw', netns: 'ns-full' }, { host: 'solo', netns: '' }]);
    expect(r.series).toBe(4);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
