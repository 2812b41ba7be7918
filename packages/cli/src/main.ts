/**
 * The command line from argv to exit status: finds the command, parses the options, runs it with a
 * CommandContext, prints the result (text, or JSON with --json) and turns any failure into one line
 * on stderr - `graphdriver <command>: <CODE>: <what failed>` - with the cause chain under --debug.
 * Exit status: 0 done, 1 failed, 2 bad command line, 130 interrupted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeOptions, findCommand, GLOBAL_OPTIONS, parseCommandLine, type GlobalOptions } from './args.js';
import { COMMANDS, findCommandNamed } from './commands/index.js';
import type { Command } from './commands/command.js';
import { CommandContext, PACKAGE_DIR, type CliIo } from './context.js';
import { UsageError } from './errors.js';
import { errorDetails, errorJson, errorLine } from './format.js';
import { isInterrupt } from './layer-apply.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;

export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function usageLine(c: Command<unknown>): string {
  return `graphdriver [OPTIONS] ${c.name}${c.usage === '' ? '' : ` ${c.usage}`}`;
}

export function mainHelp(): string[] {
  return [
    'graphdriver - container layer storage: import images, create, mount, diff and apply layers',
    '',
    'Usage: graphdriver [OPTIONS] COMMAND [ARGS]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(9)} ${c.summary}`),
    '',
    'Options (before or after the command):',
    ...describeOptions(GLOBAL_OPTIONS),
    '',
    'Run graphdriver COMMAND --help for a command\'s own options.',
  ];
}

export function commandHelp(c: Command<unknown>): string[] {
  const own = Object.keys(c.options).length > 0 ? ['', 'Options:', ...describeOptions(c.options)] : [];
  return [`Usage: ${usageLine(c)}`, '', c.summary, ...(c.details === undefined ? [] : ['', ...c.details]), ...own];
}

function reportError(io: CliIo, globals: Pick<GlobalOptions, 'json' | 'debug'>, command: string | undefined, err: unknown): number {
  const interrupted = isInterrupt(err);
  const code = err instanceof UsageError ? EXIT_USAGE : interrupted ? EXIT_INTERRUPTED : EXIT_FAILED;
  const who = `graphdriver${command === undefined ? '' : ` ${command}`}`;
  if (globals.json) {
    const json = interrupted ? { code: 'ERR_GRAPHDRIVER_INTERRUPTED', message: 'interrupted; what was in progress was undone', causes: [] } : errorJson(err);
    io.stderr.write(`${JSON.stringify({ error: json })}\n`);
    return code;
  }
  if (interrupted) {
    io.stderr.write(`${who}: ERR_GRAPHDRIVER_INTERRUPTED: interrupted; what was in progress was undone\n`);
  } else {
    io.stderr.write(`${who}: ${errorLine(err)}\n`);
    if (err instanceof UsageError && command !== undefined && findCommandNamed(command) !== undefined) io.stderr.write(`Run 'graphdriver ${command} --help' for usage.\n`);
    else if (err instanceof UsageError) io.stderr.write(`Run 'graphdriver --help' for usage.\n`);
  }
  if (globals.debug) for (const line of errorDetails(err)) io.stderr.write(`${line}\n`);
  return code;
}

/** Runs the command line `argv` (without node and the script); resolves to the exit status. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const { name, rest } = findCommand(argv);
  const command = name === undefined ? undefined : findCommandNamed(name);
  let globals: GlobalOptions = { root: undefined, driver: undefined, opt: [], json: argv.includes('--json'), debug: argv.includes('--debug') || argv.includes('-D'), help: false, version: false };
  try {
    if (name !== undefined && command === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)}`);
    const parsed = parseCommandLine(rest, command?.options ?? {}, command?.name);
    globals = parsed.globals;
    if (globals.version) {
      io.stdout.write(globals.json ? `${JSON.stringify({ version: version() })}\n` : `graphdriver ${version()}\n`);
      return EXIT_OK;
    }
    if (command === undefined) {
      if (globals.help) {
        io.stdout.write(`${mainHelp().join('\n')}\n`);
        return EXIT_OK;
      }
      io.stderr.write(`${mainHelp().join('\n')}\n`);
      return EXIT_USAGE;
    }
    if (globals.help) {
      io.stdout.write(`${commandHelp(command).join('\n')}\n`);
      return EXIT_OK;
    }
    const n = parsed.positionals.length;
    if (n < command.args.min || n > command.args.max) {
      const want = command.args.min === command.args.max ? `${command.args.min}` : command.args.max === Infinity ? `at least ${command.args.min}` : `${command.args.min} to ${command.args.max}`;
      throw new UsageError(`${command.name} takes ${want} argument${want === '1' ? '' : 's'}, got ${n}: ${usageLine(command)}`);
    }
    const ctx = new CommandContext(io, globals);
    const args = { options: parsed.options, positionals: parsed.positionals };
    const result = await command.run(ctx, args);
    ctx.progress.stop();
    if (globals.json) io.stdout.write(`${JSON.stringify(result ?? null, null, 2)}\n`);
    else command.render?.(ctx, result, args);
    return EXIT_OK;
  } catch (err) {
    return reportError(io, globals, command?.name ?? name, err);
  }
}
