/**
 * The `flows` columns the Kubernetes names fill (names.ts), declared with the others in
 * clickhouse/flow-columns.ts. Empty when ctpipe runs without --kubernetes or an address had no
 * known owner at the flow's first_seen.
 */
import { CH } from '../clickhouse/ch-type.js';

const LC = CH.LowCardinality(CH.String);

export const K8S_FLOW_COLUMNS = [
  { name: 'orig_src_k8s_namespace', type: LC },
  { name: 'orig_src_k8s_pod', type: LC },
  { name: 'orig_src_k8s_workload', type: LC },
  { name: 'orig_src_k8s_node', type: LC },
  { name: 'orig_dst_k8s_namespace', type: LC },
  { name: 'orig_dst_k8s_pod', type: LC },
  { name: 'orig_dst_k8s_workload', type: LC },
  { name: 'orig_dst_k8s_node', type: LC },
  { name: 'orig_dst_k8s_service', type: LC },
] as const;

/** Each row starts without names (rowOf); the names, when on, fill them before the insert. */
export const NO_K8S_NAMES = {
  orig_src_k8s_namespace: '', orig_src_k8s_pod: '', orig_src_k8s_workload: '', orig_src_k8s_node: '',
  orig_dst_k8s_namespace: '', orig_dst_k8s_pod: '', orig_dst_k8s_workload: '', orig_dst_k8s_node: '',
  orig_dst_k8s_service: '',
} as const;
