/**
 * One schema for every way ctpipe is configured: built-in defaults < YAML file (--config) <
 * environment (CTPIPE_*) < command-line flags. The same schema validates, names the environment
 * variables and flags, and generates docs/CONFIG.md (`ctpipe config --docs`).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CtpipeError } from '../common/errors.js';

const UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20, g: 1 << 30, gb: 1 << 30, gib: 1 << 30 };

export function parseSize(v: number | string): number {
  if (typeof v === 'number') return Math.round(v);
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const unit = m ? UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`"${v}" is not a size (e.g. 65536, 64MiB, 1GiB)`);
  return Math.round(Number(m[1]) * unit);
}

export function parseDuration(v: number | string): number {
  if (typeof v === 'number') return v * 1000;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(v);
  if (!m) throw new Error(`"${v}" is not a duration (e.g. 500ms, 10s, 5m; a bare number is seconds)`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * mult);
}

/** A number or a string with units, parsed into a number (bytes or milliseconds). */
const withUnits = (parse: (v: number | string) => number) => (def: string, desc: string) =>
  z.union([z.number().nonnegative(), z.string()]).default(def).describe(desc)
    .transform((v, ctx) => {
      try {
        return parse(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    });

const size = withUnits(parseSize);
const duration = withUnits(parseDuration);

export const EVENT_KINDS = ['new', 'update', 'destroy', 'exp_new', 'exp_destroy'] as const;

const kafka = z.strictObject({
  brokers: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'a broker is HOST:PORT')).min(1).default(['localhost:9092'])
    .describe('Kafka bootstrap brokers, HOST:PORT (comma-separated in env and flags)'),
  topic: z.string().min(1).default('ctpipe.events.v1').describe('Topic for collector records (the schema version is in the name)'),
  compression: z.enum(['gzip', 'none']).default('gzip').describe('Kafka compression of record batches'),
  compression_level: z.number().int().min(1).max(9).default(1).describe('gzip level: 1 is fastest (about 4x smaller on ctpipe batches), 9 smallest'),
  producer_thread: z.boolean().default(true).describe('Run the Kafka client in its own thread (keeps the netlink event loop free; uses the second core)'),
  batch_events: z.number().int().min(1).max(100_000).default(1000).describe('Records per Kafka record (one ctpipe.v1.Batch)'),
  linger: duration('50ms', 'Longest a record waits for its batch to fill'),
  buffer_bytes: size('64MiB', 'Encoded records kept in memory while Kafka is slow or unreachable; past this they go to the spool'),
  max_send_bytes: size('2MiB', 'Largest produce request before compression; keep it times the compression ratio (about 1/3.5) under the brokers\' message.max.bytes (1 MB by default)'),
  spool_dir: z.string().default('/var/lib/ctpipe/spool').describe('Disk spool for records Kafka could not take (empty string: no spool)'),
  spool_max_bytes: size('1GiB', 'Spool bound; records past it are dropped, counted and reported as a loss record'),
  connection_timeout_ms: z.number().int().min(100).default(3000).describe('Kafka connection timeout (ms)'),
  request_timeout_ms: z.number().int().min(100).default(10000).describe('Kafka request timeout (ms)'),
  flush_timeout: duration('10s', 'On shutdown, how long to wait for Kafka before spooling the rest'),
  tls: z.strictObject({
    enabled: z.boolean().default(false).describe('Connect with TLS'),
    ca_file: z.string().optional().describe('PEM file of the CA to trust'),
    cert_file: z.string().optional().describe('PEM client certificate (mutual TLS)'),
    key_file: z.string().optional().describe('PEM client key (mutual TLS)'),
    reject_unauthorized: z.boolean().default(true).describe('Verify the broker certificate'),
  }).prefault({}),
  sasl: z.strictObject({
    mechanism: z.enum(['none', 'plain', 'scram-sha-256', 'scram-sha-512']).default('none').describe('SASL mechanism'),
    username: z.string().optional().describe('SASL user name'),
    password: z.string().optional().describe('SASL password (prefer CTPIPE_KAFKA_SASL_PASSWORD or password_file; never logged)'),
    password_file: z.string().optional().describe('File holding the SASL password'),
  }).prefault({}),
});

