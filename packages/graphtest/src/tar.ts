/**
 * A tiny ustar writer and lister for the suite's own use: the writer makes the hand-built layer
 * tars (opaque markers, whiteouts, and the malicious tars: `../` names, symlinks and hard links that
 * point out, a symlink replacing a directory, truncation), byte by byte as we mean them, with no
 * library between us and the header that might "fix" a name; the lister reads back what a driver's
 * diff() produced (names, types, link targets) so a case can assert the tar's shape (AUFS
 * whiteouts, no overlay 0/0 devices). Names longer than ustar's 100 bytes go into a PAX header.
 */

export type TarEntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarEntry {
  name: string;
  type: TarEntryType;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch. Default 1_700_000_000. */
  mtime?: number;
  /** Content of a regular file. */
  data?: Uint8Array | string;
  /** Target of a symlink or hard link. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
}

const BLOCK = 512;
const TYPEFLAG: Record<TarEntryType, string> = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(value: number, width: number): string {
  // width includes the terminating NUL.
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function writeString(buf: Buffer, offset: number, width: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > width) throw new RangeError(`tar header field too long: ${JSON.stringify(value)}`);
  bytes.copy(buf, offset);
}

function header(fields: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}): Buffer {
  const h = Buffer.alloc(BLOCK);
  writeString(h, 0, 100, fields.name);
  writeString(h, 100, 8, octal(fields.mode, 8));
  writeString(h, 108, 8, octal(fields.uid, 8));
  writeString(h, 116, 8, octal(fields.gid, 8));
  writeString(h, 124, 12, octal(fields.size, 12));
  writeString(h, 136, 12, octal(fields.mtime, 12));
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  writeString(h, 156, 1, fields.typeflag);
  writeString(h, 157, 100, fields.linkname);
  writeString(h, 257, 6, 'ustar\0');
  writeString(h, 263, 2, '00');
  writeString(h, 329, 8, octal(fields.devmajor, 8));
  writeString(h, 337, 8, octal(fields.devminor, 8));
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

function padded(data: Buffer): Buffer[] {
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return pad === 0 ? [data] : [data, Buffer.alloc(pad)];
}

function paxRecord(key: string, value: string): Buffer {
  // "<len> key=value\n" where len counts itself.
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body) + 1;
  while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
  return Buffer.from(`${len}${body}`, 'utf8');
}

/** The tar of `entries`, in order, with the two zero blocks at the end unless `truncateTo` cuts it. */
export function buildTar(entries: readonly TarEntry[], opts: { truncateTo?: number } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' && e.data !== undefined ? Buffer.from(e.data) : Buffer.alloc(0);
    const linkname = e.linkname ?? '';
    const pax: Buffer[] = [];
    let name = e.name;
    if (Buffer.byteLength(name) > 100) {
      pax.push(paxRecord('path', name));
      name = name.slice(0, 99);
    }
    let link = linkname;
    if (Buffer.byteLength(link) > 100) {
      pax.push(paxRecord('linkpath', link));
      link = link.slice(0, 99);
    }
    const mtime = e.mtime ?? 1_700_000_000;
    if (pax.length > 0) {
      const body = Buffer.concat(pax);
      parts.push(
        header({ name: 'PaxHeaders/entry', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime, typeflag: 'x', linkname: '', devmajor: 0, devminor: 0 }),
        ...padded(body),
      );
    }
    const defaultMode = e.type === 'dir' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644;
    parts.push(
      header({
        name,
        mode: e.mode ?? defaultMode,
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        size: data.length,
        mtime,
        typeflag: TYPEFLAG[e.type],
        linkname: link,
        devmajor: e.devmajor ?? 0,
        devminor: e.devminor ?? 0,
      }),
    );
    if (data.length > 0) parts.push(...padded(data));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  const tar = Buffer.concat(parts);
  return opts.truncateTo === undefined ? tar : tar.subarray(0, opts.truncateTo);
}

export interface ListedEntry {
  name: string;
  /** The ustar typeflag, e.g. '0' file, '5' dir, '3' char device. */
  typeflag: string;
  linkname: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  devmajor: number;
  devminor: number;
}

function readString(buf: Buffer, offset: number, width: number): string {
  const field = buf.subarray(offset, offset + width);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? width : nul).toString('utf8');
}

function readOctal(buf: Buffer, offset: number, width: number): number {
  const field = buf.subarray(offset, offset + width);
  if ((field[0]! & 0x80) !== 0) {
    // GNU base-256 for large values.
    let n = 0;
    for (let i = 1; i < width; i++) n = n * 256 + field[i]!;
    return n;
  }
  const s = readString(buf, offset, width).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(body.subarray(i, sp).toString('ascii'), 10);
    if (!(len > 0)) break;
    const rec = body.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

/** The entries of a whole tar in memory (the small diffs of the conformance cases). */
export function listTar(tar: Buffer): ListedEntry[] {
  const out: ListedEntry[] = [];
  let off = 0;
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  while (off + BLOCK <= tar.length) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    const size = readOctal(h, 124, 12);
    const typeflag = String.fromCharCode(h[156]!) || '0';
    const bodyStart = off + BLOCK;
    const body = tar.subarray(bodyStart, bodyStart + size);
    off = bodyStart + Math.ceil(size / BLOCK) * BLOCK;
    if (typeflag === 'x') {
      pax = parsePax(body);
      continue;
    }
    if (typeflag === 'g') continue;
    if (typeflag === 'L') {
      longName = body.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    if (typeflag === 'K') {
      longLink = body.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const prefix = readString(h, 345, 155);
    const short = readString(h, 0, 100);
    const name = pax.get('path') ?? longName ?? (prefix === '' ? short : `${prefix}/${short}`);
    const linkname = pax.get('linkpath') ?? longLink ?? readString(h, 157, 100);
    out.push({
      name,
      typeflag: typeflag === '\0' ? '0' : typeflag,
      linkname,
      size,
      mode: readOctal(h, 100, 8),
      uid: Number(pax.get('uid') ?? readOctal(h, 108, 8)),
      gid: Number(pax.get('gid') ?? readOctal(h, 116, 8)),
      devmajor: readOctal(h, 329, 8),
      devminor: readOctal(h, 337, 8),
    });
    pax = new Map();
    longName = undefined;
    longLink = undefined;
  }
  return out;
}

/** Reads a whole stream into one Buffer. */
export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}
