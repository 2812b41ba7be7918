/**
 * What a command runs with: the streams, the interrupt signal, the store root, the driver (opened
 * on first use, chosen as core's registry chooses), the store of records (read, or locked for a
 * change) and progress bars. Opening the driver on a root that did not exist and failing (unknown
 * driver, bad option) leaves nothing behind: what this run created is removed again.
 */
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { debuglog } from 'node:util';
import { errorCode, mountsUnder, newDriver, type Driver } from '@graphdriver/core';
import type { GlobalOptions } from './args.js';
import { UsageError } from './errors.js';
import { createProgress, type Progress } from './progress.js';
import { Store } from './store.js';

const debug = debuglog('graphdriver:cli');

/** The package directory: drivers installed with the command are found from here. */
export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: Readable;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C / SIGTERM: long operations stop and undo. */
  signal?: AbortSignal;
}

/** moby's /var/lib/docker for root; the XDG state directory for everyone else. */
export function defaultRoot(env: NodeJS.ProcessEnv): string {
  const fromEnv = env.GRAPHDRIVER_ROOT;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  if (process.getuid?.() === 0) return '/var/lib/graphdriver';
  const state = env.XDG_STATE_HOME !== undefined && isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(state, 'graphdriver');
}

/** Parses `--opt` values: each must be `key=value`. */
export function driverOptions(opts: readonly string[]): string[] {
  for (const o of opts) {
    if (!/^[^=\s]+=/.test(o)) throw new UsageError(`--opt takes key=value, got ${JSON.stringify(o)}`);
  }
  return [...opts];
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** Removes `path` unless something is mounted beneath it (then it is left, and said). */
async function removeCreated(path: string): Promise<void> {
  const mounts = await mountsUnder(path).catch(() => []);
  if (mounts.length > 0) {
    debug('not removing %s: %d mounts under it', path, mounts.length);
    return;
  }
  await rm(path, { recursive: true, force: true });
}

/** Starts the driver for `root`, undoing what this created there when it cannot start. */
export async function openDriver(root: string, name: string | undefined, options: string[]): Promise<Driver> {
  const rootExisted = await exists(root);
  const before = new Set(rootExisted ? await readdir(root) : []);
  if (!rootExisted) await mkdir(root, { recursive: true, mode: 0o700 });
  try {
    return await newDriver({ root, ...(name === undefined ? {} : { name }), options, resolveFrom: PACKAGE_DIR });
  } catch (err) {
    if (!rootExisted) {
      await removeCreated(root);
    } else {
      for (const entry of await readdir(root).catch(() => [])) {
        if (!before.has(entry)) await removeCreated(join(root, entry));
      }
    }
    throw err;
  }
}

export class CommandContext {
  readonly io: CliIo;
  readonly globals: GlobalOptions;
  readonly root: string;
  readonly progress: Progress;
  #driver: Driver | undefined;

  constructor(io: CliIo, globals: GlobalOptions) {
    this.io = io;
    this.globals = globals;
    this.root = globals.root !== undefined ? resolve(globals.root) : defaultRoot(io.env);
    this.progress = createProgress(io.stderr, !globals.json);
  }

  get signal(): AbortSignal | undefined {
    return this.io.signal;
  }

  get json(): boolean {
    return this.globals.json;
  }

  /** The driver, started on first use. */
  async driver(): Promise<Driver> {
    if (this.#driver === undefined) {
      const name = this.globals.driver ?? (this.io.env.GRAPHDRIVER_DRIVER || undefined);
      this.#driver = await openDriver(this.root, name, driverOptions(this.globals.opt));
      debug('driver %s at %s', this.#driver.name, this.#driver.home);
    }
    return this.#driver;
  }

  /** The driver's records as they are now. */
  async store(): Promise<Store> {
    const d = await this.driver();
    return Store.read(this.root, d.name);
  }

  /** Runs `fn` with the driver's records locked (one changing command at a time). */
  async locked<T>(fn: (store: Store, driver: Driver) => Promise<T>): Promise<T> {
    const d = await this.driver();
    return Store.locked(this.root, d.name, (store) => fn(store, d), {
      ...(this.signal === undefined ? {} : { signal: this.signal }),
      onWait: (pid) => this.info(`waiting for another graphdriver command (pid ${pid}) to finish with ${this.root}`),
    });
  }

  /** A line for people on stderr (never in --json mode, never mixed into data on stdout). */
  info(line: string): void {
    if (this.json) return;
    if (this.progress.terminal) this.progress.log(line);
    else this.io.stderr.write(`${line}\n`);
  }

  /** A line of the command's human output on stdout. */
  out(line: string): void {
    this.io.stdout.write(`${line}\n`);
  }
}
