/**
 * Errors with stable codes. Callers branch on `code`, never on message text; codes are part of the
 * public interface (logs, metrics labels, dead letters). Modelled on platformatic/kafka src/errors.ts
 * and undici lib/core/errors.js.
 */
export const ErrorCodes = {
  NL_TRUNCATED: 'a netlink message or attribute runs past the end of its buffer',
  NL_BAD_LENGTH: 'a netlink length field is smaller than its header',
  NL_KERNEL_ERROR: 'the kernel answered a request with an error',
  CT_BAD_PAYLOAD: 'a ctnetlink message is too short for its nfgenmsg header',
  CT_BAD_ATTRIBUTE: 'a ctnetlink attribute has the wrong size for its type',
  CT_MISSING_TUPLE: 'a conntrack message has no original tuple',
  DECODE_INTERNAL: 'the decoder failed unexpectedly (a ctpipe bug); the message was rejected',
  NFLOG_BAD_PACKET: 'an NFLOG packet payload could not be parsed',
  CONFIG_INVALID: 'the configuration is invalid',
  CONFIG_FILE: 'the configuration file cannot be read or parsed',
  CAP_NET_ADMIN_MISSING: 'the process lacks CAP_NET_ADMIN',
  NEEDS_ROOT: 'the command needs root (it builds network namespaces)',
  TOOL_MISSING: 'a program the command runs is not installed',
  NETNS_UNAVAILABLE: 'the network namespace cannot be entered',
  KAFKA_UNAVAILABLE: 'Kafka cannot be reached',
  SPOOL_IO: 'the disk spool cannot be read or written',
  RECORD_DECODE: 'a published record could not be decoded',
  RECORD_INVALID: 'a record holds what the contract does not allow (a field out of range, a string too long, an address that does not parse)',
  RECORD_TOO_LARGE: 'a batch, a decompressed Kafka record batch or a JSON line is larger than its configured bound',
  RECORD_FORGED: 'a batch names a host other than its Kafka key, or one this deployment does not accept',
  STORE_UNAVAILABLE: 'ClickHouse cannot be reached or opened',
  STORE_ROWS_REFUSED: 'ClickHouse refused rows for what they hold (they go to dead_letters)',
  STORE_SCHEMA: 'ClickHouse cannot run a statement against this database as it is (a missing table or column, no permission)',
  QUERY_FAILED: 'ClickHouse rejected a query',
  QUERY_REFUSED: 'a read-only command refused a statement (a write without --write, more than one statement, INTO OUTFILE)',
  CHECKPOINT_INVALID: 'a stored checkpoint cannot be read back',
  SCHEMA_MISMATCH: 'a table does not have the columns this ctpipe writes',
  NETWORKS_INVALID: 'a networks file cannot be read or holds a bad line (header, CIDR, duplicate prefix, name)',
  SCHEMA_UNKNOWN_VERSION: 'the database holds a schema version this ctpipe does not know (a newer or different ctpipe migrated it)',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class CtpipeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ErrorCodes[code], options);
    this.name = 'CtpipeError';
    this.code = code;
  }
}

export function isCtpipeError(e: unknown, code?: ErrorCode): e is CtpipeError {
  return e instanceof CtpipeError && (code === undefined || e.code === code);
}

/** A thrown value's message: Errors carry one, anything else is shown as text. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A thrown value as an Error (wrapped when something else was thrown). */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
