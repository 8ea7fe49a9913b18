/**
 * Checks Grafana would not make at provisioning time (it logs and goes on, or shows a broken
 * panel): grafana.md §4.2, after grafana/dashboard-linter's rules and grafonnet's conventions.
 * Each returns problems as text; the tests expect none.
 */
import type * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import type { AlertRule } from './alerts.js';
import { macrosIn, unsafeVariables, variablesIn } from './macros.js';
import { DS_UID, DS_VAR } from './query.js';

const PANEL_TYPES = new Set(['row', 'timeseries', 'table', 'stat', 'heatmap', 'bargauge', 'barchart', 'piechart', 'state-timeline', 'text', 'gauge']);
const FORMAT_OF: Record<string, number> = { timeseries: 0, heatmap: 0, stat: 1, table: 1, bargauge: 1 };
const UID = /^[a-zA-Z0-9_-]{1,40}$/;
const TIME_FILTERS = ['timeFilter', 'timeFilter_ms', 'dateFilter', 'dateTimeFilter', 'dt', 'fromTime', 'toTime', 'timeFrom', 'timeTo'];
const KNOWN_MACROS = new Set([...TIME_FILTERS, 'fromTime_ms', 'toTime_ms', 'interval_s', 'interval_ms', 'timeInterval', 'timeInterval_ms', 'conditionalAll']);
const DURATION = /^(\d+(ms|s|m|h|d|w))+$/;

type AnyPanel = dashboard.Panel | dashboard.RowPanel;
interface Target { refId?: string; rawSql?: string; format?: number; editorType?: string; datasource?: { uid?: string; type?: string } }

/** Every panel, rows' children included. */
export function allPanels(d: dashboard.Dashboard): AnyPanel[] {
  const out: AnyPanel[] = [];
  for (const p of d.panels ?? []) {
    out.push(p);
    if (p.type === 'row') out.push(...((p as dashboard.RowPanel).panels ?? []));
  }
  return out;
}

/** Every ClickHouse query of a dashboard: [where, sql]. */
export function queriesOf(d: dashboard.Dashboard): { where: string; sql: string; panel?: dashboard.Panel; format?: number }[] {
  const out: { where: string; sql: string; panel?: dashboard.Panel; format?: number }[] = [];
  for (const v of d.templating?.list ?? []) {
    const q = v.query as { rawSql?: string } | string | undefined;
    if (v.type === 'query') out.push({ where: `${d.uid} variable ${v.name}`, sql: typeof q === 'string' ? q : q?.rawSql ?? '' });
  }
  for (const a of d.annotations?.list ?? []) {
    const t = a.target as Target | undefined;
    if (t?.rawSql) out.push({ where: `${d.uid} annotation ${a.name}`, sql: t.rawSql, format: t.format });
  }
  for (const p of allPanels(d)) {
    if (p.type === 'row') continue;
    for (const t of ((p as dashboard.Panel).targets ?? []) as Target[]) {
      out.push({ where: `${d.uid} panel ${String(p.id)} "${p.title ?? ''}" ${t.refId ?? ''}`, sql: t.rawSql ?? '', panel: p as dashboard.Panel, format: t.format });
    }
  }
  return out;
}

function sqlProblems(where: string, sql: string, o: { timeFilter: boolean }): string[] {
  const bad: string[] = [];
  if (!sql.trim()) bad.push(`${where}: empty SQL`);
  if (/;\s*$/.test(sql)) bad.push(`${where}: trailing semicolon`);
  if (/(--|\/\*)[^\n]*\$__/.test(sql)) bad.push(`${where}: a macro inside a comment`);
  const macros = macrosIn(sql);
  for (const m of macros) if (!KNOWN_MACROS.has(m)) bad.push(`${where}: unknown macro $__${m}`);
  if (o.timeFilter && !macros.some((m) => TIME_FILTERS.includes(m))) bad.push(`${where}: no time filter macro`);
  return bad;
}

