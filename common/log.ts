/**
 * Structured JSON logs (pino) on stderr, so stdout stays free for `--output jsonl`. Secrets are
 * redacted by path wherever a config object is logged.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export const REDACT = ['password', '*.password', '*.*.password'];

export function createLogger(level: string, name = 'ctpipe', dest: number | NodeJS.WritableStream = 2): Logger {
  // Synchronous writes: logs are rare, and a crashed or killed process must not lose its last lines.
  const stream = typeof dest === 'number' ? pino.destination({ fd: dest, sync: true }) : dest;
  return pino({ name, level, redact: { paths: REDACT, censor: '[redacted]' }, base: { pid: process.pid } }, stream);
}

export const silentLogger: Logger = pino({ level: 'silent' });
