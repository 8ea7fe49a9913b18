/** Configuration: one schema for file, environment and flags; every mistake is a clear error. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { helpText, parseCommand } from '../../cli/args.js';
import { collectSpec } from '../../cli/commands/collect.js';
import { runSpec } from '../../cli/commands/run.js';
import { configDocs, leaves, loadConfig, parseDuration, parseSize } from '../../cli/config.js';
import { tempDir } from '../helpers/resources.js';

const dir = tempDir('config');
const file = (name: string, text: string) => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('configuration', () => {
  it('has defaults for everything', () => {
    const c = loadConfig();
    expect(c.collect.events).toEqual(['new', 'update', 'destroy', 'exp_new', 'exp_destroy']);
    expect(c.collect.rcvbuf).toBe(512 << 20);
    expect(c.collect.stats_interval).toBe(10_000);
    expect(c.kafka.topic).toBe('ctpipe.events.v1');
  });

  it('layers defaults < file < environment < flags', () => {
    const f = file('layers.yaml', 'collect:\n  rcvbuf: 8MiB\n  stats_interval: 5s\nkafka:\n  brokers: [a:1]\n  topic: from-file\n');
    const c = loadConfig({
      file: f,
      env: { CTPIPE_COLLECT_STATS_INTERVAL: '2', CTPIPE_KAFKA_TOPIC: 'from-env' },
      flags: { '--kafka-topic': 'from-flag' },
    });
    expect(c.collect.rcvbuf).toBe(8 << 20);
    expect(c.collect.stats_interval).toBe(2000);
    expect(c.kafka.brokers).toEqual(['a:1']);
    expect(c.kafka.topic).toBe('from-flag');
  });

  it('takes a duration of 0 where a setting gives 0 a meaning, and the kinds\' bounds themselves', () => {
    const c = loadConfig({ env: { CTPIPE_COLLECT_DURATION: '0', CTPIPE_KAFKA_LINGER: '0ms', CTPIPE_COLLECT_RCVBUF: '1GiB', CTPIPE_COLLECT_STATS_INTERVAL: '2147483647ms' } });
    expect([c.collect.duration, c.kafka.linger, c.collect.rcvbuf, c.collect.stats_interval]).toEqual([0, 0, 1 << 30, 2 ** 31 - 1]);
    expect(loadConfig({ env: { CTPIPE_PROCESS_HOSTS: 'edge-*,fw-1' } }).process.hosts).toEqual(['edge-*', 'fw-1']);
  });

  it('parses lists, booleans and sizes from the environment', () => {
    const c = loadConfig({ env: { CTPIPE_COLLECT_EVENTS: 'destroy', CTPIPE_COLLECT_DUMP: 'false', CTPIPE_KAFKA_BROKERS: 'k1:9092, k2:9092', CTPIPE_KAFKA_BUFFER_BYTES: '1GiB' } });
    expect(c.collect.events).toEqual(['destroy']);
    expect(c.collect.dump).toBe(false);
    expect(c.kafka.brokers).toEqual(['k1:9092', 'k2:9092']);
    expect(c.kafka.buffer_bytes).toBe(1 << 30);
  });

  it.each([
    ['an unknown key in the file (typo)', { file: 'collect:\n  rcvbuff: 1MiB\n' }, /collect: Unrecognized key: "rcvbuff"/],
    ['a wrong type', { file: 'collect:\n  dump: maybe\n' }, /collect\.dump: .*boolean/i],
    ['a bad size', { env: { CTPIPE_COLLECT_RCVBUF: 'lots' } }, /collect\.rcvbuf: "lots" is not a size.*CTPIPE_COLLECT_RCVBUF/],
    ['a bad duration', { env: { CTPIPE_COLLECT_STATS_INTERVAL: '10 parsecs' } }, /not a duration/],
    ['an unknown event kind', { env: { CTPIPE_COLLECT_EVENTS: 'new,explode' } }, /collect\.events\.1: Invalid option/],
    ['a broker without a port', { env: { CTPIPE_KAFKA_BROKERS: 'kafka' } }, /a broker is HOST:PORT/],
    ['an unknown environment variable', { env: { CTPIPE_KAFKA_BROKER: 'x:1' } }, /unknown environment variable CTPIPE_KAFKA_BROKER/],
    ['a number that is not one', { env: { CTPIPE_COLLECT_NFLOG_GROUP: 'ten' } }, /"ten" is not a number/],
    ['YAML that does not parse', { file: 'collect: [unclosed\n' }, /not valid YAML/],
    ['a YAML list at the top', { file: '- a\n- b\n' }, /top level must be a mapping/],
    // durations and sizes are range-checked by their kind (common/config-kinds.ts), never wrapped or clamped downstream
    ['a statistics interval of 600h (a timer fires at once past 24.8 days: it became 1 ms)', { env: { CTPIPE_COLLECT_STATS_INTERVAL: '600h' } },
      /collect\.stats_interval: "600h" is out of range: from 100ms to 24d 20h 31m 23\.647s \(2\^31 - 1 ms, the longest a timer waits\)/],
    ['a statistics interval of 0', { env: { CTPIPE_COLLECT_STATS_INTERVAL: '0' } }, /collect\.stats_interval: "0" is out of range: from 100ms/],
    ['a run of 600h (it stopped at once)', { env: { CTPIPE_COLLECT_DURATION: '600h' } }, /collect\.duration: "600h" is out of range: from 0ms to 24d/],
    ['a receive buffer of 2GiB (a C int: it wrapped to the kernel\'s minimum)', { env: { CTPIPE_COLLECT_RCVBUF: '2GiB' } }, /collect\.rcvbuf: "2GiB" is out of range: from 64KiB to 1GiB/],
    ['a Kafka fetch minimum past an Int32', { env: { CTPIPE_PROCESS_FETCH_MIN_BYTES: '4GiB' } }, /process\.fetch_min_bytes: "4GiB" is out of range: from 1 byte to 1GiB/],
    ['a batch bound of 10 bytes', { env: { CTPIPE_PROCESS_MAX_BATCH_BYTES: '10' } }, /process\.max_batch_bytes: "10" is out of range: from 64KiB to 1GiB/],
    ['a 10 MB host id', { env: { CTPIPE_HOST: 'h'.repeat(10 << 20) } }, /host: a host id is at most 253 characters/],
    ['a host id with a newline', { env: { CTPIPE_HOST: 'fw-1\nfw-2' } }, /host: a host id has no control characters/],
  ])('rejects %s with a clear message', (_name, src, re) => {
    const s = src as { file?: string; env?: Record<string, string> };
    const opts = { env: s.env, file: s.file === undefined ? undefined : file(`bad-${Math.random()}.yaml`, s.file) };
    expect(() => loadConfig(opts)).toThrow(re);
  });

  it('says which file cannot be read', () => {
    expect(() => loadConfig({ file: '/nonexistent/ctpipe.yaml' })).toThrow(/cannot read config file \/nonexistent\/ctpipe\.yaml/);
  });

  it('gives every setting one environment variable and one flag', () => {
    const ls = leaves();
    expect(new Set(ls.map((l) => l.env)).size).toBe(ls.length);
    expect(new Set(ls.map((l) => l.flag)).size).toBe(ls.length);
    expect(ls.find((l) => l.path.join('.') === 'collect.rcvbuf')!.flag).toBe('--rcvbuf');
    expect(ls.find((l) => l.path.join('.') === 'kafka.sasl.password')!.env).toBe('CTPIPE_KAFKA_SASL_PASSWORD');
  });

  it('generates the reference in docs/CONFIG.md from the schema', () => {
    const docs = configDocs();
    for (const l of leaves()) expect(docs).toContain(`\`${l.env}\``);
  });

  it('parses sizes and durations', () => {
    expect(parseSize('64MiB')).toBe(64 << 20);
    expect(parseSize('1.5k')).toBe(1536);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration(3)).toBe(3000);
    expect(parseDuration('2m')).toBe(120_000);
  });
});

describe('command-line flags', () => {
  it('maps flags to settings and supports --no-X for booleans', () => {
    const p = parseCommand(collectSpec, ['--events', 'destroy', '--no-dump', '--kafka-brokers', 'k:1', '-c', 'x.yaml']);
    expect(p.flags).toEqual({ '--events': 'destroy', '--dump': false, '--kafka-brokers': 'k:1' });
    expect(p.config).toBe('x.yaml');
  });

  it('shows each setting with its declared kind in --help: durations as DURATION, sizes as SIZE', () => {
    const help = helpText(runSpec);
    for (const flag of ['--process-grace', '--process-refresh', '--detect-cooldown', '--detect-scan-window', '--detect-related-quiet', '--stats-interval']) {
      expect(help).toMatch(new RegExp(`${flag} DURATION\\s`));
    }
    expect(help).toMatch(/--rcvbuf SIZE\s/);
    // every default parses as the kind it is declared with
    for (const l of leaves()) {
      if (l.type === 'duration') expect(() => parseDuration(l.default as string), l.flag).not.toThrow();
      if (l.type === 'size') expect(() => parseSize(l.default as string), l.flag).not.toThrow();
    }
    expect(leaves().filter((l) => l.type === 'duration').length).toBeGreaterThan(10);
  });

  it('rejects an unknown flag and points to --help', () => {
    expect(() => parseCommand(collectSpec, ['--rcvbuff', '1'])).toThrow(/Unknown option '--rcvbuff'[\s\S]*ctpipe collect --help/);
  });

  it('rejects a flag without its value', () => {
    expect(() => parseCommand(collectSpec, ['--rcvbuf'])).toThrow(/--rcvbuf/);
  });
});

describe('Kafka client settings', () => {
  it('maps TLS and SASL settings, reading the password from its file', async () => {
    const { kafkaClientConfig } = await import('../../common/kafka.js');
    const { silentLogger } = await import('../../common/log.js');
    const ca = file('ca.pem', '-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n');
    const pw = file('pw', 's3cret\n');
    const c = loadConfig({ env: {
      CTPIPE_KAFKA_TLS_ENABLED: 'true', CTPIPE_KAFKA_TLS_CA_FILE: ca, CTPIPE_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      CTPIPE_KAFKA_SASL_USERNAME: 'ctpipe', CTPIPE_KAFKA_SASL_PASSWORD_FILE: pw, CTPIPE_KAFKA_BROKERS: 'k:9093',
    } });
    const kc = kafkaClientConfig(c.kafka, silentLogger, 'x');
    expect(kc.brokers).toEqual(['k:9093']);
    expect(kc.ssl).toMatchObject({ rejectUnauthorized: true, ca: [expect.stringContaining('BEGIN CERTIFICATE')] });
    expect(kc.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'ctpipe', password: 's3cret' });
    const plain = kafkaClientConfig(loadConfig().kafka, silentLogger, 'x');
    expect(plain.ssl).toBeUndefined();
    expect(plain.sasl).toBeUndefined();
  });
});
