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
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createChdbConnection } from 'chdb/connection';

import { errorMessage } from '../common/errors.js';
type Conn = ReturnType<typeof createChdbConnection>;
const NOT_SETTINGS = new Set(['query', 'query_id', 'database', 'session_id', 'role', 'default_format']);

export class ClickHouseFront {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Requests answered, by kind; a test can see that traffic reached the store. */
  readonly served = { queries: 0, inserts: 0, errors: 0 };

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
    const server = createServer((req, res) => void this.handle(req, res));
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
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://front');
    if (url.pathname === '/ping') {
      res.end('Ok.\n');
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const query_params: Record<string, string> = {};
    const clickhouse_settings: Record<string, string> = {};
    for (const [k, v] of url.searchParams) {
      if (k.startsWith('param_')) query_params[k.slice(6)] = v;
      else if (!NOT_SETTINGS.has(k)) clickhouse_settings[k] = v;
    }
    const inUrl = url.searchParams.get('query');
    const params = { query: inUrl ?? body, query_params, clickhouse_settings } as Parameters<Conn['query']>[0];
    try {
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
      res.statusCode = 500;
      res.setHeader('X-ClickHouse-Exception-Code', '1000');
      res.end(/Code: \d+/.test(msg) ? msg : `Code: 1000. DB::Exception: ${msg} (FRONT_ERROR)`);
    }
  }
}
