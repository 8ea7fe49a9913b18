/**
 * What the host must allow for complete data: CAP_NET_ADMIN, and three conntrack sysctls whose
 * defaults silently remove data (conntrack-netlink.md §3.5, shared/notes/environment.md).
 */
import { readFileSync } from 'node:fs';
import { CtpipeError } from '../common/errors.js';

const CAP_NET_ADMIN = 12;

/** Effective capability set of this process, from /proc/self/status (CapEff, hex). */
export function hasNetAdmin(status = readFileSync('/proc/self/status', 'utf8')): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) return false;
  return ((BigInt(`0x${m[1]}`) >> BigInt(CAP_NET_ADMIN)) & 1n) === 1n;
}

export function requireNetAdmin(status?: string): void {
  if (!hasNetAdmin(status)) {
    throw new CtpipeError(
      'CAP_NET_ADMIN_MISSING',
      'ctpipe collect needs CAP_NET_ADMIN to subscribe to conntrack events and dump the table. ' +
        'Run it as root, or grant only that capability: systemd AmbientCapabilities=CAP_NET_ADMIN, ' +
        'docker/compose cap_add: [NET_ADMIN], Kubernetes securityContext.capabilities.add: [NET_ADMIN], ' +
        'or setcap cap_net_admin+ep on the node binary.',
    );
  }
}

export interface SysctlSpec {
  key: string;
  want: string;
  /** What the user loses while the sysctl is off. */
  lost: string;
}

export const SYSCTLS: SysctlSpec[] = [
  {
    key: 'net.netfilter.nf_conntrack_events',
    want: '1',
    lost: 'connections created while no listener was subscribed never send UPDATE or DESTROY (value 2 = auto)',
  },
  {
    key: 'net.netfilter.nf_conntrack_acct',
    want: '1',
    lost: 'DESTROY events and dumps carry no packet or byte counters',
  },
  {
    key: 'net.netfilter.nf_conntrack_timestamp',
    want: '1',
    lost: 'no kernel start/stop timestamps and no per-event kernel time (receive time is used instead)',
  },
];

export interface SysctlReport {
  key: string;
  value: string | undefined;
  /** The value before --set-sysctls changed it. */
  was: string | undefined;
  ok: boolean;
  lost: string;
  changed: boolean;
}

export type ProcfsAccess = (file: string, value?: string) => string;

export function sysctlPath(key: string): string {
  return `/proc/sys/${key.replace(/\./g, '/')}`;
}

/**
 * Reads the three sysctls and, with `set`, turns them on. Setting acct/timestamp affects only
 * connections created afterwards (kernel: the extensions are added at conntrack creation).
 */
export function checkSysctls(access: ProcfsAccess, set: boolean): SysctlReport[] {
  return SYSCTLS.map((s) => {
    let value: string | undefined;
    try {
      value = access(sysctlPath(s.key)).trim();
    } catch {
      value = undefined;
    }
    let changed = false;
    const was = value;
    if (value !== s.want && set && value !== undefined) {
      access(sysctlPath(s.key), s.want);
      value = access(sysctlPath(s.key)).trim();
      changed = true;
    }
    return { key: s.key, value, was, ok: value === s.want, lost: s.lost, changed };
  });
}
