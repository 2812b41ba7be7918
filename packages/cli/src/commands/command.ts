/**
 * The shape of a command: its name, help, options and arguments, what it does (returning a
 * result, which --json prints as it is) and how it shows that result to people. Every command's
 * output goes through here, so every command has --json.
 */
import type { OptionDefs, OptionValues } from '../args.js';
import type { CommandContext } from '../context.js';

export interface CommandArgs {
  options: OptionValues;
  positionals: string[];
}

export interface Command<R = unknown> {
  name: string;
  summary: string;
  /** The arguments after the name, for the usage line: `[--rw] [--parent ID] ID`. */
  usage: string;
  options: OptionDefs;
  /** How many positional arguments it takes. */
  args: { min: number; max: number };
  /** More help below the usage line. */
  details?: string[];
  run(ctx: CommandContext, args: CommandArgs): Promise<R>;
  /** The result for people, on stdout; without it nothing is printed. */
  render?(ctx: CommandContext, result: R, args: CommandArgs): void;
}

/** Declares a command with its result type checked. */
export function defineCommand<R>(c: Command<R>): Command<R> {
  return c;
}

export function stringOption(args: CommandArgs, name: string): string | undefined {
  const v = args.options[name];
  return typeof v === 'string' ? v : undefined;
}

export function boolOption(args: CommandArgs, name: string): boolean {
  return args.options[name] === true;
}

export function listOption(args: CommandArgs, name: string): string[] {
  const v = args.options[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}
