/**
 * What a ClickHouse failure means for the input it came from, decided by ClickHouse's error code
 * (src/Common/ErrorCodes.cpp), never by message text:
 *
 * - `rows`: ClickHouse refused what a row holds (a value it cannot parse or store), or ctpipe's
 *   encoder did on its behalf (STORE_ROWS_REFUSED). Retrying sends the same bytes and fails the
 *   same way, so the rows go to dead_letters and the input moves on.
 * - `schema`: the statement cannot run against this database as it is (a missing table or column,
 *   a rejected statement, no permission). Nothing the input can fix: the partition stops, loudly.
 * - `transient`: anything else, network errors and codes like TOO_MANY_PARTS or NOT_ENOUGH_SPACE
 *   among them. The input waits and the call is retried; only unavailability may pause a pipeline,
 *   and an unknown code is treated as unavailability rather than a reason to drop data.
 */
import { errorMessage, isCtpipeError } from '../../common/errors.js';

export type StoreFailure = 'transient' | 'rows' | 'schema';

/** Codes of values ClickHouse cannot parse or store: the rows are at fault. */
const ROW_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  32, // ATTEMPT_TO_READ_AFTER_EOF
  33, // CANNOT_READ_ALL_DATA
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  469, // VIOLATED_CONSTRAINT
  675, // CANNOT_PARSE_IPV4
  676, // CANNOT_PARSE_IPV6
  691, // UNKNOWN_ELEMENT_OF_ENUM
]);

/** Codes of statements that cannot run against this database as it is. */
const SCHEMA_CODES = new Set([
  10, // NOT_FOUND_COLUMN_IN_BLOCK
  16, // NO_SUCH_COLUMN_IN_TABLE
  36, // BAD_ARGUMENTS
  44, // ILLEGAL_COLUMN
  47, // UNKNOWN_IDENTIFIER
  60, // UNKNOWN_TABLE
  62, // SYNTAX_ERROR
  81, // UNKNOWN_DATABASE
  115, // UNKNOWN_SETTING
  164, // READONLY
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
]);

/** The ClickHouse error code of a thrown value (ClickHouseError carries it as text), if any. */
export function clickhouseCode(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  const n = typeof code === 'string' && /^\d+$/.test(code) ? Number(code) : typeof code === 'number' ? code : undefined;
  return n;
}

export function classifyStoreError(e: unknown): StoreFailure {
  if (isCtpipeError(e, 'STORE_ROWS_REFUSED')) return 'rows'; // refused before ClickHouse saw them (table-rows.ts)
  const code = clickhouseCode(e);
  if (code === undefined) return 'transient';
  if (ROW_CODES.has(code)) return 'rows';
  if (SCHEMA_CODES.has(code)) return 'schema';
  return 'transient';
}

/** A failure's text for logs and dead letters: ClickHouse's type name and code when it has them. */
export function describeStoreError(e: unknown): string {
  const code = clickhouseCode(e);
  const type = (e as { type?: unknown } | null)?.type;
  const msg = errorMessage(e).split('\n')[0]!.trim();
  return code === undefined ? msg : `${typeof type === 'string' ? type : 'code'} ${code}: ${msg}`;
}
