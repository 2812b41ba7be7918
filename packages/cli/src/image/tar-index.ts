/**
 * Random access into an image archive (a `docker save` tar or an OCI archive) without extracting
 * it: one pass over the headers records where each entry's data lies in the file, and blobs are
 * then read with positioned streams. docker save puts manifest.json last and skopeo links layers
 * (`<id>/layer.tar -> ../<diffid>.tar`), so the archive has to be indexed before it can be read.
 *
 * Names are resolved inside the archive as openat2's RESOLVE_IN_ROOT would in a directory: '..'
 * stops at the root, symlinks are followed inside it (absolute targets from its root), hard links
 * share their target's data. Nothing of an archive can name anything outside it.
 *
 * This reads only headers: ustar names with their prefix, GNU long names and links ('L', 'K'),
 * PAX `path`, `linkpath` and `size`. Layer tars inside are read by core's reader.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { InvalidArchiveError } from '@graphdriver/core';

const BLOCK = 512;
const MAX_META_SIZE = 1 << 20;
const MAX_SYMLINKS = 40;

/** The file is no tar at all (as opposed to a damaged one). */
export class NotATarError extends InvalidArchiveError {}

export type ArchiveEntryType = 'file' | 'dir' | 'symlink' | 'link' | 'other';

export interface ArchiveEntry {
  /** Normalised name: no leading './' or '/', no trailing '/'. */
  name: string;
  type: ArchiveEntryType;
  /** Where the data starts in the archive file. */
  offset: number;
  size: number;
  linkname: string;
}

function cString(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

function numeric(b: Buffer, off: number, len: number, what: string, at: number): number {
  if ((b[off]! & 0x80) !== 0) {
    let n = b[off]! & 0x7f;
    for (let i = off + 1; i < off + len; i++) n = n * 256 + b[i]!;
    return n;
  }
  const text = b.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new InvalidArchiveError(`not a valid tar: bad ${what} field in the header at byte ${at}`);
  return parseInt(text, 8);
}

function checksumOk(b: Buffer): boolean {
  const stored = b.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim();
  if (!/^[0-7]+$/.test(stored)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  const want = parseInt(stored, 8);
  return want === unsigned || want === signed;
}

/** A tar name made relative to the archive root with '..' clamped there. */
export function normalizeArchiveName(name: string): string {
  const n = posix.normalize(`/${name}`);
  return n === '/' ? '' : n.slice(1).replace(/\/$/, '');
}

function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < body.length) {
    const space = body.indexOf(0x20, off);
    if (space === -1) break;
    const len = parseInt(body.toString('latin1', off, space), 10);
    if (!Number.isFinite(len) || len <= 0 || off + len > body.length) break;
    const record = body.toString('utf8', space + 1, off + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    off += len;
  }
  return out;
}

export class ArchiveIndex {
  readonly file: string;
  readonly size: number;
  readonly #entries: Map<string, ArchiveEntry>;

  private constructor(file: string, size: number, entries: Map<string, ArchiveEntry>) {
    this.file = file;
    this.size = size;
    this.#entries = entries;
  }

  /** Indexes `file`; an InvalidArchiveError when it is not a tar or is cut short. */
  static async read(file: string, signal?: AbortSignal): Promise<ArchiveIndex> {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      return new ArchiveIndex(file, size, await indexEntries(fh, size, signal));
    } finally {
      await fh.close();
    }
  }

  get entryCount(): number {
    return this.#entries.size;
  }

  names(): string[] {
    return [...this.#entries.keys()];
  }

  /** The entry `name` leads to, following symlinks and hard links inside the archive; undefined when there is none. */
  lookup(name: string): ArchiveEntry | undefined {
    let path = normalizeArchiveName(name);
    let links = 0;
    for (;;) {
      const resolved = this.#resolveParents(path, links);
      if (resolved === undefined) return undefined;
      links = resolved.links;
      const entry = this.#entries.get(resolved.path);
      if (entry === undefined) return undefined;
      if (entry.type === 'symlink') {
        if (++links > MAX_SYMLINKS) return undefined;
        const dir = posix.dirname(`/${resolved.path}`);
        path = normalizeArchiveName(entry.linkname.startsWith('/') ? entry.linkname : posix.join(dir, entry.linkname));
        continue;
      }
      if (entry.type === 'link') {
        if (++links > MAX_SYMLINKS) return undefined;
        path = normalizeArchiveName(entry.linkname);
        continue;
      }
      return entry;
    }
  }

  /** `path` with symlinks in its directory part replaced by their targets. */
  #resolveParents(path: string, linksSoFar: number): { path: string; links: number } | undefined {
    let links = linksSoFar;
    let parts = path === '' ? [] : path.split('/');
    const done: string[] = [];
    while (parts.length > 1) {
      const part = parts.shift()!;
      const candidate = [...done, part].join('/');
      const entry = this.#entries.get(candidate);
      if (entry?.type === 'symlink') {
        if (++links > MAX_SYMLINKS) return undefined;
        const base = entry.linkname.startsWith('/') ? entry.linkname : posix.join('/', ...done, entry.linkname);
        const target = normalizeArchiveName(base);
        parts = [...(target === '' ? [] : target.split('/')), ...parts];
        done.length = 0;
        continue;
      }
      done.push(part);
    }
    return { path: [...done, ...parts].join('/'), links };
  }
}