export function lintDashboards(ds: dashboard.Dashboard[]): string[] {
  const bad: string[] = [];
  const uids = new Set<string>();
  const titles = new Set<string>();
  for (const d of ds) {
    const at = d.uid ?? d.title;
    if (!d.uid || !UID.test(d.uid)) bad.push(`${at}: uid missing or invalid`);
    if (uids.has(d.uid ?? '')) bad.push(`${at}: uid used twice`);
    if (titles.has(d.title ?? '')) bad.push(`${at}: title used twice`);
    uids.add(d.uid ?? '');
    titles.add(d.title ?? '');
    if (d.id !== undefined && d.id !== null) bad.push(`${at}: has an id (provisioning assigns it)`);
    if (d.editable !== false) bad.push(`${at}: provisioned dashboards are read-only`);
    if (typeof d.schemaVersion !== 'number') bad.push(`${at}: schemaVersion not pinned`);

    // variables: names, data source, definitions before use
    const vars = d.templating?.list ?? [];
    const names = new Set<string>();
    for (const v of vars) {
      if (!/^\w+$/.test(v.name) || names.has(v.name)) bad.push(`${at}: variable "${v.name}" invalid or repeated`);
      names.add(v.name);
    }
    const dsVar = vars.find((v) => v.type === 'datasource');
    if (dsVar?.name !== 'datasource' || dsVar.query !== DS_VAR.type) bad.push(`${at}: no "datasource" variable of type ${DS_VAR.type ?? ''}`);
    vars.forEach((v, i) => {
      const q = v.query as { rawSql?: string } | undefined;
      if (v.type !== 'query') return;
      for (const used of variablesIn(q?.rawSql ?? '')) if (!vars.slice(0, i).some((w) => w.name === used)) bad.push(`${at}: variable ${v.name} uses ${used} before it is defined`);
      if (v.refresh !== 2 && (q?.rawSql ?? '').includes('$__timeFilter')) bad.push(`${at}: variable ${v.name} filters on time but does not refresh with it`);
    });

    // panels
    const ids = new Set<number>();
    const boxes: { id: number; x: number; y: number; w: number; h: number }[] = [];
    for (const p of allPanels(d)) {
      const where = `${at} panel ${String(p.id)} "${p.title ?? ''}"`;
      if (typeof p.id !== 'number' || ids.has(p.id)) bad.push(`${where}: id missing or repeated`);
      ids.add(p.id!);
      if (!PANEL_TYPES.has(p.type)) bad.push(`${where}: unknown panel type ${p.type}`);
      const g = p.gridPos;
      if (!g || g.w < 1 || g.w > 24 || g.x < 0 || g.x + g.w > 24 || g.h < 1 || g.y < 0) bad.push(`${where}: gridPos out of bounds`);
      else {
        for (const b of boxes) if (g.x < b.x + b.w && b.x < g.x + g.w && g.y < b.y + b.h && b.y < g.y + g.h) bad.push(`${where}: overlaps panel ${b.id}`);
        boxes.push({ id: p.id!, x: g.x, y: g.y, w: g.w, h: g.h });
      }
      if (p.type === 'row') continue;
      const panel = p as dashboard.Panel;
      if (!panel.title || !panel.description) bad.push(`${where}: title and description required`);
      if (!panel.fieldConfig?.defaults?.unit) bad.push(`${where}: no unit`);
      if (!panel.fieldConfig?.defaults?.thresholds?.steps?.length) bad.push(`${where}: no thresholds`);
      const targets = (panel.targets ?? []) as Target[];
      if (targets.length === 0) bad.push(`${where}: no query`);
      const refIds = targets.map((t) => t.refId);
      if (new Set(refIds).size !== refIds.length || refIds.some((r) => !r)) bad.push(`${where}: refIds missing or repeated`);
      for (const t of targets) {
        if (t.editorType !== 'sql') bad.push(`${where}: editorType is not sql`);
        if (FORMAT_OF[p.type] !== undefined && t.format !== FORMAT_OF[p.type]) bad.push(`${where}: format ${String(t.format)} does not suit a ${p.type}`);
        if (t.datasource?.uid !== DS_VAR.uid || t.datasource?.type !== DS_VAR.type) bad.push(`${where}: datasource is not \${datasource}`);
      }
      if (panel.datasource?.uid !== DS_VAR.uid) bad.push(`${where}: panel datasource is not \${datasource}`);
      // links to dashboards we ship
      for (const o of panel.fieldConfig?.overrides ?? []) {
        for (const prop of o.properties) {
          for (const l of (prop.id === 'links' ? prop.value : []) as { url: string }[]) {
            const m = /^\/d\/([\w-]+)/.exec(l.url);
            if (!m || !ds.some((x) => x.uid === m[1])) bad.push(`${where}: link ${l.url} leads to no shipped dashboard`);
            for (const v of variablesIn(l.url)) if (!names.has(v)) bad.push(`${where}: link uses undefined variable ${v}`);
          }
        }
      }
    }

    // every query
    for (const q of queriesOf(d)) {
      bad.push(...sqlProblems(q.where, q.sql, { timeFilter: true }));
      for (const v of variablesIn(q.sql)) if (!names.has(v)) bad.push(`${q.where}: undefined variable ${v}`);
      for (const v of unsafeVariables(q.sql)) bad.push(`${q.where}: variable ${v} reaches the SQL other than through dashboards/selection.ts (decodeURLComponent of :percentencode)`);
      if (q.format === 0 && q.panel && !/\bAS time\b/.test(q.sql)) bad.push(`${q.where}: a time series needs a column named time`);
      if (q.format === 0 && q.panel && !/ORDER BY time\b/.test(q.sql)) bad.push(`${q.where}: a time series must be ordered by time`);
    }
  }
  return bad;
}

