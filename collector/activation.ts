/**
 * Conntrack tracks a network namespace only while some firewall rule uses it (an nftables `ct`
 * expression, iptables `-m conntrack`/`state`, NAT): on a host without one the table stays empty
 * and no event ever comes, which looks like a broken collector. `watchActivation` says so after a
 * quiet start; `--enable-conntrack` adds a table whose only rules count new connections (policy
 * accept, so no packet is treated differently) and removes it at stop.
 *
 * The table is this process's own: several ctpipe processes may watch one namespace, and one that
 * exits must not switch conntrack off under the others (a shared table deleted by whichever exits
 * first did exactly that). Each process names its table after its pid and pid namespace and, where
 * the kernel allows (Linux 5.12+, nft 1.0+), creates it with `flags owner` through an `nft -i`
 * child that lives as long as this process: the kernel then refuses changes from anyone else and
 * removes the table itself when the child's netlink socket closes, even after a SIGKILL. Without
 * owner support the table is a plain one removed at stop, and a start removes the tables of dead
 * ctpipe processes of its own pid namespace (left by a SIGKILL).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { CtpipeError } from '../common/errors.js';
import type { Logger } from '../common/log.js';

/** Prefix of every activation table; a process's own is `${prefix}_p<pid>_n<pid namespace inode>`. */
export const ACTIVATION_TABLE = 'ctpipe_conntrack';
const OWN_TABLE = /^ctpipe_conntrack_p(\d+)_n(\d+)$/;

export const HOW_TO_ENABLE =
  'Conntrack is active in a network namespace only while a firewall rule uses it. Run ctpipe with --enable-conntrack ' +
  `(it adds an nftables table inet ${ACTIVATION_TABLE}_p<pid>_n<ns> of its own, whose rules only count new connections, and removes it at stop), or add a rule ` +
  'of your own, e.g.: nft add table inet track; nft add chain inet track pre "{ type filter hook prerouting priority -150; }"; ' +
  'nft add rule inet track pre ct state new counter';

/** The pid namespace's inode: pids are unique within it, so (pid, inode) names one live process. */
function pidNamespace(): string {
  return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
}

export function ownTableName(pid = process.pid, pidns = pidNamespace()): string {
  return `${ACTIVATION_TABLE}_p${pid}_n${pidns}`;
}

/** The statements that make `table` count new connections; `owner` adds the kernel's ownership flag. */
export function activationStatements(table: string, owner: boolean): string[] {
  return [
    `add table inet ${table} ${owner ? '{ flags owner; }' : ''}`.trim(),
    ...['prerouting', 'output'].flatMap((hook) => [
      `add chain inet ${table} ${hook} { type filter hook ${hook} priority -150; policy accept; }`,
      `add rule inet ${table} ${hook} ct state new counter`,
    ]),
  ];
}

/**
 * Activation tables in `listing` (`nft list tables` output) left by ctpipe processes of pid
 * namespace `pidns` that no longer run: those, and only those, a start may remove. A table of
 * another pid namespace is never touched (its process cannot be seen from here).
 */
export function staleTables(listing: string, pidns: string, running: (pid: number) => boolean): string[] {
  const stale: string[] = [];
  for (const m of listing.matchAll(/^table inet (\S+)/gm)) {
    const own = OWN_TABLE.exec(m[1]!);
    if (own && own[2] === pidns && !running(Number(own[1]))) stale.push(m[1]!);
  }
  return stale;
}

/** Whether `pid` is a running ctpipe (a reused pid of another program counts as gone). */
function ctpipeRunning(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('ctpipe');
  } catch {
    return false;
  }
}

function nftArgv(netns: string | undefined, args: string[]): [string, string[]] {
  return netns ? ['nsenter', [`--net=${netns}`, 'nft', ...args]] : ['nft', args];
}

function nft(netns: string | undefined, args: string[], input?: string) {
  const [cmd, argv] = nftArgv(netns, args);
  return spawnSync(cmd, argv, { input, encoding: 'utf8' });
}

export interface Activation {
  /** The table's name (family inet). */
  readonly table: string;
  /** Whether the kernel owns it for this process (removed by the kernel when the process ends). */
  readonly owned: boolean;
  /** Removes the table (waits for the holder to exit, at most 2 s). */
  release(): Promise<void>;
}

