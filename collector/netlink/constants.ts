/**
 * Netlink framing constants, from include/uapi/linux/netlink.h and
 * include/uapi/linux/netfilter/nfnetlink.h (names kept so they can be grepped in the kernel tree).
 */
export const NLMSG_HDRLEN = 16;
export const NFGENMSG_LEN = 4;
export const NLA_HDRLEN = 4;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300; // ROOT | MATCH
export const NLM_F_CREATE = 0x400;
export const NLM_F_EXCL = 0x200;

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;

export const NETLINK_NETFILTER = 12;

/** nfnetlink subsystems (high byte of nlmsg_type). */
export const NFNL_SUBSYS_CTNETLINK = 1;
export const NFNL_SUBSYS_CTNETLINK_EXP = 2;
export const NFNL_SUBSYS_ULOG = 4;

/** enum nfnetlink_groups: multicast group numbers joined with NETLINK_ADD_MEMBERSHIP. */
export const NFNLGRP_CONNTRACK_NEW = 1;
export const NFNLGRP_CONNTRACK_UPDATE = 2;
export const NFNLGRP_CONNTRACK_DESTROY = 3;
export const NFNLGRP_CONNTRACK_EXP_NEW = 4;
export const NFNLGRP_CONNTRACK_EXP_DESTROY = 6;

export const NFPROTO_UNSPEC = 0;
export const NFPROTO_IPV4 = 2;
export const NFPROTO_IPV6 = 10;
