/**
 * Decoding one 512-byte tar header block, the way Go's archive/tar reads it (moby unpacks with
 * it, so it decides what a layer tar may contain): checksum verification (unsigned and signed
 * sums), format detection (V7, USTAR/PAX, GNU and old GNU, star), numeric fields in octal or GNU
 * base-256, the USTAR prefix. PAX records and GNU long names are the framer's (tar-reader.ts).
 *
 * The block is decoded in place from the caller's buffer into a reused HeaderFields object: this
 * runs once per entry on the unpack hot path, so it allocates only the strings it returns.
 */
import { InvalidArchiveError } from '../errors.js';

export const BLOCK = 512;

/** Typeflags (the byte at offset 156). */
export const TF = {
  REG_A: 0x00, // '\0': pre-POSIX regular file (a directory when the name ends in '/')
  REG: 0x30, // '0'
  LINK: 0x31,
  SYMLINK: 0x32,
  CHAR: 0x33,
  BLOCK: 0x34,
  DIR: 0x35,
  FIFO: 0x36,
  CONT: 0x37, // '7' contiguous file: a regular file
  PAX: 0x78, // 'x'
  PAX_GLOBAL: 0x67, // 'g'
  GNU_LONGNAME: 0x4c, // 'L'
  GNU_LONGLINK: 0x4b, // 'K'
  GNU_SPARSE: 0x53, // 'S'
} as const;

/** Human words for the typeflags a layer tar must not hold, for error messages. */
const UNSUPPORTED_TYPES: Record<number, string> = {
  0x53: 'GNU sparse file; sparse files are not supported in layer tars',
  0x56: 'GNU volume label',
  0x4d: 'GNU multi-volume continuation',
  0x4e: 'old GNU long file names',
  0x44: 'GNU incremental dump directory',
};

export function describeUnsupportedType(typeflag: number): string {
  const printable = typeflag >= 0x20 && typeflag < 0x7f ? `'${String.fromCharCode(typeflag)}'` : `0x${typeflag.toString(16)}`;
  return `unsupported tar entry type ${printable} (${UNSUPPORTED_TYPES[typeflag] ?? 'unknown'})`;
}

/** The fields of one header block (reused from block to block by its owner). */
export class HeaderFields {
  name = '';
  typeflag = 0;
  mode = 0;
  uid = 0;
  gid = 0;
  size = 0;
  mtime = 0;
  linkname = '';
  devmajor = 0;
  devminor = 0;
  /** GNU and star headers may carry an access time; 0 when absent. */
  atime = 0;
}

/** What a block turned out to be (classifyBlock). */
export const BLOCK_HEADER = 0;
export const BLOCK_ZERO = 1;
export const BLOCK_BAD_CHECKSUM = 2;
export type BlockKind = typeof BLOCK_HEADER | typeof BLOCK_ZERO | typeof BLOCK_BAD_CHECKSUM;

// Field offsets (USTAR layout; V7 has the first eight, GNU and star differ after devminor).
const NAME = 0;
const MODE = 100;
const UID = 108;
const GID = 116;
const SIZE = 124;
const MTIME = 136;
const CHKSUM = 148;
const TYPEFLAG = 156;
const LINKNAME = 157;
const MAGIC = 257;
const DEVMAJOR = 329;
const DEVMINOR = 337;
const PREFIX = 345;
const GNU_ATIME = 345;
const STAR_PREFIX_LEN = 131;
const STAR_ATIME = 476;

const SPACE = 0x20;

// Header formats (Go's getFormat); PAX is USTAR plus 'x' entries.
const V7 = 0;
const USTAR = 1;
const GNU = 2;
const STAR = 3;
type Format = typeof V7 | typeof USTAR | typeof GNU | typeof STAR;

/** A 32-bit view of the last buffer classifyBlock read (the input's chunks share few buffers). */
let wordsOf: ArrayBufferLike | undefined;
let words: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

/**
 * Sum the block and compare with its checksum field: Go accepts the unsigned sum (POSIX) and the
 * signed one (old Sun tar and others summed signed chars). A block of zeros is the end marker.
 */
export function classifyBlock(b: Uint8Array, off: number): BlockKind {
  let unsigned = 0;
  let high = 0; // bytes >= 0x80: each counts 256 less in the signed sum
  const start = b.byteOffset + off;
  if ((start & 3) === 0) {
    // Four bytes at a time (this runs once per entry): two 16-bit lanes of byte sums, four 8-bit
    // lanes counting high bits. 128 words cannot overflow a lane (128 * 2 * 255 < 65536).
    if (b.buffer !== wordsOf) {
      wordsOf = b.buffer;
      words = new Uint32Array(b.buffer, 0, b.buffer.byteLength >>> 2);
    }
    let lanes = 0;
    let highs = 0;
    for (let i = start >>> 2, end = i + BLOCK / 4; i < end; i++) {
      const w = words[i] as number;
      lanes += (w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff);
      highs += (w >>> 7) & 0x01010101;
    }
    unsigned = (lanes & 0xffff) + (lanes >>> 16);
    high = (highs & 0xff) + ((highs >>> 8) & 0xff) + ((highs >>> 16) & 0xff) + (highs >>> 24);
  } else {
    for (let i = off, end = off + BLOCK; i < end; i++) {
      const c = b[i] as number;
      unsigned += c;
      high += c >> 7;
    }
  }
  if (unsigned === 0) return BLOCK_ZERO;
  let field = 0;
  let fieldHigh = 0;
  for (let i = off + CHKSUM, end = i + 8; i < end; i++) {
    const c = b[i] as number;
    field += c;
    fieldHigh += c >> 7;
  }
  // The checksum field itself counts as eight spaces.
  unsigned += 8 * SPACE - field;
  const signed = unsigned - 256 * (high - fieldHigh);
  const stored = parseOctalField(b, off + CHKSUM, 8);
  return stored === unsigned || stored === signed ? BLOCK_HEADER : BLOCK_BAD_CHECKSUM;
}

