// The command line of the bench and load scripts, one way for all: --help (-h)
// prints the npm command that runs the script, what it measures and every
// option with its default; an unknown option or a bad value is one line on
// stderr, `error: ... (try --help)`, and exit code 2. Both before the script
// does anything. node:util's parseArgs does the parsing, strict.
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** What the option sets, one line. */
  help: string;
  default?: string | boolean;
  multiple?: boolean;
  short?: string;
  /** The value's name in the usage (`--pods <list>`); `value` when not given. */
  value?: string;
  /** The default as the usage shows it, where `default` does not say it (none, or one the script works out). */
  shown?: string;
  /** Left out of the usage: for the script's own use (a child it re-executes). */
  hidden?: boolean;
}

export interface Usage {
  /** The npm script that runs it: `bench:scale`. */
  script: string;
  /** What it measures, one line. */
  about: string;
  /** The options of an example run: `--pods 100,500`. */
  example?: string;
}

type ValueOf<O extends OptionSpec> = O['multiple'] extends true
  ? (O['type'] extends 'boolean' ? boolean : string)[]
  : O['type'] extends 'boolean'
    ? boolean
    : string;

/** The parsed options: an option with a default always has a value. */
export type Values<T extends Record<string, OptionSpec>> = {
  [K in keyof T]: T[K] extends { default: string | boolean } ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

/** The usage text --help prints. */
export function usageText(usage: Usage, options: Record<string, OptionSpec>): string {
  const rows = Object.entries(options)
    .filter(([, o]) => !o.hidden)
    .map(([name, o]) => {
      const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` <${o.value ?? 'value'}>` : ''}`;
      const shown = o.shown ?? (o.type === 'boolean' ? (o.default ? 'on' : 'off') : o.default === undefined || o.default === '' ? 'none' : String(o.default));
      return [flag, `${o.help}${o.multiple ? ', repeatable' : ''} (default: ${shown})`];
    });
  rows.push(['-h, --help', 'print this help and exit']);
  const width = Math.max(...rows.map(([flag]) => flag.length));
  return [
    `Usage: npm run ${usage.script} -- [options]`,
    usage.about,
    '',
    'Options:',
    ...rows.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`),
    ...(usage.example ? ['', `Example: npm run ${usage.script} -- ${usage.example}`] : []),
    '',
  ].join('\n');
}

/** The one way out of a bad command line: one line on stderr, exit code 2. */
export function usageError(message: string): never {
  process.stderr.write(`error: ${message} (try --help)\n`);
  process.exit(2);
}

/**
 * The script's options, parsed strictly from `args`. --help or -h prints the
 * usage and exits 0; an unknown option, a missing value or a positional
 * argument exits 2 through usageError.
 */
export function parseOptions<const T extends Record<string, OptionSpec>>(usage: Usage, options: T, args: string[] = process.argv.slice(2)): Values<T> {
  const end = args.indexOf('--');
  if ((end < 0 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(usageText(usage, options));
    process.exit(0);
  }
  const config = Object.fromEntries(
    // parseArgs checks every key it is given, undefined ones too: pass only those set.
    Object.entries(options).map(([name, { type, multiple, short, default: value }]) => [
      name,
      { type, ...(multiple !== undefined && { multiple }), ...(short !== undefined && { short }), ...(value !== undefined && { default: value }) },
    ]),
  );
  try {
    return parseArgs({ args, options: config, strict: true, allowPositionals: false }).values as Values<T>;
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    if (!code?.startsWith('ERR_PARSE_ARGS_')) throw err;
    // node's messages go on with advice for another kind of command line: keep the first sentence.
    const first = message.split(/\.\s/)[0];
    return usageError(first.charAt(0).toLowerCase() + first.slice(1));
  }
}

/** A number of at least `min` (whole unless `whole` is false), or the usage error naming the option. */
export function numberOption(option: string, value: string, { min = 0, whole = true }: { min?: number; whole?: boolean } = {}): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (whole && !Number.isInteger(n)) || n < min) {
    usageError(`--${option} wants ${whole ? 'a whole number' : 'a number'} of at least ${min}, not '${value}'`);
  }
  return n;
}

/** A comma-separated list of numbers, each as numberOption checks it. */
export function numberList(option: string, value: string, limits?: { min?: number; whole?: boolean }): number[] {
  return value.split(',').map((v) => numberOption(option, v, limits));
}

/** A comma-separated list of choices, or the usage error naming the one not among them. */
export function choiceList<C extends string>(option: string, value: string, choices: readonly C[]): C[] {
  return value.split(',').map((v) => (choices.includes(v as C) ? (v as C) : usageError(`--${option}: '${v}' is not one of ${choices.join(', ')}`)));
}
