/**
 * Structured JSON logs (pino) on stderr, so stdout stays free for `--output jsonl`. Secrets are
 * redacted by path wherever a config object is logged, and URL passwords wherever they appear in a
 * logged string or message (redact.ts).
 */
import { pino, type Logger } from 'pino';
import { redactDeep, redactUrls } from './redact.js';

export type { Logger };

export const REDACT = ['password', '*.password', '*.*.password'];

export function createLogger(level: string, name = 'ctpipe', dest: number | NodeJS.WritableStream = 2): Logger {
  // Synchronous writes: logs are rare, and a crashed or killed process must not lose its last lines.
  const stream = typeof dest === 'number' ? pino.destination({ fd: dest, sync: true }) : dest;
  return pino({
    name, level, redact: { paths: REDACT, censor: '[redacted]' }, base: { pid: process.pid },
    formatters: { log: (o) => redactDeep(o) },
    serializers: { err: (e: Error) => (e instanceof Error ? redactDeep({ ...pino.stdSerializers.err(e) }) : redactDeep(e)) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a: unknown) => (typeof a === 'string' ? redactUrls(a) : a)) as Parameters<typeof method>);
      },
    },
  }, stream);
}

export const silentLogger: Logger = pino({ level: 'silent' });
