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
import { closeSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import {
  AT,
  O,
  S,
  fgetxattrSync,
  flistxattrSync,
  fstatatSync,
  lgetxattrSync,
  llistxattrSync,
  openat2Sync,
  readlinkatSync,
  type NativeStat,
} from '@graphdriver/native';
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
/** pack() hands the stream entries in batches of about this size (fewer, larger chunks). */
const BATCH = 64 * 1024;
/**
 * Reading a file must not change the layer: O_NOATIME spares the atime update (a journaled inode
 * write per file under relatime). It needs ownership or CAP_FOWNER; without, EPERM, and we stop asking.
 */
let noAtime = O.NOATIME;
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
  private readonly dirFds = new Map<string, number>();
  private tail: Promise<unknown> = Promise.resolve();
  private drained: (() => void) | undefined;
  private failure: Error | undefined;
  private finalized = false;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
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
        // An add in progress may still use a directory fd: close them once it has settled.
        void this.tail.then(() => this.closeDirFds());
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
    return this.serialize(async () => {
      const kind = await this.writeEntry(root, rel);
      await this.flush();
      return kind;
    });
  }

  /**
   * pack()'s add: `rel` comes from a directory listing (already clean), and small entries are
   * batched until about 64 KiB are pending instead of being pushed one by one.
   */
  addTreeEntry(root: string, rel: string): Promise<AddedKind> {
    return this.serialize(async () => {
      const kind = await this.writeEntry(root, rel);
      if (this.pendingBytes >= BATCH) await this.flush();
      return kind;
    });
  }

  /** Add the `.wh.<name>` entry that deletes `relPath` (mode 0, root-owned, mtime 0: deterministic). */
  addWhiteout(relPath: string): Promise<void> {
    let name: string;
    try {
      name = whiteoutNameFor(cleanRelPath(relPath));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.serialize(async () => {
      this.queue(encodeHeader(plainFile(name, 0, 0, 0, 0)));
      await this.flush();
    });
  }

  /** Write the end-of-archive marker and end the stream. */
  finalize(): Promise<void> {
    return this.serialize(async () => {
      if (this.finalized) return; // a second finalize() is a no-op
      this.queue(END_OF_ARCHIVE);
      await this.flush();
      this.finalized = true;
      this.closeDirFds();
      this.stream.push(null);
      this.detachSignal();
    }, true);
  }

  /** Stop: the stream emits `err` (if given) and every pending or later add rejects. */
  destroy(err?: Error): void {
    this.failure ??= err ?? new Error('the tar writer was destroyed');
    this.pending = [];
    this.pendingBytes = 0;
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

  private queue(buf: Buffer): void {
    this.pending.push(buf);
    this.pendingBytes += buf.length;
  }

  /** Push what is queued as one chunk. */
  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const buf = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    await this.push(buf);
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

  /** An O_PATH fd of `root/parentRel`; a few are kept since a walk returns to a parent often. */
  private parentFd(root: string, parentRel: string): number {
    const key = `${root}\0${parentRel}`;
    const hit = this.dirFds.get(key);
    if (hit !== undefined) return hit;
    const fd = openat2Sync(AT.FDCWD, parentRel === '' ? root : `${root}/${parentRel}`, {
      flags: O.PATH | O.DIRECTORY | O.CLOEXEC,
    });
    this.dirFds.set(key, fd);
    if (this.dirFds.size > 16) {
      const [oldKey, oldFd] = this.dirFds.entries().next().value as [string, number];
      this.dirFds.delete(oldKey);
      closeSync(oldFd);
    }
    return fd;
  }

  private closeDirFds(): void {
    for (const fd of this.dirFds.values()) closeSync(fd);
    this.dirFds.clear();
  }

  private async writeEntry(root: string, rel: string): Promise<AddedKind> {
    if (this.opts.excludeAufsMetadata === true && isAufsMetadata(rel)) return 'skipped';
    const slash = rel.lastIndexOf('/');
    const base = rel.slice(slash + 1);
    let st: NativeStat;
    let dirFd: number;
    try {
      dirFd = this.parentFd(root, slash < 0 ? '' : rel.slice(0, slash));
      st = fstatatSync(dirFd, base, AT.SYMLINK_NOFOLLOW);
    } catch (err) {
      throw wrap(err, rel);
    }
    const kind = KIND_OF[st.mode & S.IFMT];
    if (kind === undefined) return 'skipped'; // sockets: not part of a layer
    try {
      // overlay whiteout: an empty `.wh.<name>` file with the device's owner and mtime, as moby does.
      if (this.opts.sourceWhiteouts === 'overlay' && isOverlayWhiteout(kind === 'char', st.rdevMajor, st.rdevMinor)) {
        this.queue(encodeHeader(plainFile(whiteoutNameFor(rel), 0o600, st.uid, st.gid, st.mtime.sec)));
      } else if (kind === 'file') {
        // Regular files are opened first: xattrs come from the fd, data follows from it.
        const fd = openForReading(dirFd, base);
        try {
          await this.writeStat(`${root}/${rel}`, rel, kind, st, readXattrs((n) => fgetxattrSync(fd, n), () => flistxattrSync(fd)), fd);
        } finally {
          closeSync(fd);
        }
      } else {
        const path = `${root}/${rel}`;
        const xattrs = readXattrs((n) => lgetxattrSync(path, n), () => llistxattrSync(path));
        await this.writeStat(path, rel, kind, st, xattrs, -1, kind === 'symlink' ? readlinkatSync(dirFd, base) : '');
      }
    } catch (err) {
      throw wrap(err, rel);
    }
    return kind === 'dir' ? 'directory' : 'other';
  }

  private async writeStat(
    path: string,
    rel: string,
    kind: EntryKind,
    st: NativeStat,
    xattrs: Array<[string, Buffer]>,
    fd: number,
    linkname = '',
  ): Promise<void> {
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
      linkname,
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
      await this.writeFileData(fd, path, header);
    } else {
      this.queue(encodeHeader(header));
    }
    if (opaque) {
      this.queue(encodeHeader(plainFile(`${rel}/${WHITEOUT_OPAQUE_DIR}`, st.mode & 0o777, uid, gid, 0)));
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
  private async writeFileData(fd: number, path: string, header: EntryHeader): Promise<void> {
    const size = header.size;
    const head = encodeHeader(header);
    {
      if (size <= SMALL_FILE) {
        const buf = Buffer.allocUnsafe(head.length + size + paddingFor(size));
        head.copy(buf, 0);
        const got = readFully(fd, buf, head.length, size, 0);
        if (got < size) debug('archive: %s shrank while it was packed; zero-filled', path);
        buf.fill(0, head.length + got);
        this.queue(buf);
        return;
      }
      this.queue(head);
      await this.flush();
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
    }
  }
}

/** Open a regular file (known from fstatat) of `dirFd` for reading, never following a symlink. */
function openForReading(dirFd: number, base: string): number {
  // O_NONBLOCK: should the name have become a FIFO since the stat, the open must not hang.
  const flags = O.RDONLY | O.NOFOLLOW | O.CLOEXEC | O.NONBLOCK;
  if (noAtime !== 0) {
    try {
      return openat2Sync(dirFd, base, { flags: flags | noAtime });
    } catch (err) {
      if (errorCode(err) !== 'EPERM') throw err;
      noAtime = 0;
    }
  }
  return openat2Sync(dirFd, base, { flags });
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
 * All xattrs of an entry (a symlink's own), binary values, through `list` and `get` (path or fd
 * calls). moby turns a v3 file capability (which names a namespace root uid that means nothing
 * elsewhere) into v2.
 */
function readXattrs(get: (name: string) => Buffer, list: () => string[]): Array<[string, Buffer]> {
  let names: string[];
  try {
    names = list();
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return [];
    throw err;
  }
  if (names.length === 0) return [];
  const out: Array<[string, Buffer]> = [];
  for (const name of names) {
    let value: Buffer;
    try {
      value = get(name);
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
