/**
 * The deployment files, checked without a container engine: the compose file through Debian's
 * docker-compose; every Kubernetes object against the typed definitions of @kubernetes/client-node
 * (each field name and type, recursively); the systemd units through systemd-analyze verify; the
 * Dockerfile's sources and commands; the ClickHouse users' grants against every statement the
 * processor runs and every table the dashboards read.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { packageRoot } from '../../common/paths.js';
import { alertRules } from '../../dashboards/alerts.js';
import { dashboards } from '../../dashboards/generate.js';
import { queriesOf } from '../../dashboards/lint.js';
import { MIGRATIONS } from '../../processor/clickhouse/schema.js';
import { NODE_FLAGS } from '../../common/node-flags.js';

const ROOT = packageRoot();
const read = (rel: string) => readFileSync(path.join(ROOT, rel), 'utf8');
const need = (tool: string) => expect(existsSync(tool), `${tool} is needed (see the README's test command)`).toBe(true);

describe('docker-compose.yml', () => {
  it('passes `docker-compose config`, with the collector on the host network holding NET_ADMIN only, and every image pinned', () => {
    need('/usr/bin/docker-compose');
    const env = { ...process.env, CTPIPE_WRITER_PASSWORD: 'w', CTPIPE_GRAFANA_PASSWORD: 'g' };
    const r = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT, env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const c = parse(r.stdout) as { services: Record<string, Record<string, unknown>>; volumes: Record<string, unknown> };
    expect(Object.keys(c.services).sort()).toEqual(['clickhouse', 'collector', 'grafana', 'kafka', 'kafka-topic', 'migrate', 'processor-1', 'processor-2']);
    const col = c.services.collector!;
    expect([col.network_mode, col.cap_drop, col.cap_add]).toEqual(['host', ['ALL'], ['NET_ADMIN']]);
    expect(col.privileged).toBeUndefined();
    for (const [name, s] of Object.entries(c.services)) {
      expect(String(s.image), name).toMatch(/:[0-9][\w.-]*$/); // a version, never latest
      expect(s.healthcheck !== undefined || s.restart === 'no', `${name}: a health check, or a one-shot`).toBe(true);
    }
    expect(c.services['processor-1']!.depends_on).toMatchObject({ migrate: { condition: 'service_completed_successfully' } });
    expect(c.services.migrate!.depends_on).toMatchObject({ clickhouse: { condition: 'service_healthy' } });
    expect(Object.keys(c.volumes).sort()).toEqual(['clickhouse-data', 'collector-spool', 'grafana-data', 'kafka-data']);
    // without the passwords it refuses to start, saying which
    const bare = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT, env: { PATH: process.env.PATH }, encoding: 'utf8' });
    expect(bare.status).not.toBe(0);
    expect(bare.stderr).toContain('CTPIPE_WRITER_PASSWORD');
  });
});

// ------------------------------------------------------------------------------------ Kubernetes

const models = k8s as unknown as Record<string, { getAttributeTypeMap?: () => { baseName: string; type: string }[] }>;
const KINDS: Record<string, string> = {
  'v1/Namespace': 'V1Namespace', 'v1/ConfigMap': 'V1ConfigMap', 'v1/Secret': 'V1Secret', 'v1/Service': 'V1Service',
  'apps/v1/DaemonSet': 'V1DaemonSet', 'apps/v1/Deployment': 'V1Deployment', 'batch/v1/Job': 'V1Job',
  'v1/ServiceAccount': 'V1ServiceAccount', 'rbac.authorization.k8s.io/v1/ClusterRole': 'V1ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'V1ClusterRoleBinding',
};

/** Problems of `value` against the client's model `type`: unknown fields and wrong types, by path. */
function check(value: unknown, type: string, at: string, bad: string[]): void {
  const inner = /^Array<(.+)>$/.exec(type) ?? /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (inner) {
    const isArray = type.startsWith('Array<');
    if (isArray ? !Array.isArray(value) : typeof value !== 'object' || value === null || Array.isArray(value)) return void bad.push(`${at}: not ${isArray ? 'a list' : 'a map'}`);
    for (const [k, v] of Object.entries(value as object)) check(v, inner[1]!, `${at}${isArray ? `[${k}]` : `.${k}`}`, bad);
    return;
  }
  const scalar: Record<string, (v: unknown) => boolean> = {
    string: (v) => typeof v === 'string', number: (v) => typeof v === 'number', boolean: (v) => typeof v === 'boolean',
    IntOrString: (v) => typeof v === 'string' || typeof v === 'number', any: () => true, object: () => true, Date: (v) => typeof v === 'string',
  };
  if (scalar[type]) {
    if (!scalar[type]!(value)) bad.push(`${at}: not a ${type}`);
    return;
  }
  const fields = models[type]?.getAttributeTypeMap?.();
  if (!fields) return void bad.push(`${at}: no model ${type}`);
  if (typeof value !== 'object' || value === null) return void bad.push(`${at}: not an object`);
  for (const [k, v] of Object.entries(value)) {
    const f = fields.find((x) => x.baseName === k);
    if (!f) bad.push(`${at}.${k}: no such field in ${type}`);
    else check(v, f.type, `${at}.${k}`, bad);
  }
}

