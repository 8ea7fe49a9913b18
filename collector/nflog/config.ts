/**
 * NFLOG configuration requests (NFULNL_MSG_CONFIG, nfnetlink_log.h):
 *
 *   bind:  nfgenmsg{family AF_UNSPEC, res_id = be16 group} CFG_CMD{u8 NFULNL_CFG_CMD_BIND}
 *   mode:  CFG_MODE{be32 copy_range, u8 copy_mode, u8 pad}   (packed, 6 bytes)
 *   timer: CFG_TIMEOUT be32 (1/100 s)
 *
 * Binding fails with EBUSY when another process owns the group.
 */
import * as N from '../netlink/constants.js';
import { NlWriter } from '../netlink/writer.js';
import { NFULNL_MSG_CONFIG } from './decode.js';

const NFULA_CFG_CMD = 1;
const NFULA_CFG_MODE = 2;
const NFULA_CFG_TIMEOUT = 4;
const NFULNL_CFG_CMD_BIND = 1;
const NFULNL_COPY_PACKET = 2;
const TYPE = (N.NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
const FLAGS = N.NLM_F_REQUEST | N.NLM_F_ACK;

export function nflogBind(seq: number, group: number): Buffer {
  return new NlWriter().begin(TYPE, FLAGS, seq, 0, group).u8(NFULA_CFG_CMD, NFULNL_CFG_CMD_BIND).end().bytes();
}

/** Copy only the first `range` bytes of each packet: headers, never whole payloads. */
export function nflogMode(seq: number, group: number, range: number): Buffer {
  const mode = Buffer.alloc(6);
  mode.writeUInt32BE(range, 0);
  mode.writeUInt8(NFULNL_COPY_PACKET, 4);
  return new NlWriter().begin(TYPE, FLAGS, seq, 0, group).attr(NFULA_CFG_MODE, mode).end().bytes();
}

export function nflogTimeout(seq: number, group: number, centis: number): Buffer {
  return new NlWriter().begin(TYPE, FLAGS, seq, 0, group).be32(NFULA_CFG_TIMEOUT, centis).end().bytes();
}
