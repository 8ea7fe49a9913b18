/**
 * A synthetic fleet in ClickHouse, made by ClickHouse itself (INSERT ... SELECT FROM numbers()):
 * `hosts` firewalls (fw-0001, ...) whose traffic is skewed (half the flows spread evenly, half
 * concentrated on the low-numbered hosts, so fw-0001 is the busiest), `rows` connection lifecycles
 * over `hours`, host_stats every 10 s per host, pipeline_health, a few hundred anomalies and the
 * processors' own statistics. Every value is a hash of the row number: the same options give the
 * same data.
 *
 * Flows go in as the processor's inserts go: large blocks of final rows in time order (hosts
 * interleaved), each block feeding the materialized views (flows_1m, fleet_1m) as one processor
 * insert would (two insert threads: two blocks of about half a million rows per INSERT); the
 * refreshed rows of long-lived connections are inserted before their final rows, as the processor
 * emits them while the connection is open.
 */
import { ANOMALY_KINDS } from '../processor/anomaly/row.js';
import { FLOW_COLUMNS } from '../processor/clickhouse/rows.js';
import { NO_K8S_NAMES } from '../processor/k8s/columns.js';

/** The columns synthetic flows fill: the Kubernetes names are left to their default (and a schema before version 8 has none). */
const COLUMNS = FLOW_COLUMNS.filter((c) => !(c in NO_K8S_NAMES));
import type { Store } from '../processor/store.js';

export interface FleetOptions {
  hosts: number;
  /** Connection lifecycles (final rows); refreshed rows of long-lived ones come on top. */
  rows: number;
  hours: number;
  /** End of the data, epoch ms (default: now, to the minute). */
  endMs?: number;
  /** Lifecycles per INSERT (default 1,000,000). */
  block?: number;
}

export interface Fleet {
  hosts: number;
  rows: number;
  hours: number;
  fromMs: number;
  toMs: number;
}

const STATS_EVERY_S = 10;

/** A uniform number in [0, 1) from the row number `x` and a salt. */
const U = (x: string, salt: number) => `(intHash64(${x} * 64 + ${salt}) / 1.8446744073709552e19)`;
/** A standard normal number (Box-Muller) from two salts. */
const Z = (x: string, a: number, b: number) => `(sqrt(-2 * log(${U(x, a)} + 1e-12)) * cos(2 * pi() * ${U(x, b)}))`;
/** The flow id of row `x`: 16 hex digits, as the processor writes them. */
const FID = (x: string) => `lower(hex(intHash64(${x} * 64 + 63)))`;
/** fw-0001 style names (the index from 0). */
const HOST = (h: string) => `concat('fw-', leftPad(toString(${h} + 1), 4, '0'))`;
const RUN = (h: string) => `concat('run-', lower(hex(intHash32(${h} + 7))))`;

/**
 * Every column of a lifecycle's final row, from the row number `n` (source: a table of `number`).
 * Row kinds by n: FTP control (n % 500 = 10) and its data connection (n % 500 = 11, RELATED, same
 * host, master = n - 1); SIP and its media (n % 1000 = 20, 21); orphan RELATED flows whose master
 * is not stored (n % 5000 = 12); long-lived TCP (n % 100 = 7), still open at the end when their
 * duration reaches past it. The rest: TCP 70%, UDP 25%, ICMP 4%, GRE 1%; 10% IPv6; 3% scans.
 */
