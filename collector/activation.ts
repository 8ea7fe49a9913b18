/**
 * Conntrack tracks a network namespace only while some firewall rule uses it (an nftables `ct`
 * expression, iptables `-m conntrack`/`state`, NAT): on a host without one the table stays empty
 * and no event ever comes, which looks like a broken collector. `watchActivation` says so after a
 * quiet start; `--enable-conntrack` adds a table whose only rules count new connections (policy
 * accept, so no packet is treated differently) and removes it at stop.
 */
import { spawnSync } from 'node:child_process';
import { CtpipeError } from '../common/errors.js';
import type { Logger } from '../common/log.js';

export const ACTIVATION_TABLE = 'ctpipe_conntrack';
const RULESET = `table inet ${ACTIVATION_TABLE} {
  chain prerouting { type filter hook prerouting priority -150; policy accept; ct state new counter; }
  chain output { type filter hook output priority -150; policy accept; ct state new counter; }
}
`;

export const HOW_TO_ENABLE =
  'Conntrack is active in a network namespace only while a firewall rule uses it. Run ctpipe with --enable-conntrack ' +
  `(it adds nftables table inet ${ACTIVATION_TABLE}, whose rules only count new connections, and removes it at stop), or add a rule ` +
  'of your own, e.g.: nft add table inet track; nft add chain inet track pre "{ type filter hook prerouting priority -150; }"; ' +
  'nft add rule inet track pre ct state new counter';

function nft(netns: string | undefined, args: string[], input?: string) {
  const [cmd, argv] = netns ? ['nsenter', [`--net=${netns}`, 'nft', ...args]] : ['nft', args];
  return spawnSync(cmd, argv, { input, encoding: 'utf8' });
}

/** Adds the activation table; returns what removes it. */
export function enableConntrack(netns: string | undefined, log: Logger): () => void {
  const r = nft(netns, ['-f', '-'], RULESET);
  if (r.error || r.status !== 0) {
    throw new CtpipeError('CONFIG_INVALID', `--enable-conntrack could not add nftables table inet ${ACTIVATION_TABLE}: ` +
      `${r.error?.message ?? r.stderr.trim()} (is the nftables package installed?)`);
  }
  log.info({ table: `inet ${ACTIVATION_TABLE}` }, 'conntrack enabled in this network namespace (--enable-conntrack); removed at stop');
  return () => void nft(netns, ['delete', 'table', 'inet', ACTIVATION_TABLE]);
}

/**
 * Warns (once) when the table stays empty from start to `afterMs`, looked at every `everyMs`: most
 * likely nothing uses conntrack here. A table that held entries once (and was flushed since) is
 * active, and no warning comes.
 */
export function watchActivation(count: () => string, log: Logger, afterMs = 10_000, everyMs = 1000): () => void {
  const started = Date.now();
  const look = () => {
    let n: string;
    try {
      n = count().trim();
    } catch {
      return stop(); // nf_conntrack not loaded: the subscription would have failed already
    }
    if (n !== '0') return stop();
    if (Date.now() - started < afterMs) return;
    stop();
    log.warn({ code: 'CONNTRACK_INACTIVE', after_s: afterMs / 1000 },
      `the conntrack table has stayed empty for ${afterMs / 1000} s: conntrack is probably not active in this network namespace. ${HOW_TO_ENABLE}`);
  };
  const timer = setInterval(look, everyMs);
  timer.unref();
  const stop = () => clearInterval(timer);
  look();
  return stop;
}
