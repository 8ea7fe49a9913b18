/**
 * Interface names by index, read from /sys/class/net: NFLOG gives interface indexes, samples show
 * names. /sys/class/net shows this process's network namespace only, so a collector watching
 * another namespace has no names (the caller does not read them) and shows if<N>.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Index -> name; empty when the directory cannot be read. */
export function readIfnames(dir = '/sys/class/net'): Map<number, string> {
  const names = new Map<number, string>();
  try {
    for (const name of readdirSync(dir)) {
      names.set(Number(readFileSync(path.join(dir, name, 'ifindex'), 'utf8')), name);
    }
  } catch {
    // names stay as if<N>
  }
  return names;
}

export function ifname(names: ReadonlyMap<number, string>, index: number | undefined): string | undefined {
  if (index === undefined) return undefined;
  return names.get(index) ?? `if${index}`;
}
