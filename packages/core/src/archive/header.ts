/**
 * Tar header blocks shaped the way moby writes them, so that our layer diffs are byte-comparable in
 * spirit to Docker's and containers/storage's.
 *
 * moby builds headers with Go's archive/tar (`FileInfoHeader` + `Format = PAX`): permission and
 * set-id/sticky bits only in the mode field, whole-second mtime, no atime/ctime, empty uname/gname,
 * directory names ending in '/', and USTAR whenever every field fits (names split into prefix and
 * suffix, 7 octal digits for ids), a PAX `x` entry named `<dir>/PaxHeaders.0/<base>` only when
 * something does not fit or xattrs must travel. tar-stream's encoder cannot do that (it masks
 * nothing into PAX, clamps ids at 262143, writes binary PAX values as UTF-8 text), so this file
 * lays out the 512-byte blocks itself.
 */
import { PAX_XATTR_PREFIX, encodePaxRecords, type PaxRecord } from './pax.js';

export const BLOCK_SIZE = 512;

/** The entry kinds a layer tar holds. */
export type EntryKind = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

const TYPEFLAG: Record<EntryKind, number> = {
  file: 0x30, // '0'
  link: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  dir: 0x35,
  fifo: 0x36,
};
const TYPEFLAG_PAX = 0x78; // 'x'

/** What we write for one entry, already in tar terms (container ids, canonical name). */
export interface EntryHeader {
  /** Canonical tar name: relative, no leading './', directories end in '/'. */
  name: string;
  kind: EntryKind;
  /** Permission bits plus set-uid, set-gid and sticky (07777); never the file type bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (regular files only; 0 otherwise). */
  size: number;
  /** Whole seconds since the epoch. */
  mtime: number;
  /** Symlink target or hard-link target name; '' otherwise. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** xattrs to carry as `SCHILY.xattr.*` PAX records. */
  xattrs: ReadonlyArray<readonly [name: string, value: Buffer]>;
}

// Field offsets and sizes of a USTAR header block.
const NAME = [0, 100] as const;
const MODE = [100, 8] as const;
const UID = [108, 8] as const;
const GID = [116, 8] as const;
const SIZE = [124, 12] as const;
const MTIME = [136, 12] as const;
const CHKSUM = [148, 8] as const;
const TYPE = 156;
const LINKNAME = [157, 100] as const;
const MAGIC = 257; // "ustar\0" then version "00"
const UNAME = [265, 32] as const;
const GNAME = [297, 32] as const;
const DEVMAJOR = [329, 8] as const;
const DEVMINOR = [337, 8] as const;
const PREFIX = [345, 155] as const;

/** The end-of-archive marker Go writes: two zero blocks, no padding to a record size. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK_SIZE);

/** True when `x` fits an octal field of `size` bytes with its NUL (Go's fitsInOctal). */
function fitsOctal(size: number, x: number): boolean {
  return x >= 0 && x < 8 ** (size - 1);
}