export function lintAlertRules(groups: { name: string; folder: string; interval: string; rules: AlertRule[] }[], ds: dashboard.Dashboard[]): string[] {
  const bad: string[] = [];
  const uids = new Set<string>();
  for (const g of groups) {
    if (!g.name || !g.folder || !DURATION.test(g.interval)) bad.push(`group ${g.name}: name, folder and interval required`);
    for (const r of g.rules) {
      const at = `rule ${r.uid}`;
      if (!UID.test(r.uid) || uids.has(r.uid)) bad.push(`${at}: uid invalid or repeated`);
      uids.add(r.uid);
      const refIds = r.data.map((q) => q.refId);
      if (new Set(refIds).size !== refIds.length) bad.push(`${at}: refIds repeated`);
      if (!refIds.includes(r.condition)) bad.push(`${at}: condition ${r.condition} is no query`);
      if (!DURATION.test(r.for)) bad.push(`${at}: for is not a duration`);
      for (const q of r.data) {
        const m = q.model as { expression?: string; datasource?: { uid?: string }; rawSql?: string; intervalMs?: number };
        if (q.datasourceUid === '__expr__') {
          if (!m.expression || !refIds.slice(0, refIds.indexOf(q.refId)).includes(m.expression)) bad.push(`${at} ${q.refId}: expression on an unknown or later query`);
          continue;
        }
        if (q.datasourceUid !== DS_UID || m.datasource?.uid !== DS_UID) bad.push(`${at} ${q.refId}: not the provisioned data source`);
        if (!q.relativeTimeRange || q.relativeTimeRange.from <= q.relativeTimeRange.to) bad.push(`${at} ${q.refId}: relativeTimeRange must look back`);
        const sql = m.rawSql ?? '';
        bad.push(...sqlProblems(`${at} ${q.refId}`, sql, { timeFilter: true }));
        if (/\$__conditionalAll|\$\{|\[\[/.test(sql) || variablesIn(sql).length) bad.push(`${at} ${q.refId}: dashboard-only tokens in alert SQL`);
        if (/\$__(interval_s|timeInterval)/.test(sql) && !m.intervalMs) bad.push(`${at} ${q.refId}: intervalMs unset while the SQL uses the interval`);
      }
      for (const [k, v] of Object.entries(r.annotations)) if (v.includes('${')) bad.push(`${at}: annotation ${k} uses \${}, which provisioning interpolates`);
      const d = ds.find((x) => x.uid === r.dashboardUid);
      if (!d || !allPanels(d).some((p) => p.id === r.panelId && p.type !== 'row')) bad.push(`${at}: dashboard ${r.dashboardUid} panel ${r.panelId} does not exist`);
    }
  }
  return bad;
}

/** Keys each provisioning document may hold (Grafana ignores the others silently: typos). */
const ALLOWED: Record<string, Record<string, string[]>> = {
  datasources: {
    '': ['apiVersion', 'datasources', 'deleteDatasources'],
    datasources: ['name', 'uid', 'type', 'access', 'orgId', 'url', 'isDefault', 'editable', 'jsonData', 'secureJsonData', 'version'],
    jsonData: ['host', 'port', 'protocol', 'secure', 'path', 'tlsSkipVerify', 'tlsAuth', 'tlsAuthWithCACert', 'username', 'defaultDatabase',
      'dialTimeout', 'queryTimeout', 'connMaxLifetime', 'maxIdleConns', 'maxOpenConns', 'customSettings', 'enableRowLimit', 'rowCapacityHint',
      'forwardGrafanaHeaders', 'oauthPassThru', 'httpHeaders'],
    secureJsonData: ['password', 'tlsCACert', 'tlsClientCert', 'tlsClientKey'],
  },
  providers: {
    '': ['apiVersion', 'providers'],
    providers: ['name', 'orgId', 'folder', 'folderUid', 'type', 'disableDeletion', 'updateIntervalSeconds', 'allowUiUpdates', 'options'],
    options: ['path', 'foldersFromFilesStructure'],
  },
  rules: {
    '': ['apiVersion', 'groups', 'deleteRules'],
    groups: ['orgId', 'name', 'folder', 'interval', 'rules'],
    rules: ['uid', 'title', 'condition', 'data', 'dashboardUid', 'panelId', 'noDataState', 'execErrState', 'for', 'keepFiringFor',
      'missing_series_evals_to_resolve', 'annotations', 'labels', 'isPaused', 'notification_settings', 'record'],
    data: ['refId', 'queryType', 'relativeTimeRange', 'datasourceUid', 'model'],
  },
  contactPoints: {
    '': ['apiVersion', 'contactPoints', 'policies', 'deleteContactPoints', 'resetPolicies', 'templates', 'muteTimes'],
    contactPoints: ['orgId', 'name', 'receivers'],
    receivers: ['uid', 'type', 'settings', 'disableResolveMessage'],
    policies: ['orgId', 'receiver', 'group_by', 'group_wait', 'group_interval', 'repeat_interval', 'routes', 'object_matchers', 'continue', 'mute_time_intervals'],
    routes: ['receiver', 'group_by', 'group_wait', 'group_interval', 'repeat_interval', 'routes', 'object_matchers', 'continue', 'mute_time_intervals'],
  },
};

/** Unknown keys in a provisioning document of `kind`, by path. */
export function lintProvisioning(kind: keyof typeof ALLOWED, doc: unknown): string[] {
  const allowed = ALLOWED[kind]!;
  const bad: string[] = [];
  const walk = (node: unknown, key: string, path: string) => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, key, `${path}[${i}]`));
    if (node === null || typeof node !== 'object') return;
    const keys = allowed[key];
    if (!keys) return; // below the levels we know (settings, model, labels, ...)
    for (const [k, v] of Object.entries(node)) {
      if (!keys.includes(k)) bad.push(`${kind}: unknown key ${path}.${k}`);
      walk(v, k, `${path}.${k}`);
    }
  };
  walk(doc, '', '');
  if ((doc as { apiVersion?: number }).apiVersion !== 1) bad.push(`${kind}: apiVersion must be 1`);
  return bad;
}
