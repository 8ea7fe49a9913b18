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

/** A number or a string with units, parsed into a number (bytes or milliseconds). */
const withUnits = (kind: UnitKind, parse: (v: number | string) => number) => (def: string, description: string) =>
  z.union([z.number().nonnegative(), z.string()]).default(def).meta({ description, kind })
    .transform((v, ctx) => {
      try {
        return parse(v);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: errorMessage(e) });
        return z.NEVER;
      }
    });

export const size = withUnits('size', parseSize);
export const duration = withUnits('duration', parseDuration);
