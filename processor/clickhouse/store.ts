/**
 * The only processor file that imports @clickhouse/client and chdb. `chdb:PATH` opens an embedded
 * ClickHouse (chDB) in this process; `http(s)://...` a server. Both are the same client, so every
 * query and insert in ctpipe has one code path.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { CtpipeError, errorMessage } from '../../common/errors.js';

export type Store = ClickHouseClient;

// The client would print its own errors to stdout; ctpipe reports them through its logger instead.
const QUIET = { level: ClickHouseLogLevel.OFF };

export interface StoreOptions {
  url: string;
  username?: string;
  password?: string;
  passwordFile?: string;
  requestTimeoutMs?: number;
}

/**
 * chDB locks DIR/status (holding the owner's PID) while a process has the directory open: name
 * that process and the ways out.
 */
function holder(path: string): string | undefined {
  let status: string;
  try {
    status = readFileSync(join(path, 'status'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = /^PID: (\d+)/m.exec(status)?.[1];
  if (!pid || !existsSync(`/proc/${pid}`)) return undefined;
  const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  return `the directory is in use by process ${pid} (${cmd.slice(0, 120)}); the embedded store serves one process at a time. ` +
    'Stop that process first, give this command another directory, or run a ClickHouse server and point both at it with --clickhouse-url http://HOST:8123';
}

export async function openStore(o: StoreOptions): Promise<Store> {
  if (o.url.startsWith('chdb:')) {
    const path = o.url.slice(5) || './data';
    const { createChdbConnection } = await import('chdb/connection');
    try {
      return createClient({
        connection: createChdbConnection({ path }),
        log: QUIET,
        clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
      } as Parameters<typeof createClient>[0]);
    } catch (e) {
      throw new CtpipeError('STORE_UNAVAILABLE', `cannot open the embedded ClickHouse at ${path}: ${holder(path) ?? errorMessage(e)}`);
    }
  }
  if (!/^https?:\/\//.test(o.url)) {
    throw new CtpipeError('CONFIG_INVALID', `clickhouse.url must be chdb:PATH or http(s)://HOST:PORT, got "${o.url}"`);
  }
  const password = o.passwordFile ? readFileSync(o.passwordFile, 'utf8').trim() : o.password;
  return createClient({
    url: o.url,
    username: o.username,
    password,
    request_timeout: o.requestTimeoutMs ?? 60_000,
    log: QUIET,
    clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
  });
}
