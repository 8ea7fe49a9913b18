/**
 * Flags for every subcommand, generated from the config schema plus each command's own options.
 * Unknown flags and missing values are errors that name the flag and point to --help.
 */
import { parseArgs } from 'node:util';
import { didYouMean } from '../common/suggest.js';
import { CtpipeError, errorMessage } from '../common/errors.js';
import { leaves, type Leaf } from './config.js';
import { usedBy, type Part } from './uses.js';

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  /** The parts of ctpipe this command runs (cli/uses.ts): it takes their settings as flags, and only those. */
  parts: readonly Part[] | 'all';
  own?: Record<string, { type: 'string' | 'boolean'; description: string; short?: string; multiple?: boolean }>;
}

export interface Parsed {
  flags: Record<string, string | boolean>;
  own: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  config?: string;
  help: boolean;
}

export function leavesFor(spec: Pick<CommandSpec, 'parts'>): Leaf[] {
  return usedBy(spec.parts, leaves());
}

export function parseCommand(spec: CommandSpec, argv: string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
    config: { type: 'string', short: 'c' },
  };
  const ls = leavesFor(spec);
  for (const l of ls) {
    const name = l.flag.slice(2);
    options[name] = { type: l.type === 'boolean' ? 'boolean' : 'string' };
    if (l.type === 'boolean') options[`no-${name}`] = { type: 'boolean' };
  }
  for (const [k, v] of Object.entries(spec.own ?? {})) {
    options[k] = { type: v.type, ...(v.short ? { short: v.short } : {}), ...(v.multiple ? { multiple: true } : {}) };
  }
  let values: Record<string, string | boolean | string[] | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true }) as {
      values: Record<string, string | boolean | string[] | undefined>;
      positionals: string[];
    });
  } catch (e) {
    const unknown = /^Unknown option '(--?[^']+)'/.exec(errorMessage(e))?.[1];
    const names = Object.keys(options).map((k) => `--${k}`);
    // a flag another command takes under a longer name (report's --report-host for --host)
    const longer = names.filter((n) => unknown && n.endsWith(`-${unknown.replace(/^-+/, '')}`));
    const hint = !unknown ? '' : didYouMean(unknown, names) || (longer.length === 1 ? ` (did you mean ${longer[0]!}?)` : '');
    throw new CtpipeError('CONFIG_INVALID', `${errorMessage(e).replace(/\. To specify.*$/s, '')}${hint}\nRun \`ctpipe ${spec.name} --help\` for the flags.`);
  }
  const flags: Record<string, string | boolean> = {};
  for (const l of ls) {
    const name = l.flag.slice(2);
    const v = values[name];
    if (v !== undefined && !Array.isArray(v)) flags[l.flag] = v;
    if (l.type === 'boolean' && values[`no-${name}`]) flags[l.flag] = false;
  }
  const own: Record<string, string | boolean | string[] | undefined> = {};
  for (const k of Object.keys(spec.own ?? {})) own[k] = values[k];
  return { flags, own, positionals, config: values.config as string | undefined, help: values.help === true };
}

export function helpText(spec: CommandSpec): string {
  const lines = [`ctpipe ${spec.name}: ${spec.summary}`, '', `usage: ${spec.usage}`, '', 'options:'];
  lines.push('  -h, --help                  this help');
  lines.push('  -c, --config FILE           YAML config file (also CTPIPE_CONFIG)');
  for (const [k, v] of Object.entries(spec.own ?? {})) {
    lines.push(`  ${(v.short ? `-${v.short}, ` : '    ') + `--${k}${v.type === 'string' ? ' VALUE' : ''}`.padEnd(24)}${v.description}`);
  }
  for (const l of leavesFor(spec)) {
    const arg = l.type === 'boolean' ? '' : l.enum ? ` ${l.enum.join('|')}` : ` ${l.type.toUpperCase()}`;
    const def = l.default === undefined || l.path[0] === 'host' ? '' : ` [${Array.isArray(l.default) ? l.default.join(',') : String(l.default)}]`;
    const head = `${l.flag}${arg}`;
    lines.push(head.length < 24 ? `      ${head.padEnd(24)}${l.description}${def}` : `      ${head}\n      ${''.padEnd(24)}${l.description}${def}`);
    lines.push(`      ${''.padEnd(24)}env ${l.env}${l.type === 'boolean' ? `; --no-${l.flag.slice(2)} to turn off` : ''}`);
  }
  return lines.join('\n') + '\n';
}
