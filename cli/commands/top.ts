/** `ctpipe top`: a live view of the busiest hosts, ports and states in a store (cli/top.ts). */
import { CtpipeError, errorMessage } from '../../common/errors.js';
import type { CommandSpec } from '../args.js';
import { parseDuration, type Config } from '../config.js';
import { connectStore } from '../store.js';
import { fetchTop, topLoop } from '../top.js';

export const topSpec: CommandSpec = {
  name: 'top',
  summary: 'live view of the busiest hosts, ports and connection states (for the embedded store of a running ctpipe run: ctpipe run --top)',
  usage: 'ctpipe top [--clickhouse-url http://HOST:8123] [--interval 2s] [--window 1m] [--iterations N]',
  parts: ['store', 'database'],
  own: {
    interval: { type: 'string', description: 'refresh interval (default 2s)' },
    window: { type: 'string', description: 'the flows active in this last span (open, or ended in it; started at most an hour before it) (default 1m)' },
    iterations: { type: 'string', description: 'stop after this many views (default: until Ctrl-C)' },
  },
};

export function topOptions(own: Record<string, unknown>): { intervalMs: number; windowS: number; iterations?: number } {
  const dur = (name: string, dflt: string) => {
    try {
      return parseDuration((own[name] as string | undefined) ?? dflt);
    } catch (e) {
      throw new CtpipeError('CONFIG_INVALID', `--${name}: ${errorMessage(e)}`);
    }
  };
  const iterations = own.iterations === undefined ? undefined : Number(own.iterations);
  if (iterations !== undefined && (!Number.isInteger(iterations) || iterations < 1)) throw new CtpipeError('CONFIG_INVALID', '--iterations must be a whole number above 0');
  return { intervalMs: dur('interval', '2s'), windowS: Math.max(1, Math.round(dur('window', '1m') / 1000)), iterations };
}

export async function runTop(cfg: Config, own: Record<string, unknown>): Promise<number> {
  const o = topOptions(own);
  const store = await connectStore(cfg, { readonly: true });
  try {
    const loop = topLoop(() => fetchTop(store, cfg.clickhouse.database, o.windowS), {
      ...o, onError: (e) => process.stderr.write(`ctpipe top: ${e.message}\n`),
    });
    process.once('SIGINT', loop.stop).once('SIGTERM', loop.stop);
    await loop.done;
  } finally {
    await store.close();
  }
  return 0;
}
