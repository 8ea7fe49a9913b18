/**
 * Networks: traffic by the names, roles and sites of the networks file (enrich.networks), as each
 * flow was named when stored (orig_src_net_* and orig_dst_net_*, processor/networks/schema.ts).
 * The names are the file's untrusted text: they reach the SQL only through dashboards/selection.ts.
 * Rows are the newest of each lifecycle in the range (no FINAL: flows.ts says why).
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as units from '@grafana/grafana-foundation-sdk/units';
import { hostVariable, HOSTS_FILTER } from './fleet.js';
import { bucketVariable, datasourceVariable, finish, newDashboard, queryVariable, tablePanel, timeseries } from './panels.js';
import { BUCKET, listed, values } from './selection.js';

export const NETWORKS_UID = 'ctpipe-networks';

/** What an empty name is shown as: an address no prefix of the file holds. */
const UNNAMED = "'(unnamed)'";
const shown = (col: string) => `if(${col} = '', ${UNNAMED}, ${col})`;

/** Either end's attribute is one of the values selected in `name` (the variable lists them as shown). */
const eitherEnd = (attr: string, name: string) =>
  `$__conditionalAll(hasAny(${values(name)}, [${shown(`orig_src_net_${attr}`)}, ${shown(`orig_dst_net_${attr}`)}]), $${name})`;

const FILTERS = `${HOSTS_FILTER} AND ${eitherEnd('name', 'network')} AND ${eitherEnd('role', 'role')} AND ${eitherEnd('site', 'site')}`;

/** The newest row of each lifecycle that started in the range and passes the filters (they test only what its rows share). */
const lifecycles = (db: string) => `(SELECT host, flow_id, first_seen, orig_src_text, orig_dst_text, orig_bytes, reply_bytes,
    orig_src_net_name, orig_src_net_role, orig_src_net_site, orig_dst_net_name, orig_dst_net_role, orig_dst_net_site
  FROM ${db}.flows PREWHERE $__timeFilter(first_seen) WHERE ${FILTERS} ORDER BY version DESC LIMIT 1 BY host, flow_id)`;

/** The values of an attribute at either end of the flows of the range, as a multi-value variable's options. */
const attributeVariable = (db: string, name: string, label: string, attr: string, description: string) => queryVariable(name, label,
  `SELECT ${listed('v')} FROM (SELECT DISTINCT arrayJoin([${shown(`orig_src_net_${attr}`)}, ${shown(`orig_dst_net_${attr}`)}]) AS v
     FROM ${db}.flows WHERE $__timeFilter(first_seen)) ORDER BY text`,
  { multi: true, description });

export function networksDashboard(db: string): dashboard.Dashboard {
  return finish(newDashboard(NETWORKS_UID, 'ctpipe / Networks', 'Traffic by the networks file\'s names, roles and sites (enrich.networks): between roles, top networks, unnamed addresses')
    .withVariable(datasourceVariable())
    .withVariable(hostVariable(db, true))
    .withVariable(attributeVariable(db, 'network', 'Network', 'name', 'Network names at either end of the flows of the range ((unnamed): no prefix of the file holds the address)'))
    .withVariable(attributeVariable(db, 'role', 'Role', 'role', 'Network roles at either end of the flows of the range'))
    .withVariable(attributeVariable(db, 'site', 'Site', 'site', 'Network sites at either end of the flows of the range'))
    .withVariable(bucketVariable())
    .withRow(new dashboard.RowBuilder('Between networks'))
    .withPanel(tablePanel({ title: 'Traffic between roles', description: 'Connections started in the range and their bytes (both directions), by the roles of the source and destination networks', unit: units.Short, w: 12, h: 9,
      sql: `SELECT ${shown('orig_src_net_role')} AS src_role, ${shown('orig_dst_net_role')} AS dst_role, count() AS connections, sum(orig_bytes + reply_bytes) AS bytes
            FROM ${lifecycles(db)} GROUP BY src_role, dst_role ORDER BY bytes DESC, connections DESC LIMIT 100` }))
    .withPanel(tablePanel({ title: 'Top networks', description: 'Networks by the bytes of the connections they took part in (as source or destination), with their role and site', unit: units.Short, w: 12, h: 9,
      sql: `SELECT network, role, site, count() AS connections, sum(bytes) AS bytes FROM (
              SELECT arrayJoin([(${shown('orig_src_net_name')}, orig_src_net_role, orig_src_net_site), (${shown('orig_dst_net_name')}, orig_dst_net_role, orig_dst_net_site)]) AS t,
                t.1 AS network, t.2 AS role, t.3 AS site, orig_bytes + reply_bytes AS bytes FROM ${lifecycles(db)})
            GROUP BY network, role, site ORDER BY bytes DESC, connections DESC LIMIT 50` }))
    .withPanel(timeseries({ title: 'Connections by destination network', description: 'Connections started per bucket, by the destination network\'s name (the ten busiest)', unit: units.Short, w: 24, h: 8, stack: true,
      sql: [`SELECT toStartOfInterval(first_seen, INTERVAL ${BUCKET} second) AS time, ${shown('orig_dst_net_name')} AS network, count() AS connections
             FROM ${lifecycles(db)} WHERE network IN (SELECT ${shown('orig_dst_net_name')} AS n FROM ${lifecycles(db)} GROUP BY n ORDER BY count() DESC LIMIT 10)
             GROUP BY time, network ORDER BY time`] }))
    .withPanel(tablePanel({ title: 'Unnamed addresses', description: 'Addresses with the most connections that no prefix of the networks file holds: what the file may be missing', unit: units.Short, w: 24, h: 8,
      sql: `SELECT address, count() AS connections, sum(bytes) AS bytes FROM (
              SELECT arrayJoin(arrayFilter(x -> x.2 = '', [(orig_src_text, orig_src_net_name), (orig_dst_text, orig_dst_net_name)])).1 AS address, orig_bytes + reply_bytes AS bytes
              FROM ${lifecycles(db)})
            GROUP BY address ORDER BY connections DESC LIMIT 50` })));
}
