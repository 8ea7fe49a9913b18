/** The requests the collector sends on its query sockets (conntrack-netlink.md §4.1, §6.2). */
import * as C from '../conntrack/constants.js';
import * as N from './constants.js';
import { NlWriter } from './writer.js';

const ct = (m: number) => (N.NFNL_SUBSYS_CTNETLINK << 8) | m;
const exp = (m: number) => (N.NFNL_SUBSYS_CTNETLINK_EXP << 8) | m;
const DUMP = N.NLM_F_REQUEST | N.NLM_F_DUMP;

/** Dump the conntrack table, IPv4 and IPv6 (family AF_UNSPEC). */
export const ctDump = (seq: number) => new NlWriter().begin(ct(C.IPCTNL_MSG_CT_GET), DUMP, seq, 0).end().bytes();
/** Dump the expectation table. */
export const expDump = (seq: number) => new NlWriter().begin(exp(C.IPCTNL_MSG_EXP_GET), DUMP, seq, 0).end().bytes();
/** Per-CPU conntrack statistics; needs NLM_F_DUMP or the kernel answers nothing. */
export const ctStatsCpu = (seq: number) =>
  new NlWriter().begin(ct(C.IPCTNL_MSG_CT_GET_STATS_CPU), DUMP, seq, 0).end().bytes();
/** Global entry count and nf_conntrack_max. A single reply: NLM_F_ACK makes the end explicit. */
export const ctStatsGlobal = (seq: number) =>
  new NlWriter().begin(ct(C.IPCTNL_MSG_CT_GET_STATS), N.NLM_F_REQUEST | N.NLM_F_ACK, seq, 0).end().bytes();
/** Per-CPU expectation statistics (the reply arrives typed 0x0103). */
export const expStatsCpu = (seq: number) =>
  new NlWriter().begin(exp(C.IPCTNL_MSG_EXP_GET_STATS_CPU), DUMP, seq, 0).end().bytes();
