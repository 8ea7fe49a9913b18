/**
 * Network names on the server path (issue 20, item 1): the same ip_trie behaviour through
 * ClickHouse's HTTP interface as on the embedded store. lab/clickhouse-front.ts serves that
 * interface on loopback with chDB behind it, so the store is @clickhouse/client over HTTP: the
 * migration's DDL (the dictionary as processor/networks/schema.ts builds it, no credentials in
 * it), the loader's parameter-array inserts, SYSTEM RELOAD DICTIONARY and the flow rows' RowBinary
 * inserts all go over the wire, within a server's default URL limits (the front enforces them).
 * The networks file is loaded by the processor's own watcher (processor/networks/watch.ts), which
 * polls the file as `ctpipe process --networks` does. A real server, a password on `default` and
 * a cluster are not here (docs/OPERATIONS.md, Network names).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../common/log.js';
import { ClickHouseFront } from '../../lab/clickhouse-front.js';
import type { FlowRow } from '../../processor/clickhouse/flow-columns.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { NO_K8S_NAMES } from '../../processor/k8s/columns.js';
import type { ParsedNetworks } from '../../processor/networks/file.js';
import { loadNetworks } from '../../processor/networks/load.js';
import { NETWORK_COLUMNS } from '../../processor/networks/schema.js';
import { NetworksWatcher } from '../../processor/networks/watch.js';
import { Pipeline } from '../../processor/pipeline.js';
import type { Store } from '../../processor/store.js';
import { release, tempDir } from '../helpers/resources.js';

const db = 'ctpipe';
const HEADER = 'cidr,name,role,site,region,tenant';
const V1 = [HEADER,
  '198.51.100.0/24,clients,client,par1,eu-west,acme',
  '2001:db8:c::/64,clients6,client,par1,eu-west,acme',
  '203.0.113.0/24,servers,server,ams1,eu-central,beta',
  '203.0.113.128/25,servers-inner,database,ams2,eu-central,gamma',
  '2001:db8:5::/64,servers6,server,ams1,eu-central,beta',
  '2001:db8:5:0:8000::/65,servers6-inner,database,ams2,eu-central,gamma',
  // wider prefixes holding the ones above: the more specific ones win
  '198.0.0.0/7,wide,other,,,',
  '2001:db8::/32,wide6,other,,,',
].join('\n');
// names with what HTTP parameters must carry intact: a comma, quotes, a backslash, Unicode
const RENAMED = 'clients, "renamed" o\'brien\\ 名前';
const V2 = [HEADER,
  `198.51.100.0/24,"${RENAMED.replace(/"/g, '""')}",frontend,par9,us-east,delta`,
  `2001:db8:c::/64,"${RENAMED.replace(/"/g, '""')}",frontend,par9,us-east,delta`,
  '203.0.113.0/24,servers-v2,backend,ams9,us-east,delta',
  '2001:db8:5::/64,servers6-v2,backend,ams9,us-east,delta',
].join('\n');

let dir: string;
let front: ClickHouseFront | undefined;
let store: Store | undefined;
let watcher: NetworksWatcher | undefined;
let file: string;

beforeAll(async () => {
  dir = tempDir('networks-server');
  file = path.join(dir, 'networks.csv');
  front = await ClickHouseFront.start(path.join(dir, 'chdb'));
  store = (await openStore({ url: front.url, database: db })).database(db);
  await migrate(store, { db, flowsTtlDays: 3650, eventsTtlDays: 3650 });
}, 120_000);

afterAll(async () => {
  await watcher?.stop();
  await release(store, front, dir);
});

let nextId = 0;
const flowRow = (src: string, dst: string): FlowRow => ({
  host: 'h', netns: '', run: 'r', flow_id: `b${String(++nextId).padStart(15, '0')}`, ct_id: nextId, family: src.includes(':') ? 'ipv6' : 'ipv4', proto: 6,
  orig_src: src, orig_dst: dst, orig_sport: 40000, orig_dport: 80, reply_src: dst, reply_dst: src, reply_sport: 80, reply_dport: 40000,
  icmp_type: null, icmp_code: null, first_seen: { sec: 1_795_000_000, nsec: 0 }, established_at: null, seen_reply_at: null, assured_at: null, ended_at: null,
  end_reason: 'destroy', lost_by: '', duration_ms: null, tcp_states: [], tcp_state_times: [], final_tcp_state: '', assured: false, seen_reply: false,
  conn_state: 'S0', handshake_ms: null, orig_packets: 1, orig_bytes: 60, reply_packets: 0, reply_bytes: 0, helper: '', related: false, master_flow_id: '',
  mark: 0, zone: 0, nat: '', nat_src: '', nat_dst: '', snapshot: false, resynced: false, version: 1, ...NO_K8S_NAMES,
});

/** Writes the rows through the pipeline's insert (RowBinary over HTTP) and returns their flow ids. */
async function write(pairs: [string, string][], token: string): Promise<string[]> {
  const p = new Pipeline({ store: store!, rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 10, refreshMs: 60_000, graceMs: 5000 } });
  const batch = p.takeRows();
  const rows = pairs.map(([s, d]) => flowRow(s, d));
  for (const r of rows) batch.flows.push(r); // one row a call
  const binary = front!.served.binaryInserts;
  expect(await p.writeRows(batch, token)).toBe(true);
  expect(front!.served.binaryInserts).toBeGreaterThan(binary); // the server path's insert, not a fallback
  return rows.map((r) => r.flow_id);
}

