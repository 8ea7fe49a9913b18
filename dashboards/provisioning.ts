/**
 * Grafana provisioning documents (grafana.md §2.4, §3): the ClickHouse data source, read as a
 * read-only user whose password comes from the environment; the dashboards provider; a contact
 * point and notification policy example. Keys are only those Grafana and the plugin read
 * (dashboards/lint.ts holds the allow-lists the tests check).
 */
import { DS_UID, PLUGIN } from './query.js';
import { RULE_FOLDER } from './alerts.js';

/** Where the deploy files mount the generated dashboards inside the Grafana container. */
export const DASHBOARDS_PATH = '/var/lib/grafana/dashboards/ctpipe';

export function datasource(db: string) {
  return {
    apiVersion: 1,
    datasources: [{
      name: 'ctpipe ClickHouse', uid: DS_UID, type: PLUGIN, isDefault: true, editable: false,
      jsonData: {
        host: '${CTPIPE_CLICKHOUSE_HOST}', port: 8123, protocol: 'http', secure: false,
        username: 'ctpipe_grafana', defaultDatabase: db, queryTimeout: '60', dialTimeout: '10',
      },
      secureJsonData: { password: '${CTPIPE_GRAFANA_CLICKHOUSE_PASSWORD}' },
    }],
  };
}

export function dashboardsProvider() {
  return {
    apiVersion: 1,
    providers: [{
      name: 'ctpipe', orgId: 1, folder: 'ctpipe', folderUid: 'ctpipe', type: 'file', disableDeletion: true,
      updateIntervalSeconds: 60, allowUiUpdates: false, options: { path: DASHBOARDS_PATH, foldersFromFilesStructure: false },
    }],
  };
}

export function contactPoints() {
  return {
    apiVersion: 1,
    contactPoints: [{
      orgId: 1, name: 'ctpipe-netops',
      receivers: [{ uid: 'ctpipe-netops-webhook', type: 'webhook', disableResolveMessage: false,
        settings: { url: '${CTPIPE_ALERT_WEBHOOK_URL}', httpMethod: 'POST' } }],
    }],
    policies: [{
      orgId: 1, receiver: 'ctpipe-netops', group_by: ['grafana_folder', 'alertname', 'host'],
      routes: [{ receiver: 'ctpipe-netops', object_matchers: [['source', '=', 'ctpipe'], ['grafana_folder', '=', RULE_FOLDER]],
        group_wait: '30s', group_interval: '5m', repeat_interval: '4h' }],
    }],
  };
}

/** The read-only ClickHouse user the data source logs in as (run once as an administrator). */
export function readonlyUserSql(db: string): string {
  return [
    '-- The ClickHouse user Grafana reads as: SELECT on the ctpipe database only, readonly=2 so the',
    '-- data source may still set max_execution_time per query (the plugin\'s documented setup).',
    "CREATE USER IF NOT EXISTS ctpipe_grafana IDENTIFIED WITH sha256_password BY 'change-me'",
    '  SETTINGS readonly = 2, max_execution_time = 60 CHANGEABLE_IN_READONLY;',
    `GRANT SELECT ON ${db}.* TO ctpipe_grafana;`,
    '',
  ].join('\n');
}
