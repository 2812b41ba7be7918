/**
 * PAX extended header records (POSIX.1-2001 `x` entries), encoded and decoded as bytes.
 *
 * tar-stream 3.2.2 turns every PAX value into a UTF-8 string, which corrupts binary xattr values
 * (`security.capability`, ACLs) and it ignores `uid`, `gid` and `mtime`. Layers carry such values,
 * so this file owns the record format itself: values stay Buffers until a caller asks for a string
 * or a number, and the typed accessors say exactly which keys a layer tar may use.
 */
import { InvalidArchiveError } from '../errors.js';

/** The PAX key prefix under which xattrs travel (star's convention, used by GNU tar, Go and moby). */
export const PAX_XATTR_PREFIX = 'SCHILY.xattr.';

/** One `key=value` record; the value is raw bytes. */
export type PaxRecord = readonly [key: string, value: Buffer];

const SPACE = 0x20;
const EQUALS = 0x3d;
const NEWLINE = 0x0a;

/**
 * Encode records as `"%d %s=%s\n"`, the length counting itself. Callers pass them in the order
 * they want written (Go's archive/tar, whose output we imitate, sorts keys bytewise).
 */
export function encodePaxRecords(records: readonly PaxRecord[]): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of records) {
    if (key.length === 0 || key.includes('=') || key.includes('\0')) {
      throw new TypeError(`invalid PAX key ${JSON.stringify(key)}`);
    }
    const keyBytes = Buffer.from(key, 'utf8');
    // ' ' + key + '=' + value + '\n'
    const body = keyBytes.length + value.length + 3;
    let digits = String(body).length;
    // Adding the length's own digits may carry it into one more digit (e.g. 98 -> 101).
    if (String(body + digits).length !== digits) digits += 1;
    const total = body + digits;
    const rec = Buffer.allocUnsafe(total);
    let off = rec.write(String(total), 0, 'latin1');
    rec[off++] = SPACE;
    off += keyBytes.copy(rec, off);
    rec[off++] = EQUALS;
    off += value.copy(rec, off);
    rec[off] = NEWLINE;
    parts.push(rec);
  }
  return Buffer.concat(parts);
}

/**
 * Decode the body of a PAX header into records, strictly (as Go's reader does): a record whose
 * length is not a decimal number, does not end in a newline or has no `=` makes the archive invalid.
 * Later records with the same key win, so a Map is returned. Values are copies, safe to keep.
 */
export function decodePaxRecords(body: Uint8Array, entry?: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  let pos = 0;
  while (pos < buf.length) {
    // Some writers pad the body with NULs to the block size; a NUL where a length should be ends it.
    if (buf[pos] === 0) break;
    let sp = pos;
    while (sp < buf.length && buf[sp] !== SPACE) sp++;
    const lenText = buf.toString('latin1', pos, sp);
    if (sp >= buf.length || !/^[0-9]+$/.test(lenText)) throw corrupt('bad record length', entry);
    const len = Number(lenText);
    const end = pos + len;
    if (len <= sp - pos + 1 || end > buf.length || buf[end - 1] !== NEWLINE) {
      throw corrupt('record length does not match its content', entry);
    }
    const eq = buf.indexOf(EQUALS, sp + 1);
    if (eq < 0 || eq >= end - 1) throw corrupt('record without "="', entry);
    const key = buf.toString('utf8', sp + 1, eq);
    if (key.length === 0) throw corrupt('record with an empty key', entry);
    out.set(key, Buffer.from(buf.subarray(eq + 1, end - 1)));
    pos = end;
  }
  return out;
}

function corrupt(why: string, entry: string | undefined): InvalidArchiveError {
  return new InvalidArchiveError(`corrupt PAX extended header: ${why}`, entry);
}

/** A PAX decimal integer field (`uid`, `gid`, `size`): non-negative, no sign, no fraction. */
export function paxInteger(records: Map<string, Buffer>, key: string, entry?: string): number | undefined {
  const v = records.get(key);
  if (v === undefined) return undefined;
  const text = v.toString('latin1');
  if (!/^[0-9]+$/.test(text)) throw corrupt(`${key}=${JSON.stringify(text)} is not a decimal number`, entry);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw corrupt(`${key}=${text} is out of range`, entry);
  return n;
}

/** A time as the kernel takes it. */
export interface PaxTime {
  sec: number;
  nsec: number;
}

/** A PAX time field (`mtime`, `atime`): `[-]seconds[.fraction]`, kept to the nanosecond. */
export function paxTime(records: Map<string, Buffer>, key: string, entry?: string): PaxTime | undefined {
  const v = records.get(key);
  if (v === undefined) return undefined;
  const text = v.toString('latin1');
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(text);
  if (m === null) throw corrupt(`${key}=${JSON.stringify(text)} is not a time`, entry);
  const negative = m[1] === '-';
  const whole = Number(m[2]);
  const nsecDigits = (m[3] ?? '').slice(0, 9).padEnd(9, '0');
  const frac = Number(nsecDigits);
  if (!Number.isSafeInteger(whole)) throw corrupt(`${key}=${text} is out of range`, entry);
  if (!negative) return { sec: whole, nsec: frac };
  // -1.25 is 1.25 s before the epoch: sec -2, nsec 750000000 (a timespec's nsec is never negative).
  if (frac === 0) return { sec: -whole, nsec: 0 };
  return { sec: -whole - 1, nsec: 1_000_000_000 - frac };
}

/** A PAX string field (`path`, `linkpath`, `uname`, `gname`); NUL bytes make it invalid. */
export function paxString(records: Map<string, Buffer>, key: string, entry?: string): string | undefined {
  const v = records.get(key);
  if (v === undefined) return undefined;
  if (v.includes(0)) throw corrupt(`${key} contains a NUL byte`, entry);
  return v.toString('utf8');
}

/** The xattrs a PAX header carries (`SCHILY.xattr.<name>=<bytes>`), in header order. */
export function paxXattrs(records: Map<string, Buffer>): Array<[name: string, value: Buffer]> {
  const out: Array<[string, Buffer]> = [];
  for (const [key, value] of records) {
    if (key.startsWith(PAX_XATTR_PREFIX) && key.length > PAX_XATTR_PREFIX.length) {
      out.push([key.slice(PAX_XATTR_PREFIX.length), value]);
    }
  }
  return out;
}

/** True when the records describe a GNU sparse file (PAX formats 0.0, 0.1 and 1.0). */
export function paxIsSparse(records: Map<string, Buffer>): boolean {
  for (const key of records.keys()) if (key.startsWith('GNU.sparse.')) return true;
  return false;
}
