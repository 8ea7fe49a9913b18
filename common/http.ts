/**
 * The operator's endpoint: Prometheus metrics at /metrics and a health check at /healthz
 * (200 when healthy, 503 with the reason otherwise).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { redactDeep } from './redact.js';

export type Health = () => { ok: boolean; detail: Record<string, unknown> };

export async function serveOps(listen: string, registry: Registry, health: Health): Promise<Server> {
  const { host, port } = parseListen(listen);
  // the process's own: resident memory, CPU, heap, event-loop lag, file descriptors
  collectDefaultMetrics({ register: registry });
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        (e: unknown) => res.writeHead(500).end(String(e)),
      );
    } else if (req.url === '/healthz') {
      const h = health();
      // the reasons may quote an error, and an error a URL with its password
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(redactDeep(h)));
    } else {
      res.writeHead(404).end('try /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(`the metrics endpoint cannot listen on ${listen}: ${e.code ?? e.message} (choose another with --metrics-listen, or turn it off with --no-metrics-enabled)`)),
    );
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return server;
}

export function boundPort(server: Server): number {
  return (server.address() as AddressInfo).port;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[?([^\]]*)\]?:)?(\d+)$/.exec(listen);
  if (!m) throw new Error(`listen address must be [HOST:]PORT, got "${listen}"`);
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}