function isASCII(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Go's toASCII: drop every non-ASCII (and NUL) character, a best effort for fixed fields. */
function toASCII(s: string): string {
  if (isASCII(s) && !s.includes('\0')) return s;
  let out = '';
  for (const c of s) {
    const code = c.codePointAt(0) ?? 0;
    if (code < 0x80 && code !== 0) out += c;
  }
  return out;
}

/** Go's splitUSTARPath: a long ASCII name as prefix (<= 155) + '/' + suffix (<= 100). */
function splitUSTARPath(name: string): [prefix: string, suffix: string] | undefined {
  let length = name.length;
  if (length <= NAME[1] || !isASCII(name)) return undefined;
  if (length > PREFIX[1] + 1) length = PREFIX[1] + 1;
  else if (name[length - 1] === '/') length--;
  const i = name.lastIndexOf('/', length - 1);
  const nlen = name.length - i - 1;
  if (i <= 0 || nlen > NAME[1] || nlen === 0 || i > PREFIX[1]) return undefined;
  return [name.slice(0, i), name.slice(i + 1)];
}

function writeString(block: Buffer, [off, size]: readonly [number, number], s: string): void {
  // Only ASCII reaches here (callers pass toASCII'd text), so characters are bytes.
  const n = Math.min(s.length, size);
  block.write(s.slice(0, n), off, n, 'latin1');
  if (s.length < size) block[off + s.length] = 0;
  // Go: some readers take a V7 name ending in '/' as a directory even when the full name (in a
  // PAX record) has none, so a truncated name never ends in '/'.
  if (s.length > size && block[off + size - 1] === 0x2f) {
    let end = size - 1;
    while (end > 0 && s[end - 1] === '/') end--;
    block[off + end] = 0;
  }
}

function writeOctal(block: Buffer, [off, size]: readonly [number, number], x: number): void {
  const digits = fitsOctal(size, x) ? x.toString(8) : '0';
  writeString(block, [off, size], digits.padStart(size - 1, '0'));
}

function finishBlock(block: Buffer): Buffer {
  block.write('ustar\x0000', MAGIC, 8, 'latin1');
  let sum = 8 * 0x20; // the checksum field counts as spaces
  for (let i = 0; i < BLOCK_SIZE; i++) {
    if (i < CHKSUM[0] || i >= CHKSUM[0] + CHKSUM[1]) sum += block[i] as number;
  }
  writeOctal(block, [CHKSUM[0], 7], sum);
  block[CHKSUM[0] + 7] = 0x20;
  return block;
}

/** Zero bytes that pad `size` bytes of data up to a whole block. */
export function paddingFor(size: number): number {
  const rem = size % BLOCK_SIZE;
  return rem === 0 ? 0 : BLOCK_SIZE - rem;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The header block(s) for one entry: a single USTAR block when everything fits, otherwise a PAX
 * `x` entry (header + records + padding) followed by the main block. Data and its padding are the
 * caller's.
 */
export function encodeHeader(h: EntryHeader): Buffer {
  if (!fitsOctal(DEVMAJOR[1], h.devmajor) || !fitsOctal(DEVMINOR[1], h.devminor)) {
    throw new RangeError(`device number ${h.devmajor}:${h.devminor} of ${JSON.stringify(h.name)} does not fit a tar header`);
  }
  const pax = new Map<string, string>();
  let ustar = true;
  let split: [string, string] | undefined;

  const nameBytes = Buffer.byteLength(h.name);
  if (!isASCII(h.name) || nameBytes > NAME[1]) {
    split = splitUSTARPath(h.name);
    if (split === undefined) ustar = false;
    pax.set('path', h.name);
  }
  if (!isASCII(h.linkname) || Buffer.byteLength(h.linkname) > LINKNAME[1]) {
    ustar = false;
    pax.set('linkpath', h.linkname);
  }
  for (const [key, value, size] of [
    ['uid', h.uid, UID[1]],
    ['gid', h.gid, GID[1]],
    ['size', h.size, SIZE[1]],
    ['mtime', h.mtime, MTIME[1]],
  ] as const) {
    if (!Number.isSafeInteger(value) || (key !== 'mtime' && value < 0)) {
      throw new RangeError(`invalid ${key} ${value} for ${JSON.stringify(h.name)}`);
    }
    if (!fitsOctal(size, value)) {
      ustar = false;
      pax.set(key, String(value));
    }
  }
  if (h.xattrs.length > 0) ustar = false;

  const main = Buffer.alloc(BLOCK_SIZE);
  if (ustar) {
    writeString(main, NAME, split === undefined ? h.name : split[1]);
    if (split !== undefined) writeString(main, PREFIX, split[0]);
  } else {
    writeString(main, NAME, toASCII(h.name));
  }
  writeOctal(main, MODE, h.mode & 0o7777);
  writeOctal(main, UID, h.uid);
  writeOctal(main, GID, h.gid);
  writeOctal(main, SIZE, h.size);
  writeOctal(main, MTIME, h.mtime);
  main[TYPE] = TYPEFLAG[h.kind];
  writeString(main, LINKNAME, ustar ? h.linkname : toASCII(h.linkname));
  writeString(main, UNAME, '');
  writeString(main, GNAME, '');
  writeOctal(main, DEVMAJOR, h.devmajor);
  writeOctal(main, DEVMINOR, h.devminor);
  finishBlock(main);
  if (ustar) return main;

  const records: PaxRecord[] = [];
  for (const [key, value] of pax) records.push([key, Buffer.from(value, 'utf8')]);
  for (const [name, value] of h.xattrs) records.push([PAX_XATTR_PREFIX + name, value]);
  records.sort((a, b) => compareBytes(a[0], b[0]));
  const body = encodePaxRecords(records);

  const ext = Buffer.alloc(BLOCK_SIZE);
  writeString(ext, NAME, paxHeaderName(h.name));
  writeOctal(ext, MODE, 0);
  writeOctal(ext, UID, 0);
  writeOctal(ext, GID, 0);
  writeOctal(ext, SIZE, body.length);
  writeOctal(ext, MTIME, 0);
  ext[TYPE] = TYPEFLAG_PAX;
  finishBlock(ext);
  return Buffer.concat([ext, body, Buffer.alloc(paddingFor(body.length)), main]);
}

// ---- the one-block fast path ------------------------------------------------------------------

/** A USTAR block with what every header holds already in place: zero digits, the magic. */
const TEMPLATE: Buffer = (() => {
  const b = Buffer.alloc(BLOCK_SIZE);
  for (const field of [MODE, UID, GID, SIZE, MTIME, DEVMAJOR, DEVMINOR]) writeOctal(b, field, 0);
  b.write('ustar\x0000', MAGIC, 8, 'latin1');
  return b;
})();
/** The template's checksum (its checksum field counting as spaces). */
const TEMPLATE_SUM = TEMPLATE.reduce((sum, c) => sum + c, 8 * 0x20);

const OCTAL7 = 8 ** 7;
const OCTAL11 = 8 ** 11;

/** ASCII with no NUL, at most `max` characters: it goes into a fixed field as it is. */
function isPlainField(s: string, max: number): boolean {
  if (s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || c === 0) return false;
  }
  return true;
}

/**
 * True when encodeHeader(h) is a single USTAR block with nothing to split or truncate (the
 * common case: short ASCII names, ids and sizes that fit, no xattrs); encodeUstarInto writes it.
 */
export function fitsOneBlock(h: EntryHeader): boolean {
  return (
    h.xattrs.length === 0 &&
    isPlainField(h.name, NAME[1]) &&
    isPlainField(h.linkname, LINKNAME[1]) &&
    Number.isInteger(h.uid) && h.uid >= 0 && h.uid < OCTAL7 &&
    Number.isInteger(h.gid) && h.gid >= 0 && h.gid < OCTAL7 &&
    Number.isInteger(h.size) && h.size >= 0 && h.size < OCTAL11 &&
    Number.isInteger(h.mtime) && h.mtime >= 0 && h.mtime < OCTAL11 &&
    Number.isInteger(h.devmajor) && h.devmajor >= 0 && h.devmajor < OCTAL7 &&
    Number.isInteger(h.devminor) && h.devminor >= 0 && h.devminor < OCTAL7
  );
}

/** Octal digits of `x` ending at `last` over the template's zeros; returns what they add to the sum. */
function putOctal(b: Buffer, last: number, x: number): number {
  let added = 0;
  for (let i = last; x > 0; i--) {
    const d = x % 8;
    b[i] = 0x30 + d;
    added += d;
    x = (x - d) / 8;
  }
  return added;
}

function putString(b: Buffer, off: number, s: string): number {
  let added = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    b[off + i] = c;
    added += c;
  }
  return added;
}

