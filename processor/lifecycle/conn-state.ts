/**
 * A one-word summary of how a connection went, modelled on Zeek's conn_state
 * (zeek/zeek scripts/base/protocols/conn/main.zeek), derived from what conntrack shows: the TCP
 * state path, SEEN_REPLY, and how the lifecycle ended. ctnetlink does not say which side sent an
 * RST, so Zeek's RSTO/RSTR collapse into RST (lifecycle-anomaly.md §5.1).
 *
 * | conn_state | conntrack evidence |
 * |---|---|
 * | S0   | no reply ever: TCP never left SYN_SENT, or a UDP/ICMP/other flow without SEEN_REPLY |
 * | REJ  | SYN_SENT (or SYN_RECV) straight to CLOSE, never ESTABLISHED: the attempt was refused by RST |
 * | S1   | established and not terminated: still open, or destroyed/flushed/lost while ESTABLISHED |
 * | SF   | normal close: through FIN_WAIT/CLOSE_WAIT/LAST_ACK to TIME_WAIT (or CLOSE after them); non-TCP with a reply |
 * | S2   | established, the originator sent FIN first, no close from the responder seen (CLOSE_INIT on orig) |
 * | S3   | established, the responder sent FIN first, no close from the originator seen (CLOSE_INIT on reply) |
 * | RST  | ESTABLISHED to CLOSE without FIN states: reset after establishment |
 * | OTH  | picked up midstream (first seen ESTABLISHED, e.g. from a snapshot) and neither closed nor reset since |
 */
const IP_CT_TCP_FLAG_CLOSE_INIT = 0x04;

export const CONN_STATES = ['S0', 'REJ', 'S1', 'SF', 'S2', 'S3', 'RST', 'OTH'] as const;
export type ConnState = (typeof CONN_STATES)[number];

export interface ConnSummary {
  proto: number;
  /** TCP state names in order of observation (no repeats in a row). */
  states: readonly string[];
  seenReply: boolean;
  /** Whether the first observation was a SYN state (the handshake was seen). */
  sawHandshake: boolean;
  closeInitOrig: boolean;
  closeInitReply: boolean;
}

const CLOSING = new Set(['FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT']);

export function connState(s: ConnSummary): ConnState {
  return connStateOf(s.proto, s.states, s.seenReply, s.sawHandshake, s.closeInitOrig, s.closeInitReply);
}

/** connState with its inputs as arguments: rowOf calls it per row, without a summary object. */
export function connStateOf(proto: number, states: readonly string[], seenReply: boolean, sawHandshake: boolean,
  closeInitOrig: boolean, closeInitReply: boolean): ConnState {
  if (proto !== 6) return seenReply ? 'SF' : 'S0';
  const closing = states.some((x) => CLOSING.has(x));
  const established = closing || states.includes('ESTABLISHED');
  if (!established) return states.includes('CLOSE') ? 'REJ' : 'S0';
  const last = states[states.length - 1];
  if (last === 'TIME_WAIT' || last === 'LAST_ACK' || (last === 'CLOSE' && closing)) return 'SF';
  if (last === 'CLOSE') return 'RST';
  if (last === 'FIN_WAIT' || last === 'CLOSE_WAIT') {
    if (closeInitOrig && !closeInitReply) return 'S2';
    if (closeInitReply && !closeInitOrig) return 'S3';
    return 'SF';
  }
  return sawHandshake ? 'S1' : 'OTH';
}

export function closeInit(flags: number | undefined): boolean {
  return flags !== undefined && (flags & IP_CT_TCP_FLAG_CLOSE_INIT) !== 0;
}