/**
 * Holds an owned table through `nft -i`: the statements, then a listing of the table, whose
 * output says it exists. Resolves with the holder, or with the error nft printed.
 */
function holdOwnedTable(netns: string | undefined, table: string): Promise<{ holder: ChildProcessWithoutNullStreams } | { error: string }> {
  const [cmd, argv] = nftArgv(netns, ['-i']);
  // its own process group: a terminal's Ctrl-C reaches ctpipe, which then releases the table in order
  const holder = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  holder.unref(); // never what keeps ctpipe alive: at exit its stdin closes, and nft ends
  let out = '';
  let err = '';
  return new Promise((resolve) => {
    const done = (r: { holder: ChildProcessWithoutNullStreams } | { error: string }) => {
      clearTimeout(timer);
      holder.stdout.removeAllListeners('data');
      holder.stderr.removeAllListeners('data');
      holder.stdout.resume();
      holder.stderr.resume();
      if ('error' in r) holder.kill('SIGKILL');
      resolve(r);
    };
    const timer = setTimeout(() => done({ error: `nft did not answer within 5 s${err ? `: ${err.trim()}` : ''}` }), 5000);
    holder.on('error', (e) => done({ error: e.message }));
    holder.on('exit', () => done({ error: err.trim() || 'nft exited' }));
    holder.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('\n')) done({ error: err.trim() });
    });
    holder.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(`table inet ${table} `)) {
        holder.removeAllListeners('exit');
        done({ holder });
      }
    });
    holder.stdin.on('error', () => undefined); // an early exit is reported above
    holder.stdin.write(`${[...activationStatements(table, true), `list table inet ${table}`].join('\n')}\n`);
  });
}

/**
 * Adds this process's activation table. `onLost` is called if the table goes away while running
 * (its holder killed): conntrack may then stop tracking the namespace.
 */
export async function enableConntrack(netns: string | undefined, log: Logger, onLost: () => void = () => undefined): Promise<Activation> {
  const pidns = pidNamespace();
  const table = ownTableName(process.pid, pidns);
  const held = await holdOwnedTable(netns, table);
  if ('holder' in held) {
    const { holder } = held;
    let releasing = false;
    holder.once('exit', (code, signal) => {
      if (releasing) return;
      log.warn({ code: 'CONNTRACK_RULE_GONE', table: `inet ${table}`, exit: code ?? signal },
        `the nft process holding this process's table inet ${table} (--enable-conntrack) exited, and the kernel removed the table: ` +
        'unless another rule uses conntrack, the namespace is no longer tracked and no new connection will be seen. Restart ctpipe.');
      onLost();
    });
    log.info({ table: `inet ${table}`, owner: true },
      'conntrack enabled in this network namespace (--enable-conntrack) with a table of this process\'s own; removed at stop (by the kernel if the process dies)');
    return {
      table, owned: true,
      release: () => {
        releasing = true;
        if (holder.exitCode !== null || holder.signalCode !== null) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const kill = setTimeout(() => holder.kill('SIGKILL'), 2000);
          holder.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          holder.stdin.end();
        });
      },
    };
  }
  // No table ownership here (older kernel or nft): a plain table, removed at stop; those of dead processes first.
  const listing = nft(netns, ['list', 'tables']);
  for (const t of staleTables(listing.stdout ?? '', pidns, ctpipeRunning)) {
    const r = nft(netns, ['delete', 'table', 'inet', t]);
    log.info({ table: `inet ${t}`, removed: r.status === 0 }, 'removed the activation table of a ctpipe process that no longer runs');
  }
  const r = nft(netns, ['-f', '-'], `${activationStatements(table, false).join('\n')}\n`);
  if (r.error || r.status !== 0) {
    throw new CtpipeError('CONFIG_INVALID', `--enable-conntrack could not add nftables table inet ${table}: ` +
      `${r.error?.message ?? r.stderr.trim()} (is the nftables package installed?)`);
  }
  log.info({ table: `inet ${table}`, owner: false, why_not_owned: held.error },
    'conntrack enabled in this network namespace (--enable-conntrack) with a table of this process\'s own; removed at stop, or by the next start if this process is killed');
  return {
    table, owned: false,
    release: () => {
      nft(netns, ['delete', 'table', 'inet', table]);
      return Promise.resolve();
    },
  };
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
