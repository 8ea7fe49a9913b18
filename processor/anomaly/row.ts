/** An `anomalies` row: one per (host, kind, started_at); a later version replaces it while it lasts. */
import type { Time } from '../lifecycle/flow-row.js';

/** Every kind the detectors write, by detector (docs/SCHEMA.md describes each). */
export const ANOMALY_KINDS = [
  'invalid_spike',
  'table_pressure', 'table_drops',
  'handshake_failures', 'rej_storm', 'port_scan', 'host_scan',
  'related_third_host', 'related_privileged_port', 'related_orphan', 'expectation_flood', 'expectation_unused_burst',
  'helper_unexpected_port', 'nat_slipstreaming',
] as const;

export type Severity = 'warning' | 'critical';

export interface AnomalyRow {
  host: string;
  /** The network namespace of an anomaly from statistics ('' or absent: the host's only one, or not from statistics). */
  netns?: string;
  kind: string;
  severity: Severity;
  started_at: Time;
  ended_at: Time | null;
  score: number;
  baseline: number;
  observed: number;
  details: Record<string, unknown>;
  flow_ids: string[];
  /** Event time in ms of this version: later rows of the same anomaly win. */
  version: number;
}

export const versionOf = (t: Time) => t.sec * 1000 + Math.floor(t.nsec / 1e6);
