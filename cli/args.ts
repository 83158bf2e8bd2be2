// A small argv parser: the syntax (long/short flags, `--x=v`, `--no-x`, `--`) is handled here,
// the meaning (types, ranges, required values) by each command's zod schema, so every
// command gets the same manners and readable errors without a CLI framework.
import { z } from 'zod';

/** Bad command-line input: reported without a stack trace, exit status 2. */
export class UsageError extends Error {}

export interface OptionSpec {
  /** Long name without dashes, e.g. `devices`; the parsed key is its camelCase form. */
  long: string;
  short?: string;
  /** Placeholder for the value; options without one are flags. */
  value?: string;
  /** A value option that may be given several times (collected into an array). */
  repeatable?: boolean;
  help: string;
}

export interface PositionalSpec {
  name: string;
  help: string;
  optional?: boolean;
}

export interface CommandSpec<T> {
  /** e.g. `virnucpro status` */
  name: string;
  summary: string;
  positionals?: PositionalSpec[];
  options: OptionSpec[];
  /** Longer text printed after the option list (examples, caveats). */
  epilog?: string;
  /** Validates and converts `{ _: positionals, <camelCaseOption>: raw value }`. */
  schema: z.ZodType<T>;
}

/** Options every command understands (merged into each command's list by `withCommonOptions`). */
export const commonOptions: OptionSpec[] = [
  { long: 'config', short: 'c', value: 'FILE', help: 'configuration file (Temporal cluster, dev server overrides); default $VIRNUCPRO_CONFIG' },
  { long: 'verbose', short: 'v', help: 'more detail on the terminal (debug logs, stack traces)' },
  { long: 'quiet', short: 'q', help: 'only warnings and errors on the terminal' },
  { long: 'help', short: 'h', help: 'show this help and exit' },
];

export const commonShape = {
  config: z.string().optional(),
  verbose: z.boolean().default(false),
  quiet: z.boolean().default(false),
};

export type CommonOptions = { config?: string; verbose: boolean; quiet: boolean };

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

type Raw = Record<string, unknown> & { _: string[] };

function tokenize(spec: CommandSpec<unknown>, argv: string[]): Raw {
  const options = [...spec.options, ...commonOptions];
  const byLong = new Map(options.map((o) => [o.long, o]));
  const byShort = new Map(options.filter((o) => o.short).map((o) => [o.short as string, o]));
  const raw: Raw = { _: [] };
  const assign = (o: OptionSpec, value: string | boolean) => {
    const key = camel(o.long);
    if (o.repeatable) raw[key] = [...((raw[key] as string[] | undefined) ?? []), value];
    else raw[key] = value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      raw._.push(...argv.slice(i + 1));
      break;
    }
    let option: OptionSpec | undefined;
    let inline: string | undefined;
    let negated = false;
    if (arg.startsWith('--')) {
      const [name, ...rest] = arg.slice(2).split('=');
      inline = rest.length ? rest.join('=') : undefined;
      option = byLong.get(name);
      if (!option && name.startsWith('no-') && byLong.get(name.slice(3)) && !byLong.get(name.slice(3))?.value) {
        option = byLong.get(name.slice(3));
        negated = true;
      }
      if (!option) throw new UsageError(`unknown option --${name}`);
    } else if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
      option = byShort.get(arg.slice(1, 2));
      if (!option) throw new UsageError(`unknown option ${arg.slice(0, 2)}`);
      if (arg.length > 2) inline = arg.slice(2);
    } else {
      raw._.push(arg);
      continue;
    }
    if (!option.value) {
      if (inline !== undefined) throw new UsageError(`option --${option.long} takes no value`);
      assign(option, !negated);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`option --${option.long} needs a value (${option.value})`);
    assign(option, value);
  }
  return raw;
}

function describeIssue(issue: z.core.$ZodIssue, spec: CommandSpec<unknown>): string {
  const key = String(issue.path[0] ?? '');
  if (key === '_') {
    const positional = spec.positionals?.[Number(issue.path[1] ?? 0)];
    return positional ? `${positional.name}: ${issue.message}` : issue.message;
  }
  const option = [...spec.options, ...commonOptions].find((o) => camel(o.long) === key);
  return option ? `--${option.long}: ${issue.message}` : key ? `${key}: ${issue.message}` : issue.message;
}

/** Parses argv for one command; returns undefined after printing help for -h/--help. */
export function parseCommand<T>(spec: CommandSpec<T>, argv: string[]): T | undefined {
  const raw = tokenize(spec as CommandSpec<unknown>, argv);
  if (raw.help) {
    process.stdout.write(renderHelp(spec as CommandSpec<unknown>));
    return undefined;
  }
  const positionals = spec.positionals ?? [];
  const required = positionals.filter((p) => !p.optional).length;
  if (raw._.length < required) {
    throw new UsageError(`missing ${positionals[raw._.length].name} (see ${spec.name} --help)`);
  }
  if (raw._.length > positionals.length) {
    throw new UsageError(`unexpected argument '${raw._[positionals.length]}' (see ${spec.name} --help)`);
  }
  const parsed = spec.schema.safeParse(raw);
  if (!parsed.success) {
    throw new UsageError(parsed.error.issues.map((i) => describeIssue(i, spec as CommandSpec<unknown>)).join('; '));
  }
  return parsed.data;
}

export function renderHelp(spec: CommandSpec<unknown>): string {
  const positionals = spec.positionals ?? [];
  const synopsis = positionals.map((p) => (p.optional ? `[${p.name}]` : p.name)).join(' ');
  const lines = [`Usage: ${spec.name} [options]${synopsis ? ' ' + synopsis : ''}`, '', spec.summary, ''];
  if (positionals.length) {
    lines.push('Arguments:');
    for (const p of positionals) lines.push(`  ${p.name.padEnd(24)} ${p.help}`);
    lines.push('');
  }
  lines.push('Options:');
  for (const o of [...spec.options, ...commonOptions]) {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${o.long}${o.value ? ` ${o.value}` : ''}`;
    lines.push(`  ${flag.padEnd(28)} ${o.help}`);
  }
  if (spec.epilog) lines.push('', spec.epilog.trimEnd());
  return lines.join('\n') + '\n';
}