type Names = Record<string, string>;
const names = async (ids: string[]): Promise<Names[]> => {
  const rows = await store!.query<Names & { flow_id: string }>(
    `SELECT flow_id, ${NETWORK_COLUMNS.map((c) => c.name).join(', ')} FROM ${db}.flows WHERE flow_id IN {ids:Array(String)}`, { ids });
  const byId = new Map(rows.map(({ flow_id, ...n }) => [flow_id, n as Names]));
  return ids.map((id) => byId.get(id)!);
};
const ends = (src: string[], dst: string[]): Names => Object.fromEntries(NETWORK_COLUMNS.map((c, i) => [c.name, (c.side === 'src' ? src : dst)[i % 5] ?? '']));

// the rows each phase writes: [src, dst]
const PAIRS: [string, string][] = [
  ['198.51.100.7', '203.0.113.9'], // clients -> servers
  ['198.51.100.7', '203.0.113.200'], // clients -> the more specific /25
  ['198.51.101.1', '192.0.2.1'], // only the /7 -> nothing
  ['2001:db8:c::7', '2001:db8:5::9'], // clients6 -> servers6
  ['2001:db8:c::7', '2001:db8:5:0:8000::9'], // clients6 -> the more specific /65
  ['2001:db8:9::1', 'fd00::1'], // only the /32 -> nothing
];
const C = ['clients', 'client', 'par1', 'eu-west', 'acme'];
const C6 = ['clients6', 'client', 'par1', 'eu-west', 'acme'];
const S = ['servers', 'server', 'ams1', 'eu-central', 'beta'];
const S6 = ['servers6', 'server', 'ams1', 'eu-central', 'beta'];
const INNER = ['servers-inner', 'database', 'ams2', 'eu-central', 'gamma'];
const INNER6 = ['servers6-inner', 'database', 'ams2', 'eu-central', 'gamma'];
const WIDE = ['wide', 'other', '', '', ''];
const WIDE6 = ['wide6', 'other', '', '', ''];
const V1_NAMES = [ends(C, S), ends(C, INNER), ends(WIDE, []), ends(C6, S6), ends(C6, INNER6), ends(WIDE6, [])];
const R = [RENAMED, 'frontend', 'par9', 'us-east', 'delta'];
const V2_NAMES = [
  ends(R, ['servers-v2', 'backend', 'ams9', 'us-east', 'delta']), ends(R, ['servers-v2', 'backend', 'ams9', 'us-east', 'delta']), ends([], []),
  ends(R, ['servers6-v2', 'backend', 'ams9', 'us-east', 'delta']), ends(R, ['servers6-v2', 'backend', 'ams9', 'us-east', 'delta']), ends([], []),
];

const dictionary = async () => (await store!.query<{ status: string; n: string }>(
  "SELECT status, element_count AS n FROM system.dictionaries WHERE database = {db:String} AND name = 'networks_dict'", { db }))[0];