function k8sObjects(): { file: string; obj: Record<string, any> }[] {
  const dir = path.join(ROOT, 'deploy', 'kubernetes');
  return readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((file) => parseAllDocuments(readFileSync(path.join(dir, file), 'utf8')).map((d) => ({ file, obj: d.toJS() as Record<string, any> })));
}

describe('deploy/kubernetes', () => {
  it('every object checks against the Kubernetes client\'s typed definitions', () => {
    const objs = k8sObjects();
    expect(objs.map((o) => o.obj.kind).sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'DaemonSet', 'Deployment', 'Job', 'Namespace', 'Secret', 'Service', 'Service', 'ServiceAccount']);
    for (const { file, obj } of objs) {
      const type = KINDS[`${obj.apiVersion}/${obj.kind}`];
      expect(type, `${file}: ${obj.apiVersion} ${obj.kind}`).toBeDefined();
      const bad: string[] = [];
      check(obj, type!, file, bad);
      expect(bad).toEqual([]);
    }
    // and the check catches a misspelt field
    const broken = structuredClone(objs.find((o) => o.obj.kind === 'DaemonSet')!.obj);
    broken.spec.template.spec.hostNetwrok = true;
    const bad: string[] = [];
    check(broken, 'V1DaemonSet', 'x', bad);
    expect(bad).toEqual(['x.spec.template.spec.hostNetwrok: no such field in V1PodSpec']);
  });

  it('kustomization lists every file; collector and processor: selectors, probes on /healthz, capabilities', () => {
    const kust = parse(read('deploy/kubernetes/kustomization.yaml')) as { resources: string[] };
    expect(kust.resources.sort()).toEqual(readdirSync(path.join(ROOT, 'deploy', 'kubernetes')).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort());
    const objs = k8sObjects().map((o) => o.obj);
    const ds = objs.find((o) => o.kind === 'DaemonSet')!;
    const dep = objs.find((o) => o.kind === 'Deployment')!;
    for (const w of [ds, dep]) {
      expect(w.spec.template.metadata.labels).toMatchObject(w.spec.selector.matchLabels);
      const c = w.spec.template.spec.containers[0];
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
      expect(c.ports).toContainEqual({ name: 'metrics', containerPort: 9464, protocol: 'TCP' });
      expect(w.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    }
    expect(ds.spec.template.spec.hostNetwork).toBe(true);
    expect(ds.spec.template.spec.containers[0].securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_ADMIN'] });
    expect(dep.spec.template.spec.containers[0].securityContext.capabilities).toEqual({ drop: ['ALL'] });
    expect(ds.spec.template.spec.containers[0].args).toEqual(['collect']);
    expect(dep.spec.template.spec.containers[0].args).toEqual(['process']);
  });

  it('the processors, and only they, may get, list and watch pods, services and nodes, and nothing else', () => {
    const objs = k8sObjects().map((o) => o.obj);
    const role = objs.find((o) => o.kind === 'ClusterRole')!;
    expect(role.rules).toEqual([{ apiGroups: [''], resources: ['pods', 'services', 'nodes'], verbs: ['get', 'list', 'watch'] }]);
    const binding = objs.find((o) => o.kind === 'ClusterRoleBinding')!;
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
    const sa = objs.find((o) => o.kind === 'ServiceAccount')!;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'ctpipe' }]);
    const dep = objs.find((o) => o.kind === 'Deployment')!;
    expect(dep.spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
    expect(dep.spec.template.spec.containers[0].env).toContainEqual({ name: 'CTPIPE_KUBERNETES', value: 'true' });
    expect(objs.find((o) => o.kind === 'DaemonSet')!.spec.template.spec.serviceAccountName).toBeUndefined();
    expect(objs.filter((o) => ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind))).toHaveLength(2);
  });
});

