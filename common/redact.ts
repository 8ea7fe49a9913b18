/**
 * Credentials out of what ctpipe prints: the password in a URL's user info
 * (`http://user:password@host`, which ClickHouse's client accepts as --clickhouse-url), and other
 * processes' command lines, which may carry a password as a flag or inside a URL. Used by every
 * place that prints a URL or an error (logs, `ctpipe config`, the report, the top-level error).
 */

export const REDACTED = '[redacted]';

/** scheme://userinfo@ : the user info up to the last @ before the path (a password may hold an @). */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#'"]*)@/gi;

/** `text` with the password of every URL in it replaced (`user:[redacted]@`; user info without a password: `[redacted]@`, a token). */
export function redactUrls(text: string): string {
  return text.replace(USERINFO, (_all, scheme: string, info: string) => {
    const colon = info.indexOf(':');
    return `${scheme}${colon < 0 ? REDACTED : `${info.slice(0, colon)}:${REDACTED}`}@`;
  });
}

/** Every string in `v` (objects and arrays walked) through redactUrls. */
export function redactDeep<T>(v: T): T {
  if (typeof v === 'string') return redactUrls(v) as T;
  if (Array.isArray(v)) return v.map(redactDeep) as T;
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactDeep(x)])) as T;
  }
  return v;
}

/**
 * Another process named without its arguments, which may hold secrets (a password flag, a URL with
 * one, SQL): the program, the script it runs and the first bare word after it (a subcommand such
 * as `run`), then `...` when more follows.
 */
export function describeCommandLine(argv: readonly string[]): string {
  const base = (s: string) => s.slice(s.lastIndexOf('/') + 1);
  const out = argv.length ? [base(argv[0]!)] : [];
  let i = 1;
  if (argv[i] && /\.(c|m)?js$|\/ctpipe$/.test(argv[i]!)) out.push(base(argv[i++]!));
  if (argv[i] && /^[a-z][a-z-]*$/.test(argv[i]!)) out.push(argv[i++]!);
  if (i < argv.length) out.push('...');
  return out.join(' ');
}
