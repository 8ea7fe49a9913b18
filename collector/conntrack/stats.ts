/**
 * Statistics replies (subsystem CTNETLINK):
 *
 *   IPCTNL_MSG_CT_GET_STATS_CPU (dump; one message per CPU, nfgenmsg.res_id = htons(cpu)):
 *     FOUND, INVALID, INSERT, INSERT_FAILED, DROP, EARLY_DROP, ERROR, SEARCH_RESTART,
 *     CLASH_RESOLVE, CHAIN_TOOLONG (all be32, wrapping; 1, 3, 5, 6, 7 are no longer sent)
 *   IPCTNL_MSG_CT_GET_STATS: ENTRIES be32, MAX_ENTRIES be32
 *   IPCTNL_MSG_EXP_GET_STATS_CPU: the reply comes back typed 0x0103 (kernel quirk,
 *     ctnetlink_exp_stat_fill_info) with EXP_NEW, EXP_CREATE, EXP_DELETE be32.
 *
 * INVALID packets create no conntrack entry and so no event: these counters are the only source.
 */
import type { CpuStats, UnknownAttr } from '../../contract/records.js';
import { STAT_FIELDS, type StatField } from '../../contract/records.js';
import { be32, be32Nest, forEachAttr, hex } from '../netlink/attr.js';
import * as C from './constants.js';

export function decodeCpuStats(
  buf: Buffer, dv: DataView, start: number, end: number, cpu: number, unknown: UnknownAttr[],
): CpuStats {
  const s = { cpu } as CpuStats;
  for (const f of STAT_FIELDS) s[f] = 0;
  forEachAttr(dv, start, end, (at, p, plen) => {
    const name = C.STATS_CPU_NAMES[at];
    if (name === undefined) unknown.push({ path: 'stats_cpu', type: at, hex: hex(buf, p, plen) });
    else if ((STAT_FIELDS as readonly string[]).includes(name)) s[name as StatField] = be32(dv, p, plen, `CTA_STATS_${name}`);
  });
  return s;
}

export interface GlobalStats { entries?: number; max_entries?: number }

export function decodeGlobalStats(buf: Buffer, dv: DataView, start: number, end: number, unknown: UnknownAttr[]): GlobalStats {
  const g: GlobalStats = {};
  forEachAttr(dv, start, end, (at, p, plen) => {
    if (at === C.CTA_STATS_GLOBAL_ENTRIES) g.entries = be32(dv, p, plen, 'CTA_STATS_GLOBAL_ENTRIES');
    else if (at === C.CTA_STATS_GLOBAL_MAX_ENTRIES) g.max_entries = be32(dv, p, plen, 'CTA_STATS_GLOBAL_MAX_ENTRIES');
    else unknown.push({ path: 'stats_global', type: at, hex: hex(buf, p, plen) });
  });
  return g;
}

// ctattr_expect_stats: EXP_NEW, EXP_CREATE, EXP_DELETE (be32)
const EXP_STATS = ['exp_new', 'exp_create', 'exp_delete'] as const;
export type ExpStats = Record<(typeof EXP_STATS)[number], number>;

export function decodeExpStats(buf: Buffer, dv: DataView, start: number, end: number, unknown: UnknownAttr[]): ExpStats {
  return be32Nest(buf, dv, start, end, EXP_STATS, 'stats_exp', unknown);
}
