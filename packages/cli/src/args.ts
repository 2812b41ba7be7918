/**
 * The command line's grammar: `graphdriver [global options] <command> [options] [arguments]`, with
 * global options also taken after the command (`graphdriver ls --json`). Parsing is node's
 * util.parseArgs, strict: an unknown option or a missing value is a UsageError that names it.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './errors.js';

export interface OptionDef {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** For the help text: what the option does, and the value's name for string options. */
  description: string;
  valueName?: string;
}

export type OptionDefs = Record<string, OptionDef>;

export const GLOBAL_OPTIONS = {
  root: { type: 'string', valueName: 'DIR', description: 'the store (default: $GRAPHDRIVER_ROOT, else /var/lib/graphdriver as root, $XDG_STATE_HOME/graphdriver otherwise)' },
  driver: { type: 'string', valueName: 'NAME', description: 'the storage driver (default: $GRAPHDRIVER_DRIVER, else the one the store has, else the first that works: overlay, aufs, devmapper, vfs)' },
  opt: { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'a driver option, e.g. overlay.mountopt=nodev (repeatable)' },
  json: { type: 'boolean', description: 'machine-readable output: one JSON document on stdout (errors as JSON on stderr)' },
  debug: { type: 'boolean', short: 'D', description: 'on error, show the chain of causes and the stack' },
  help: { type: 'boolean', short: 'h', description: 'show help (for a command: graphdriver COMMAND --help)' },
  version: { type: 'boolean', description: 'show the version' },
} satisfies OptionDefs;

export interface GlobalOptions {
  root: string | undefined;
  driver: string | undefined;
  opt: string[];
  json: boolean;
  debug: boolean;
  help: boolean;
  version: boolean;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

/** The first argument that is neither an option nor the value of a global option: the command's name. */
export function findCommand(argv: readonly string[]): { name: string | undefined; rest: string[] } {
  const withValue = new Set<string>();
  for (const [name, def] of Object.entries(GLOBAL_OPTIONS) as Array<[string, OptionDef]>) {
    if (def.type === 'string') {
      withValue.add(`--${name}`);
      if (def.short !== undefined) withValue.add(`-${def.short}`);
    }
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-') && a !== '-') {
      if (withValue.has(a)) i++;
      continue;
    }
    return { name: a, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { name: undefined, rest: [...argv] };
}

function unknownOptionName(err: Error): string {
  return /'([^']+)'/.exec(err.message)?.[1] ?? err.message;
}

/** Parses `args` against the global options plus `commandOptions`. */
export function parseCommandLine(args: string[], commandOptions: OptionDefs, command: string | undefined): { globals: GlobalOptions; options: OptionValues; positionals: string[] } {
  const defs: OptionDefs = { ...GLOBAL_OPTIONS, ...commandOptions };
  const config = Object.fromEntries(
    Object.entries(defs).map(([name, d]) => [name, { type: d.type, ...(d.short === undefined ? {} : { short: d.short }), ...(d.multiple === true ? { multiple: true } : {}) }]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args, options: config, allowPositionals: true, strict: true });
  } catch (err) {
    const code = (err as { code?: string }).code;
    const where = command === undefined ? '' : ` for ${command}`;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`unknown option ${unknownOptionName(err as Error)}${where}`, { cause: err });
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(`${(err as Error).message.replace(/\.$/, '')}${where}`, { cause: err });
    throw new UsageError((err as Error).message, { cause: err });
  }
  const v = parsed.values as OptionValues;
  const globals: GlobalOptions = {
    root: v.root as string | undefined,
    driver: v.driver as string | undefined,
    opt: (v.opt as string[] | undefined) ?? [],
    json: v.json === true,
    debug: v.debug === true,
    help: v.help === true,
    version: v.version === true,
  };
  return { globals, options: v, positionals: parsed.positionals };
}

/** Help text lines for a set of options. */
export function describeOptions(defs: OptionDefs): string[] {
  return Object.entries(defs).map(([name, d]) => {
    const flag = `${d.short === undefined ? '    ' : `-${d.short}, `}--${name}${d.type === 'string' ? ` ${d.valueName ?? 'VALUE'}` : ''}`;
    return `  ${flag.padEnd(28)} ${d.description}`;
  });
}
