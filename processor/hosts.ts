/**
 * Which hosts a processor accepts (process.hosts): exact names or shell-style patterns (`*` any
 * run of characters, `?` one), anchored. Empty: any host. Hosts are keyed in Kafka by their name,
 * so a collector cannot pass for another unless it may write the topic at all: this list is what a
 * deployment adds when not every writer of the topic is trusted (docs/OPERATIONS.md).
 */
export function hostMatcher(patterns: readonly string[]): (host: string) => boolean {
  if (patterns.length === 0) return () => true;
  const exact = new Set(patterns.filter((p) => !/[*?]/.test(p)));
  const globs = patterns.filter((p) => /[*?]/.test(p)).map((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's'));
  const seen = new Map<string, boolean>();
  return (host) => {
    let ok = seen.get(host);
    if (ok === undefined) {
      ok = exact.has(host) || globs.some((g) => g.test(host));
      if (seen.size < 100_000) seen.set(host, ok);
    }
    return ok;
  };
}
