/**
 * Networks files (processor/networks/): the parser names every bad line (header, CIDR, host bits,
 * duplicate prefix, control characters, YAML keys), IPv4 and IPv6 alike; loaded into chDB, the
 * ip_trie dictionary gives each address its most specific prefix, the flows insert leaves the
 * network columns to ClickHouse, a new load names new rows only, a load ClickHouse refuses keeps
 * the old names, and hostile names come back byte for byte.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES } from '../../cli/query-examples.js';
import { silentLogger } from '../../common/log.js';
import { networksDashboard } from '../../dashboards/networks.js';
import { resolveVariables, runDashboard } from '../../dashboards/run-queries.js';
import type { FlowRow } from '../../processor/clickhouse/flow-columns.js';
import { NO_K8S_NAMES } from '../../processor/k8s/columns.js';
import { migrate } from '../../processor/clickhouse/migrate.js';
import { openStore } from '../../processor/clickhouse/store.js';
import { parseCidr, parseCsv, parseNetworks, parseYaml, readNetworksFile, type ParsedNetworks } from '../../processor/networks/file.js';
import { loadNetworks } from '../../processor/networks/load.js';
import { NETWORK_COLUMNS } from '../../processor/networks/schema.js';
import { Pipeline } from '../../processor/pipeline.js';
import type { Store } from '../../processor/store.js';

const HEADER = 'cidr,name,role,site,region,tenant';

describe('networks file parser', () => {
  it('reads IPv4 and IPv6 prefixes, normalized, with quoted fields, comments and blank lines', () => {
    const r = parseCsv([
      '# lab networks', HEADER,
      '10.0.0.0/8,corp,internal,par1,eu,acme',
      '',
      '10.1.2.0/24,"clients, floor 2",client,par1,eu,acme',
      '2001:DB8:0:0::/32,"v6 ""corp""",internal,,,',
      '"::ffff:192.0.2.0/120",mapped,dmz,ams1,eu,"say ""hi"""',
      '0.0.0.0/0,internet,external,,,',
    ].join('\r\n'));
    expect(r.problems).toEqual([]);
    expect(r.entries.map((e) => [e.line, e.cidr, e.name, e.role, e.tenant])).toEqual([
      [3, '10.0.0.0/8', 'corp', 'internal', 'acme'],
      [5, '10.1.2.0/24', 'clients, floor 2', 'client', 'acme'],
      [6, '2001:db8::/32', 'v6 "corp"', 'internal', ''],
      [7, '192.0.2.0/24', 'mapped', 'dmz', 'say "hi"'],
      [8, '0.0.0.0/0', 'internet', 'external', ''],
    ]);
    expect(r.nested).toBe(3); // 10.1.2.0/24 in 10/8, 10/8 and 192.0.2.0/24 in 0/0
  });

  it('takes a header with fewer columns in any order (after a byte order mark)', () => {
    const r = parseCsv('\uFEFFname,cidr\nlan,192.168.0.0/16\n');
    expect(r.problems).toEqual([]);
    expect(r.entries[0]).toMatchObject({ cidr: '192.168.0.0/16', name: 'lan', role: '', site: '' });
  });

  it('names the line of every bad CIDR, duplicate, field count, name and quote', () => {
    const r = parseCsv([
      HEADER,
      '10.0.0.0/8,a,,,,', // 2
      '10.0.0.0/33,b,,,,', // 3
      '10.1.2.3/16,c,,,,', // 4
      'fd00::/129,d,,,,', // 5
      'not-an-ip/8,e,,,,', // 6
      '10.0.0.0,f,,,,', // 7
      '::ffff:10.0.0.0/104,g,,,,', // 8: 10.0.0.0/8 again
      '192.168.0.0/16,h,,,', // 9: five fields
      '192.168.0.0/16,,,,,', // 10: no name
      '192.168.1.0/24,"open,,,,', // 11
      '192.168.2.0/24,x\u0007y,,,,', // 12
      `192.168.3.0/24,${'n'.repeat(300)},,,,`, // 13
      'fd00::1/64,i,,,,', // 14
    ].join('\n'));
    expect(r.problems).toEqual([
      { line: 3, message: 'prefix length 33 is more than 32 bits for IPv4' },
      { line: 4, message: '"10.1.2.3/16" has bits set past its prefix length (the network is 10.1.0.0/16)' },
      { line: 5, message: 'prefix length 129 is more than 128 bits for IPv6' },
      { line: 6, message: '"not-an-ip/8" is not a CIDR (address/length, e.g. 10.1.0.0/16 or fd00::/64)' },
      { line: 7, message: '"10.0.0.0" is not a CIDR (address/length, e.g. 10.1.0.0/16 or fd00::/64)' },
      { line: 8, message: '10.0.0.0/8 is already on line 2 (one prefix, one set of names)' },
      { line: 9, message: '5 fields, the header has 6' },
      { line: 10, message: 'no name for 192.168.0.0/16' },
      { line: 11, message: 'a quoted field is not closed on its line' },
      { line: 12, message: 'name holds a control character' },
      { line: 13, message: 'name is longer than 256 characters' },
      { line: 14, message: '"fd00::1/64" has bits set past its prefix length (the network is fd00::/64)' },
    ]);
    expect(r.entries.map((e) => e.line)).toEqual([2]);
  });

  it('refuses a bad header on its line, and a file without one', () => {
    expect(parseCsv('# c\ncidr,name,owner\n10.0.0.0/8,a,b\n').problems).toEqual([
      { line: 2, message: 'bad header "cidr,name,owner": expected cidr,name,role,site,region,tenant (cidr and name required; unknown owner)' },
    ]);
    expect(parseCsv('10.0.0.0/8,a\n').problems[0]).toMatchObject({ line: 1, message: expect.stringContaining('bad header') as string });
    expect(parseCsv('cidr,cidr,name\n').problems[0]!.message).toContain('twice cidr');
    expect(parseCsv('\n# nothing\n').problems).toEqual([{ line: 1, message: 'no header line (expected cidr,name,role,site,region,tenant)' }]);
  });

  it('reads YAML, a list or networks: holding one, with the line of each bad item', () => {
    const ok = parseYaml('networks:\n  - cidr: 10.0.0.0/8\n    name: corp\n    role: internal\n  - { cidr: "fd00::/8", name: ula, site: par1 }\n');
    expect(ok.problems).toEqual([]);
    expect(ok.entries.map((e) => [e.line, e.cidr, e.name, e.role, e.site])).toEqual([[2, '10.0.0.0/8', 'corp', 'internal', ''], [5, 'fd00::/8', 'ula', '', 'par1']]);
    const bad = parseYaml('- cidr: 10.0.0.0/8\n  name: a\n- cidr: 10.0.0.0/8\n  name: b\n- cidr: 10.1.0.0/8\n  name: c\n- cidr: 11.0.0.0/8\n  name: d\n  colour: red\n- just text\n');
    expect(bad.problems).toEqual([
      { line: 3, message: '10.0.0.0/8 is already on line 1 (one prefix, one set of names)' },
      { line: 5, message: '"10.1.0.0/8" has bits set past its prefix length (the network is 10.0.0.0/8)' },
      { line: 9, message: 'unknown key "colour" (expected cidr, name, role, site, region, tenant)' },
      { line: 10, message: 'a network is a map with cidr, name, role, site, region, tenant' },
    ]);
    expect(parseYaml('a: [').problems[0]!.line).toBe(1);
    expect(parseYaml('cidr: 10.0.0.0/8\n').problems).toEqual([{ line: 1, message: 'expected a list of networks (each with cidr and name), or networks: holding one' }]);
    expect(parseNetworks('- {cidr: 10.0.0.0/8, name: a}\n', 'x.YML').entries).toHaveLength(1);
  });

  it('normalizes IPv6 to its shortest form and keeps /0 prefixes apart by family', () => {
    expect(parseCidr('2001:0db8:0000:0000:0001:0000:0000:0000/80')).toMatchObject({ text: '2001:db8:0:0:1::/80' });
    expect(parseCidr('::/0')).toMatchObject({ text: '::/0', bits: 0 });
    expect(parseCidr('0.0.0.0/0')).toMatchObject({ text: '0.0.0.0/0', bits: 96 });
    expect(parseCsv(`${HEADER}\n::/0,all6,,,,\n0.0.0.0/0,all4,,,,\n`).problems).toEqual([]);
  });

  it('reading a file throws NETWORKS_INVALID naming FILE:LINE', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-nets-'));
    try {
      const f = path.join(dir, 'n.csv');
      writeFileSync(f, `${HEADER}\n10.0.0.0/8,a,,,,\n10.0.0.0/8,b,,,,\n`);
      expect(() => readNetworksFile(f)).toThrow(`${f}:3: 10.0.0.0/8 is already on line 2`);
      expect(() => readNetworksFile(path.join(dir, 'missing.csv'))).toThrow(/cannot be read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('networks in ClickHouse (chDB)', () => {
  let dir: string;
  let store: Store;
  const db = 'nets';
  const ctx = { db, flowsTtlDays: 30, eventsTtlDays: 3 };
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ctpipe-nets-ch-'));
    store = (await openStore({ url: `chdb:${dir}`, database: db })).database(db);
    await migrate(store, ctx);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const lookup = async (addr: string) => (await store.query<{ n: string; r: string }>(
    `SELECT dictGet('${db}.networks_dict', 'name', toIPv6({a:String})) AS n, dictGet('${db}.networks_dict', 'role', toIPv6({a:String})) AS r`, { a: addr }))[0]!;
  const load = (p: ParsedNetworks) => loadNetworks(store, p, { file: 'test.csv', processor: 'test' });

  it('gives each address its most specific prefix, IPv4 (stored IPv4-mapped) and IPv6', async () => {
    const p = parseCsv(`${HEADER}\n0.0.0.0/0,internet,external,,,\n10.0.0.0/8,corp,internal,,,\n10.1.2.0/24,clients,client,,,\n10.1.2.128/25,servers,server,,,\n2001:db8::/32,v6corp,internal,,,\n2001:db8:1::/48,v6lab,lab,,,\n`);
    const r = await load(p);
    expect(r).toMatchObject({ networks: 6, loaded: 6 });
    expect(await lookup('::ffff:10.1.2.200')).toEqual({ n: 'servers', r: 'server' });
    expect(await lookup('::ffff:10.1.2.1')).toEqual({ n: 'clients', r: 'client' });
    expect(await lookup('::ffff:10.9.9.9')).toEqual({ n: 'corp', r: 'internal' });
    expect(await lookup('::ffff:8.8.8.8')).toEqual({ n: 'internet', r: 'external' });
    expect(await lookup('2001:db8:1::5')).toEqual({ n: 'v6lab', r: 'lab' });
    expect(await lookup('2001:db8:2::5')).toEqual({ n: 'v6corp', r: 'internal' });
    expect(await lookup('fd00::1')).toEqual({ n: '', r: '' });
  });

  const flowRow = (src: string, dst: string, id: string): FlowRow => ({
    host: 'h', netns: '', run: 'r', flow_id: id, ct_id: 1, family: src.includes(':') ? 'ipv6' : 'ipv4', proto: 6,
    orig_src: src, orig_dst: dst, orig_sport: 40000, orig_dport: 80, reply_src: dst, reply_dst: src, reply_sport: 80, reply_dport: 40000,
    icmp_type: null, icmp_code: null, first_seen: { sec: 1_795_000_000, nsec: 0 }, established_at: null, seen_reply_at: null, assured_at: null, ended_at: null,
    end_reason: 'destroy', lost_by: '', duration_ms: null, tcp_states: [], tcp_state_times: [], final_tcp_state: '', assured: false, seen_reply: false,
    conn_state: 'S0', handshake_ms: null, orig_packets: 1, orig_bytes: 60, reply_packets: 0, reply_bytes: 0, helper: '', related: false, master_flow_id: '',
    mark: 0, zone: 0, nat: '', nat_src: '', nat_dst: '', snapshot: false, resynced: false, version: 1, ...NO_K8S_NAMES,
  });
  const write = async (rows: FlowRow[], token: string) => {
    const p = new Pipeline({ store, rawEvents: false, log: silentLogger, registry: new Registry(), engine: { maxOpen: 10, refreshMs: 60_000, graceMs: 5000 } });
    const batch = p.takeRows();
    for (const r of rows) batch.flows.push(r);
    expect(await p.writeRows(batch, token)).toBe(true);
  };
  const names = async (id: string) => (await store.query<Record<string, string>>(
    `SELECT ${NETWORK_COLUMNS.map((c) => c.name).join(', ')} FROM ${db}.flows WHERE flow_id = {id:String}`, { id }))[0];

  it('fills the flows network columns at insert; a new load names new rows, old rows keep theirs', async () => {
    await load(parseCsv(`${HEADER}\n10.1.0.0/16,client-net,client,par1,eu,acme\n10.2.0.0/16,server-net,server,ams1,eu,beta\n`));
    await write([flowRow('10.1.0.5', '10.2.0.7', 'a000000000000001')], 'nets:1');
    expect(await names('a000000000000001')).toEqual({
      orig_src_net_name: 'client-net', orig_src_net_role: 'client', orig_src_net_site: 'par1', orig_src_net_region: 'eu', orig_src_net_tenant: 'acme',
      orig_dst_net_name: 'server-net', orig_dst_net_role: 'server', orig_dst_net_site: 'ams1', orig_dst_net_region: 'eu', orig_dst_net_tenant: 'beta',
    });
    await load(parseCsv(`${HEADER}\n10.1.0.0/16,renamed-clients,frontend,,,\n`));
    await write([flowRow('10.1.0.5', '10.2.0.7', 'a000000000000002')], 'nets:2');
    expect(await names('a000000000000002')).toMatchObject({ orig_src_net_name: 'renamed-clients', orig_src_net_role: 'frontend', orig_dst_net_name: '', orig_dst_net_role: '' });
    expect(await names('a000000000000001')).toMatchObject({ orig_src_net_name: 'client-net', orig_dst_net_name: 'server-net' });
  });

  it('keeps the old names when ClickHouse refuses a load', async () => {
    await load(parseCsv(`${HEADER}\n10.3.0.0/16,kept,,,,\n`));
    // past the parser (which refuses it): ClickHouse itself must not leave the dictionary empty
    const bad: ParsedNetworks = { entries: [{ line: 2, cidr: '10.3.0.0/99', name: 'bad', role: '', site: '', region: '', tenant: '' }], problems: [], nested: 0 };
    await expect(load(bad)).rejects.toThrow(/ClickHouse refused the networks of test.csv \(the previous names stay\)/);
    expect(await lookup('::ffff:10.3.1.1')).toEqual({ n: 'kept', r: '' });
    await write([flowRow('10.3.0.1', '10.3.0.2', 'a000000000000003')], 'nets:3');
    expect(await names('a000000000000003')).toMatchObject({ orig_src_net_name: 'kept', orig_dst_net_name: 'kept' });
  });

  it('stores hostile names as they are: quotes, backslashes, SQL and Grafana syntax, Unicode', async () => {
    const evil = ["o'brien\\", '"); DROP TABLE flows; --', '${__all} $host {{x}}', '名前 🚀', "a'',''b"];
    const csv = [HEADER, ...evil.map((n, i) => `10.4.${i}.0/24,"${n.replace(/"/g, '""')}","${n.replace(/"/g, '""')}",,,`)].join('\n');
    const p = parseCsv(csv);
    expect(p.problems).toEqual([]);
    await load(p);
    for (const [i, n] of evil.entries()) expect(await lookup(`::ffff:10.4.${i}.9`)).toEqual({ n, r: n });
    expect((await store.query<{ n: string }>(`SELECT count() AS n FROM ${db}.flows`))[0]!.n).toBe('3');
  });

  it('the Networks dashboard runs every query on the named flows; a hostile name selected filters to its flows and none runs as SQL', async () => {
    // the hostile names of the test before name these two ends
    await write([flowRow('10.4.0.9', '10.4.1.9', 'a000000000000004'), flowRow('10.1.0.5', '10.9.9.9', 'a000000000000005')], 'nets:4');
    const d = networksDashboard(db);
    const at = { fromMs: 1_795_000_000_000 - 3_600_000, toMs: 1_795_000_000_000 + 3_600_000, intervalMs: 60_000 };
    const all = await resolveVariables(store, d, at, 'all');
    expect(all.network!.options!.length).toBeGreaterThanOrEqual(5);
    const byTitle = async (vars: typeof all) => new Map((await runDashboard(store, d, { ...at, vars })).map((r) => [r.where.replace(/^.*"(.+)".*$/, '$1'), r.rows]));
    const everything = await byTitle(all);
    expect(everything.size).toBe(9); // 5 query variables, 4 panels
    expect(everything.get('Traffic between roles')).toContainEqual({ src_role: 'client', dst_role: 'server', connections: '1', bytes: '60' });
    expect(everything.get('Top networks')!.map((r) => r.network)).toEqual(expect.arrayContaining(['client-net', 'server-net', 'kept', "o'brien\\", '"); DROP TABLE flows; --', '(unnamed)']));
    expect(everything.get('Unnamed addresses')).toContainEqual({ address: '10.9.9.9', connections: '1', bytes: '60' });
    expect(everything.get('Connections by destination network')!.length).toBeGreaterThan(3);
    // one hostile name, as the variable offers it (encoded: dashboards/selection.ts)
    const [enc] = await store.query<{ v: string }>('SELECT encodeURLComponent({n:String}) AS v', { n: "o'brien\\" });
    expect(all.network!.options).toContain(enc!.v);
    const one = await byTitle({ ...all, network: { values: [enc!.v], multi: true } });
    expect(one.get('Top networks')!.map((r) => r.network).sort()).toEqual(['"); DROP TABLE flows; --', "o'brien\\"]);
    expect(one.get('Traffic between roles')).toEqual([{ src_role: "o'brien\\", dst_role: '"); DROP TABLE flows; --', connections: '1', bytes: '60' }]);
    expect((await store.query<{ n: string }>(`SELECT count() AS n FROM ${db}.flows`))[0]!.n).toBe('5');
  });

  it('loads a file larger than one insert (2,500 prefixes in three inserts), every one in the dictionary', async () => {
    const lines = Array.from({ length: 2500 }, (_, i) => `10.${100 + Math.floor(i / 256)}.${i % 256}.0/24,net-${i},,,,`);
    const r = await load(parseCsv([HEADER, ...lines].join('\n')));
    expect(r).toMatchObject({ networks: 2500, loaded: 2500 });
    expect(await lookup('::ffff:10.109.195.7')).toEqual({ n: 'net-2499', r: '' });
    expect(await lookup('::ffff:10.100.0.1')).toEqual({ n: 'net-0', r: '' });
  });

  it('ctpipe query --example traffic-between-roles and top-networks read the names', async () => {
    const run = (name: string, params: Record<string, string>) => store.query(EXAMPLES[name]!.sql(db), { ...EXAMPLES[name]!.params, ...params });
    expect(await run('traffic-between-roles', { hours: '100000' })).toContainEqual({ src_role: 'client', dst_role: 'server', connections: '1', bytes: '60' });
    expect(await run('top-networks', { hours: '100000', site: 'ams1' })).toEqual([{ network: 'server-net', role: 'server', site: 'ams1', connections: '1', bytes: '60' }]);
  });
});
