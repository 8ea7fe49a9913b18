/** ctpipe: the command-line program. Each subcommand parses flags from the config schema. */
import { stringify } from 'yaml';
import { CtpipeError, errorMessage, isCtpipeError } from '../common/errors.js';
import { PRIVATE_UMASK } from '../common/files.js';
import { REDACTED, redactDeep, redactUrls } from '../common/redact.js';
import { didYouMean } from '../common/suggest.js';
import { helpText, parseCommand, type CommandSpec } from './args.js';
import { collectSpec, runCollect } from './commands/collect.js';
import { dashboardsSpec, runDashboards } from './commands/dashboards.js';
import { demoSpec, runDemo } from './commands/demo.js';
import { reportSpec, runReport } from './commands/report.js';
import { recordSpec, runRecord } from './commands/record.js';
import { replaySpec, runReplay } from './commands/replay.js';
import { migrateSpec, runMigrate } from './commands/migrate.js';
import { querySpec, runQuery } from './commands/query.js';
import { runRun, runSpec } from './commands/run.js';
import { runTop, topSpec } from './commands/top.js';
import { processSpec, runProcess } from './commands/process.js';
import { networksSpec, runNetworks } from './commands/networks.js';
import { configDocs, loadConfig, type Config } from './config.js';

const configSpec: CommandSpec = {
  name: 'config',
  summary: 'print the effective configuration (secrets redacted), check it, or print its reference',
  usage: 'ctpipe config [--docs] [--check] [-c FILE] [flags]',
  parts: 'all',
  own: {
    docs: { type: 'boolean', description: 'print the configuration reference (docs/CONFIG.md) and exit' },
    check: { type: 'boolean', description: 'only validate; exit 0 when valid' },
  },
};

/** Commands whose output is meant to be shared (generated dashboards, a report): the user's umask applies. */
const SHARED_OUTPUT = new Set(['dashboards', 'report', 'config']);

type Run = (cfg: Config, own: Record<string, string | boolean | string[] | undefined>, positionals: string[]) => Promise<number>;

const COMMANDS: Record<string, { spec: CommandSpec; run: Run; positionals?: boolean }> = {
  run: { spec: runSpec, run: runRun },
  demo: { spec: demoSpec, run: runDemo },
  collect: { spec: collectSpec, run: runCollect },
  process: { spec: processSpec, run: runProcess },
  migrate: { spec: migrateSpec, run: runMigrate },
  query: { spec: querySpec, run: runQuery, positionals: true },
  top: { spec: topSpec, run: runTop },
  dashboards: { spec: dashboardsSpec, run: runDashboards },
  report: { spec: reportSpec, run: runReport },
  record: { spec: recordSpec, run: runRecord, positionals: true },
  replay: { spec: replaySpec, run: runReplay, positionals: true },
  networks: { spec: networksSpec, run: runNetworks, positionals: true },
  config: {
    spec: configSpec,
    run: async (cfg, own) => {
      if (own.check) {
        process.stdout.write('configuration is valid\n');
        return 0;
      }
      process.stdout.write(stringify(redact(cfg)));
      return 0;
    },
  },
};

/** The configuration without its secrets: the password settings, and any password in a URL. */
function redact(cfg: Config): unknown {
  const c = redactDeep(structuredClone(cfg)) as Record<string, unknown>;
  const sasl = (c.kafka as { sasl: Record<string, unknown> }).sasl;
  if (sasl.password !== undefined) sasl.password = REDACTED;
  const ch = c.clickhouse as Record<string, unknown>;
  if (ch.password !== undefined) ch.password = REDACTED;
  return c;
}

/** `text` in lines of at most 100 characters, continued under column `indent`. */
function wrap(text: string, indent: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/(?<=\S) (?=\S)/)) {
    if (line && line.length + 1 + word.length > 100) {
      out.push(line);
      line = ' '.repeat(indent) + word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...out, line];
}

function usage(): string {
  const lines = ['ctpipe: Linux conntrack events to analytics', '', 'usage: ctpipe COMMAND [flags]', '', 'commands:'];
  for (const { spec } of Object.values(COMMANDS)) lines.push(...wrap(`  ${spec.name.padEnd(12)}${spec.summary}`, 14));
  lines.push(`  ${'version'.padEnd(12)}print the version`, '', 'Run `ctpipe COMMAND --help` for the flags of a command.');
  return lines.join('\n') + '\n';
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === 'version' || name === '--version') {
    const { createRequire } = await import('node:module');
    const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
    process.stdout.write(`ctpipe ${pkg.version}\n`);
    return 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`ctpipe: unknown command "${name}"${didYouMean(name, [...Object.keys(COMMANDS), 'version'])}\n\n${usage()}`);
    return 2;
  }
  const parsed = parseCommand(cmd.spec, rest);
  if (parsed.help) {
    process.stdout.write(helpText(cmd.spec));
    return 0;
  }
  if (name === 'config' && parsed.own.docs) {
    process.stdout.write(configDocs());
    return 0;
  }
  if (parsed.positionals.length && !cmd.positionals) {
    throw new CtpipeError('CONFIG_INVALID', `unexpected argument "${parsed.positionals[0]}"\nRun \`ctpipe ${name} --help\` for the flags.`);
  }
  const cfg = loadConfig({ file: parsed.config ?? process.env.CTPIPE_CONFIG, env: process.env, flags: parsed.flags });
  // The store, the spool, recordings and whatever chDB writes hold the host's connections: private.
  if (!SHARED_OUTPUT.has(name)) process.umask(PRIVATE_UMASK);
  return cmd.run(cfg, parsed.own, parsed.positionals);
}

// Commands return once their work is flushed; exit then, whatever timers libraries left behind.
const exit = (code: number) => process.stdout.write('', () => process.exit(code));
main(process.argv.slice(2)).then(exit, (e: unknown) => {
  // whatever the error quotes (a URL with its password, a value from the configuration)
  if (isCtpipeError(e)) process.stderr.write(`ctpipe: ${redactUrls(e.message)} [${e.code}]\n`);
  else process.stderr.write(`ctpipe: ${redactUrls(errorMessage(e))}\n`);
  if (process.env.CTPIPE_DEBUG && e instanceof Error) process.stderr.write(`${redactUrls(e.stack ?? '')}\n`);
  exit(isCtpipeError(e) && e.code.startsWith('CONFIG') ? 2 : 1);
});
