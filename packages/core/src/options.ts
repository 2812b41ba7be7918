/**
 * Driver options: one typed, validated object per driver, parsed once from what users write
 * (moby-style strings `overlay.mountopt=nodev`, `dm.basesize=20G`, or an object), with the defaults
 * in one place. A driver declares its options once with `defineOptions` and calls `parse()` in its
 * init; an unknown key or a bad value is an InvalidOptionError that names the key and the value.
 *
 * The rules are moby's and containers/storage's: a string is `key=value` split at the first `=`,
 * both sides trimmed; keys are case-insensitive and may carry the driver's prefix (`overlay.`, or an
 * alias such as `overlay2.`) or none; a key with another driver's prefix is unknown to this one; the
 * last occurrence of a key wins, except for lists, which accumulate (as `imagestore` does); booleans
 * are Go's strconv.ParseBool set; sizes are go-units RAMInBytes.
 *
 * Per-layer storage options (`CreateOpts.storageOpt`, e.g. `{ size: '50M' }`) go through
 * `parseStorageOpt` with the same errors.
 */
import { isAbsolute, normalize } from 'node:path';
import type { DriverOptionsInput } from './driver.js';
import { InvalidOptionError } from './errors.js';
import { ramInBytes } from './size.js';

interface OptionSpecBase {
  /** One line for the driver's README table and for error messages. */
  description?: string;
  /** Other names of this key (lowercase, without prefix), e.g. `additionalimagestore` for `imagestore`. */
  aliases?: readonly string[];
}

export interface StringOptionSpec extends OptionSpecBase {
  type: 'string';
}
/** `1 t T TRUE true True` / `0 f F FALSE false False`, as Go's strconv.ParseBool. */
export interface BooleanOptionSpec extends OptionSpecBase {
  type: 'boolean';
}
/** Bytes, written as go-units RAMInBytes reads them (`20G`, `1.5GiB`, `512k`). */
export interface SizeOptionSpec extends OptionSpecBase {
  type: 'size';
  min?: number;
  max?: number;
}
export interface IntegerOptionSpec extends OptionSpecBase {
  type: 'integer';
  min?: number;
  max?: number;
  /** Base of the written number (8 for modes such as `force_mask=0755`). Default 10. */
  base?: 8 | 10 | 16;
}
export interface EnumOptionSpec<V extends string = string> extends OptionSpecBase {
  type: 'enum';
  /** The accepted values, compared exactly. */
  values: readonly V[];
}
/** An absolute path, normalised (`/a//b/../c` is `/a/c`). An empty value means "not set". */
export interface PathOptionSpec extends OptionSpecBase {
  type: 'path';
}
/** Items separated by `separator` (default `,`), trimmed, empty ones dropped; repeated keys add items. */
export interface ListOptionSpec extends OptionSpecBase {
  type: 'list';
  separator?: string;
  /** `path` checks and normalises each item as a PathOptionSpec value. Default `string`. */
  items?: 'string' | 'path';
}

export type OptionSpec =
  | StringOptionSpec
  | BooleanOptionSpec
  | SizeOptionSpec
  | IntegerOptionSpec
  | EnumOptionSpec
  | PathOptionSpec
  | ListOptionSpec;

export type OptionType = OptionSpec['type'];

/** The parsed value type of one option spec. */
export type OptionValue<S extends OptionSpec> = S extends { type: 'boolean' }
  ? boolean
  : S extends { type: 'size' | 'integer' }
    ? number
    : S extends { type: 'enum'; values: readonly (infer V)[] }
      ? V
      : S extends { type: 'list' }
        ? string[]
        : string;

export type OptionSpecs = Record<string, OptionSpec>;

/** Default values a schema may give, one per key at most. */
export type OptionDefaults<K extends OptionSpecs> = {
  [k in keyof K]?: K[k] extends { type: 'list' } ? readonly string[] : OptionValue<K[k]>;
};

/** What `parse()` returns: every key present; keys without a default are `undefined` when not given. */
export type ParsedOptions<K extends OptionSpecs, D extends OptionDefaults<K> = Record<never, never>> = {
  [k in keyof K]: k extends keyof D ? (undefined extends D[k] ? OptionValue<K[k]> | undefined : OptionValue<K[k]>) : OptionValue<K[k]> | undefined;
};

export interface OptionsSchemaInit<K extends OptionSpecs, D extends OptionDefaults<K>> {
  /** The driver's option prefix without the dot: `overlay`, `dm`, `vfs`. */
  prefix: string;
  /** Other prefixes accepted for compatibility (`overlay2` for overlay). */
  prefixAliases?: readonly string[];
  /** The keys, lowercase, without prefix. */
  keys: K;
  defaults?: D;
  /** Checks across keys after parsing; throws an InvalidOptionError naming the key at fault. */
  validate?: (options: ParsedOptions<K, D>) => void;
}

