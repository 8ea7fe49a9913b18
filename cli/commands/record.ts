/**
 * `ctpipe record FILE`: the collector's stream to a recording file (binary frames, or JSON lines
 * for a FILE ending in .jsonl; contract/recording.ts), for `ctpipe replay` later or elsewhere.
 * Runs until Ctrl-C or --duration, then prints what it recorded.
 */
import { Registry } from 'prom-client';
import { collectorMetrics } from '../../collector/metrics.js';
import { RecordingSink } from '../../collector/sinks/recording.js';
import { openNetfilterSocket } from '../../collector/socket.js';
import { CtpipeError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { formatForPath, type RecordingFormat } from '../../contract/recording.js';
import type { CommandSpec } from '../args.js';
import type { Config } from '../config.js';
import { collectorFor, collectorOptions, prepareCollect, untilStopped } from './collect.js';

export const recordSpec: CommandSpec = {
  name: 'record',
  summary: 'record the collector\'s stream to a file (compact binary, or JSON lines for FILE.jsonl) for ctpipe replay',
  usage: 'ctpipe record FILE [--format binary|jsonl] [--duration 60s] [flags]',
  parts: ['host', 'log', 'collector'],
  own: {
    format: { type: 'string', description: 'binary or jsonl (default: jsonl for a name ending in .jsonl, else binary)' },
  },
};

export async function runRecord(cfg: Config, own: Record<string, unknown>, positionals: string[]): Promise<number> {
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new CtpipeError('CONFIG_INVALID', 'usage: ctpipe record FILE [--format binary|jsonl]');
  const format = (own.format as RecordingFormat | undefined) ?? formatForPath(file);
  if (format !== 'binary' && format !== 'jsonl') throw new CtpipeError('CONFIG_INVALID', `--format must be binary or jsonl, not "${String(format)}"`);
  const log = createLogger(cfg.log_level, 'ctpipe-record');
  const sink = new RecordingSink(file, format); // first: a file it may not create stops it before anything starts
  const registry = new Registry();
  const metrics = collectorMetrics(registry);
  const undo = await prepareCollect(cfg, log, metrics);
  const collector = collectorFor(cfg, { ...collectorOptions(cfg), sink, sockets: openNetfilterSocket, metrics, log }, registry);
  const tty = process.stderr.isTTY;
  const status = setInterval(() => {
    if (tty) process.stderr.write(`\r\x1b[K${collector.lastSeq.toLocaleString('en')} records, ${(sink.bytes / 1e6).toFixed(1)} MB`);
  }, 1000);
  let stopping: Promise<void> | undefined;
  const done = untilStopped(cfg, (why) => {
    stopping ??= (async () => {
      clearInterval(status);
      if (tty) process.stderr.write('\n');
      log.info({ why }, 'stopping: writing what is left');
      await collector.stop();
      await sink.close();
      await undo();
    })();
    return stopping;
  });
  await collector.start();
  log.info({ host: cfg.host, run: collector.run, file, format }, 'recording');
  await done;
  process.stdout.write(`recorded ${sink.records} records (host ${cfg.host}, run ${collector.run}, seq 1-${collector.lastSeq}) to ${file}: ${sink.bytes} bytes, ${format}\n`);
  return 0;
}