function flowColumns(f: Fleet, source: string): string {
  const H = f.hosts;
  const fromNs = `toInt64(${BigInt(f.fromMs) * 1_000_000n})`;
  const endNs = `toInt64(${BigInt(f.toMs) * 1_000_000n})`;
  const stepNs = ((f.toMs - f.fromMs) * 1e6) / f.rows;
  const ns = (x: string) => `fromUnixTimestamp64Nano(${x}, 'UTC')`;
  return `SELECT number AS n,
    n % 500 = 10 AS ftp_ctl, n % 500 = 11 AS ftp_data, n % 1000 = 20 AS sip_ctl, n % 1000 = 21 AS sip_media,
    n % 5000 = 12 AS orphan, n % 100 = 7 AS long_lived,
    ftp_ctl OR ftp_data OR sip_ctl OR sip_media OR long_lived AS special,
    n - if(ftp_data OR sip_media, 1, 0) AS hn,
    least(${H - 1}, toUInt32(if(${U('hn', 1)} < 0.5, ${U('hn', 2)} * ${H}, pow(${U('hn', 2)}, 2) * ${H}))) AS h,
    ${HOST('h')} AS host, '' AS netns, ${RUN('h')} AS run, ${FID('n')} AS flow_id, toUInt32(intHash64(n * 64 + 25) % 4294967296) AS ct_id,
    if(NOT special AND ${U('n', 4)} < 0.1, 'ipv6', 'ipv4') AS family, family = 'ipv6' AS v6,
    ${U('n', 3)} AS pu,
    toUInt8(multiIf(long_lived OR ftp_ctl OR ftp_data, 6, sip_ctl OR sip_media, 17, pu < 0.70, 6, pu < 0.95, 17, pu < 0.99, if(v6, 58, 1), 47)) AS proto,
    proto = 6 AS tcp, proto = 17 AS udp, proto IN (1, 58) AS icmp,
    ${U('n', 7)} AS tu, NOT special AND tu < 0.03 AS scan, NOT special AND tu < 0.08 AS tail,
    ${U('n', 5)} AS du, ${U('n', 6)} AS dv,
    toUInt16(multiIf(ftp_ctl, 21, ftp_data, 30000 + dv * 10000, sip_ctl, 5060, sip_media, 10000 + dv * 10000,
      long_lived, if(du < 0.8, 443, 22), NOT (tcp OR udp), 0, scan, 1 + dv * 65534, tail, 1024 + dv * 64000,
      tcp, [443, 443, 443, 443, 443, 443, 443, 443, 443, 443, 80, 80, 80, 22, 25, 993, 3306, 5432, 8080, 8443][1 + toUInt32(du * 20)],
      [53, 53, 53, 53, 53, 53, 53, 53, 53, 53, 53, 53, 123, 123, 443, 443, 443, 514, 161, 1194][1 + toUInt32(du * 20)])) AS orig_dport,
    toUInt16(if(tcp OR udp, if(udp AND orig_dport = 123, 123, 32768 + ${U('n', 8)} * 28000), 0)) AS orig_sport,
    ${U('hn', 9)} AS cl, toUInt32(pow(${U('hn', 10)}, 3) * 50000) AS si,
    if(v6, toIPv6(concat('fd00:', hex(toUInt16(h)), '::', hex(toUInt16(cl * 65534 + 1)))),
      toIPv6(toIPv4(toUInt32(167772160 + (h % 250) * 65536 + toUInt32(cl * 65533) + 1)))) AS orig_src,
    if(v6, toIPv6(concat('2001:db8::', hex(toUInt16(intDiv(si, 65536))), ':', hex(toUInt16(si % 65536 + 1)))),
      toIPv6(toIPv4(toUInt32(3323068416 + si)))) AS orig_dst,
    NOT v6 AND ${U('n', 11)} < 0.3 AS nat_on, toUInt32(3405803776 + h % 254 + 1) AS pub,
    orig_dst AS reply_src, if(nat_on, toIPv6(toIPv4(pub)), orig_src) AS reply_dst, orig_dport AS reply_sport,
    if(nat_on AND (tcp OR udp), toUInt16(1024 + ${U('n', 12)} * 60000), orig_sport) AS reply_dport,
    if(icmp, if(v6, 128, 8), NULL) AS icmp_type, if(icmp, 0, NULL) AS icmp_code,
    ${fromNs} + toInt64(n * ${stepNs}) AS fs, ${ns('fs')} AS first_seen,
    ${U('n', 13)} AS cu, ${Z('n', 16, 17)} AS z2,
    -- a long-lived connection lasting past the end is still open: its latest row is an open one
    least(86400000, greatest(60000, 600000 * exp(1.2 * z2))) AS long_ms, long_lived AND fs + toInt64(long_ms * 1e6) > ${endNs} AS still_open,
    multiIf(still_open, 'S1', long_lived OR ftp_ctl OR ftp_data, 'SF', tcp AND scan, if(cu < 0.6, 'S0', 'REJ'),
      tcp, multiIf(cu < 0.78, 'SF', cu < 0.84, 'S0', cu < 0.88, 'REJ', cu < 0.94, 'RST', cu < 0.97, 'S1', cu < 0.98, 'S2', cu < 0.99, 'S3', 'OTH'),
      scan, 'S0', cu < if(udp, 0.88, 0.92), 'SF', 'S0') AS conn_state,
    if(tcp, multiIf(conn_state = 'SF', ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'TIME_WAIT'],
      conn_state = 'S0', ['SYN_SENT'], conn_state = 'REJ', ['SYN_SENT', 'CLOSE'],
      conn_state = 'RST', ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'CLOSE'], conn_state = 'S1', ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED'],
      conn_state = 'S2', ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE'], conn_state = 'S3', ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'CLOSE_WAIT', 'LAST_ACK'],
      ['ESTABLISHED']), []) AS tcp_states,
    tcp AND conn_state IN ('SF', 'RST', 'S1', 'S2', 'S3') AS has_hs, conn_state != 'S0' AS has_reply,
    0.3 + (intHash32(h) % 400) / 10 AS rtt,
    rtt * exp(0.6 * ${Z('n', 14, 15)}) AS hs,
    least(86400000, multiIf(long_lived, long_ms, tcp AND conn_state = 'SF', 3000 * exp(1.5 * z2),
      tcp AND conn_state = 'S0', 120000 + rtt, conn_state = 'REJ', rtt, conn_state = 'RST', 1000 * exp(1.5 * z2),
      conn_state = 'S1', 600000 * exp(z2), conn_state IN ('S2', 'S3'), 60000 * exp(z2), conn_state = 'OTH', 300000 * exp(z2),
      udp AND conn_state = 'SF', if(orig_dport = 53, 30000 + rtt, 120000 * exp(0.5 * z2)), 30000)) AS dur_ms,
    fs + toInt64(dur_ms * 1e6) AS end_ns,
    multiIf(still_open, 'open', conn_state = 'S1', 'lost', 'destroy') AS end_reason,
    if(end_reason = 'lost', multiIf(${U('n', 18)} < 0.8, 'timeout', ${U('n', 18)} < 0.9, 'evicted', 'resync'), '') AS lost_by,
    if(still_open, NULL, ${ns('end_ns')}) AS ended_at, if(still_open, NULL, dur_ms) AS duration_ms,
    if(has_hs, ${ns('fs + toInt64(hs * 1e6)')}, NULL) AS established_at,
    if(has_reply, ${ns('fs + toInt64(if(has_hs, hs / 2, rtt / 2) * 1e6)')}, NULL) AS seen_reply_at,
    if(has_hs OR (udp AND has_reply AND orig_dport != 53), ${ns('fs + toInt64((if(has_hs, hs, rtt) + 0.2) * 1e6)')}, NULL) AS assured_at,
    arrayMap(i -> ${ns(`fs + toInt64(multiIf(i = 0, 0, i = 1, if(has_hs, hs / 2, rtt), i = 2, hs, hs + (dur_ms - hs) * (i - 2) / greatest(1, length(tcp_states) - 3)) * 1e6)`)},
      range(length(tcp_states))) AS tcp_state_times,
    tcp_states[-1] AS final_tcp_state, assured_at IS NOT NULL AS assured, has_reply AS seen_reply,
    if(has_hs, round(hs, 3), NULL) AS handshake_ms,
    if(long_lived, 100, 1) * multiIf(conn_state = 'S0', 1 + toUInt64(${U('n', 21)} * 3), conn_state = 'REJ', 1, toUInt64(2 + exp(2 + 1.3 * ${Z('n', 19, 20)}))) AS orig_packets,
    multiIf(conn_state = 'S0', 0, conn_state = 'REJ', 1, toUInt64(orig_packets * (0.8 + ${U('n', 22)}))) AS reply_packets,
    orig_packets * toUInt64(60 + ${U('n', 23)} * 600) AS orig_bytes, reply_packets * toUInt64(60 + ${U('n', 24)} * 1400) AS reply_bytes,
    multiIf(ftp_ctl, 'ftp', sip_ctl, 'sip', '') AS helper, ftp_data OR sip_media OR orphan AS related,
    multiIf(ftp_data OR sip_media, ${FID('(n - 1)')}, orphan, ${FID('(n + 1000000007)')}, '') AS master_flow_id,
    toUInt32(0) AS mark, toUInt16(0) AS zone,
    if(nat_on, 'snat', '') AS nat, if(nat_on, concat(IPv4NumToString(pub), if(tcp OR udp, concat(':', toString(reply_dport)), '')), '') AS nat_src, '' AS nat_dst,
    conn_state = 'OTH' AS snapshot, ${U('n', 26)} < 0.0005 AS resynced,
    toUInt64(2 * (length(tcp_states) + 3) + if(still_open, 0, 1)) AS version
  FROM ${source}`;
}