/**
 * Write the header of `h`, which fitsOneBlock accepted, into `buf` at `off`: the same 512 bytes
 * encodeHeader returns, without allocating and without summing the whole block (pack writes one
 * per file).
 */
export function encodeUstarInto(h: EntryHeader, buf: Buffer, off: number): void {
  TEMPLATE.copy(buf, off);
  let sum = TEMPLATE_SUM;
  sum += putString(buf, off + NAME[0], h.name);
  sum += putOctal(buf, off + MODE[0] + MODE[1] - 2, h.mode & 0o7777);
  sum += putOctal(buf, off + UID[0] + UID[1] - 2, h.uid);
  sum += putOctal(buf, off + GID[0] + GID[1] - 2, h.gid);
  sum += putOctal(buf, off + SIZE[0] + SIZE[1] - 2, h.size);
  sum += putOctal(buf, off + MTIME[0] + MTIME[1] - 2, h.mtime);
  const type = TYPEFLAG[h.kind];
  buf[off + TYPE] = type;
  sum += type;
  sum += putString(buf, off + LINKNAME[0], h.linkname);
  sum += putOctal(buf, off + DEVMAJOR[0] + DEVMAJOR[1] - 2, h.devmajor);
  sum += putOctal(buf, off + DEVMINOR[0] + DEVMINOR[1] - 2, h.devminor);
  // Six digits, NUL, space (Go's and finishBlock's layout).
  const c = off + CHKSUM[0];
  for (let i = 5; i >= 0; i--) {
    buf[c + i] = 0x30 + (sum % 8);
    sum = Math.floor(sum / 8);
  }
  buf[c + 6] = 0;
  buf[c + 7] = 0x20;
}

/** Go's name for a PAX extended header: path.Join(dir, "PaxHeaders.0", base), ASCII, <= 100 bytes. */
function paxHeaderName(name: string): string {
  const slash = name.lastIndexOf('/');
  const dir = name.slice(0, slash + 1);
  const base = name.slice(slash + 1);
  const joined = [dir.replace(/\/+$/, ''), 'PaxHeaders.0', base].filter((p) => p !== '').join('/');
  return toASCII(joined).slice(0, NAME[1]).replace(/\/+$/, '');
}
