/**
 * A networks file: which name, role, site, region and tenant each address prefix has. CSV with a
 * header naming its columns (`cidr,name,role,site,region,tenant`; cidr and name required, the
 * others optional, any order) or YAML (a list of maps with those keys, or `networks:` holding
 * one). Prefixes may nest (ClickHouse's ip_trie gives an address the most specific one); the same
 * prefix twice, a host part set past the prefix, an unknown column or a name with control
 * characters is an error naming its line. Every string here is untrusted: it reaches ClickHouse
 * only as a bound parameter (load.ts) and dashboards only through their variables' escaping.
 */
import { readFileSync, statSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Node } from 'yaml';
import { CtpipeError, errorMessage } from '../../common/errors.js';
import { parseAddr } from '../../contract/addr.js';

export const NETWORK_FIELDS = ['cidr', 'name', 'role', 'site', 'region', 'tenant'] as const;
export type NetworkField = (typeof NETWORK_FIELDS)[number];
export const NETWORK_ATTRIBUTES = ['name', 'role', 'site', 'region', 'tenant'] as const;

/** One prefix with its attributes; `cidr` normalized (IPv4 as a.b.c.d/n, IPv6 compressed). */
export type NetworkEntry = Record<NetworkField, string> & { line: number };

export interface Problem {
  line: number;
  message: string;
}

export interface ParsedNetworks {
  entries: NetworkEntry[];
  problems: Problem[];
  /** Prefixes inside another one of the file (allowed: the most specific wins). */
  nested: number;
}

/** Largest file read, and most prefixes: a networks file is a list an operator keeps by hand or generates. */
export const MAX_FILE_BYTES = 64 << 20;
export const MAX_ENTRIES = 1_000_000;
/** Longest attribute value, in characters. */
export const MAX_VALUE_LENGTH = 256;
const MAX_PROBLEMS = 100;

// Control characters (C0, DEL, C1) and the line and paragraph separators: never in a name.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

interface Prefix {
  /** The network as 16 bytes (IPv4 mapped into ::ffff:0:0/96) and its length in those 128 bits. */
  bytes: Buffer;
  bits: number;
  text: string;
}

/** A CIDR as its network, or why it is not one. */
export function parseCidr(raw: string): Prefix | string {
  const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(raw);
  if (!m) return `"${raw}" is not a CIDR (address/length, e.g. 10.1.0.0/16 or fd00::/64)`;
  let addr: Buffer;
  try {
    addr = parseAddr(m[1]!);
  } catch {
    return `"${m[1]}" is not an IPv4 or IPv6 address`;
  }
  const len = Number(m[2]);
  const max = addr.length * 8;
  if (len > max) return `prefix length ${len} is more than ${max} bits for ${addr.length === 4 ? 'IPv4' : 'IPv6'}`;
  const bytes = Buffer.alloc(16);
  let bits = len;
  if (addr.length === 4) {
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    addr.copy(bytes, 12);
    bits += 96;
  } else addr.copy(bytes);
  const net = masked(bytes, bits);
  if (!net.equals(bytes)) return `"${raw}" has bits set past its prefix length (the network is ${textOf(net, bits)})`;
  return { bytes: net, bits, text: textOf(net, bits) };
}

function masked(b: Buffer, bits: number): Buffer {
  const out = Buffer.from(b);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i]! &= (0xff00 >> keep) & 0xff;
  }
  return out;
}

const isMapped = (b: Buffer) => b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

/** The normalized text: an IPv4 network (or IPv4-mapped one) as IPv4, IPv6 in its shortest form. */
function textOf(b: Buffer, bits: number): string {
  if (isMapped(b) && bits >= 96) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}/${bits - 96}`;
  const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  // the longest run of two or more zero groups becomes ::
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  const text = best < 0 ? hex.join(':') : `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
  return `${text}/${bits}`;
}

/** Splits one CSV line (RFC 4180 quoting within the line), or says why it cannot. */
export function splitCsvLine(line: string): string[] | string {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) return 'a quoted field is not closed on its line';
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      if (i < line.length && line[i] !== ',') return 'text after a closing quote';
    } else {
      const end = line.indexOf(',', i);
      field = end < 0 ? line.slice(i) : line.slice(i, end);
      if (field.includes('"')) return 'a quote inside an unquoted field';
      i = end < 0 ? line.length : end;
    }
    out.push(field.trim());
    if (i >= line.length) return out;
    i++; // the comma
  }
}

class Collector {
  readonly entries: NetworkEntry[] = [];
  readonly problems: Problem[] = [];
  private readonly seen = new Map<string, number>();

  problem(line: number, message: string): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push({ line, message });
  }

  add(line: number, values: Partial<Record<string, unknown>>): void {
    if (this.entries.length >= MAX_ENTRIES) {
      this.problem(line, `more than ${MAX_ENTRIES} networks`);
      return;
    }
    const e = { line } as NetworkEntry;
    let ok = true;
    for (const f of NETWORK_FIELDS) {
      const v = values[f] ?? '';
      if (typeof v !== 'string' && typeof v !== 'number') {
        this.problem(line, `${f} is not text`);
        ok = false;
        continue;
      }
      const s = String(v).trim();
      if (s.length > MAX_VALUE_LENGTH) {
        this.problem(line, `${f} is longer than ${MAX_VALUE_LENGTH} characters`);
        ok = false;
      } else if (CONTROL.test(s)) {
        this.problem(line, `${f} holds a control character`);
        ok = false;
      }
      e[f] = s;
    }
    if (!ok) return;
    if (!e.cidr) return this.problem(line, 'no cidr');
    if (!e.name) return this.problem(line, `no name for ${e.cidr}`);
    const p = parseCidr(e.cidr);
    if (typeof p === 'string') return this.problem(line, p);
    const key = `${p.bytes.toString('hex')}/${p.bits}`;
    const first = this.seen.get(key);
    if (first !== undefined) return this.problem(line, `${p.text} is already on line ${first} (one prefix, one set of names)`);
    this.seen.set(key, line);
    e.cidr = p.text;
    this.entries.push(e);
  }

  result(): ParsedNetworks {
    return { entries: this.entries, problems: this.problems.sort((a, b) => a.line - b.line), nested: countNested(this.entries) };
  }
}