export interface OptionsSchema<K extends OptionSpecs, D extends OptionDefaults<K>> {
  readonly prefix: string;
  readonly keys: Readonly<K>;
  readonly defaults: Readonly<D>;
  /** Parses and validates; throws InvalidOptionError naming the first bad key. */
  parse(input?: DriverOptionsInput | null): ParsedOptions<K, D>;
}

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's strconv.ParseBool: undefined for anything outside its set (`yes` and `on` are not in it). */
export function parseBool(value: string): boolean | undefined {
  if (GO_TRUE.has(value)) return true;
  if (GO_FALSE.has(value)) return false;
  return undefined;
}

/** Splits `key=value` at the first `=` and trims both sides (ParseKeyValueOpt). */
export function parseKeyValue(option: string): [key: string, value: string] {
  const eq = option.indexOf('=');
  if (eq < 0) throw new InvalidOptionError(option.trim(), `unable to parse key/value option: ${JSON.stringify(option)} (expected key=value)`);
  return [option.slice(0, eq).trim(), option.slice(eq + 1).trim()];
}

type RawValue = string | number | boolean;

/** The raw pairs of either input form, in the order given. */
function entriesOf(input: DriverOptionsInput | null | undefined): Array<[string, RawValue]> {
  if (input === undefined || input === null) return [];
  if (Array.isArray(input)) return input.map((o) => parseKeyValue(String(o)));
  const out: Array<[string, RawValue]> = [];
  for (const [k, v] of Object.entries(input)) {
    if (v === undefined || v === null) continue;
    out.push([k.trim(), typeof v === 'string' ? v.trim() : v]);
  }
  return out;
}

function describe(value: RawValue): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * Converts one raw value to the type of `spec`. `given` is the key as the user wrote it (for the
 * error); `prev` is the value so far, which lists extend.
 */
function convert(spec: OptionSpec, given: string, raw: RawValue, prefix: string, prev: unknown): unknown {
  const bad = (why: string): InvalidOptionError =>
    new InvalidOptionError(given, `${prefix}: invalid value ${describe(raw)} for option ${JSON.stringify(given)}: ${why}`);
  switch (spec.type) {
    case 'string':
      return String(raw);
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      const b = parseBool(String(raw));
      if (b === undefined) throw bad('expected a boolean (true, false, 1, 0, t, f)');
      return b;
    }
    case 'size': {
      let n: number;
      if (typeof raw === 'number') {
        if (!Number.isSafeInteger(raw) || raw < 0) throw bad('expected a whole number of bytes');
        n = raw;
      } else if (typeof raw === 'boolean') {
        throw bad('expected a size such as 10G or 512M');
      } else {
        try {
          n = ramInBytes(raw, given);
        } catch (err) {
          throw bad(`expected a size such as 10G or 512M${err instanceof Error ? ` (${err.message})` : ''}`);
        }
      }
      checkRange(n, spec.min, spec.max, bad);
      return n;
    }
    case 'integer': {
      let n: number;
      if (typeof raw === 'number') {
        if (!Number.isSafeInteger(raw)) throw bad('expected an integer');
        n = raw;
      } else {
        n = parseInteger(String(raw), spec.base ?? 10, bad);
      }
      checkRange(n, spec.min, spec.max, bad);
      return n;
    }
    case 'enum': {
      const s = String(raw);
      if (!spec.values.includes(s)) throw bad(`expected one of ${spec.values.map((v) => JSON.stringify(v)).join(', ')}`);
      return s;
    }
    case 'path': {
      const s = String(raw);
      if (s === '') return undefined;
      return absolutePath(s, bad);
    }
    case 'list': {
      const items = String(raw)
        .split(spec.separator ?? ',')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .map((s) => (spec.items === 'path' ? absolutePath(s, bad) : s));
      return [...(Array.isArray(prev) ? (prev as string[]) : []), ...items];
    }
  }
}

