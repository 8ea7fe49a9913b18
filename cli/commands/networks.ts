/**
 * `ctpipe networks check FILE`: whether a networks file would load (every bad line named, exit 1),
 * and how `run` and `process` keep the configured file loaded (processor/networks/watch.ts).
 */
import { CtpipeError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { describeProblems, parseNetworks, MAX_FILE_BYTES } from '../../processor/networks/file.js';
import { NetworksWatcher } from '../../processor/networks/watch.js';
import type { Store } from '../../processor/store.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';
import { readFileSync, statSync } from 'node:fs';

export const networksSpec: CommandSpec = {
  name: 'networks',
  summary: 'check a networks file (CSV cidr,name,role,site,region,tenant or YAML) before run or process load it',
  usage: 'ctpipe networks check FILE',
  parts: ['log'],
};

export async function runNetworks(_cfg: Config, _own: unknown, positionals: string[]): Promise<number> {
  const [action, file, ...extra] = positionals;
  if (action !== 'check' || !file || extra.length) {
    throw new CtpipeError('CONFIG_INVALID', `usage: ${networksSpec.usage}`);
  }
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > MAX_FILE_BYTES) throw new Error(`${size} bytes, more than ${MAX_FILE_BYTES}`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    process.stderr.write(`${file}: cannot be read: ${errorMessage(e)}\n`);
    return 1;
  }
  const r = parseNetworks(text, file);
  if (r.problems.length) {
    process.stderr.write(`${describeProblems(file, r.problems).join('\n')}\n${file}: ${r.problems.length} problem${r.problems.length > 1 ? 's' : ''}; the file would be refused\n`);
    return 1;
  }
  const v6 = r.entries.filter((e) => e.cidr.includes(':')).length;
  process.stdout.write(`${file}: ${r.entries.length} networks (${r.entries.length - v6} IPv4, ${v6} IPv6), ${r.nested} inside another (the most specific prefix wins); OK\n`);
  return 0;
}

/** The configured networks file loaded and watched, or undefined without one. */
export async function watchNetworks(cfg: Config, store: Store, log: Logger, processor: string): Promise<NetworksWatcher | undefined> {
  const file = cfg.enrich.networks;
  if (!file) return undefined;
  return NetworksWatcher.start(store, { file, processor, cluster: cfg.clickhouse.cluster, log });
}