/** How many prefixes lie inside another of the list. */
function countNested(entries: readonly NetworkEntry[]): number {
  const ps = entries.map((e) => parseCidr(e.cidr) as Prefix).sort((a, b) => Buffer.compare(a.bytes, b.bytes) || a.bits - b.bits);
  let n = 0;
  const stack: Prefix[] = [];
  for (const p of ps) {
    while (stack.length && !masked(p.bytes, stack[stack.length - 1]!.bits).equals(stack[stack.length - 1]!.bytes)) stack.pop();
    if (stack.length) n++;
    stack.push(p);
  }
  return n;
}

export function parseCsv(text: string): ParsedNetworks {
  const c = new Collector();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/); // a spreadsheet's byte order mark
  let header: string[] | undefined;
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) return;
    const fields = splitCsvLine(raw);
    if (typeof fields === 'string') return c.problem(line, fields);
    if (!header) {
      const names = fields.map((f) => f.toLowerCase());
      const unknown = names.filter((n) => !(NETWORK_FIELDS as readonly string[]).includes(n));
      const twice = names.filter((n, k) => names.indexOf(n) !== k);
      if (unknown.length || twice.length || !names.includes('cidr') || !names.includes('name')) {
        c.problem(line, `bad header "${raw.trim()}": expected ${NETWORK_FIELDS.join(',')} (cidr and name required${unknown.length ? `; unknown ${unknown.join(', ')}` : ''}${twice.length ? `; twice ${twice.join(', ')}` : ''})`);
        header = [];
        return;
      }
      header = names;
      return;
    }
    if (!header.length) return; // a bad header was reported: the lines cannot be read
    if (fields.length !== header.length) return c.problem(line, `${fields.length} fields, the header has ${header.length}`);
    c.add(line, Object.fromEntries(header.map((h, k) => [h, fields[k]])));
  });
  if (!header) c.problem(1, `no header line (expected ${NETWORK_FIELDS.join(',')})`);
  return c.result();
}

export function parseYaml(text: string): ParsedNetworks {
  const c = new Collector();
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  const lineOf = (n: Node | null | undefined) => (n?.range ? counter.linePos(n.range[0]).line : 1);
  for (const e of doc.errors) c.problem(e.linePos?.[0].line ?? 1, e.message.split('\n')[0]!);
  if (doc.errors.length) return c.result();
  let list: Node | null = doc.contents;
  if (isMap(list) && list.items.length === 1 && isScalar(list.items[0]!.key) && list.items[0]!.key.value === 'networks') list = list.items[0]!.value as Node;
  if (!isSeq(list)) {
    c.problem(lineOf(list), 'expected a list of networks (each with cidr and name), or networks: holding one');
    return c.result();
  }
  for (const item of list.items) {
    const line = lineOf(item as Node);
    if (!isMap(item)) {
      c.problem(line, 'a network is a map with cidr, name, role, site, region, tenant');
      continue;
    }
    const values: Record<string, unknown> = {};
    let ok = true;
    for (const pair of item.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!(NETWORK_FIELDS as readonly string[]).includes(key)) {
        c.problem(lineOf(pair.key as Node), `unknown key "${key.slice(0, 40)}" (expected ${NETWORK_FIELDS.join(', ')})`);
        ok = false;
        continue;
      }
      values[key] = isScalar(pair.value) ? pair.value.value ?? '' : {};
    }
    if (ok) c.add(line, values);
  }
  return c.result();
}

const isYamlPath = (path: string) => /\.ya?ml$/i.test(path);

/** Parses a file's text as its name says: .yaml/.yml as YAML, anything else as CSV. */
export function parseNetworks(text: string, path: string): ParsedNetworks {
  return isYamlPath(path) ? parseYaml(text) : parseCsv(text);
}

/** Problems as lines of text: `FILE:LINE: message`. */
export const describeProblems = (path: string, problems: readonly Problem[]) => problems.map((p) => `${path}:${p.line}: ${p.message}`);

/** Reads and checks a networks file; throws NETWORKS_INVALID naming every bad line. */
export function readNetworksFile(path: string): ParsedNetworks {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_FILE_BYTES) throw new Error(`${size} bytes, more than ${MAX_FILE_BYTES}`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CtpipeError('NETWORKS_INVALID', `networks file ${path} cannot be read: ${errorMessage(e)}`);
  }
  const parsed = parseNetworks(text, path);
  if (parsed.problems.length) {
    throw new CtpipeError('NETWORKS_INVALID', `networks file ${path} is refused: ${describeProblems(path, parsed.problems).join('; ')}`);
  }
  return parsed;
}
