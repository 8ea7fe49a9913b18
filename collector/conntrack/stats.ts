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
import { STAT_FIELDS } from '../../contract/records.js';
import { align4, attrHeader, be32, hex } from '../netlink/attr.js';
import * as C from './constants.js';

export function decodeCpuStats(
  buf: Buffer, dv: DataView, start: number, end: number, cpu: number, unknown: UnknownAttr[],
): CpuStats {
  const s = { cpu } as CpuStats;
  for (const f of STAT_FIELDS) s[f] = 0;
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const at = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      const name = C.STATS_CPU_NAMES[at];
      if (name !== undefined && (STAT_FIELDS as readonly string[]).includes(name)) {
        s[name as (typeof STAT_FIELDS)[number]] = be32(dv, p, plen, `CTA_STATS_${name}`);
      } else if (name === undefined) {
        unknown.push({ path: 'stats_cpu', type: at, hex: hex(buf, p, plen) });
      }
    }
    o += align4(len);
  }
  return s;
}

export interface GlobalStats { entries?: number; max_entries?: number }

export function decodeGlobalStats(buf: Buffer, dv: DataView, start: number, end: number, unknown: UnknownAttr[]): GlobalStats {
  const g: GlobalStats = {};
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const at = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      if (at === C.CTA_STATS_GLOBAL_ENTRIES) g.entries = be32(dv, p, plen, 'CTA_STATS_GLOBAL_ENTRIES');
      else if (at === C.CTA_STATS_GLOBAL_MAX_ENTRIES) g.max_entries = be32(dv, p, plen, 'CTA_STATS_GLOBAL_MAX_ENTRIES');
      else unknown.push({ path: 'stats_global', type: at, hex: hex(buf, p, plen) });
    }
    o += align4(len);
  }
  return g;
}

export interface ExpStats { exp_new: number; exp_create: number; exp_delete: number }

export function decodeExpStats(buf: Buffer, dv: DataView, start: number, end: number, unknown: UnknownAttr[]): ExpStats {
  const s: ExpStats = { exp_new: 0, exp_create: 0, exp_delete: 0 };
  let o = start;
  while (o + 4 <= end) {
    const h = attrHeader(dv, o, end);
    const len = h & 0xffff;
    const at = h >>> 16;
    const p = o + 4;
    const plen = len - 4;
    if (plen > 0) {
      if (at === C.CTA_STATS_EXP_NEW) s.exp_new = be32(dv, p, plen, 'CTA_STATS_EXP_NEW');
      else if (at === C.CTA_STATS_EXP_CREATE) s.exp_create = be32(dv, p, plen, 'CTA_STATS_EXP_CREATE');
      else if (at === C.CTA_STATS_EXP_DELETE) s.exp_delete = be32(dv, p, plen, 'CTA_STATS_EXP_DELETE');
      else unknown.push({ path: 'stats_exp', type: at, hex: hex(buf, p, plen) });
    }
    o += align4(len);
  }
  return s;
}
