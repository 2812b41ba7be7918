/**
 * The driver registry and driver selection (moby's daemon/graphdriver/driver.go: Register,
 * getDriver, New). Core imports no driver: it knows the package name of each built-in driver and
 * `import()`s it the first time the driver is asked for, so a driver that is not installed is just
 * "not supported" and never a load error of core.
 *
 * Driver package convention: a driver package's main module (its `exports["."]`, else `main`, else
 * `index.js`) exports
 *
 *     export const init: DriverInit;   // (ctx: DriverInitContext) => Promise<Driver>
 *
 * `init` receives `{ home: <root>/<name>, root, options (raw), idMappings }`, creates its home if
 * needed, parses its own options (see options.ts), and throws a NotSupportedError (or
 * PrerequisitesError / IncompatibleFsError) when it cannot work on this host, so that selection can
 * move on to the next driver. Third-party packages follow the same convention and are made known
 * with `registerPackage(name, packageName)`; a driver made in-process is `register(name, init)`.
 *
 * Selection (`newDriver`) follows moby's New():
 *  1. an explicit name wins (and its failure is the caller's error);
 *  2. else a non-empty `<root>/<driver>` left by an earlier run selects that driver; failing to start
 *     it is an error, never a silent switch to another driver (the images would "disappear"); state of
 *     two drivers is a DriverConflictError naming both. Unlike moby, `vfs` state counts too: moby
 *     skips it because its daemon once kept volumes under `vfs/dir`, which graphdriver never does;
 *  3. else drivers are tried by priority (`overlay, aufs, devmapper, vfs`, lower number first, then
 *     drivers registered without a priority in registration order), skipping the ones that throw
 *     isNotSupported(); the first that starts is returned.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { debuglog } from 'node:util';
import type { Driver, DriverInit, DriverOptionsInput, IdMappings } from './driver.js';
import {
  DriverConflictError,
  errorCode,
  GraphDriverError,
  InvalidOptionError,
  isNotSupported,
  NotSupportedError,
  OperationFailedError,
} from './errors.js';

const debug = debuglog('graphdriver:core');

/** The package of each built-in driver, imported only when that driver is asked for. */
export const BUILTIN_DRIVER_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  overlay: '@graphdriver/overlay',
  aufs: '@graphdriver/aufs',
  devmapper: '@graphdriver/devmapper',
  vfs: '@graphdriver/vfs',
  layer0: '@graphdriver/layer0',
});

/**
 * Priorities of the built-in drivers (lower is tried first). layer0 has none: it is an overlay with
 * a persistent top layer on external volumes, something to choose, not to fall into.
 */
export const BUILTIN_DRIVER_PRIORITY: Readonly<Record<string, number>> = Object.freeze({
  overlay: 100,
  aufs: 200,
  devmapper: 300,
  vfs: 400,
});

export interface RegisterOptions {
  /** Place in automatic selection: lower is tried first (overlay 100, aufs 200, devmapper 300, vfs 400). Without one, a driver is tried after all prioritised ones, in registration order. */
  priority?: number;
}

interface Entry {
  name: string;
  /** In-process init, or the package to import it from. */
  source: { init: DriverInit } | { packageName: string };
  priority: number | undefined;
  /** Registration order, for drivers without a priority. */
  seq: number;
  builtin: boolean;
}

const entries = new Map<string, Entry>();
let seq = 0;

function builtinEntry(name: string): Entry | undefined {
  const packageName = BUILTIN_DRIVER_PACKAGES[name];
  if (packageName === undefined) return undefined;
  return { name, source: { packageName }, priority: BUILTIN_DRIVER_PRIORITY[name], seq: -1, builtin: true };
}

const DRIVER_NAME = /^[a-z0-9][a-z0-9_-]*$/;

function checkName(name: string): void {
  // The name becomes a directory under the root: nothing that could leave it.
  if (typeof name !== 'string' || !DRIVER_NAME.test(name) || name.length > 64) {
    throw new InvalidOptionError('driver', `invalid storage driver name ${JSON.stringify(name)}: lowercase letters, digits, "_" and "-" only`);
  }
}

function add(name: string, source: Entry['source'], opts: RegisterOptions): void {
  checkName(name);
  if (entries.has(name)) throw new InvalidOptionError('driver', `storage driver ${JSON.stringify(name)} is already registered`);
  const priority = opts.priority ?? BUILTIN_DRIVER_PRIORITY[name];
  entries.set(name, { name, source, priority, seq: seq++, builtin: false });
}

/**
 * Makes an in-process driver known under `name`. A built-in name may be registered (the in-process
 * init then replaces the package import and keeps the built-in priority unless one is given); the
 * same name twice is an error, as in moby.
 */
export function register(name: string, init: DriverInit, opts: RegisterOptions = {}): void {
  if (typeof init !== 'function') throw new TypeError(`register(${JSON.stringify(name)}): init must be a function`);
  add(name, { init }, opts);
}