export const ConfigSchema = z.strictObject({
  host: z.string().min(1).default(os.hostname()).describe('Host id stamped on every record and used as the Kafka key (default: the hostname)'),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level (JSON logs on stderr)'),
  metrics: z.strictObject({
    enabled: z.boolean().default(true).describe('Serve /metrics and /healthz'),
    listen: z.string().default('0.0.0.0:9464').describe('Address of the metrics and health endpoint, [HOST:]PORT'),
  }).prefault({}),
  collect: z.strictObject({
    output: z.enum(['kafka', 'jsonl']).default('kafka').describe('Where records go: Kafka, or JSON lines on stdout'),
    events: z.array(z.enum(EVENT_KINDS)).min(1).default([...EVENT_KINDS])
      .describe('Event groups to subscribe to (e.g. destroy only: fewer events, still every flow)'),
    netns: z.string().optional().describe('Watch another network namespace, by path (e.g. /run/netns/NAME)'),
    rcvbuf: size('64MiB', 'Netlink receive buffer (SO_RCVBUFFORCE, needs CAP_NET_ADMIN)'),
    rcvbuf_max: size('256MiB', 'Upper bound when the buffer is doubled after an overrun'),
    dump: z.boolean().default(true).describe('Dump the table at start and emit it as snapshot records'),
    stats_interval: duration('10s', 'How often to poll per-CPU conntrack statistics'),
    resync_min_interval: duration('10s', 'Least time between two resync dumps after overruns'),
    set_sysctls: z.boolean().default(false).describe('Turn on nf_conntrack_events, _acct and _timestamp at start'),
    enable_conntrack: z.boolean().default(false).describe('Make conntrack track this network namespace: add nftables table inet ctpipe_conntrack (rules that only count new connections) while running'),
    nflog_group: z.number().int().min(0).max(65535).optional().describe('NFLOG group fed by `ct state invalid log group N` (INVALID packet samples; off when unset)'),
    nflog_rate: z.number().int().min(1).default(100).describe('INVALID packet samples per second at most (the rest are counted in the next sample\'s weight)'),
    duration: duration('0s', 'Stop after this long (0: run until SIGINT/SIGTERM)'),
  }).prefault({}),
  kafka: kafka.prefault({}),
  clickhouse: z.strictObject({
    url: z.string().default('chdb:./data').describe('chdb:PATH for the embedded ClickHouse (chDB), or http(s)://HOST:PORT for a server'),
    database: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a database name is letters, digits and _').default('ctpipe').describe('Database of the ctpipe tables'),
    username: z.string().optional().describe('ClickHouse user (servers only)'),
    password: z.string().optional().describe('ClickHouse password (prefer CTPIPE_CLICKHOUSE_PASSWORD or password_file; never logged)'),
    password_file: z.string().optional().describe('File holding the ClickHouse password'),
    cluster: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a cluster name is letters, digits and _').optional().describe('Cluster name: Replicated tables and Distributed tables ON CLUSTER'),
    flows_ttl_days: z.number().int().min(1).default(30).describe('Days of flows, statistics and health kept (rollups keep 12 times longer)'),
    events_ttl_days: z.number().int().min(1).default(3).describe('Days of raw events kept (when raw_events is on)'),
    raw_events: z.boolean().default(false).describe('Also store every conntrack event in the events table'),
  }).prefault({}),
  process: z.strictObject({
    group_id: z.string().min(1).default('ctpipe-processor').describe('Kafka consumer group of the processors'),
    max_open_flows: z.number().int().min(100).default(1_000_000).describe('Open lifecycles kept in memory; past it the oldest idle unassured are closed as lost'),
    refresh: duration('60s', 'How often (event time) a long-lived open flow gets a refreshed row'),
    grace: duration('30s', 'Extra time past a flow\'s kernel timeout before a flow without DESTROY is closed as lost'),
    flush: duration('1s', 'Longest time records wait before their rows are written (freshness); for process, the longest a Kafka fetch waits for fetch_min_bytes'),
    fetch_min_bytes: size('256KiB', 'process: records are processed in batches of at least this much Kafka data while a partition is behind (at its end, at once); also the fetch minimum, waited for up to flush'),
    max_backlog: z.number().int().min(1000).default(1_000_000).describe('run: records kept in memory while ClickHouse does not take rows (a few hundred bytes each); past it new records are dropped and reported as a buffer_full loss'),
    session_timeout: duration('30s', 'Kafka consumer group session timeout: how soon a dead processor\'s partitions move to another'),
    checkpoint: duration('10s', 'How often a processor stores its state and commits its Kafka offsets (what a restart replays)'),
  }).prefault({}),
  detect: z.strictObject({
    open_after: z.number().int().min(1).default(3).describe('An anomaly opens once this many of the last open_window statistics intervals were above its threshold'),
    open_window: z.number().int().min(1).default(4).describe('Intervals looked at for open_after'),
    close_after: z.number().int().min(1).default(3).describe('An anomaly closes after this many clear intervals in a row (clearing has a lower bar than opening)'),
    cooldown: duration('5m', 'After an anomaly closes, the same kind cannot reopen on that host for this long'),
    invalid_min_rate: z.number().nonnegative().default(5).describe('INVALID packets per second below which no invalid_spike opens (quiet hosts: the few packets of torn-down connections are not a spike)'),
    invalid_z: z.number().positive().default(3.5).describe('Robust z-score of log1p(INVALID/s) against the host\'s median and MAD that opens an invalid_spike'),
    invalid_clear_z: z.number().positive().default(2).describe('Robust z-score below which an interval counts as clear'),
    invalid_history: z.number().int().min(10).default(360).describe('Statistics intervals in a host\'s INVALID baseline (an EWMA serves for the first 30)'),
    table_warn: z.number().gt(0).lte(1).default(0.75).describe('Conntrack table fill (entries / max) that opens table_pressure'),
    table_critical: z.number().gt(0).lte(1).default(0.9).describe('Fill at which table_pressure is critical'),
    drops_min_rate: z.number().positive().default(1).describe('early_drop + drop + insert_failed per second that opens table_drops'),
    scan_window: duration('1m', 'Window (event time) in which finished connections are counted per source for the scan detectors'),
    s0_per_source: z.number().int().min(1).default(100).describe('Connections from one source that never got a reply (S0) in a window that open handshake_failures'),
    rej_per_source: z.number().int().min(1).default(100).describe('Refused connections (REJ) from one source in a window that open rej_storm'),
    ports_per_source: z.number().int().min(2).default(100).describe('Distinct destination ports one source tried in a window that open port_scan'),
    hosts_per_source: z.number().int().min(2).default(50).describe('Distinct destinations one source tried in a window that open host_scan'),
    expectations_per_minute: z.number().int().min(1).default(600).describe('New helper expectations per host per minute that open expectation_flood'),
    expectations_unused_per_minute: z.number().int().min(1).default(20).describe('Expectations per host per minute expiring unused (not taken by a connection) that open expectation_unused_burst'),
    related_quiet: duration('5m', 'A related-flow anomaly closes after this long (event time) without a new case'),
  }).prefault({}),
});