/** The final rows of lifecycles [first, first + count). */
function finalRowsSql(db: string, f: Fleet, first: number, count: number, columns: readonly string[]): string {
  return `INSERT INTO ${db}.flows (${columns.join(', ')})
    SELECT ${columns.join(', ')} FROM (${flowColumns(f, `numbers(${first}, ${count})`)})
    SETTINGS min_insert_block_size_rows = ${count + 1}, min_insert_block_size_bytes = 0, max_insert_threads = 2`;
}

/**
 * The refreshed rows of the long-lived lifecycles in [first, first + count): one to three, a
 * minute apart, while they were open (end_reason 'open', conn_state S1, lower versions). Columns
 * go by position, so the overrides need no alias (one equal to an inner name would be cyclic).
 */
function refreshRowsSql(db: string, f: Fleet, first: number, count: number, columns: readonly string[]): string {
  const endNs = BigInt(f.toMs) * 1_000_000n;
  const share = '((r + 1) * 60000 / dur_ms)';
  const override: Record<string, string> = {
    ended_at: 'NULL', end_reason: "'open'", lost_by: "''", duration_ms: 'NULL', conn_state: "'S1'",
    tcp_states: 'arraySlice(tcp_states, 1, 3)', tcp_state_times: 'arraySlice(tcp_state_times, 1, 3)', final_tcp_state: "'ESTABLISHED'",
    orig_packets: `toUInt64(orig_packets * ${share})`, orig_bytes: `toUInt64(orig_bytes * ${share})`,
    reply_packets: `toUInt64(reply_packets * ${share})`, reply_bytes: `toUInt64(reply_bytes * ${share})`,
    version: 'toUInt64(2 * (3 + r))',
  };
  return `INSERT INTO ${db}.flows (${columns.join(', ')})
    SELECT ${columns.map((c) => override[c] ?? c).join(', ')}
    FROM (${flowColumns(f, `(SELECT number FROM numbers(${first}, ${count}) WHERE number % 100 = 7)`)}) ARRAY JOIN range(1 + intDiv(n, 100) % 3) AS r
    WHERE (r + 1) * 60000 < dur_ms AND fs + (r + 1) * 60000000000 <= ${endNs}`;
}