/** Makes a driver known by the package that implements it (the convention above), imported on first use. */
export function registerPackage(name: string, packageName: string, opts: RegisterOptions = {}): void {
  add(name, { packageName }, opts);
}

/** Forgets a registration made with register/registerPackage (built-in names fall back to their package). */
export function unregister(name: string): boolean {
  return entries.delete(name);
}

function entryOf(name: string): Entry | undefined {
  return entries.get(name) ?? builtinEntry(name);
}

/** Every driver name the registry knows: built-in ones and registered ones. */
export function knownDrivers(): string[] {
  return [...new Set([...Object.keys(BUILTIN_DRIVER_PACKAGES), ...entries.keys()])];
}

/** The order automatic selection tries drivers in. */
export function driverPriority(): string[] {
  const all = knownDrivers().map((n) => entryOf(n)!);
  const ranked = all.filter((e) => e.priority !== undefined).sort((a, b) => a.priority! - b.priority! || a.seq - b.seq);
  const rest = all.filter((e) => e.priority === undefined && !e.builtin).sort((a, b) => a.seq - b.seq);
  return [...ranked, ...rest].map((e) => e.name);
}

export interface GetDriverOptions {
  /** The store root; the driver's home is `<root>/<name>`. */
  root: string;
  /** Raw driver options (moby-style strings or an object); the driver parses them. */
  options?: DriverOptionsInput;
  idMappings?: IdMappings;
  /**
   * Directories to look for driver packages from (their `node_modules` and those of their
   * ancestors), before core's own resolution and the current directory's.
   */
  resolveFrom?: string | readonly string[];
}

export interface NewDriverOptions extends GetDriverOptions {
  /** The driver to use. Without it, the driver is chosen as described at the top of this file. */
  name?: string;
}

// ---- finding a driver package -----------------------------------------------------------------

type ExportsField = string | null | readonly ExportsField[] | { readonly [key: string]: ExportsField };

const CONDITIONS = new Set(['node', 'import', 'default']);

/** The file `exports["."]` points at for an ESM import on Node, following nested conditions. */
function exportsEntry(exp: ExportsField): string | undefined {
  if (exp === null) return undefined;
  if (typeof exp === 'string') return exp;
  if (Array.isArray(exp)) {
    for (const e of exp as readonly ExportsField[]) {
      const r = exportsEntry(e);
      if (r !== undefined) return r;
    }
    return undefined;
  }
  const obj = exp as { readonly [key: string]: ExportsField };
  const keys = Object.keys(obj);
  if (keys.some((k) => k.startsWith('.'))) return obj['.'] === undefined ? undefined : exportsEntry(obj['.']);
  for (const k of keys) {
    if (CONDITIONS.has(k)) {
      const r = exportsEntry(obj[k]!);
      if (r !== undefined) return r;
    }
  }
  return undefined;
}