export type Config = z.output<typeof ConfigSchema>;
export type KafkaConfigSection = Config['kafka'];

// ---------------------------------------------------------------------------------------------
// Leaves of the schema: the unit of env variables, flags and docs.

export interface Leaf {
  path: string[];
  type: 'string' | 'number' | 'boolean' | 'array' | 'size' | 'duration';
  description: string;
  default: unknown;
  enum?: readonly string[];
  env: string;
  flag: string;
}

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  description?: string;
  default?: unknown;
  enum?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
};

export function leaves(): Leaf[] {
  const root = z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const out: Leaf[] = [];
  const walk = (s: JsonSchema, path: string[]) => {
    if (s.properties) {
      for (const [k, v] of Object.entries(s.properties)) walk(v, [...path, k]);
      return;
    }
    let type: Leaf['type'] = 'string';
    const desc = s.description ?? '';
    if (s.anyOf) type = /duration|how long|longest|least time|often|stop after/i.test(desc) ? 'duration' : 'size';
    else if (s.type === 'array') type = 'array';
    else if (s.type === 'boolean') type = 'boolean';
    else if (s.type === 'number' || s.type === 'integer') type = 'number';
    const en = s.enum ?? s.items?.enum;
    const section = path[0] === 'collect' ? [] : path.slice(0, -1);
    out.push({
      path,
      type,
      description: desc,
      default: s.default,
      enum: en,
      env: `CTPIPE_${path.join('_').toUpperCase()}`,
      flag: `--${[...section, path[path.length - 1]!].join('-').replace(/_/g, '-')}`,
    });
  };
  walk(root, []);
  return out;
}