describe('network names through a server (ClickHouse HTTP interface in front of chDB)', () => {
  let v1Ids: string[] = [];
  let v2Ids: string[] = [];

  it('loads the file with the processor\'s watcher and names both ends of IPv4 and IPv6 rows, the most specific prefix winning', async () => {
    writeFileSync(file, V1);
    watcher = await NetworksWatcher.start(store!, { file, processor: 'server-test', log: silentLogger, pollMs: 100 });
    expect(watcher.loads).toBe(1);
    expect(await dictionary()).toEqual({ status: 'LOADED', n: '8' });
    v1Ids = await write(PAIRS, 'nets-server:1');
    expect(await names(v1Ids)).toEqual(V1_NAMES);
  });

  it('a changed file is a new generation (reloaded): new rows get the new names, rows stored before keep theirs', async () => {
    const [before] = await store!.query<{ g: string }>(`SELECT argMax(generation, loaded_at) AS g FROM ${db}.network_loads`);
    writeFileSync(file, V2);
    await vi.waitFor(() => expect(watcher!.loads).toBe(2), { timeout: 30_000, interval: 100 }); // the file watch's poll
    expect(watcher!.refused).toBe(0);
    const [after] = await store!.query<{ g: string }>(`SELECT argMax(generation, loaded_at) AS g FROM ${db}.network_loads`);
    expect(BigInt(after!.g)).toBeGreaterThan(BigInt(before!.g));
    expect(await dictionary()).toEqual({ status: 'LOADED', n: '4' });
    v2Ids = await write(PAIRS, 'nets-server:2');
    expect(await names(v2Ids)).toEqual(V2_NAMES);
    expect(await names(v1Ids)).toEqual(V1_NAMES);
  });

  it('a bad file is refused by the watcher and a load ClickHouse refuses is rolled back: the names stay, nothing is lost', async () => {
    writeFileSync(file, `${V2}\n203.0.113.0/24,duplicate,,,,\n10.0.0.0/33,bad,,,,\n`);
    await vi.waitFor(() => expect(watcher!.refused).toBe(1), { timeout: 30_000, interval: 100 });
    expect(watcher!.loads).toBe(2);
    // past the parser (which refuses it): ClickHouse refuses it over HTTP, and the loader goes back
    const bad: ParsedNetworks = { entries: [{ line: 2, cidr: '203.0.113.0/99', name: 'bad', role: '', site: '', region: '', tenant: '' }], problems: [], nested: 0 };
    await expect(loadNetworks(store!, bad, { file: 'bad.csv', processor: 'server-test' })).rejects.toThrow(/ClickHouse refused the networks of bad.csv \(the previous names stay\)/);
    expect(await dictionary()).toEqual({ status: 'LOADED', n: '4' });
    const ids = await write(PAIRS, 'nets-server:3');
    expect(await names(ids)).toEqual(V2_NAMES);
    expect(await names(v1Ids)).toEqual(V1_NAMES);
    expect(await names(v2Ids)).toEqual(V2_NAMES);
    const [count] = await store!.query<{ n: string }>(`SELECT count() AS n FROM ${db}.flows`);
    expect(count!.n).toBe(String(3 * PAIRS.length));
  });
  it('loads a file larger than one insert (2,500 prefixes, three requests of parameter arrays), every prefix in the dictionary', async () => {
    const lines = Array.from({ length: 2500 }, (_, i) => `10.${100 + Math.floor(i / 256)}.${i % 256}.0/24,net-${i},,,,`);
    writeFileSync(file, [HEADER, ...lines].join('\n'));
    await vi.waitFor(() => expect(watcher!.loads).toBe(3), { timeout: 30_000, interval: 100 });
    expect(await dictionary()).toEqual({ status: 'LOADED', n: '2500' });
    const ids = await write([['10.100.0.1', '10.109.195.7']], 'nets-server:4');
    expect((await names(ids))[0]).toMatchObject({ orig_src_net_name: 'net-0', orig_dst_net_name: 'net-2499' });
  });
  it('loads long names in inserts a server takes (each parameter array under http_max_field_value_size), every prefix in the dictionary', async () => {
    // 1,200 prefixes of 256-character names, roles and sites: 1,000 rows of one array would be 259 KB
    const long = (i: number, c: string) => `${i}-${c.repeat(256)}`.slice(0, 256);
    const lines = Array.from({ length: 1200 }, (_, i) => `10.${120 + Math.floor(i / 256)}.${i % 256}.0/24,${long(i, 'n')},${long(i, "'")},${long(i, 's')},,`);
    writeFileSync(file, [HEADER, ...lines].join('\n'));
    await vi.waitFor(() => expect(watcher!.loads + watcher!.refused).toBe(5), { timeout: 30_000, interval: 100 });
    expect(watcher!.refused).toBe(1); // the bad file before, only
    expect(await dictionary()).toEqual({ status: 'LOADED', n: '1200' });
    const ids = await write([['10.120.0.1', '10.124.175.7']], 'nets-server:5');
    expect((await names(ids))[0]).toMatchObject({ orig_src_net_name: long(0, 'n'), orig_src_net_role: long(0, "'"), orig_dst_net_name: long(1199, 'n'), orig_dst_net_site: long(1199, 's') });
  });
});
