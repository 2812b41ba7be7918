/**
 * Sizes as people write them and as moby reads and prints them (github.com/docker/go-units):
 * `ramInBytes('1.5GiB')` (binary multiples; what `dm.basesize`, `overlay.size` and the per-layer
 * `size` storage option use), `fromHumanSize('20MB')` (decimal multiples), and the two printers,
 * `humanSize` (decimal, `2.746MB`) and `bytesSize` (binary, `2.619MiB`), with go-units' exact output
 * so that status rows read the same as docker's.
 */

import { InvalidOptionError } from './errors.js';

const KB = 1000;
const KiB = 1024;

type UnitMap = Readonly<Record<string, number>>;

const decimalMap: UnitMap = { k: KB, m: KB ** 2, g: KB ** 3, t: KB ** 4, p: KB ** 5 };
const binaryMap: UnitMap = { k: KiB, m: KiB ** 2, g: KiB ** 3, t: KiB ** 4, p: KiB ** 5 };

const decimalAbbrs = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'] as const;
const binaryAbbrs = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'] as const;

/**
 * The error for a size go-units would refuse: an InvalidOptionError naming the option the size was
 * given for (`size` unless the caller says which), with the input and the reason in its message.
 */
function sizeError(key: string, input: string, reason: string): InvalidOptionError {
  return new InvalidOptionError(key, `invalid size ${JSON.stringify(input)} for ${JSON.stringify(key)}: ${reason}`);
}

// Go's strconv.ParseFloat in base 10, without the hex, inf/nan and underscore forms that cannot
// reach it here or that no one writes for a size.
const GO_DECIMAL_FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseWith(input: string, units: UnitMap, key: string): number {
  // go-units splits at the last digit, dot or space: the number is before it, the suffix after.
  let sep = -1;
  for (let i = input.length - 1; i >= 0; i--) {
    if ('0123456789. '.includes(input[i]!)) {
      sep = i;
      break;
    }
  }
  if (sep === -1) throw sizeError(key, input, 'there should be at least a digit');
  const num = input[sep] === ' ' ? input.slice(0, sep) : input.slice(0, sep + 1);
  let sfx = input.slice(sep + 1);
  if (!GO_DECIMAL_FLOAT.test(num)) throw sizeError(key, input, `${JSON.stringify(num)} is not a number`);
  let size = Number(num);
  if (size < 0) throw sizeError(key, input, 'negative');

  if (sfx.length > 0) {
    const bad = (): InvalidOptionError => sizeError(key, input, `invalid suffix ${JSON.stringify(sfx)}`);
    if (sfx.length > 3) throw bad();
    sfx = sfx.toLowerCase();
    if (sfx[0] === 'b') {
      if (sfx.length > 1) throw bad();
    } else {
      const mul = units[sfx[0]!];
      if (mul === undefined) throw bad();
      size *= mul;
      // The letter may be followed by "b" or "ib" (KB, KiB), whichever map is in use.
      if (sfx.length === 2 && sfx[1] !== 'b') throw bad();
      if (sfx.length === 3 && sfx.slice(1) !== 'ib') throw bad();
    }
  }
  // Go truncates toward zero when it converts to int64; past 2^53 a JS number is no longer exact.
  const bytes = Math.trunc(size);
  if (!Number.isSafeInteger(bytes)) throw sizeError(key, input, 'too large');
  return bytes;
}

/**
 * Bytes in a size written with binary multiples (go-units RAMInBytes): `512`, `512b`, `4k`,
 * `50M`, `10g`, `1.5GiB`, `2 TB`. The unit is case-insensitive, `b`/`ib` after it optional; `k`
 * is 1024. Fractions are truncated to whole bytes. Throws InvalidOptionError naming `key`.
 */
export function ramInBytes(input: string, key = 'size'): number {
  return parseWith(input, binaryMap, key);
}

/** Bytes in a size written with decimal (SI) multiples (go-units FromHumanSize): `44kB` is 44000. Throws InvalidOptionError naming `key`. */
export function fromHumanSize(input: string, key = 'size'): number {
  return parseWith(input, decimalMap, key);
}

/**
 * The exact decimal expansion of a finite, positive double: `digits` (no leading zeros) times
 * 10^(exp - digits.length + 1), i.e. `exp` is the decimal exponent of the first digit. Exact
 * because every double is m * 2^e, and m * 2^e = m * 5^-e / 10^-e for e < 0.
 */
function exactDecimal(x: number): { digits: string; exp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e2: number;
  if (biased === 0) e2 = -1074;
  else {
    mant |= 1n << 52n;
    e2 = biased - 1075;
  }
  let digits: string;
  let scale: number; // value = digits * 10^scale
  if (e2 >= 0) {
    digits = (mant << BigInt(e2)).toString();
    scale = 0;
  } else {
    digits = (mant * 5n ** BigInt(-e2)).toString();
    scale = e2;
  }
  const stripped = digits.replace(/0+$/, '');
  scale += digits.length - stripped.length;
  return { digits: stripped, exp: scale + stripped.length - 1 };
}

/** Rounds a digit string to `p` digits, halves to even (Go's strconv). May carry into a new digit. */
function roundDigits(digits: string, exp: number, p: number): { digits: string; exp: number } {
  if (digits.length <= p) return { digits: digits.padEnd(p, '0'), exp };
  const keep = digits.slice(0, p);
  const rest = digits.slice(p);
  const first = rest.charCodeAt(0) - 48;
  const beyond = /[1-9]/.test(rest.slice(1));
  const lastOdd = (keep.charCodeAt(p - 1) - 48) % 2 === 1;
  const up = first > 5 || (first === 5 && (beyond || lastOdd));
  if (!up) return { digits: keep, exp };
  const n = (BigInt(keep) + 1n).toString();
  return n.length > p ? { digits: n.slice(0, p), exp: exp + 1 } : { digits: n, exp };
}

/**
 * Go's `%.<precision>g` for one number: `precision` significant digits rounded as Go rounds
 * (exact value, halves to even), the exponent form when the exponent is < -4 or >= precision,
 * trailing zeros dropped, exponents of at least two digits (`1e+06`).
 */
export function formatGoG(value: number, precision: number): string {
  if (value === 0) return '0';
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  const p = Math.max(1, Math.trunc(precision));
  const sign = value < 0 ? '-' : '';
  const exact = exactDecimal(Math.abs(value));
  const { digits, exp } = roundDigits(exact.digits, exact.exp, p);
  const significant = digits.replace(/0+$/, '') || '0';
  if (exp < -4 || exp >= p) {
    const mantissa = significant.length > 1 ? `${significant[0]}.${significant.slice(1)}` : significant;
    return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${significant}`;
  const intPart = significant.slice(0, exp + 1).padEnd(exp + 1, '0');
  const frac = significant.slice(exp + 1);
  return `${sign}${intPart}${frac === '' ? '' : `.${frac}`}`;
}

function customSize(size: number, base: number, abbrs: readonly string[], precision: number): string {
  let i = 0;
  while (size >= base && i < abbrs.length - 1) {
    size /= base;
    i++;
  }
  return `${formatGoG(size, precision)}${abbrs[i]}`;
}

/** A size with decimal units and 4 significant digits, as go-units HumanSize: `2.746MB`, `999B`, `1GB`. */
export function humanSize(bytes: number, precision = 4): string {
  return customSize(bytes, 1000, decimalAbbrs, precision);
}

/** A size with binary units and 4 significant digits, as go-units BytesSize: `44KiB`, `1.5GiB`. */
export function bytesSize(bytes: number): string {
  return customSize(bytes, 1024, binaryAbbrs, 4);
}
