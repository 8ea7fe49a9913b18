/**
 * Kernel names and values the record contract shares with every layer: conntrack status bits,
 * protocol states and flags, IP protocol numbers. Translated from include/uapi/linux/netfilter/
 * nf_conntrack_common.h, nf_conntrack_tcp.h, nf_conntrack_sctp.h, nf_conntrack_dccp.h and
 * linux/in.h (kernel 6.18).
 */

/** enum ip_conntrack_status: bit number = index. Bit 12 is UNTRACKED in uapi, NAT_CLASH in-kernel. */
export const IPS_NAMES = [
  'EXPECTED', 'SEEN_REPLY', 'ASSURED', 'CONFIRMED', 'SRC_NAT', 'DST_NAT', 'SEQ_ADJUST',
  'SRC_NAT_DONE', 'DST_NAT_DONE', 'DYING', 'FIXED_TIMEOUT', 'TEMPLATE', 'NAT_CLASH', 'HELPER',
  'OFFLOAD', 'HW_OFFLOAD',
] as const;
export type StatusName = (typeof IPS_NAMES)[number];
export const IPS_EXPECTED = 1 << 0;
export const IPS_SEEN_REPLY = 1 << 1;
export const IPS_ASSURED = 1 << 2;

/** enum tcp_conntrack; 9 is SYN_SENT2 (LISTEN in older headers). */
export const TCP_STATE_NAMES = [
  'NONE', 'SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK',
  'TIME_WAIT', 'CLOSE', 'SYN_SENT2',
] as const;
export type TcpStateName = (typeof TCP_STATE_NAMES)[number];

/** enum sctp_conntrack. */
export const SCTP_STATE_NAMES = [
  'NONE', 'CLOSED', 'COOKIE_WAIT', 'COOKIE_ECHOED', 'ESTABLISHED', 'SHUTDOWN_SENT',
  'SHUTDOWN_RECD', 'SHUTDOWN_ACK_SENT', 'HEARTBEAT_SENT', 'HEARTBEAT_ACKED',
] as const;

/** enum ct_dccp_states. */
export const DCCP_STATE_NAMES = [
  'NONE', 'REQUEST', 'RESPOND', 'PARTOPEN', 'OPEN', 'CLOSEREQ', 'CLOSING', 'TIMEWAIT', 'IGNORE',
  'INVALID',
] as const;

/** nf_ct_tcp_flags bits (IP_CT_TCP_FLAG_*). */
export const TCP_CT_FLAG_NAMES = [
  'WINDOW_SCALE', 'SACK_PERM', 'CLOSE_INIT', 'BE_LIBERAL', 'DATA_UNACKNOWLEDGED', 'MAXACK_SET',
  'EXP_CHALLENGE_ACK', 'SIMULTANEOUS_OPEN',
] as const;

/** Expectation flags (NF_CT_EXPECT_*). */
export const EXPECT_FLAG_NAMES = ['PERMANENT', 'INACTIVE', 'USERSPACE'] as const;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_DCCP = 33;
export const IPPROTO_GRE = 47;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_SCTP = 132;
export const IPPROTO_UDPLITE = 136;

export function statusNames(bits: number): StatusName[] {
  const out: StatusName[] = [];
  for (let i = 0; i < IPS_NAMES.length; i++) if (bits & (1 << i)) out.push(IPS_NAMES[i]!);
  return out;
}

export function flagNames(bits: number, names: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < names.length; i++) if (bits & (1 << i)) out.push(names[i]!);
  return out;
}