function coerce(leaf: Leaf, raw: string, origin: string): unknown {
  switch (leaf.type) {
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new CtpipeError('CONFIG_INVALID', `${origin}: "${raw}" is not a number`);
      return n;
    }
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw new CtpipeError('CONFIG_INVALID', `${origin}: "${raw}" is not a boolean (true/false)`);
    case 'array':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    case 'size':
    case 'duration':
      return /^\d+$/.test(raw.trim()) ? Number(raw) : raw;
    default:
      return raw;
  }
}

function setPath(o: Record<string, unknown>, path: string[], v: unknown): void {
  let cur = o;
  for (const k of path.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = v;
}

export interface ConfigSources {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Flag values by flag name (e.g. "--rcvbuf"), already parsed by the CLI. */
  flags?: Record<string, string | boolean>;
}

export function loadConfig(src: ConfigSources = {}): Config {
  let raw: Record<string, unknown> = {};
  if (src.file) {
    let text: string;
    try {
      text = readFileSync(src.file, 'utf8');
    } catch (e) {
      throw new CtpipeError('CONFIG_FILE', `cannot read config file ${src.file}: ${(e as Error).message}`);
    }
    try {
      const doc = parseYaml(text) as unknown;
      if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
        throw new Error('the top level must be a mapping (key: value)');
      }
      raw = (doc ?? {}) as Record<string, unknown>;
    } catch (e) {
      throw new CtpipeError('CONFIG_FILE', `config file ${src.file} is not valid YAML: ${(e as Error).message}`);
    }
  }
  const all = leaves();
  const env = src.env ?? {};
  const known = new Set(all.map((l) => l.env));
  const stray = Object.keys(env).filter((k) => k.startsWith('CTPIPE_') && !known.has(k) && k !== 'CTPIPE_CONFIG' && k !== 'CTPIPE_DEBUG');
  if (stray.length) {
    throw new CtpipeError('CONFIG_INVALID', `unknown environment variable${stray.length > 1 ? 's' : ''} ${stray.join(', ')} (see docs/CONFIG.md)`);
  }
  for (const leaf of all) {
    const v = env[leaf.env];
    if (v !== undefined) setPath(raw, leaf.path, coerce(leaf, v, leaf.env));
  }
  for (const leaf of all) {
    const v = src.flags?.[leaf.flag];
    if (v === undefined) continue;
    setPath(raw, leaf.path, typeof v === 'boolean' ? v : coerce(leaf, v, leaf.flag));
  }
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) {
    const lines = r.error.issues.map((i) => {
      const where = i.path.join('.') || '(top level)';
      const leaf = all.find((l) => l.path.join('.') === where);
      const hint = leaf ? ` (file key ${where}, env ${leaf.env}, flag ${leaf.flag})` : '';
      return `  ${where}: ${i.message}${hint}`;
    });
    throw new CtpipeError('CONFIG_INVALID', `invalid configuration:\n${lines.join('\n')}`);
  }
  return r.data;
}

/** docs/CONFIG.md, generated from the schema. */
export function configDocs(): string {
  const rows = leaves().map((l) => {
    const shown = l.path.join('.') === 'host' ? '(hostname)' : Array.isArray(l.default) ? l.default.join(',') : l.default;
    const def = shown === undefined ? '' : `\`${String(shown)}\``;
    const type = l.enum ? `${l.type === 'array' ? 'list of ' : ''}${l.enum.join(' \\| ')}` : l.type;
    return `| \`${l.path.join('.')}\` | \`${l.env}\` | \`${l.flag}\` | ${type} | ${def} | ${l.description.replace(/\|/g, '\\|')} |`;
  });
  return [
    '# Configuration reference',
    '',
    '<!-- Generated by `ctpipe config --docs` from cli/config.ts; do not edit by hand. -->',
    '',
    'Every setting can come from the YAML file given with `--config FILE` (or `CTPIPE_CONFIG`), an',
    'environment variable, or a flag. Later sources win: defaults < file < environment < flags.',
    'Sizes take units (`64MiB`, `1GiB`); durations take `ms`, `s`, `m`, `h` (a bare number is seconds).',
    'Lists are YAML lists in the file and comma-separated in the environment and flags. Unknown keys,',
    'variables and flags are errors, so a typo never goes unnoticed.',
    '',
    '| key | environment | flag | type | default | meaning |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    'Secrets (`kafka.sasl.password`) are redacted from logs and from `ctpipe config`; prefer',
    '`kafka.sasl.password_file` or the environment over the YAML file.',
    '',
  ].join('\n');
}