/** Decode a block that classifyBlock accepted into `h` (numeric field errors name the entry). */
export function decodeHeader(b: Buffer, off: number, h: HeaderFields): void {
  const format = formatOf(b, off);
  h.typeflag = b[off + TYPEFLAG] as number;
  let name = cString(b, off + NAME, 100);
  h.linkname = cString(b, off + LINKNAME, 100);
  h.name = name; // for error messages from the numeric fields below
  h.size = numeric(b, off + SIZE, 12, 'size', name);
  h.mode = numeric(b, off + MODE, 8, 'mode', name);
  h.uid = numeric(b, off + UID, 8, 'uid', name);
  h.gid = numeric(b, off + GID, 8, 'gid', name);
  h.mtime = numeric(b, off + MTIME, 12, 'mtime', name);
  h.devmajor = 0;
  h.devminor = 0;
  h.atime = 0;
  if (format !== V7) {
    // uname/gname are not used: a layer's owners are numeric.
    h.devmajor = numeric(b, off + DEVMAJOR, 8, 'devmajor', name);
    h.devminor = numeric(b, off + DEVMINOR, 8, 'devminor', name);
    let prefix = '';
    if (format === USTAR) {
      prefix = cString(b, off + PREFIX, 155);
    } else if (format === STAR) {
      prefix = cString(b, off + PREFIX, STAR_PREFIX_LEN);
      h.atime = optionalNumeric(b, off + STAR_ATIME, 12);
    } else if (b[off + GNU_ATIME] !== 0) {
      // GNU: atime only when present; Go ignores a malformed one rather than failing.
      h.atime = optionalNumeric(b, off + GNU_ATIME, 12);
    }
    if (prefix.length > 0) name = `${prefix}/${name}`;
  }
  h.name = name;
}

/** Go's getFormat: "ustar\0" is USTAR (star when the block ends in "tar\0"), "ustar  \0" GNU. */
function formatOf(b: Uint8Array, off: number): Format {
  const m = off + MAGIC;
  if (b[m] !== 0x75 || b[m + 1] !== 0x73 || b[m + 2] !== 0x74 || b[m + 3] !== 0x61 || b[m + 4] !== 0x72) return V7;
  const sixth = b[m + 5];
  if (sixth === 0) {
    const t = off + 508;
    return b[t] === 0x74 && b[t + 1] === 0x61 && b[t + 2] === 0x72 && b[t + 3] === 0 ? STAR : USTAR;
  }
  if (sixth === SPACE && b[m + 6] === SPACE && b[m + 7] === 0) return GNU;
  return V7;
}

/** A NUL-terminated string field (the whole field when it has no NUL), as UTF-8. */
export function cString(b: Buffer, off: number, len: number): string {
  let end = off;
  const max = off + len;
  let ascii = true;
  while (end < max) {
    const c = b[end] as number;
    if (c === 0) break;
    if (c >= 0x80) ascii = false;
    end++;
  }
  if (end === off) return '';
  // latin1 is the cheaper decoder and exact for ASCII, which nearly every name is.
  return b.toString(ascii ? 'latin1' : 'utf8', off, end);
}

/** A numeric field: GNU base-256 when the first byte has its high bit set, else octal. */
function numeric(b: Uint8Array, off: number, len: number, what: string, entry: string): number {
  const x = (b[off] as number) & 0x80 ? parseBase256(b, off, len) : parseOctalField(b, off, len);
  if (Number.isNaN(x)) throw new InvalidArchiveError(`invalid ${what} field in the tar header`, entry);
  return x;
}

function optionalNumeric(b: Uint8Array, off: number, len: number): number {
  const x = (b[off] as number) & 0x80 ? parseBase256(b, off, len) : parseOctalField(b, off, len);
  return Number.isNaN(x) ? 0 : x;
}

/**
 * Go's parseOctal: leading and trailing spaces and NULs are padding, the digits end at the first
 * NUL; NaN for anything else. An empty field is 0.
 */
export function parseOctalField(b: Uint8Array, off: number, len: number): number {
  let s = off;
  let e = off + len;
  while (s < e && (b[s] === SPACE || b[s] === 0)) s++;
  while (e > s && (b[e - 1] === SPACE || b[e - 1] === 0)) e--;
  let x = 0;
  for (let i = s; i < e; i++) {
    const c = b[i] as number;
    if (c === 0) break;
    const d = c - 0x30;
    if (d < 0 || d > 7) return NaN;
    x = x * 8 + d;
  }
  return x;
}

/**
 * GNU base-256: big-endian two's complement after the marker bit 0x80 (0x40 set: negative). NaN
 * when the value does not fit a safe integer.
 */
export function parseBase256(b: Uint8Array, off: number, len: number): number {
  const inv = (b[off] as number) & 0x40 ? 0xff : 0;
  let x = 0;
  for (let i = 0; i < len; i++) {
    let c = (b[off + i] as number) ^ inv;
    if (i === 0) c &= 0x7f;
    if (x > (Number.MAX_SAFE_INTEGER - c) / 256) return NaN;
    x = x * 256 + c;
  }
  // ^x in Go for the negative case: -(x + 1).
  return inv === 0 ? x : -x - 1;
}
