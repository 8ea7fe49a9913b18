/**
 * The `flows` table's columns, the one place a flow column is declared: name, ClickHouse type, and
 * what its strings may hold. The list gives the row type (FlowRow), the insert's column list and
 * its TabSeparated encoder (rows.ts), and the schema check after migrations (schema-check.ts);
 * rowOf (lifecycle/flow-row.ts) must give every column a value or the build fails.
 *
 * Adding a column: a migration that adds it (schema.ts; old ones stay as history), its entry
 * here, and its value in rowOf. The schema check fails at start when the two disagree.
 * docs/SCHEMA.md says what each column means.
 */
import { CONN_STATES } from '../lifecycle/conn-state.js';
import { NAT_KINDS } from '../lifecycle/nat.js';
import { CH, type ColumnDef, type RowOf } from './ch-type.js';
import { K8S_FLOW_COLUMNS } from '../k8s/columns.js';

export const END_REASONS = ['open', 'destroy', 'lost'] as const;
export const LOST_BY = ['timeout', 'evicted', 'resync', 'downtime'] as const;

const TIME = CH.DateTime64(9, 'UTC');
const LC = CH.LowCardinality(CH.String);

export const FLOW_COLUMN_DEFS = [
  { name: 'host', type: LC },
  { name: 'netns', type: LC }, // the network namespace when the collector follows several ('' otherwise)
  { name: 'run', type: CH.String },
  { name: 'flow_id', type: CH.String, plain: true }, // 16 hex digits
  { name: 'ct_id', type: CH.UInt32 },
  { name: 'family', type: CH.Enum8({ ipv4: 4, ipv6: 6 }) },
  { name: 'proto', type: CH.UInt8 },
  { name: 'orig_src', type: CH.IPv6 },
  { name: 'orig_dst', type: CH.IPv6 },
  { name: 'orig_sport', type: CH.UInt16 },
  { name: 'orig_dport', type: CH.UInt16 },
  { name: 'reply_src', type: CH.IPv6 },
  { name: 'reply_dst', type: CH.IPv6 },
  { name: 'reply_sport', type: CH.UInt16 },
  { name: 'reply_dport', type: CH.UInt16 },
  { name: 'icmp_type', type: CH.Nullable(CH.UInt8) },
  { name: 'icmp_code', type: CH.Nullable(CH.UInt8) },
  { name: 'first_seen', type: TIME },
  { name: 'established_at', type: CH.Nullable(TIME) },
  { name: 'seen_reply_at', type: CH.Nullable(TIME) },
  { name: 'assured_at', type: CH.Nullable(TIME) },
  { name: 'ended_at', type: CH.Nullable(TIME) },
  { name: 'end_reason', type: LC, values: END_REASONS },
  { name: 'lost_by', type: LC, values: ['', ...LOST_BY] },
  { name: 'duration_ms', type: CH.Nullable(CH.Float64) },
  { name: 'tcp_states', type: CH.Array(LC), plain: true }, // state names
  { name: 'tcp_state_times', type: CH.Array(TIME) },
  { name: 'final_tcp_state', type: LC, plain: true },
  { name: 'assured', type: CH.Bool },
  { name: 'seen_reply', type: CH.Bool },
  { name: 'conn_state', type: LC, values: CONN_STATES },
  { name: 'handshake_ms', type: CH.Nullable(CH.Float64) },
  { name: 'orig_packets', type: CH.UInt64 },
  { name: 'orig_bytes', type: CH.UInt64 },
  { name: 'reply_packets', type: CH.UInt64 },
  { name: 'reply_bytes', type: CH.UInt64 },
  { name: 'helper', type: LC },
  { name: 'related', type: CH.Bool },
  { name: 'master_flow_id', type: CH.String, plain: true },
  { name: 'mark', type: CH.UInt32 },
  { name: 'zone', type: CH.UInt16 },
  { name: 'nat', type: LC, values: NAT_KINDS },
  { name: 'nat_src', type: CH.String, plain: true }, // address[:port]
  { name: 'nat_dst', type: CH.String, plain: true },
  { name: 'snapshot', type: CH.Bool },
  { name: 'resynced', type: CH.Bool },
  { name: 'version', type: CH.UInt64 },
  ...K8S_FLOW_COLUMNS,
] as const satisfies readonly ColumnDef[];

/** One connection's lifecycle as a `flows` row: a property per column. */
export type FlowRow = RowOf<typeof FLOW_COLUMN_DEFS>;