// ------------------------------------------------------------------------------------ systemd

describe('deploy/systemd', () => {
  it('the units pass systemd-analyze verify; the collector holds CAP_NET_ADMIN only, the processor nothing', () => {
    need('/usr/bin/systemd-analyze');
    const units = ['ctpipe-collector.service', 'ctpipe-processor.service'].map((u) => path.join(ROOT, 'deploy', 'systemd', u));
    const r = spawnSync('systemd-analyze', ['verify', ...units], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr.trim()).toBe('');
    const unit = (u: string) => Object.fromEntries(read(`deploy/systemd/${u}`).split('\n').filter((l) => /^\w+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const col = unit('ctpipe-collector.service');
    const proc = unit('ctpipe-processor.service');
    expect([col.CapabilityBoundingSet, col.AmbientCapabilities]).toEqual(['CAP_NET_ADMIN', 'CAP_NET_ADMIN']);
    expect([proc.CapabilityBoundingSet, proc.AmbientCapabilities]).toEqual(['', '']);
    for (const u of [col, proc]) expect([u.DynamicUser, u.NoNewPrivileges, u.ProtectSystem, u.EnvironmentFile]).toEqual(['yes', 'yes', 'strict', '/etc/ctpipe/ctpipe.env']);
    expect(col.ExecStart).toBe(`/usr/bin/node ${NODE_FLAGS.join(' ')} /opt/ctpipe/bin/ctpipe.js collect`);
    expect(proc.ExecStart).toBe(`/usr/bin/node ${NODE_FLAGS.join(' ')} /opt/ctpipe/bin/ctpipe.js process`);
  });
});

// ------------------------------------------------------------------------------------ Dockerfile

describe('Dockerfile', () => {
  it('copies files that exist (and are not ignored) and runs real ctpipe subcommands', () => {
    const lines = read('Dockerfile').split('\n');
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => l.replace(/\/$/, ''));
    const copies = lines.filter((l) => /^COPY (?!--from)/.test(l)).flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(copies.length).toBeGreaterThan(5);
    for (const src of copies) {
      expect(existsSync(path.join(ROOT, src)), src).toBe(true);
      expect(ignored.some((i) => src.replace(/\/$/, '') === i || src.startsWith(`${i}/`)), `${src} is in .dockerignore`).toBe(false);
    }
    for (const m of read('Dockerfile').matchAll(/^CMD \["(\w+)"\]/gm)) {
      const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'ctpipe.js'), m[1]!, '--help'], { encoding: 'utf8' });
      expect(r.status, `ctpipe ${m[1]!}`).toBe(0);
    }
    const entries = [...read('Dockerfile').matchAll(/^ENTRYPOINT (\[.*\])$/gm)].map((m) => JSON.parse(m[1]!) as string[]);
    expect(entries.map((e) => e.slice(1))).toEqual([[...NODE_FLAGS, '/opt/ctpipe/bin/ctpipe.js'], [...NODE_FLAGS, '/opt/ctpipe/bin/ctpipe.js']]);
    expect(read('Dockerfile')).toMatch(/^USER ctpipe$/m);
  });
});

// ------------------------------------------------------------------------------------ ClickHouse users

/** Privilege each statement needs (ClickHouse's GRANT names). */
function privilegeOf(sql: string): string {
  const s = sql.trim().replace(/\s+/g, ' ').toUpperCase();
  if (s.startsWith('CREATE DATABASE')) return 'CREATE DATABASE';
  if (s.startsWith('CREATE MATERIALIZED VIEW') || s.startsWith('CREATE VIEW')) return 'CREATE VIEW';
  if (s.startsWith('CREATE TABLE')) return 'CREATE TABLE';
  if (s.startsWith('CREATE DICTIONARY')) return 'CREATE DICTIONARY';
  if (s.startsWith('SYSTEM RELOAD DICTIONARY')) return 'SYSTEM RELOAD DICTIONARY';
  if (s.startsWith('ALTER TABLE')) return 'ALTER TABLE';
  if (s.startsWith('DROP VIEW')) return 'DROP VIEW';
  if (s.startsWith('SELECT') || s.startsWith('WITH')) return 'SELECT';
  if (s.startsWith('INSERT')) return 'INSERT';
  throw new Error(`no privilege known for: ${sql.slice(0, 60)}`);
}

