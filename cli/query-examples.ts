/**
 * Saved queries for `ctpipe query --example NAME` (list: `ctpipe query --examples`). Each names its
 * bound parameters with defaults, which `--param name=value` overrides.
 */
export interface Example {
  description: string;
  params: Record<string, string>;
  sql: (db: string) => string;
}

export const EXAMPLES: Record<string, Example> = {
  'top-talkers': {
    description: 'sources with the most bytes (both directions) in the last {hours} hours',
    params: { hours: '1' },
    sql: (db) => `SELECT host, orig_src_text AS source, count() AS connections, sum(orig_bytes + reply_bytes) AS bytes
      FROM ${db}.flows FINAL WHERE first_seen >= now() - INTERVAL {hours:UInt32} HOUR
      GROUP BY host, source ORDER BY bytes DESC LIMIT 20`,
  },
  'traffic-between-roles': {
    description: 'connections and bytes between network roles (networks file: enrich.networks) in the last {hours} hours',
    params: { hours: '24' },
    sql: (db) => `SELECT if(orig_src_net_role = '', '(unnamed)', orig_src_net_role) AS src_role, if(orig_dst_net_role = '', '(unnamed)', orig_dst_net_role) AS dst_role,
        count() AS connections, sum(orig_bytes + reply_bytes) AS bytes
      FROM ${db}.flows FINAL WHERE first_seen >= now() - INTERVAL {hours:UInt32} HOUR GROUP BY src_role, dst_role ORDER BY bytes DESC LIMIT 50`,
  },
  'top-networks': {
    description: 'networks (by name, either end) with the most bytes in the last {hours} hours; {site}: one site only, empty for all',
    params: { hours: '24', site: '' },
    sql: (db) => `SELECT network, role, site, count() AS connections, sum(bytes) AS bytes FROM (
        SELECT arrayJoin([(orig_src_net_name, orig_src_net_role, orig_src_net_site), (orig_dst_net_name, orig_dst_net_role, orig_dst_net_site)]) AS t,
          if(t.1 = '', '(unnamed)', t.1) AS network, t.2 AS role, t.3 AS site, orig_bytes + reply_bytes AS bytes
        FROM ${db}.flows FINAL WHERE first_seen >= now() - INTERVAL {hours:UInt32} HOUR)
      WHERE {site:String} = '' OR site = {site:String}
      GROUP BY network, role, site ORDER BY bytes DESC LIMIT 20`,
  },
  'conn-states': {
    description: 'connections by protocol and conn_state in the last {hours} hours (per-minute rollup)',
    params: { hours: '24' },
    sql: (db) => `SELECT proto, conn_state, sum(flows) AS connections FROM ${db}.flows_state_1m
      WHERE minute >= now() - INTERVAL {hours:UInt32} HOUR GROUP BY proto, conn_state ORDER BY connections DESC`,
  },
  'open-anomalies': {
    description: 'anomalies still open, worst first',
    params: {},
    sql: (db) => `SELECT host, kind, severity, started_at, round(observed, 2) AS observed, round(baseline, 2) AS baseline
      FROM ${db}.anomalies FINAL WHERE ended_at IS NULL ORDER BY severity = 'critical' DESC, started_at`,
  },
  anomalies: {
    description: 'the latest {limit} anomalies with their evidence',
    params: { limit: '20' },
    sql: (db) => `SELECT host, kind, severity, started_at, ended_at, details FROM ${db}.anomalies FINAL
      ORDER BY started_at DESC LIMIT {limit:UInt32}`,
  },
  'related-flows': {
    description: 'RELATED connections (FTP data, SIP media, ...) with their master connection and its helper',
    params: { limit: '50' },
    sql: (db) => `SELECT c.host AS host, c.first_seen AS first_seen, concat(c.orig_src_text, ':', toString(c.orig_sport), ' -> ', c.orig_dst_text, ':', toString(c.orig_dport)) AS related,
        concat(m.orig_src_text, ':', toString(m.orig_sport), ' -> ', m.orig_dst_text, ':', toString(m.orig_dport)) AS master, m.helper AS helper
      FROM ${db}.flows AS c FINAL LEFT JOIN (SELECT flow_id, orig_src, orig_sport, orig_dst, orig_dport, helper,
        replaceRegexpOne(toString(orig_src), '^::ffff:', '') AS orig_src_text, replaceRegexpOne(toString(orig_dst), '^::ffff:', '') AS orig_dst_text
        FROM ${db}.flows FINAL WHERE helper != '') AS m ON c.master_flow_id = m.flow_id
      WHERE c.related ORDER BY c.first_seen DESC LIMIT {limit:UInt32}`,
  },
  'slow-handshakes': {
    description: 'TCP handshake time percentiles per host over the last {hours} hours (t-digests in flows_1m)',
    params: { hours: '24' },
    sql: (db) => `SELECT host, round(q[1], 2) AS p50_ms, round(q[2], 2) AS p90_ms, round(q[3], 2) AS p99_ms FROM (
        SELECT host, quantilesTDigestMerge(0.5, 0.9, 0.99)(handshake_ms_digest) AS q FROM ${db}.flows_1m
        WHERE minute >= now() - INTERVAL {hours:UInt32} HOUR AND proto = 6 GROUP BY host) ORDER BY p99_ms DESC`,
  },
  'invalid-by-host': {
    description: 'INVALID packets per second per host over the last {hours} hours',
    params: { hours: '1' },
    sql: (db) => `SELECT host, round(sum(invalid) / greatest(1, sum(interval_s)), 2) AS invalid_per_s, max(invalid / greatest(interval_s, 0.001)) AS peak_per_s
      FROM ${db}.host_stats WHERE ts >= now() - INTERVAL {hours:UInt32} HOUR GROUP BY host ORDER BY invalid_per_s DESC`,
  },
  'table-fill': {
    description: "each host's latest conntrack table fill",
    params: {},
    sql: (db) => `SELECT host, argMax(entries, ts) AS now_entries, argMax(max_entries, ts) AS now_max,
        round(now_entries / greatest(now_max, 1), 4) AS fill, max(ts) AS at
      FROM ${db}.host_stats GROUP BY host ORDER BY fill DESC`,
  },
  'pipeline-losses': {
    description: 'records lost by collectors or missing between collector and processor, per host, in the last {hours} hours',
    params: { hours: '24' },
    sql: (db) => `SELECT host, kind, sum(count) AS records, min(ts) AS first, max(ts) AS last FROM ${db}.pipeline_health
      WHERE kind IN ('loss', 'gap') AND ts >= now() - INTERVAL {hours:UInt32} HOUR GROUP BY host, kind ORDER BY records DESC`,
  },
};

export function examplesText(): string {
  const width = Math.max(...Object.keys(EXAMPLES).map((k) => k.length));
  return `${Object.entries(EXAMPLES).map(([k, e]) => `  ${k.padEnd(width)}  ${e.description}${Object.keys(e.params).length ? ` (--param ${Object.entries(e.params).map(([p, v]) => `${p}=${v}`).join(' --param ')})` : ''}`).join('\n')}\n`;
}