function absolutePath(s: string, bad: (why: string) => InvalidOptionError): string {
  if (!isAbsolute(s)) throw bad(`${JSON.stringify(s)} is not an absolute path`);
  if (s.includes('\0')) throw bad('a path cannot contain a NUL byte');
  const n = normalize(s);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function parseInteger(s: string, base: 8 | 10 | 16, bad: (why: string) => InvalidOptionError): number {
  const digits = base === 8 ? '[0-7]' : base === 16 ? '[0-9a-fA-F]' : '[0-9]';
  const m = new RegExp(`^([+-]?)(${base === 16 ? '(?:0[xX])?' : ''}${digits}+)$`).exec(s);
  if (!m) throw bad(`expected an integer${base === 10 ? '' : ` in base ${base}`}`);
  const body = base === 16 ? m[2]!.replace(/^0[xX]/, '') : m[2]!;
  const n = parseInt(body, base) * (m[1] === '-' ? -1 : 1);
  if (!Number.isSafeInteger(n)) throw bad('out of range');
  return n;
}

function checkRange(n: number, min: number | undefined, max: number | undefined, bad: (why: string) => InvalidOptionError): void {
  if (min !== undefined && n < min) throw bad(`must be at least ${min}`);
  if (max !== undefined && n > max) throw bad(`must be at most ${max}`);
}

/**
 * Declares a driver's options once. `keys` maps each lowercase key to its type; `defaults` gives the
 * value a key has when not set. The returned schema's `parse()` accepts both input forms.
 */
export function defineOptions<const K extends OptionSpecs, const D extends OptionDefaults<K> = Record<never, never>>(
  init: OptionsSchemaInit<K, D>,
): OptionsSchema<K, D> {
  const prefix = init.prefix.toLowerCase();
  const prefixes = [prefix, ...(init.prefixAliases ?? []).map((p) => p.toLowerCase())];
  const names = new Map<string, string>();
  for (const [key, spec] of Object.entries(init.keys)) {
    for (const name of [key, ...(spec.aliases ?? [])]) {
      const lower = name.toLowerCase();
      if (names.has(lower)) throw new TypeError(`${prefix}: option name ${JSON.stringify(lower)} is declared twice`);
      names.set(lower, key);
    }
  }
  const defaults = (init.defaults ?? {}) as D;
  for (const [key, value] of Object.entries(defaults as Record<string, unknown>)) {
    const spec = init.keys[key];
    if (spec === undefined) throw new TypeError(`${prefix}: default given for undeclared option ${JSON.stringify(key)}`);
    if (value === undefined) continue;
    // A schema's defaults pass the same checks as user input: a wrong default is a bug found at import.
    const raw = Array.isArray(value) ? value.join(spec.type === 'list' ? (spec.separator ?? ',') : ',') : (value as RawValue);
    convert(spec, key, raw, prefix, undefined);
  }

  /** The schema key for a user's key, or undefined when it is not ours. */
  const keyOf = (given: string): string | undefined => {
    let k = given.toLowerCase();
    for (const p of prefixes) {
      if (k.startsWith(`${p}.`)) {
        k = k.slice(p.length + 1);
        break;
      }
    }
    if (k.startsWith('.')) k = k.slice(1);
    return names.get(k);
  };

  const parse = (input?: DriverOptionsInput | null): ParsedOptions<K, D> => {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(init.keys)) {
      const d = (defaults as Record<string, unknown>)[key];
      out[key] = Array.isArray(d) ? [...(d as string[])] : d;
    }
    // Lists given by the user replace the default list rather than add to it.
    const userLists = new Set<string>();
    for (const [given, raw] of entriesOf(input)) {
      const key = keyOf(given);
      if (key === undefined) {
        const known = [...names.keys()].sort().join(', ');
        throw new InvalidOptionError(given, `${prefix}: unknown option ${JSON.stringify(given)} (known: ${known})`);
      }
      const spec = init.keys[key]!;
      const prev = spec.type === 'list' && !userLists.has(key) ? undefined : out[key];
      if (spec.type === 'list') userLists.add(key);
      const value = convert(spec, given, raw, prefix, prev);
      // An empty path means "not set": fall back to the default, as moby treats `mount_program=`.
      out[key] = value === undefined ? (defaults as Record<string, unknown>)[key] : value;
    }
    const parsed = out as ParsedOptions<K, D>;
    init.validate?.(parsed);
    return parsed;
  };

  return { prefix, keys: init.keys, defaults, parse };
}

/** The per-layer storage options graphdriver knows (CreateOpts.storageOpt), with their types. */
export interface StorageOpts {
  /** Size limit of the layer in bytes (`size=50M`). */
  size?: number;
  /** Inode limit of the layer (`inodes=100000`), where the quota backend has one. */
  inodes?: number;
}

export type StorageOptKey = keyof StorageOpts;

const storageOptSpecs = {
  size: { type: 'size' },
  inodes: { type: 'integer', min: 0 },
} as const satisfies Record<StorageOptKey, OptionSpec>;

/**
 * Parses a layer's storageOpt record, accepting only `allowedKeys` (a driver without quotas allows
 * none). Keys are case-insensitive as in moby's parseStorageOpt; values as in defineOptions.
 */
export function parseStorageOpt(
  record: Readonly<Record<string, string>> | undefined,
  allowedKeys: readonly StorageOptKey[],
  driver = 'storage-opt',
): StorageOpts {
  const out: StorageOpts = {};
  for (const [given, value] of Object.entries(record ?? {})) {
    const key = given.trim().toLowerCase() as StorageOptKey;
    if (!allowedKeys.includes(key) || !(key in storageOptSpecs)) {
      const known = allowedKeys.length === 0 ? 'this driver takes none' : `known: ${allowedKeys.join(', ')}`;
      throw new InvalidOptionError(given, `${driver}: unknown storage option ${JSON.stringify(given)} (${known})`);
    }
    out[key] = convert(storageOptSpecs[key], given, String(value).trim(), driver, undefined) as number;
  }
  return out;
}
