/**
 * ClickHouse's HTTP interface in front of chDB, for tests that need what one embedded store
 * cannot give: several processes writing to one ClickHouse (two processors in a group), and a
 * ClickHouse that goes away and comes back (`stop()`, then `start()` on the same port).
 *
 * The engine is the real one (chDB, through chdb's own @clickhouse/client connection); only the
 * transport is ours. It speaks the subset @clickhouse/client sends: `GET /ping`, and `POST /` with
 * the SQL in the `query` parameter (the body is then the insert data) or in the body, bound
 * parameters as `param_<name>`, and every other parameter as a query setting. Errors come back as
 * HTTP 500 with ClickHouse's `Code: N. DB::Exception: ...` text, which the client parses.
 * See https://clickhouse.com/docs/interfaces/http for the protocol.
 *
 * A binary body (`INSERT INTO t (cols) FORMAT RowBinary|Native`, as ctpipe's store sends a server)
 * cannot go inline into chDB's query text: it is written to a private file and loaded with
 * `INSERT ... SETTINGS ... SELECT * FROM file(path, format, structure)`, the structure from the
 * table's columns, the request's settings in the statement (chDB keeps a SET for the session,
 * and one client's deduplication token must not reach the next request).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChdbConnection } from 'chdb/connection';

import { errorMessage } from '../common/errors.js';
type Conn = ReturnType<typeof createChdbConnection>;
const NOT_SETTINGS = new Set(['query', 'query_id', 'database', 'session_id', 'role', 'default_format']);
// settings of the HTTP layer only (chdb/connection drops the same ones)
const HTTP_ONLY = new Set(['wait_end_of_query', 'send_progress_in_http_headers', 'http_response_buffer_size', 'http_headers_progress_interval_ms',
  'http_send_progress_interval_ms', 'enable_http_compression', 'http_zlib_compression_level', 'http_response_compression_method',
  'http_native_compression_disable_checksumming_on_decompress']);
const BINARY_INSERT = /^\s*INSERT\s+INTO\s+([A-Za-z_][\w]*)\.([A-Za-z_][\w]*)\s*(?:\(([\w\s,]*)\))?\s*FORMAT\s+(RowBinary|Native)\s*$/i;

/** ClickHouse's default http_max_uri_size: bound parameters travel in the URL (processor/networks/load.ts sends about 60 KB). */
const MAX_URI_BYTES = 1 << 20;
/** ClickHouse's default http_max_field_value_size: the longest one parameter (a bound array) may be. */
const MAX_FIELD_VALUE_BYTES = 128 << 10;
const inUrlOrBody = (url: URL, body: string) => url.searchParams.get('query') ?? body;

/**
 * A `param_` value as the server reads it: HTTP parameters come in ClickHouse's escaped text form
 * (\\ \' \t \n \r ... as the client writes them), which a server unescapes for a String
 * placeholder; chDB's bind takes the value as it is, so the front unescapes it first (other types,
 * such as an array's quoted literal, go through as they are).
 */
