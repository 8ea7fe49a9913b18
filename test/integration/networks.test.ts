/**
 * Network attributes end to end (issue 20, item 1): `ctpipe run --networks FILE` on real kernel
 * traffic into chDB. Every lab flow row carries the client's and the server's network names and
 * roles from the file; after the file is rewritten and the process gets SIGHUP, new rows carry the
 * new names while the rows stored before keep theirs; a bad file written next (seen by the file
 * watch, no signal) is refused with a logged error, the process keeps running and the names stay.
 */
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../processor/clickhouse/store.js';
import type { Store } from '../../processor/store.js';
import { exited, Procs } from '../helpers/procs.js';
import { release, tempDir } from '../helpers/resources.js';
import { ADDR, Lab } from '../../lab/lab.js';

const HEADER = 'cidr,name,role,site,region,tenant';
const V1 = [HEADER,
  '198.51.100.0/24,lab-clients,client,par1,eu-west,acme',
  '2001:db8:c::/64,lab-clients,client,par1,eu-west,acme',
  '203.0.113.0/24,lab-servers,server,ams1,eu-west,acme',
  '2001:db8:5::/64,lab-servers,server,ams1,eu-west,acme',
  // a wider prefix holding both: the more specific ones win
  '198.0.0.0/7,wide,other,,,',
].join('\n');
const V2 = [HEADER,
  '198.51.100.0/24,"clients, renamed",frontend,par2,eu-west,acme',
  '2001:db8:c::/64,"clients, renamed",frontend,par2,eu-west,acme',
  '203.0.113.0/24,servers-v2,backend,ams2,eu-west,acme',
  '2001:db8:5::/64,servers-v2,backend,ams2,eu-west,acme',
].join('\n');

interface Row {
  orig_src: string; orig_dst: string; first_seen: string;
  orig_src_net_name: string; orig_src_net_role: string; orig_src_net_site: string; orig_src_net_region: string; orig_src_net_tenant: string;
  orig_dst_net_name: string; orig_dst_net_role: string; orig_dst_net_site: string;
}

let lab: Lab;
let dir: string;
let store: Store;
const procs = new Procs();
let exitCode: number | null = null;
let rows: Row[] = [];
let switchedAt = 0; // ms since 1970: between the two phases of traffic

async function traffic(): Promise<void> {
  await lab.tcpConnect(ADDR.server4, 8080, 500);
  await lab.udpExchange(ADDR.server4, 5353, 2, 100);
  await lab.ping(ADDR.server4, 1);
  await lab.tcpConnect(ADDR.server6, 8080, 100);
  await sleep(200);
  await lab.conntrack(['-F']); // every flow ends now: its row is written at once
  await sleep(1500);
}

beforeAll(async () => {
  lab = await Lab.create();
  dir = tempDir('networks');
  const file = path.join(dir, 'networks.csv');
  writeFileSync(file, V1);
  await lab.tcpServer(8080);
  await lab.udpServer(5353);
  const [p, log] = procs.start(['run', '--netns', lab.netnsPath('fw'), '--clickhouse-url', `chdb:${path.join(dir, 'db')}`, '--host', 'lab-fw',
    '--networks', file, '--process-flush', '300ms', '--no-metrics-enabled']);
  await procs.waitLog(log, 'running: collector and processor');
  expect(procs.logs[log]).toContain('networks loaded');
  await traffic();

  // an editor's save: a new file renamed over the old one, then SIGHUP
  writeFileSync(`${file}.tmp`, V2);
  renameSync(`${file}.tmp`, file);
  p.kill('SIGHUP');
  await procs.until('the second load', async () => (procs.logs[log]!.match(/networks loaded/g) ?? []).length >= 2, 30_000);
  // a bad file, seen by the watch alone: refused, the names of V2 stay
  writeFileSync(file, `${V2}\n203.0.113.0/24,duplicate,,,,\n10.0.0.0/33,bad,,,,\n`);
  await procs.waitLog(log, 'networks file not loaded', 30_000);
  switchedAt = Date.now();
  await traffic();
  p.kill('SIGTERM');
  exitCode = await exited(p);
  store = await openStore({ url: `chdb:${path.join(dir, 'db')}`, database: 'ctpipe' });
  rows = await store.query<Row>(
    `SELECT orig_src_text AS orig_src, orig_dst_text AS orig_dst, toUnixTimestamp64Milli(first_seen) AS first_seen,
      orig_src_net_name, orig_src_net_role, orig_src_net_site, orig_src_net_region, orig_src_net_tenant,
      orig_dst_net_name, orig_dst_net_role, orig_dst_net_site
      FROM ctpipe.flows FINAL WHERE host = 'lab-fw' ORDER BY first_seen`);
}, 240_000);

afterAll(async () => {
  await procs.killAll();
  await release(store, lab, dir);
});

describe('ctpipe run --networks on real traffic', () => {
  it('keeps running through a SIGHUP and a refused file, and stops cleanly', () => {
    expect(exitCode).toBe(0);
    const log = procs.logs[0]!;
    expect(log).toContain('SIGHUP: reloading the networks file');
    const refused = procs.logLine<{ err: string }>(0, 'networks file not loaded');
    expect(refused.err).toContain(':6: 203.0.113.0/24 is already on line 4');
    expect(refused.err).toContain(':7: prefix length 33 is more than 32 bits for IPv4');
    expect(log).toContain('"stopped"');
  });

  it('names both ends of every lab flow from the file, IPv4 and IPv6; after the change new rows get the new names, old rows keep theirs', () => {
    const before = rows.filter((r) => Number(r.first_seen) < switchedAt);
    const after = rows.filter((r) => Number(r.first_seen) >= switchedAt);
    // tcp, udp, icmp and tcp6 each time
    expect(before.length).toBeGreaterThanOrEqual(4);
    expect(after.length).toBeGreaterThanOrEqual(4);
    expect(new Set(before.map((r) => r.orig_dst))).toEqual(new Set([ADDR.server4, ADDR.server6]));
    expect(new Set(after.map((r) => r.orig_dst))).toEqual(new Set([ADDR.server4, ADDR.server6]));
    for (const r of before) {
      expect(r).toMatchObject({
        orig_src_net_name: 'lab-clients', orig_src_net_role: 'client', orig_src_net_site: 'par1', orig_src_net_region: 'eu-west', orig_src_net_tenant: 'acme',
        orig_dst_net_name: 'lab-servers', orig_dst_net_role: 'server', orig_dst_net_site: 'ams1',
      });
    }
    for (const r of after) {
      expect(r).toMatchObject({
        orig_src_net_name: 'clients, renamed', orig_src_net_role: 'frontend', orig_src_net_site: 'par2',
        orig_dst_net_name: 'servers-v2', orig_dst_net_role: 'backend', orig_dst_net_site: 'ams2',
      });
    }
  });
});
