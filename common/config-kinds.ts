/**
 * Setting kinds with units, declared where a setting is defined (not guessed from its text): a
 * size in bytes (`64MiB`) or a duration in milliseconds (`10s`). The kind travels in the schema's
 * metadata to flags, `--help` and docs/CONFIG.md.
 */
import { z } from 'zod';
import { errorMessage } from './errors.js';

export type UnitKind = 'size' | 'duration';

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

/** The longest delay a Node.js timer takes (2^31 - 1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Bounds a setting of a kind may declare; each kind has its own defaults. */
export interface Range {
  min?: number;
  max?: number;
}

/** Sizes as people write them: 2147483647 bytes is "2GiB - 1 byte". */
export function showSize(n: number): string {
  for (const [unit, m] of [['GiB', 1 << 30], ['MiB', 1 << 20], ['KiB', 1 << 10]] as const) {
    if (n >= m && n % m === 0) return `${n / m}${unit}`;
    if (n + 1 >= m && (n + 1) % m === 0) return `${(n + 1) / m}${unit} - 1 byte`;
  }
  return n === 1 ? '1 byte' : `${n} bytes`;
}

export function showDuration(ms: number): string {
  if (ms === MAX_TIMER_MS) return '24d 20h 31m 23.647s (2^31 - 1 ms, the longest a timer waits)';
  const parts: string[] = [];
  let rest = ms;
  for (const [unit, m] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (rest >= m) {
      parts.push(`${Math.floor(rest / m)}${unit}`);
      rest %= m;
    }
  }
  if (rest || parts.length === 0) parts.push(`${rest}ms`);
  return parts.join(' ');
}

interface Kind {
  parse: (v: number | string) => number;
  show: (n: number) => string;
  range: Required<Range>;
}

const KINDS: Record<UnitKind, Kind> = {
  // sizes feed buffers, socket options (a C int: 2^31 - 1) and Kafka fields: at most 1 TiB unless a setting says
  size: { parse: parseSize, show: showSize, range: { min: 1, max: 2 ** 40 } },
  // durations feed timers, which fire at once past 2^31 - 1 ms; 0 means something only where a setting says so
  duration: { parse: parseDuration, show: showDuration, range: { min: 1, max: MAX_TIMER_MS } },
};

/**
 * A number or a string with units, parsed into a number (bytes or milliseconds) and checked against
 * the setting's range (its kind's unless it declares one): out of range is a configuration error
 * naming the range, never a value silently wrapped or clamped by what consumes it.
 */
const withUnits = (kind: UnitKind) => (def: string, description: string, range: Range = {}) => {
  const k = KINDS[kind];
  const min = range.min ?? k.range.min;
  const max = range.max ?? k.range.max;
  return z.union([z.number().nonnegative(), z.string()]).default(def).meta({ description, kind })
    .transform((v, ctx) => {
      let n: number;
      try {
        n = k.parse(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: errorMessage(e) });
        return z.NEVER;
      }
      if (!Number.isFinite(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `"${String(v)}" is out of range: from ${k.show(min)} to ${k.show(max)}` });
        return z.NEVER;
      }
      return n;
    });
};

export const size = withUnits('size');
export const duration = withUnits('duration');