/** The main module of `packageName` as installed in a `node_modules` at or above `base`, if any. */
async function findInstalled(packageName: string, base: string): Promise<string | undefined> {
  let dir = resolve(base);
  for (;;) {
    const pkgDir = join(dir, 'node_modules', packageName);
    const manifest = await readFile(join(pkgDir, 'package.json'), 'utf8').catch(() => undefined);
    if (manifest !== undefined) {
      let pkg: { exports?: ExportsField; main?: string };
      try {
        pkg = JSON.parse(manifest) as typeof pkg;
      } catch (err) {
        throw new GraphDriverError('ERR_GRAPHDRIVER_INVALID_DRIVER_PACKAGE', `${pkgDir}/package.json is not valid JSON`, { cause: err });
      }
      const entry = (pkg.exports !== undefined ? exportsEntry(pkg.exports) : undefined) ?? pkg.main ?? 'index.js';
      return join(pkgDir, entry);
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** A URL to import `packageName` from, or undefined when it is not installed where we look. */
async function locatePackage(packageName: string, resolveFrom: readonly string[]): Promise<string | undefined> {
  for (const base of resolveFrom) {
    const file = await findInstalled(packageName, base);
    if (file !== undefined) return pathToFileURL(file).href;
  }
  // Core's own resolution: finds the package where a package manager put it beside core.
  // (import.meta.resolve is synchronous and flag-free from Node 20.6; older 20.x go on below.)
  if (typeof import.meta.resolve === 'function') {
    try {
      const url: unknown = import.meta.resolve(packageName);
      if (typeof url === 'string') return url;
    } catch (err) {
      if (errorCode(err) !== 'ERR_MODULE_NOT_FOUND') throw err;
    }
  }
  // A CLI or an app run from its project directory has its drivers there, even when core's
  // resolution cannot see them (pnpm without hoisting, core linked from elsewhere).
  const file = await findInstalled(packageName, process.cwd());
  return file === undefined ? undefined : pathToFileURL(file).href;
}

async function loadInit(entry: Entry, resolveFrom: readonly string[]): Promise<DriverInit> {
  if ('init' in entry.source) return entry.source.init;
  const { packageName } = entry.source;
  const url = await locatePackage(packageName, resolveFrom);
  if (url === undefined) {
    throw new NotSupportedError(`storage driver ${JSON.stringify(entry.name)} is not installed: pnpm add ${packageName}`);
  }
  debug('importing storage driver %s from %s', entry.name, url);
  let mod: { init?: unknown };
  try {
    mod = (await import(url)) as { init?: unknown };
  } catch (err) {
    throw new GraphDriverError(
      'ERR_GRAPHDRIVER_INVALID_DRIVER_PACKAGE',
      `storage driver package ${packageName} (${url}) failed to load: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  if (typeof mod.init !== 'function') {
    throw new GraphDriverError(
      'ERR_GRAPHDRIVER_INVALID_DRIVER_PACKAGE',
      `storage driver package ${packageName} (${url}) does not export "init" (export const init: DriverInit)`,
    );
  }
  return mod.init as DriverInit;
}

function checkRoot(root: unknown): string {
  if (typeof root !== 'string' || root === '' || !isAbsolute(root)) {
    throw new InvalidOptionError('root', `the store root must be an absolute path, got ${JSON.stringify(root)}`);
  }
  return resolve(root);
}

function basesOf(resolveFrom: GetDriverOptions['resolveFrom']): readonly string[] {
  if (resolveFrom === undefined) return [];
  return typeof resolveFrom === 'string' ? [resolveFrom] : resolveFrom;
}

/**
 * Starts driver `name` with home `<root>/<name>`. An unknown name or a driver package that is not
 * installed is a NotSupportedError; whatever the driver's init throws is passed on as it is.
 */
export async function getDriver(name: string, opts: GetDriverOptions): Promise<Driver> {
  checkName(name);
  const root = checkRoot(opts.root);
  const entry = entryOf(name);
  if (entry === undefined) {
    throw new NotSupportedError(`unknown storage driver ${JSON.stringify(name)} (known: ${knownDrivers().join(', ')})`);
  }
  const init = await loadInit(entry, basesOf(opts.resolveFrom));
  const driver = await init({
    home: join(root, name),
    root,
    options: opts.options ?? [],
    ...(opts.idMappings === undefined ? {} : { idMappings: opts.idMappings }),
  });
  if (typeof driver !== 'object' || driver === null) {
    throw new GraphDriverError('ERR_GRAPHDRIVER_INVALID_DRIVER_PACKAGE', `storage driver ${JSON.stringify(name)}: init returned no driver`);
  }
  return driver;
}

/**
 * The drivers that left state under `root`: those whose `<root>/<name>` exists and is not an empty
 * directory (something there that is not a directory, or cannot be read, counts as state, as in moby).
 * In selection order.
 */
export async function scanPriorDrivers(root: string): Promise<string[]> {
  const dir = checkRoot(root);
  const ranked = driverPriority();
  const order = [...ranked, ...knownDrivers().filter((n) => !ranked.includes(n))];
  const found: string[] = [];
  for (const name of order) {
    const home = join(dir, name);
    try {
      const st = await stat(home);
      if (st.isDirectory() && (await readdir(home)).length === 0) continue;
    } catch (err) {
      if (errorCode(err) === 'ENOENT') continue;
      // There but unreadable: count it as state rather than risk starting over beside it.
    }
    found.push(name);
  }
  return found;
}

/** Chooses and starts a driver following moby's rules (see the top of this file). */
export async function newDriver(opts: NewDriverOptions): Promise<Driver> {
  const root = checkRoot(opts.root);
  if (opts.name !== undefined && opts.name !== '') {
    debug('using configured storage driver %s', opts.name);
    return getDriver(opts.name, opts);
  }

  const prior = await scanPriorDrivers(root);
  if (prior.length > 1) throw new DriverConflictError(root, prior);
  const [priorName] = prior;
  if (priorName !== undefined) {
    debug('using prior storage driver %s', priorName);
    try {
      return await getDriver(priorName, opts);
    } catch (err) {
      // Not "not supported": the store has this driver's layers, so moving on would hide them.
      throw new OperationFailedError(`starting storage driver ${JSON.stringify(priorName)}, whose state from an earlier run is in ${join(root, priorName)},`, undefined, err);
    }
  }

  const reasons: string[] = [];
  for (const name of driverPriority()) {
    try {
      const driver = await getDriver(name, opts);
      debug('selected storage driver %s', name);
      return driver;
    } catch (err) {
      if (!isNotSupported(err)) throw err;
      const why = err instanceof Error ? err.message : String(err);
      debug('storage driver %s not supported: %s', name, why);
      reasons.push(`${name}: ${why}`);
    }
  }
  throw new NotSupportedError(`no supported storage driver found for ${root} (${reasons.join('; ')})`);
}