/** The share of the fleet's flows host `h` (from 0) gets: even half + the skewed half, as flowColumns picks hosts. */
const hostShare = (h: string, H: number) => `(0.5 / ${H} + 0.5 * (sqrt((${h} + 1) / ${H}) - sqrt(${h} / ${H})))`;

/** host_stats every 10 s per host, in time order; entries follow the host's flow rate, a few hosts near full. */
function hostStatsSql(db: string, f: Fleet, first: number, count: number): string {
  const H = f.hosts;
  const flowsPerS = `(${f.rows} * ${hostShare('h', H)} / ${(f.toMs - f.fromMs) / 1000})`;
  const steps = Math.round((f.toMs - f.fromMs) / 1000 / STATS_EVERY_S);
  return `INSERT INTO ${db}.host_stats (host, run, ts, interval_s, entries, max_entries, found, invalid, insert, insert_failed, drop, early_drop,
      error, search_restart, clash_resolve, chaintoolong, exp_new, exp_create, exp_delete, cpus, reset, collector_events)
    SELECT ${HOST('h')}, ${RUN('h')}, fromUnixTimestamp64Nano(toInt64(${BigInt(f.fromMs) * 1_000_000n}) + toInt64((k + 1) * ${STATS_EVERY_S}e9 + h * 7e6), 'UTC'),
      ${STATS_EVERY_S}, toUInt32(least(max_entries, fill * max_entries)), max_entries,
      toUInt64(rate * 20), invalid, 0, drops, 0, drops * 2, 0, toUInt64(${U('n', 3)} * 3), toUInt64(${U('n', 4)} * 2), 0,
      toUInt64(rate * 0.002), toUInt64(rate * 0.002), toUInt64(rate * 0.002), toUInt16(pow(2, h % 4 + 1)), false, toUInt64(rate * 70)
    FROM (SELECT number AS n, n % ${H} AS h, intDiv(n, ${H}) AS k,
      multiIf(h % 10 = 0, 65536, h % 10 = 9, 1048576, 262144) AS max_entries,
      ${flowsPerS} * (1 + 0.2 * sin(2 * pi() * k / ${steps} + h)) * (0.9 + 0.2 * ${U('n', 1)}) AS rate,
      -- a few hosts fill their table in the middle of the range (table_pressure, drops)
      if(h % 97 = 5 AND k BETWEEN ${Math.floor(steps * 0.4)} AND ${Math.floor(steps * 0.6)}, 0.8 + 0.19 * ${U('n', 2)}, rate * 40 / max_entries) AS fill,
      if(fill > 0.95, toUInt64(${U('n', 5)} * 500), 0) AS drops,
      if(intHash64(n) % 5000 = 0, toUInt64(2000 + ${U('n', 6)} * 20000), toUInt64(${U('n', 7)} * 4)) AS invalid
      FROM numbers(${first}, ${count}))`;
}

