/**
 * Removal from an open-addressing index with linear probing (the flow table's and the ended
 * keys'): entries are positions + 1 in an Int32Array whose length is a power of two, 0 is empty.
 * Backward-shift deletion moves later entries of the probe chain into the hole instead of leaving
 * a tombstone, so lookups never wade through deleted entries.
 */
/** Removes `entry` (false if it is not there); `home` gives an entry's home position. */
export function removeEntry(idx: Int32Array, entry: number, home: (entry: number) => number): boolean {
  const mask = idx.length - 1;
  let i = home(entry);
  while (idx[i] !== entry) {
    if (idx[i] === 0) return false;
    i = (i + 1) & mask;
  }
  let j = i;
  for (;;) {
    j = (j + 1) & mask;
    const e = idx[j]!;
    if (e === 0) break;
    const h = home(e);
    // e may move into the hole at i only if its home is not within (i, j]
    if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
      idx[i] = e;
      i = j;
    }
  }
  idx[i] = 0;
  return true;
}