describe('deploy/clickhouse/users.xml', () => {
  const xml = read('deploy/clickhouse/users.xml');
  const grants = (user: string) => {
    const block = new RegExp(`<${user}>([\\s\\S]*?)</${user}>`).exec(xml.slice(xml.indexOf('<users>')))![1]!;
    return [...block.matchAll(/<query>GRANT (.+) ON ctpipe\.\*<\/query>/g)].flatMap((m) => m[1]!.split(',').map((p) => p.trim()));
  };

  it('lets the writer run every statement of `ctpipe migrate` and the processors, and only on the ctpipe database', () => {
    const ctx = { db: 'ctpipe', flowsTtlDays: 30, eventsTtlDays: 7 };
    const statements = ['CREATE DATABASE IF NOT EXISTS ctpipe', 'INSERT INTO ctpipe.flows', 'SELECT offset FROM ctpipe.processor_checkpoints',
      ...MIGRATIONS.flatMap((m) => m.statements(ctx))];
    const have = new Set(grants('ctpipe_writer'));
    for (const s of statements) {
      expect(have.has(privilegeOf(s)), s.slice(0, 80)).toBe(true);
      for (const m of s.matchAll(/\b(?:TABLE|VIEW|INTO|FROM|TO|ON)\s+(?:IF (?:NOT )?EXISTS\s+)?(\w+)\.(\w+)/gi)) expect(m[1], s.slice(0, 80)).toBe('ctpipe');
    }
    expect(xml).toMatch(/<ctpipe_writer>[\s\S]*<password from_env="CTPIPE_WRITER_PASSWORD"\/>/);
  });

  it('lets Grafana read every table the dashboards and alert rules query, and nothing more', () => {
    expect(grants('ctpipe_grafana')).toEqual(['SELECT']);
    expect(xml).toMatch(/<profiles>[\s\S]*<ctpipe_grafana>[\s\S]*<readonly>2<\/readonly>/);
    const sql = [...dashboards('ctpipe').flatMap((d) => queriesOf(d).map((q) => q.sql)),
      ...alertRules('ctpipe').groups.flatMap((g) => g.rules.flatMap((r) => r.data.map((q) => String((q.model as { rawSql?: string }).rawSql ?? ''))))].filter(Boolean);
    const tables = new Set(sql.flatMap((s) => [...s.matchAll(/\bFROM\s+(\w+)\.(\w+)|\bJOIN\s+(\w+)\.(\w+)/g)].map((m) => `${m[1] ?? m[3]}.${m[2] ?? m[4]}`)));
    expect(tables.size).toBeGreaterThan(5);
    for (const t of tables) expect(t.startsWith('ctpipe.'), t).toBe(true);
    for (const s of sql) expect(privilegeOf(s.replace(/^\s*\(/, '')), s.slice(0, 60)).toBe('SELECT');
    // the data source logs in as that user
    expect(read('dashboards/grafana/provisioning/datasources/ctpipe-clickhouse.yaml')).toContain('username: ctpipe_grafana');
  });
});

// ------------------------------------------------------------------------------------ node's flags

describe("node's flags (common/node-flags.ts)", () => {
  it('bin/ctpipe.js starts node with them when run as a program, as the README runs it; npm run bench too', () => {
    const first = read('bin/ctpipe.js').split('\n')[0]!;
    expect(first).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
    // the kernel runs the first line: env splits it, node takes the flags (one it refused, or a
    // line env did not split, would end it here)
    const r = spawnSync(path.join(ROOT, 'bin', 'ctpipe.js'), ['--version'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ctpipe \d/);
    // the in-process benchmarks measure ctpipe as it runs
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.bench).toContain(`node --expose-gc ${NODE_FLAGS.join(' ')} scripts/bench.js`);
  });
});