/** run_start per host, and gaps and losses at random times. */
function healthSql(db: string, f: Fleet): string {
  const H = f.hosts;
  const events = Math.max(20, H * 2);
  return `INSERT INTO ${db}.pipeline_health (host, run, ts, kind, count, first_seq, last_seq, detail)
    SELECT ${HOST('h')}, ${RUN('h')}, fromUnixTimestamp64Milli(toInt64(${f.fromMs} + if(start, h, ${U('n', 2)} * ${f.toMs - f.fromMs})), 'UTC'),
      multiIf(start, 'run_start', ${U('n', 3)} < 0.5, 'gap', 'loss'), if(start, 0, 1 + toInt64(${U('n', 4)} * 1000)),
      if(start, NULL, toUInt64(n * 1000)), if(start, NULL, toUInt64(n * 1000 + 999)), if(start, '', 'synthetic')
    FROM (SELECT number AS n, n < ${H} AS start, if(start, n, least(${H - 1}, toUInt32(pow(${U('n', 1)}, 2) * ${H}))) AS h FROM numbers(${H + events}))`;
}

/** A few hundred anomalies over the range, each with an earlier version (FINAL keeps the later); one in ten still open. */
function anomaliesSql(db: string, f: Fleet): string {
  const count = Math.min(400, Math.max(20, Math.round(f.hosts * 0.3)));
  const kinds = `[${ANOMALY_KINDS.map((k) => `'${k}'`).join(', ')}]`;
  return `INSERT INTO ${db}.anomalies (host, kind, severity, started_at, ended_at, score, baseline, observed, details, flow_ids, version)
    SELECT ${HOST('h')}, ${kinds}[1 + a % ${ANOMALY_KINDS.length}], if(${U('a', 2)} < 0.2, 'critical', 'warning'),
      fromUnixTimestamp64Milli(start, 'UTC'), if(v = 0 OR open, NULL, fromUnixTimestamp64Milli(stop, 'UTC')),
      3 + ${U('a', 3)} * 10, 5 + ${U('a', 4)} * 50, 100 + ${U('a', 5)} * 5000 + v, '{"synthetic":true}', [${FID('a')}],
      toUInt64(if(v = 0, start, stop))
    FROM (SELECT intDiv(number, 2) AS a, number % 2 AS v, least(${f.hosts - 1}, toUInt32(pow(${U('a', 1)}, 2) * ${f.hosts})) AS h,
      toInt64(${f.fromMs} + ${U('a', 6)} * ${f.toMs - f.fromMs} * 0.98) AS start, start + toInt64(60000 + ${U('a', 7)} * 3600000) AS stop,
      ${U('a', 8)} < 0.1 OR stop > ${f.toMs} AS open
      FROM numbers(${count * 2}))`;
}