async function indexEntries(fh: FileHandle, fileSize: number, signal: AbortSignal | undefined): Promise<Map<string, ArchiveEntry>> {
  const entries = new Map<string, ArchiveEntry>();
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();
  let sawHeader = false;
  for (;;) {
    signal?.throwIfAborted();
    if (pos + BLOCK > fileSize) {
      // Go's reader: ending exactly where a header would start is the end of the archive
      if (pos === fileSize && sawHeader) return entries;
      if (!sawHeader) throw new NotATarError('not a tar archive (too short)');
      throw new InvalidArchiveError(`the archive is truncated: it ends inside the header at byte ${pos}`);
    }
    const { bytesRead } = await fh.read(header, 0, BLOCK, pos);
    if (bytesRead < BLOCK) throw new InvalidArchiveError(`the archive is truncated at byte ${pos + bytesRead}`);
    if (header.every((x) => x === 0)) {
      if (!sawHeader) throw new NotATarError('not a tar archive (it starts with an empty block)');
      return entries;
    }
    if (!checksumOk(header)) {
      if (!sawHeader) throw new NotATarError('not a tar archive');
      throw new InvalidArchiveError(`the archive is corrupt: bad header checksum at byte ${pos}`);
    }
    sawHeader = true;
    const type = header[156]!;
    let size = numeric(header, 124, 12, 'size', pos);
    if (pax.has('size')) size = Number(pax.get('size'));
    const dataAt = pos + BLOCK;
    const headerOnly = type >= 0x31 && type <= 0x36;
    const dataSize = headerOnly ? 0 : size;
    if (dataAt + dataSize > fileSize) {
      throw new InvalidArchiveError(`the archive is truncated: an entry needs ${dataAt + dataSize - fileSize} bytes more than the file has`);
    }
    const next = dataAt + Math.ceil(dataSize / BLOCK) * BLOCK;

    if (type === 0x4c || type === 0x4b || type === 0x78 || type === 0x67) {
      // metadata for the next entry: GNU long name/link, PAX extended (or global) header
      if (size > MAX_META_SIZE) throw new InvalidArchiveError(`a tar metadata header of ${size} bytes is too large`);
      const body = Buffer.alloc(size);
      await fh.read(body, 0, size, dataAt);
      if (type === 0x4c) longName = cString(body, 0, size);
      else if (type === 0x4b) longLink = cString(body, 0, size);
      else if (type === 0x78) pax = parsePax(body);
      pos = next;
      continue;
    }

    const magic = header.toString('latin1', 257, 263);
    const prefix = magic.startsWith('ustar') && magic !== 'ustar ' ? cString(header, 345, 155) : '';
    const rawName = pax.get('path') ?? longName ?? (prefix === '' ? cString(header, 0, 100) : `${prefix}/${cString(header, 0, 100)}`);
    const linkname = pax.get('linkpath') ?? longLink ?? cString(header, 157, 100);
    const kind: ArchiveEntryType =
      type === 0 || type === 0x30 || type === 0x37
        ? 'file'
        : type === 0x35
          ? 'dir'
          : type === 0x32
            ? 'symlink'
            : type === 0x31
              ? 'link'
              : 'other';
    const name = normalizeArchiveName(rawName);
    if (name !== '') entries.set(name, { name, type: kind, offset: dataAt, size: dataSize, linkname });
    longName = undefined;
    longLink = undefined;
    pax = new Map();
    pos = next;
  }
}
