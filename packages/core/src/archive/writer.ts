/**
 * LayerTarWriter: writes filesystem entries one at a time into an uncompressed layer tar (a Node
 * Readable), with headers shaped as moby writes them (header.ts). It is the building block of
 * pack() and of changes/' export of a change list.
 *
 * It owns what moby's tarAppender does per entry: hard links by inode (the first name is written
 * as the file, later ones as link entries to it), xattrs (all but overlay's own), host -> container
 * id mapping, and the overlay -> AUFS whiteout conversion (a 0/0 character device becomes
 * `.wh.<name>`, an opaque directory gets a `.wh..wh..opq` entry after it). Sockets are skipped.
 *
 * The stream is pull-driven: every add waits while the consumer is behind (backpressure), file data
 * goes out in bounded chunks, and an entry's size is written exactly even if the file changes
 * while it is read, so the tar stays well-formed.
 */
import { closeSync, openSync, readSync, constants as fsConstants } from 'node:fs';
import { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import { AT, S, fstatatSync, lgetxattrSync, llistxattrSync, readlinkatSync, type NativeStat } from '@graphdriver/native';
import type { IdMappings } from '../driver.js';
import { GraphDriverError, InvalidOptionError, OperationFailedError, errorCode } from '../errors.js';
import { AbortError, abortErrorFrom } from './abort.js';
import { END_OF_ARCHIVE, encodeHeader, paddingFor, type EntryHeader, type EntryKind } from './header.js';
import { IdTranslator } from './idmap.js';
import {
  WHITEOUT_OPAQUE_DIR,
  WHITEOUT_PREFIX,
  isAufsMetadata,
  isOverlayWhiteout,
  isOverlayXattr,
  overlayOpaqueXattr,
  whiteoutNameFor,
  type OverlayXattrPrefix,
  type WhiteoutFormat,
} from './whiteouts.js';

const debug = debuglog('graphdriver:core');

export interface PackOptions {
  /**
   * How the source tree stores whiteouts. 'overlay': 0/0 character devices become `.wh.<name>`
   * entries and a directory with `<prefix>.overlay.opaque=y` gets a `.wh..wh..opq` entry;
   * 'aufs' (default): whiteouts are files already and are written as they are.
   */
  sourceWhiteouts?: WhiteoutFormat;
  /** Which xattr namespace holds overlay's opaque flag: 'trusted' (default) or 'user' (rootless). */
  overlayXattrPrefix?: OverlayXattrPrefix;
  /** Leave out AUFS metadata at the top (`.wh..wh.*` but `.wh..wh..opq`), as moby's aufs diff does. */
  excludeAufsMetadata?: boolean;
  /** Host owners are written as container ids through these. */
  idMappings?: IdMappings;
  signal?: AbortSignal;
}

/** What addEntry found, so that a tree walk knows whether to descend. */
export type AddedKind = 'directory' | 'other' | 'skipped';

/** Files up to this size are read in one go into the buffer that also holds their header. */
const SMALL_FILE = 256 * 1024;
/** Larger files go out in chunks of this size. */
const CHUNK = 512 * 1024;

const KIND_OF: Record<number, EntryKind | undefined> = {
  [S.IFREG]: 'file',
  [S.IFDIR]: 'dir',
  [S.IFLNK]: 'symlink',
  [S.IFCHR]: 'char',
  [S.IFBLK]: 'block',
  [S.IFIFO]: 'fifo',
};

/** `/a/b`, `./a/b` or `a/b` -> `a/b`; refuses names that are empty or climb with '..'. */
export function cleanRelPath(relPath: string): string {
  const parts: string[] = [];
  for (const part of relPath.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new TypeError(`path ${JSON.stringify(relPath)} must not contain '..'`);
    parts.push(part);
  }
  if (parts.length === 0) throw new TypeError(`path ${JSON.stringify(relPath)} names the root itself`);
  return parts.join('/');
}

export class LayerTarWriter {
  /** The tar bytes. */
  readonly stream: Readable;
  private readonly opts: PackOptions;
  private readonly toContainer: IdTranslator;
  private readonly opaqueXattr: string;
  private readonly seenInodes = new Map<string, string>();
  private tail: Promise<unknown> = Promise.resolve();
  private drained: (() => void) | undefined;
  private failure: Error | undefined;
  private finalized = false;
  private readonly onAbort: (() => void) | undefined;

  constructor(opts: PackOptions = {}) {
    this.opts = opts;
    this.toContainer = new IdTranslator(opts.idMappings, 'toContainer');
    this.opaqueXattr = overlayOpaqueXattr(opts.overlayXattrPrefix ?? 'trusted');
    this.stream = new Readable({
      highWaterMark: 1024 * 1024,
      read: () => this.wake(),
      destroy: (err, cb) => {
        // After finalize() the stream ends and auto-destroys: that is not a failure.
        if (err !== null || !this.finalized) this.failure ??= err ?? new Error('the tar stream was destroyed');
        this.wake();
        this.detachSignal();
        cb(err);
      },
    });
    const signal = opts.signal;
    if (signal !== undefined) {
      this.onAbort = () => this.destroy(abortErrorFrom(signal));
      if (signal.aborted) this.onAbort();
      else signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  /** Add one filesystem entry `relPath` of `root` (not recursive). */
  async addPath(root: string, relPath: string): Promise<void> {
    await this.addEntry(root, relPath);
  }

  /** Add one entry and say what it was (pack() descends into directories). */
  addEntry(root: string, relPath: string): Promise<AddedKind> {
    let rel: string;
    try {
      rel = cleanRelPath(relPath);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.serialize(() => this.writeEntry(root, rel));
  }

  /** Add the `.wh.<name>` entry that deletes `relPath` (mode 0, root-owned, mtime 0: deterministic). */
  addWhiteout(relPath: string): Promise<void> {
    let name: string;
    try {
      name = whiteoutNameFor(cleanRelPath(relPath));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.serialize(() => this.push(encodeHeader(plainFile(name, 0, 0, 0, 0))));
  }

  /** Write the end-of-archive marker and end the stream. */
  finalize(): Promise<void> {
    return this.serialize(async () => {
      if (this.finalized) return; // a second finalize() is a no-op
      this.finalized = true;
      await this.push(END_OF_ARCHIVE);
      this.stream.push(null);
      this.detachSignal();
    }, true);
  }

  /** Stop: the stream emits `err` (if given) and every pending or later add rejects. */
  destroy(err?: Error): void {
    this.failure ??= err ?? new Error('the tar writer was destroyed');
    this.stream.destroy(err);
  }

  // ---- internals -------------------------------------------------------------------------------

  private serialize<T>(fn: () => Promise<T>, evenWhenFinalized = false): Promise<T> {
    const run = this.tail.then(() => {
      this.check();
      if (this.finalized && !evenWhenFinalized) throw new Error('the tar writer is already finalized');
      return fn();
    });
    // A failed step must not block later ones from seeing the failure themselves.
    this.tail = run.catch(() => undefined);
    return run;
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private wake(): void {
    const fn = this.drained;
    this.drained = undefined;
    fn?.();
  }

  private detachSignal(): void {
    if (this.onAbort !== undefined) this.opts.signal?.removeEventListener('abort', this.onAbort);
  }

  /** Push bytes; wait while the consumer is behind. */
  private async push(buf: Buffer): Promise<void> {
    this.check();
    if (this.stream.push(buf)) return;
    await new Promise<void>((resolve) => {
      this.drained = resolve;
    });
    this.check();
  }

  private async writeEntry(root: string, rel: string): Promise<AddedKind> {
    if (this.opts.excludeAufsMetadata === true && isAufsMetadata(rel)) return 'skipped';
    const path = `${root}/${rel}`;
    let st: NativeStat;
    try {
      st = fstatatSync(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
    } catch (err) {
      throw wrap(err, rel);
    }
    const kind = KIND_OF[st.mode & S.IFMT];
    if (kind === undefined) return 'skipped'; // sockets: not part of a layer
    try {
      await this.writeStat(path, rel, kind, st);
    } catch (err) {
      throw wrap(err, rel);
    }
    return kind === 'dir' ? 'directory' : 'other';
  }

  private async writeStat(path: string, rel: string, kind: EntryKind, st: NativeStat): Promise<void> {
    // overlay whiteout: an empty `.wh.<name>` file with the device's owner and mtime, as moby does.
    if (this.opts.sourceWhiteouts === 'overlay' && isOverlayWhiteout(kind === 'char', st.rdevMajor, st.rdevMinor)) {
      await this.push(encodeHeader(plainFile(whiteoutNameFor(rel), 0o600, st.uid, st.gid, st.mtime.sec)));
      return;
    }
    const xattrs = readXattrs(path);
    let opaque = false;
    if (this.opts.sourceWhiteouts === 'overlay' && kind === 'dir') {
      const value = xattrs.find(([n]) => n === this.opaqueXattr)?.[1];
      opaque = value !== undefined && value.length === 1 && value[0] === 0x79; // 'y'
    }
    const isWhiteoutName = rel.slice(rel.lastIndexOf('/') + 1).startsWith(WHITEOUT_PREFIX);
    const uid = isWhiteoutName ? st.uid : this.mapId(this.toContainer.uid(st.uid), 'uid', st.uid, rel);
    const gid = isWhiteoutName ? st.gid : this.mapId(this.toContainer.gid(st.gid), 'gid', st.gid, rel);
    const header: EntryHeader = {
      name: kind === 'dir' ? `${rel}/` : rel,
      kind,
      mode: st.mode & 0o7777,
      uid,
      gid,
      size: kind === 'file' ? st.size : 0,
      mtime: st.mtime.sec,
      linkname: kind === 'symlink' ? readlinkatSync(AT.FDCWD, path) : '',
      devmajor: kind === 'char' || kind === 'block' ? st.rdevMajor : 0,
      devminor: kind === 'char' || kind === 'block' ? st.rdevMinor : 0,
      xattrs: xattrs.filter(([n]) => !isOverlayXattr(n)),
    };
    if (kind !== 'dir' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.seenInodes.get(key);
      if (first !== undefined) {
        header.kind = 'link';
        header.linkname = first;
        header.size = 0;
      } else {
        this.seenInodes.set(key, header.name);
      }
    }
    if (header.kind === 'file' && header.size > 0) {
      await this.writeFile(path, header);
    } else {
      await this.push(encodeHeader(header));
    }
    if (opaque) {
      await this.push(encodeHeader(plainFile(`${rel}/${WHITEOUT_OPAQUE_DIR}`, st.mode & 0o777, uid, gid, 0)));
    }
  }

  private mapId(id: number | undefined, what: 'uid' | 'gid', hostId: number, rel: string): number {
    if (id !== undefined) return id;
    throw new InvalidOptionError(
      'idMappings',
      `host ${what} ${hostId} of ${JSON.stringify(rel)} has no container id in the id mappings`,
    );
  }

  /** Header, exactly `size` bytes of data (zero-filled if the file shrank meanwhile), padding. */
  private async writeFile(path: string, header: EntryHeader): Promise<void> {
    const size = header.size;
    const head = encodeHeader(header);
    const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
    try {
      if (size <= SMALL_FILE) {
        const buf = Buffer.allocUnsafe(head.length + size + paddingFor(size));
        head.copy(buf, 0);
        const got = readFully(fd, buf, head.length, size, 0);
        if (got < size) debug('archive: %s shrank while it was packed; zero-filled', path);
        buf.fill(0, head.length + got);
        await this.push(buf);
        return;
      }
      await this.push(head);
      let done = 0;
      while (done < size) {
        const want = Math.min(CHUNK, size - done);
        const buf = Buffer.allocUnsafe(want);
        const got = readFully(fd, buf, 0, want, done);
        if (got < want) {
          debug('archive: %s shrank while it was packed; zero-filled', path);
          buf.fill(0, got);
        }
        done += want;
        await this.push(buf);
      }
      const pad = paddingFor(size);
      if (pad > 0) await this.push(Buffer.alloc(pad));
    } finally {
      closeSync(fd);
    }
  }
}

/** Read up to `len` bytes at `position`; fewer only at end of file. */
function readFully(fd: number, buf: Buffer, offset: number, len: number, position: number): number {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, offset + got, len - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

function plainFile(name: string, mode: number, uid: number, gid: number, mtime: number): EntryHeader {
  return { name, kind: 'file', mode, uid, gid, size: 0, mtime, linkname: '', devmajor: 0, devminor: 0, xattrs: [] };
}

/**
 * All xattrs of `path` (a symlink's own), binary values. moby turns a v3 file capability (which
 * names a namespace root uid that means nothing elsewhere) into v2.
 */
function readXattrs(path: string): Array<[string, Buffer]> {
  let names: string[];
  try {
    names = llistxattrSync(path);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return [];
    throw err;
  }
  const out: Array<[string, Buffer]> = [];
  for (const name of names) {
    let value: Buffer;
    try {
      value = lgetxattrSync(path, name);
    } catch (err) {
      if (errorCode(err) === 'ENODATA') continue; // removed meanwhile
      throw err;
    }
    if (name === 'security.capability' && value.length > 20 && value[3] === 3) {
      value = Buffer.from(value.subarray(0, 20));
      value[3] = 2;
    }
    out.push([name, value]);
  }
  return out;
}

function wrap(err: unknown, rel: string): unknown {
  if (err instanceof GraphDriverError || err instanceof AbortError) return err;
  return new OperationFailedError(`packing ${JSON.stringify(rel)}`, undefined, err);
}