/** 8 processors with 4 partitions each, a row per partition every 10 s. */
function processorStatsSql(db: string, f: Fleet): string {
  const steps = Math.round((f.toMs - f.fromMs) / 1000 / STATS_EVERY_S);
  const recordsPer = Math.round((f.rows * 7) / steps / 32);
  return `INSERT INTO ${db}.processor_stats (ts, processor, partition, lag, records, rows, inserts, insert_seconds, insert_max_seconds, insert_errors, dead_letters)
    SELECT fromUnixTimestamp64Milli(toInt64(${f.fromMs} + (k + 1) * ${STATS_EVERY_S * 1000} + p * 10), 'UTC'), concat('proc-', toString(intDiv(p, 4) + 1), ':', toString(1000 + intDiv(p, 4))), toInt32(p),
      toInt64(if(${U('number', 1)} < 0.001, 500, ${U('number', 2)} * 20)), toUInt64(${recordsPer} * (0.8 + 0.4 * ${U('number', 3)})), toUInt64(${recordsPer} / 7),
      10, 10 * (0.05 + 0.1 * ${U('number', 4)}), 0.1 + 0.5 * ${U('number', 5)}, toUInt64(${U('number', 6)} < 0.0005), 0
    FROM (SELECT number, number % 32 AS p, intDiv(number, 32) AS k FROM numbers(${steps * 32}))`;
}

function deadLettersSql(db: string, f: Fleet): string {
  return `INSERT INTO ${db}.dead_letters (ts, topic, partition, offset, reason, payload_hex)
    SELECT fromUnixTimestamp64Milli(toInt64(${f.fromMs} + ${U('number', 1)} * ${f.toMs - f.fromMs}), 'UTC'), 'ctpipe.events.v1', toUInt32(number % 32),
      number * 1000, 'batch: truncated message', '0a0b0c' FROM numbers(20)`;
}

export interface GenerateProgress {
  (line: string): void;
}

/** The fleet `o` describes, ending at `o.endMs` (default: now, to the minute). */
export function fleetOf(o: FleetOptions): Fleet {
  const toMs = o.endMs ?? Math.floor(Date.now() / 60_000) * 60_000;
  return { hosts: o.hosts, rows: o.rows, hours: o.hours, fromMs: toMs - o.hours * 3_600_000, toMs };
}

/** Lifecycles [first, first + count) of `f`: the long-lived ones' refreshed rows, then the final rows. */
export async function insertFlows(store: Store, f: Fleet, first: number, count: number): Promise<void> {
  // the columns the table has now: a fleet stored before a later migration lacks that one's columns
  const have = new Set((await store.query<{ name: string }>(`SELECT name FROM system.columns WHERE database = {db:String} AND table = 'flows'`, { db: store.db })).map((r) => r.name));
  const columns = COLUMNS.filter((c) => have.has(c));
  await store.command(refreshRowsSql(store.db, f, first, count, columns));
  await store.command(finalRowsSql(store.db, f, first, count, columns));
}

/** Everything of `f` but its flows. */
export async function insertStats(store: Store, f: Fleet): Promise<void> {
  const statsRows = f.hosts * Math.round((f.toMs - f.fromMs) / 1000 / STATS_EVERY_S);
  for (let first = 0; first < statsRows; first += 1_000_000) {
    await store.command(hostStatsSql(store.db, f, first, Math.min(1_000_000, statsRows - first)));
  }
  for (const sql of [healthSql(store.db, f), anomaliesSql(store.db, f), processorStatsSql(store.db, f), deadLettersSql(store.db, f)]) await store.command(sql);
}

/**
 * Fills `store`'s (migrated, empty) database with a fleet; returns its time range. Flows go in
 * blocks of `block` lifecycles, each preceded by its long-lived lifecycles' refreshed rows.
 */
export async function generateFleet(store: Store, o: FleetOptions, progress: GenerateProgress = () => undefined): Promise<Fleet> {
  const f = fleetOf(o);
  const block = o.block ?? 1_000_000;
  const t0 = performance.now();
  for (let first = 0; first < f.rows; first += block) {
    await insertFlows(store, f, first, Math.min(block, f.rows - first));
    const done = Math.min(f.rows, first + block);
    const s = (performance.now() - t0) / 1000;
    progress(`flows: ${done.toLocaleString()} / ${f.rows.toLocaleString()} lifecycles, ${s.toFixed(0)} s, ${Math.round(done / s).toLocaleString()} rows/s`);
  }
  await insertStats(store, f);
  progress('host_stats, pipeline_health, anomalies, processor_stats, dead_letters done');
  return f;
}
