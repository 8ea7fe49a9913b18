/**
 * Kubernetes names (`--kubernetes`): the switch and the kubeconfig are top-level settings (so the
 * flags are `--kubernetes` and `--kubeconfig FILE`), the bounds the `k8s` section; composed by
 * cli/config.ts.
 */
import { z } from 'zod';
import { duration } from '../../common/config-kinds.js';

export const kubernetesSetting = z.boolean().default(false).describe('process, run: name flow addresses by the Kubernetes pods, services and nodes that held them (watches through the in-cluster service account, or kubeconfig)');
export const kubeconfigSetting = z.string().optional().describe('process, run: kubeconfig file for --kubernetes (default: KUBECONFIG, ~/.kube/config, then the in-cluster service account)');

export const k8sSection = z.strictObject({
  history: duration('144h', 'How long an address keeps who held it after the holder let it go: rows of flows that began before are named for this long (at least the longest a conntrack entry lives: 5 days for an established TCP connection by default)', { max: 30 * 86_400_000 }),
  max_ended: z.number().int().min(1000).max(10_000_000).default(200_000).describe('Ended address holdings kept at most (about 150 bytes each), the oldest dropped first'),
  max_open: z.number().int().min(1000).max(10_000_000).default(1_000_000).describe('Current address holdings (pods, services, nodes) kept at most; past it new ones are refused, counted in ctpipe_k8s_refused_total, and their addresses stay unnamed'),
  watch_timeout: duration('5m', 'A watch asks the API server to end it after this long, and resumes from where it was (so a stream that silently died is noticed)', { min: 1000, max: 3_600_000 }),
});

export type K8sConfig = z.output<typeof k8sSection>;
