/**
 * One schema for every way ctpipe is configured: built-in defaults < YAML file (--config) <
 * environment (CTPIPE_*) < command-line flags. The same schema validates, names the environment
 * variables and flags, and generates docs/CONFIG.md (`ctpipe config --docs`).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { collectSection } from '../collector/config.js';
import { errorMessage, CtpipeError } from '../common/errors.js';
import { kafkaSection } from '../common/kafka-config.js';
import { validateName } from '../contract/validate.js';
import { clickhouseSection, detectSection, processSection } from '../processor/config.js';
import { k8sSection, kubeconfigSetting, kubernetesSetting } from '../processor/k8s/config.js';
import { enrichSection } from '../processor/networks/config.js';

export { parseDuration, parseSize } from '../common/config-kinds.js';
import type { UnitKind } from '../common/config-kinds.js';

export const ConfigSchema = z.strictObject({
  host: z.string().min(1).max(253, 'a host id is at most 253 characters (a DNS name)').refine((h) => validateName(h, 'host') === undefined, 'a host id has no control characters').default(os.hostname()).describe('Host id stamped on every record and used as the Kafka key (default: the hostname)'),
  log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level (JSON logs on stderr)'),
  metrics: z.strictObject({
    enabled: z.boolean().default(true).describe('Serve /metrics and /healthz'),
    listen: z.string().default('0.0.0.0:9464').describe('Address of the metrics and health endpoint, [HOST:]PORT'),
  }).prefault({}),
  collect: collectSection.prefault({}),
  kafka: kafkaSection.prefault({}),
  clickhouse: clickhouseSection.prefault({}),
  process: processSection.prefault({}),
  detect: detectSection.prefault({}),
  kubernetes: kubernetesSetting,
  kubeconfig: kubeconfigSetting,
  k8s: k8sSection.prefault({}),
  enrich: enrichSection.prefault({}),
});

export type Config = z.output<typeof ConfigSchema>;

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
  /** Declared by common/config-kinds.ts for settings with units. */
  kind?: UnitKind;
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
    if (s.kind) type = s.kind;
    else if (s.type === 'array') type = 'array';
    else if (s.type === 'boolean') type = 'boolean';
    else if (s.type === 'number' || s.type === 'integer') type = 'number';
    const en = s.enum ?? s.items?.enum;
    // collect's and enrich's flags are bare (--rcvbuf, --networks)
    const section = path[0] === 'collect' || path[0] === 'enrich' ? [] : path.slice(0, -1);
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
      throw new CtpipeError('CONFIG_FILE', `cannot read config file ${src.file}: ${errorMessage(e)}`);
    }
    try {
      const doc = parseYaml(text) as unknown;
      if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
        throw new Error('the top level must be a mapping (key: value)');
      }
      raw = (doc ?? {}) as Record<string, unknown>;
    } catch (e) {
      throw new CtpipeError('CONFIG_FILE', `config file ${src.file} is not valid YAML: ${errorMessage(e)}`);
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
