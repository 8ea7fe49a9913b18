/**
 * NAT as a flow's reply tuple shows it. The reply tuple is what the kernel expects to come back;
 * without translation it mirrors the original: source and destination swapped. One rule decides
 * both whether a reply tuple needs keeping (FlowTable.setReply) and what a row says (`nat`):
 *
 * - DNAT: the reply's source (address, port) is not the original's destination;
 * - SNAT: the reply's destination (address, port) is not the original's source;
 *
 * an absent port counting as 0, as the row's port columns store it. (ctnetlink gives both tuples
 * ports for a port-based protocol and neither ports otherwise, so presence never differs in
 * practice.)
 */
import type { Tuple } from '../../contract/records.js';

/** A row's `nat`: which sides the reply tuple shows translated. */
export const NAT_KINDS = ['', 'snat', 'dnat', 'snat+dnat'] as const;
export type NatKind = (typeof NAT_KINDS)[number];

/** '' when the reply mirrors the original; else which sides were translated. */
export function natKind(o: Tuple, r: Tuple): NatKind {
  const dnat = r.src !== o.dst || (r.sport ?? 0) !== (o.dport ?? 0);
  const snat = r.dst !== o.src || (r.dport ?? 0) !== (o.sport ?? 0);
  return snat ? (dnat ? 'snat+dnat' : 'snat') : dnat ? 'dnat' : '';
}

const endpoint = (a: string, p: number | undefined) => (p === undefined ? a : a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);

/** The row's NAT columns: the kind, and what each translated side became (address[:port]). */
export interface NatColumns {
  nat: NatKind;
  natSrc: string;
  natDst: string;
}

export const NO_NAT: Readonly<NatColumns> = { nat: '', natSrc: '', natDst: '' };

export function natOf(o: Tuple, r: Tuple): NatColumns {
  const nat = natKind(o, r);
  return {
    nat,
    natSrc: nat === 'snat' || nat === 'snat+dnat' ? endpoint(r.dst, r.dport) : '',
    natDst: nat === 'dnat' || nat === 'snat+dnat' ? endpoint(r.src, r.sport) : '',
  };
}