function paramValue(query: string, name: string, v: string): string {
  const type = new RegExp(`\\{${name}:\\s*([^}]+)\\}`).exec(query)?.[1] ?? '';
  if (!/^(LowCardinality\()?(Nullable\()?(String|FixedString)/.test(type)) return v;
  const ESC: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', 0: '\0', a: '\x07', v: '\v' };
  return v.replace(/\\(x[0-9a-fA-F]{2}|.)/gs, (_all, c: string) => (c.length === 3 ? String.fromCharCode(parseInt(c.slice(1), 16)) : ESC[c] ?? c));
}

/**
 * A composite parameter (an array's quoted literal, as @clickhouse/client writes it: client-common's
 * data_formatter/format_query_params.js) goes to a server as it is, and the server parses it with
 * the escapes inside its quoted strings. chdb's bind escapes any string it is given once more
 * (chdb's dist/serialize.js formatParamValue: tsvEscape), which a composite value does not undo:
 * an Array(String) holding a quote or a backslash came to chDB escaped twice and was refused
 * ("Cannot read array from text"), where a server takes it. Such a value goes as a String
 * placeholder instead (unescaped by the engine back to the client's text), and the engine parses
 * that text as the type: `CAST({name:String} AS Type)`. Values without a backslash are unchanged.
 * Found by test/integration/networks-server.test.ts (a network name with a quote in the loader's
 * parameter arrays).
 */
function castEscapedComposites(query: string, params: Record<string, string>): string {
  let out = query;
  for (const [name, v] of Object.entries(params)) {
    if (!v.includes('\\') || !/^\w+$/.test(name)) continue;
    out = out.replace(new RegExp(`\\{${name}:\\s*([^}]+)\\}`, 'g'), (all, type: string) =>
      (/^(LowCardinality\()?(Nullable\()?(String|FixedString)/.test(type.trim()) ? all : `CAST({${name}:String} AS ${type.trim()})`));
  }
  return out;
}

export class ClickHouseFront {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Requests answered, by kind; a test can see that traffic reached the store. */
  readonly served = { queries: 0, inserts: 0, binaryInserts: 0, errors: 0 };
  /** Where binary bodies wait for chDB to read them (0700; each file removed after its insert). */
  private readonly files = mkdtempSync(join(tmpdir(), 'ctpipe-front-'));
  private n = 0;

  private constructor(private readonly conn: Conn, public port: number) {}

  static async start(path: string): Promise<ClickHouseFront> {
    const front = new ClickHouseFront(createChdbConnection({ path }), 0);
    await front.start();
    return front;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Listens again (on the same port after a stop). */
  async start(): Promise<void> {
    // a server takes a request URL up to http_max_uri_size (1 MiB by default); Node, 16 KB of headers
    const server = createServer({ maxHeaderSize: MAX_URI_BYTES }, (req, res) => void this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  /** ClickHouse goes away: the port refuses connections and open ones are cut. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  async close(): Promise<void> {
    await this.stop();
    await this.conn.close();
    rmSync(this.files, { recursive: true, force: true });
  }

  /** A RowBinary or Native body into `db.table`, through a file (see above). */
  private async insertBinary(m: RegExpExecArray, body: Buffer, settings: Record<string, string>): Promise<void> {
    const [, db, table, list, format] = m as unknown as [string, string, string, string | undefined, string];
    const params: Record<string, string> = { db, table };
    const cols = await (await this.conn.query({
      query: `SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {table:String} AND default_kind NOT IN ('ALIAS', 'MATERIALIZED', 'EPHEMERAL') ORDER BY position FORMAT JSONEachRow`,
      query_params: params,
    } as Parameters<Conn['query']>[0])).stream.toArray();
    const types = new Map((Buffer.concat(cols as Buffer[]).toString().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { name: string; type: string })).map((c) => [c.name, c.type]));
    const names = list ? list.split(',').map((c) => c.trim()) : [...types.keys()];
    if (names.some((c) => !types.has(c))) throw new Error(`Code: 16. DB::Exception: No such column in table ${db}.${table}: ${names.filter((c) => !types.has(c)).join(', ')} (NO_SUCH_COLUMN_IN_TABLE)`);
    params.structure = names.map((c) => `${c} ${types.get(c)!}`).join(', ');
    const set = Object.entries(settings).filter(([k]) => !HTTP_ONLY.has(k) && /^[a-z_]+$/.test(k)).map(([k, v], i) => {
      params[`s${i}`] = v;
      return `${k} = {s${i}:String}`;
    });
    const path = join(this.files, `${++this.n}.${format}`);
    await writeFile(path, body, { mode: 0o600, flag: 'wx' });
    try {
      params.path = path;
      await this.conn.command({
        query: `INSERT INTO ${db}.${table} (${names.join(', ')}) ${set.length ? `SETTINGS ${set.join(', ')} ` : ''}SELECT * FROM file({path:String}, '${format}', {structure:String})`,
        query_params: params,
      } as Parameters<Conn['command']>[0]);
    } finally {
      await rm(path, { force: true });
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://front');
    if (url.pathname === '/ping') {
      res.end('Ok.\n');
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const bytes = Buffer.concat(chunks);
    const body = bytes.toString('utf8');
    const query_params: Record<string, string> = {};
    const clickhouse_settings: Record<string, string> = {};
    for (const [k, v] of url.searchParams) {
      if (Buffer.byteLength(v) > MAX_FIELD_VALUE_BYTES) {
        // as a server with its default limits refuses it (the loader must keep its arrays shorter)
        this.served.errors++;
        res.statusCode = 400;
        res.end(`Code: 1000. DB::Exception: Field value too long: parameter ${k.slice(0, 40)} is ${Buffer.byteLength(v)} bytes, more than http_max_field_value_size ${MAX_FIELD_VALUE_BYTES} (FRONT_LIMIT)`);
        return;
      }
      if (k.startsWith('param_')) query_params[k.slice(6)] = paramValue(inUrlOrBody(url, body), k.slice(6), v);
      else if (!NOT_SETTINGS.has(k)) clickhouse_settings[k] = v;
    }
    const inUrl = url.searchParams.get('query');
    const params = { query: castEscapedComposites(inUrl ?? body, query_params), query_params, clickhouse_settings } as Parameters<Conn['query']>[0];
    try {
      const binary = inUrl === null ? null : BINARY_INSERT.exec(inUrl);
      if (binary) {
        if (bytes.length > 0) await this.insertBinary(binary, bytes, clickhouse_settings);
        this.served.inserts++;
        this.served.binaryInserts++;
        res.end();
        return;
      }
      if (inUrl !== null && body.length > 0) {
        const r = await this.conn.insert({ ...params, values: body } as Parameters<Conn['insert']>[0]);
        this.served.inserts++;
        res.setHeader('X-ClickHouse-Summary', JSON.stringify(r.summary ?? {}));
        res.end();
        return;
      }
      const r = await this.conn.query(params);
      this.served.queries++;
      for await (const c of r.stream) res.write(c as Buffer);
      res.end();
    } catch (e) {
      this.served.errors++;
      const msg = errorMessage(e);
      // chdb/connection's errors carry ClickHouse's code and type apart from the message: a server
      // would send them, and the client classifies a failure by its code
      const { code, type } = e as { code?: unknown; type?: unknown };
      const known = typeof code === 'string' && /^\d+$/.test(code) ? code : undefined;
      res.statusCode = 500;
      res.setHeader('X-ClickHouse-Exception-Code', known ?? '1000');
      res.end(/Code: \d+/.test(msg) ? msg : known ? `Code: ${known}. DB::Exception: ${msg} (${String(type)})` : `Code: 1000. DB::Exception: ${msg} (FRONT_ERROR)`);
    }
  }
}
