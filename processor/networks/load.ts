/**
 * Loads a checked networks file into ClickHouse without a moment of missing names: the rows go in
 * as a new generation beside the current one, then `network_loads` makes it current and the
 * dictionary is reloaded. Rows stored meanwhile are named by the old generation, never by none. A
 * reload ClickHouse refuses points `network_loads` back at the previous generation, so the old
 * names stay. Every value is a bound parameter: the file's strings never become SQL.
 */
import { CtpipeError, errorMessage } from '../../common/errors.js';
import type { Store } from '../store.js';
import { NETWORK_ATTRIBUTES, type NetworkEntry, type ParsedNetworks } from './file.js';
import { DICTIONARY, currentGenerationSql } from './schema.js';

/**
 * Bounds of one INSERT. Its parameter arrays travel in a server's request URL, where ClickHouse
 * takes at most http_max_field_value_size (128 KiB) per parameter and http_max_uri_size (1 MiB)
 * for the whole URL by default: 1,000 rows of 256-character names would pass both. So a part
 * ends at 1,000 rows or when one array or the encoded URL would pass these, well below the limits.
 */
const ROWS_PER_INSERT = 1000;
const PARAM_BYTES = 96 << 10;
const URL_BYTES = 640 << 10;

export interface LoadOptions {
  /** What the load came from (the file's path), recorded in network_loads. */
  file: string;
  /** Who loaded it (the processor's name), recorded too. */
  processor: string;
  cluster?: string;
}

export interface LoadResult {
  generation: number;
  networks: number;
  /** Prefixes in the dictionary after the reload, as ClickHouse counts them. */
  loaded: number;
}

let lastGeneration = 0;

/** A new generation number: microseconds since 1970, increasing within this process. */
function nextGeneration(): number {
  lastGeneration = Math.max(lastGeneration + 1, Date.now() * 1000 + Math.floor(Math.random() * 1000));
  return lastGeneration;
}

/** A value's size in an array parameter as @clickhouse/client sends it: quoted, \\ and ' escaped, a comma (percent-encoded in the URL: at most three times that). */
const paramBytes = (v: string) => Buffer.byteLength(v) + (v.match(/[\\']/g)?.length ?? 0) + 3;

/** The entries in parts that keep each insert's parameters within a server's limits (above). */
export function insertParts<E extends NetworkEntry>(entries: readonly E[], cols: readonly (keyof NetworkEntry)[]): E[][] {
  const parts: E[][] = [];
  let part: E[] = [];
  let sizes = cols.map(() => 0);
  let url = 0;
  for (const e of entries) {
    const add = cols.map((c) => paramBytes(String(e[c])));
    const addUrl = 3 * add.reduce((n, b) => n + b, 0);
    if (part.length && (part.length >= ROWS_PER_INSERT || url + addUrl > URL_BYTES || sizes.some((n, k) => n + add[k]! > PARAM_BYTES))) {
      parts.push(part);
      part = [];
      sizes = cols.map(() => 0);
      url = 0;
    }
    part.push(e);
    sizes = sizes.map((n, k) => n + add[k]!);
    url += addUrl;
  }
  if (part.length) parts.push(part);
  return parts;
}

export async function loadNetworks(store: Store, parsed: ParsedNetworks, o: LoadOptions): Promise<LoadResult> {
  const db = store.db;
  const on = o.cluster ? ` ON CLUSTER ${o.cluster}` : '';
  const [prev] = await store.query<{ g: string | number }>(`SELECT (${currentGenerationSql(db)}) AS g`);
  const previous = Number(prev?.g ?? 0);
  const generation = nextGeneration();
  const cols = ['line', 'cidr', ...NETWORK_ATTRIBUTES] as const;
  for (const part of insertParts(parsed.entries, cols)) {
    const params: Record<string, unknown> = { g: generation };
    for (const c of cols) params[c] = part.map((e) => e[c]);
    await store.command(
      `INSERT INTO ${db}.networks (generation, ${cols.join(', ')}) SELECT {g:UInt64}, ${cols.map((_, k) => `t.${k + 1}`).join(', ')} ` +
      `FROM (SELECT arrayJoin(arrayZip({line:Array(UInt32)}, ${cols.slice(1).map((c) => `{${c}:Array(String)}`).join(', ')})) AS t)`, params);
  }
  const mark = (g: number, networks: number, file: string) => store.command(
    `INSERT INTO ${db}.network_loads (generation, loaded_at, file, networks, processor) SELECT {g:UInt64}, now64(9), {file:String}, {n:UInt32}, {p:String}`,
    { g, file, n: networks, p: o.processor });
  await mark(generation, parsed.entries.length, o.file);
  try {
    await store.command(`SYSTEM RELOAD DICTIONARY ${db}.${DICTIONARY}${on}`);
  } catch (e) {
    // back to the names before: the previous generation current again, and the dictionary with it
    await mark(previous, 0, `${o.file} refused: back to the previous generation`).catch(() => undefined);
    await store.command(`SYSTEM RELOAD DICTIONARY ${db}.${DICTIONARY}${on}`).catch(() => undefined);
    throw new CtpipeError('NETWORKS_INVALID', `ClickHouse refused the networks of ${o.file} (the previous names stay): ${errorMessage(e)}`);
  }
  const [count] = await store.query<{ n: string | number }>(
    'SELECT element_count AS n FROM system.dictionaries WHERE database = {db:String} AND name = {name:String}', { db, name: DICTIONARY });
  // generations before the previous one are no longer needed (a lightweight mutation, in the background)
  await store.command(`ALTER TABLE ${db}.networks${on} DELETE WHERE generation NOT IN (SELECT generation FROM ${db}.network_loads ORDER BY loaded_at DESC LIMIT 3)`).catch(() => undefined);
  return { generation, networks: parsed.entries.length, loaded: Number(count?.n ?? 0) };
}
