/**
 * NFLOG packets (nfnetlink_log, subsystem ULOG = 4), include/uapi/linux/netfilter/nfnetlink_log.h:
 *
 *   NFULNL_MSG_PACKET (0x0400): nfgenmsg{family = packet pf, res_id = be16 group}
 *     PACKET_HDR{be16 hw_protocol, u8 hook, u8 pad} [MARK be32] [TIMESTAMP{be64 sec, be64 usec}]
 *     [IFINDEX_INDEV be32] [IFINDEX_OUTDEV be32] PAYLOAD[L3 packet] [PREFIX str] ...
 *
 * Only the headers of the L3 packet are read (addresses, protocol, ports, TCP flags, ICMP type):
 * enough to attribute an INVALID spike to sources without keeping payloads.
 */
import { CtpipeError } from '../../common/errors.js';
import type { InvalidPacketRecord } from '../../contract/records.js';
import { be32, cstr, forEachAttr } from '../netlink/attr.js';
import { ipv4, ipv6 } from '../../contract/addr.js';
import { NFGENMSG_LEN, NLMSG_HDRLEN, NFPROTO_IPV6 } from '../netlink/constants.js';

export const NFULNL_MSG_PACKET = 0;
export const NFULNL_MSG_CONFIG = 1;
const NFULA_MARK = 2;
const NFULA_TIMESTAMP = 3;
const NFULA_IFINDEX_INDEV = 4;
const NFULA_IFINDEX_OUTDEV = 5;
const NFULA_PAYLOAD = 9;
const NFULA_PREFIX = 10;

/** What NFLOG tells of one packet: an invalid_packet record's fields, with interface indexes. */
export type NflogPacket = Pick<
  InvalidPacketRecord,
  'family' | 'proto' | 'src' | 'dst' | 'sport' | 'dport' | 'tcp_flags' | 'icmp_type' | 'icmp_code' | 'length' | 'prefix' | 'mark'
> & { group: number; indev?: number; outdev?: number; sec?: number; nsec?: number };

const TCP_FLAG_LETTERS = 'FSRPAUEC';

export function tcpFlagLetters(bits: number): string {
  let s = '';
  for (let i = 0; i < 8; i++) if (bits & (1 << i)) s += TCP_FLAG_LETTERS[i];
  return s;
}

/** Decodes one NFULNL_MSG_PACKET message starting at its nlmsghdr. */
export function decodeNflogMessage(buf: Buffer, dv: DataView, o: number, len: number): NflogPacket {
  if (len < NLMSG_HDRLEN + NFGENMSG_LEN) throw new CtpipeError('CT_BAD_PAYLOAD', 'NFLOG message without nfgenmsg');
  const family = dv.getUint8(o + NLMSG_HDRLEN);
  const group = dv.getUint16(o + NLMSG_HDRLEN + 2, false);
  const end = o + len;
  let payloadAt = -1;
  let payloadLen = 0;
  const meta: Partial<NflogPacket> = {};
  forEachAttr(dv, o + NLMSG_HDRLEN + NFGENMSG_LEN, end, (at, p, plen) => {
    switch (at) {
      case NFULA_PAYLOAD: payloadAt = p; payloadLen = plen; break;
      case NFULA_MARK: meta.mark = be32(dv, p, plen, 'NFULA_MARK'); break;
      case NFULA_IFINDEX_INDEV: meta.indev = be32(dv, p, plen, 'NFULA_IFINDEX_INDEV'); break;
      case NFULA_IFINDEX_OUTDEV: meta.outdev = be32(dv, p, plen, 'NFULA_IFINDEX_OUTDEV'); break;
      case NFULA_PREFIX: meta.prefix = cstr(buf, p, plen); break;
      case NFULA_TIMESTAMP:
        if (plen >= 16) {
          meta.sec = Number(dv.getBigUint64(p, false));
          meta.nsec = Number(dv.getBigUint64(p + 8, false)) * 1000;
        }
        break;
      default:
        break; // hardware headers, uid/gid, conntrack nest: not needed for samples
    }
  });
  if (payloadAt < 0) throw new CtpipeError('NFLOG_BAD_PACKET', 'NFLOG packet without payload');
  const pkt = parseL3(buf, dv, payloadAt, payloadLen, family === NFPROTO_IPV6 ? 6 : 0);
  return { ...pkt, ...meta, group };
}

function parseL3(buf: Buffer, dv: DataView, p: number, len: number, hint: number): NflogPacket {
  if (len < 1) throw new CtpipeError('NFLOG_BAD_PACKET', 'empty payload');
  const version = hint || buf[p]! >> 4;
  if (version === 4) {
    if (len < 20) throw new CtpipeError('NFLOG_BAD_PACKET', 'IPv4 header truncated');
    const ihl = (buf[p]! & 0x0f) * 4;
    const total = dv.getUint16(p + 2, false);
    const proto = buf[p + 9]!;
    const pkt: NflogPacket = { family: 'ipv4', group: 0, proto, src: ipv4(buf, p + 12), dst: ipv4(buf, p + 16), length: total };
    const fragOff = dv.getUint16(p + 6, false) & 0x1fff;
    if (fragOff === 0 && ihl >= 20) parseL4(buf, dv, p + ihl, len - ihl, proto, pkt);
    return pkt;
  }
  if (version === 6) {
    if (len < 40) throw new CtpipeError('NFLOG_BAD_PACKET', 'IPv6 header truncated');
    let next = buf[p + 6]!;
    const pkt: NflogPacket = {
      family: 'ipv6', group: 0, proto: next, src: ipv6(dv, p + 8), dst: ipv6(dv, p + 24),
      length: dv.getUint16(p + 4, false) + 40,
    };
    let q = p + 40;
    const end = p + len;
    // Skip hop-by-hop (0), routing (43), destination options (60); stop at a fragment (44).
    while ((next === 0 || next === 43 || next === 60) && q + 8 <= end) {
      const hdrLen = (buf[q + 1]! + 1) * 8;
      next = buf[q]!;
      q += hdrLen;
    }
    pkt.proto = next;
    if (next !== 44 && q <= end) parseL4(buf, dv, q, end - q, next, pkt);
    return pkt;
  }
  throw new CtpipeError('NFLOG_BAD_PACKET', `unknown IP version ${version}`);
}

function parseL4(buf: Buffer, dv: DataView, p: number, len: number, proto: number, pkt: NflogPacket): void {
  if ((proto === 6 || proto === 17 || proto === 136 || proto === 132 || proto === 33) && len >= 4) {
    pkt.sport = dv.getUint16(p, false);
    pkt.dport = dv.getUint16(p + 2, false);
    if (proto === 6 && len >= 14) pkt.tcp_flags = tcpFlagLetters(buf[p + 13]!);
  } else if ((proto === 1 || proto === 58) && len >= 2) {
    pkt.icmp_type = buf[p]!;
    pkt.icmp_code = buf[p + 1]!;
  }
}
