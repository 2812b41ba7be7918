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
 * The stream is pull-driven (tar-output.ts): an add waits while the consumer is behind
 * (backpressure), a small file is read straight into the output's batch buffer behind its header,
 * a large one goes out in bounded chunks, and an entry's size is written exactly even if the file
 * changes while it is read, so the tar stays well-formed.
 */
import { closeSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
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
import {
  BLOCK_SIZE,
  END_OF_ARCHIVE,
  encodeHeader,
  encodeUstarInto,
  fitsOneBlock,
  paddingFor,
  type EntryHeader,
  type EntryKind,
} from './header.js';
import { IdTranslator } from './idmap.js';
import { TarOutput } from './tar-output.js';
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

/** Files up to this size are read in one go into the output buffer, right behind their header. */
const SMALL_FILE = 256 * 1024;
/**
 * Reading a file must not change the layer: O_NOATIME spares the atime update (a journaled inode
 * write per file under relatime). It needs ownership or CAP_FOWNER; without, EPERM, and we stop asking.
 */
let noAtime = O.NOATIME;
/** Larger files go out in chunks of this size. */
const CHUNK = 512 * 1024;
const ZERO_BLOCK = Buffer.alloc(BLOCK_SIZE);

const KIND_OF: Record<number, EntryKind | undefined> = {
  [S.IFREG]: 'file',
  [S.IFDIR]: 'dir',
  [S.IFLNK]: 'symlink',
  [S.IFCHR]: 'char',
  [S.IFBLK]: 'block',
  [S.IFIFO]: 'fifo',
};

/** A '.' or '..' component anywhere in a path. */
const DOT_PART = /(?:^|\/)\.\.?(?:\/|$)/;

/** `/a/b`, `./a/b` or `a/b` -> `a/b`; refuses names that are empty or climb with '..'. */
export function cleanRelPath(relPath: string): string {
  // Already clean (what change lists and walks give): no split and join per entry.
  if (relPath !== '' && !relPath.startsWith('/') && !relPath.endsWith('/') && !relPath.includes('//') && !DOT_PART.test(relPath)) {
    return relPath;
  }
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
  private readonly out: TarOutput;
  private readonly toContainer: IdTranslator;
  private readonly opaqueXattr: string;
  private readonly overlaySource: boolean;
  private readonly seenInodes = new Map<string, string>();
  private readonly dirFds = new Map<string, number>();
  /** The parent fd used last (one of dirFds), -1 when none. */
  private lastParentFd = -1;
  private lastRoot = '';
  private lastParentRel = '';
  private finalized = false;
  private readonly onAbort: (() => void) | undefined;

  constructor(opts: PackOptions = {}) {
    this.opts = opts;
    this.toContainer = new IdTranslator(opts.idMappings, 'toContainer');
    this.opaqueXattr = overlayOpaqueXattr(opts.overlayXattrPrefix ?? 'trusted');
    this.overlaySource = opts.sourceWhiteouts === 'overlay';
    this.out = new TarOutput(() => {
      // An add in progress may still use a directory fd: close them once it has settled.
      void this.out.idle().then(() => this.closeDirFds());
      this.detachSignal();
    });
    this.stream = this.out.stream;
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
    return this.addTreeEntry(root, rel);
  }

  /** pack()'s add: `rel` comes from a directory listing (already clean). */
  addTreeEntry(root: string, rel: string): Promise<AddedKind> {
    return this.out.run(() => this.writeTreeEntry(root, rel));
  }

  /**
   * addTreeEntry without a Promise per entry when the entry could be written at once (the usual
   * case for a walk over small files); a Promise when it had to wait. Throws synchronously what
   * a synchronous add threw.
   */
  addTreeEntryNow(root: string, rel: string): AddedKind | Promise<AddedKind> {
    return this.out.runNow(() => this.writeTreeEntry(root, rel));
  }

  private writeTreeEntry(root: string, rel: string): AddedKind | Promise<AddedKind> {
    this.checkOpen();
    return this.writeEntry(root, rel);
  }

  /** Add the `.wh.<name>` entry that deletes `relPath` (mode 0, root-owned, mtime 0: deterministic). */
  addWhiteout(relPath: string): Promise<void> {
    let name: string;
    try {
      name = whiteoutNameFor(cleanRelPath(relPath));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.out.run(() => {
      this.checkOpen();
      this.writeHeader(plainFile(name, 0, 0, 0, 0));
    });
  }

  /** Write the end-of-archive marker and end the stream. */
  finalize(): Promise<void> {
    return this.out.run(() => {
      if (this.finalized) return; // a second finalize() is a no-op
      this.out.append(END_OF_ARCHIVE);
      this.finalized = true;
      this.closeDirFds();
      this.out.end();
      this.detachSignal();
    });
  }

  /** Stop: the stream emits `err` (if given) and every pending or later add rejects. */
  destroy(err?: Error): void {
    this.out.destroy(err ?? new Error('the tar writer was destroyed'));
  }

  // ---- internals -------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.finalized) throw new Error('the tar writer is already finalized');
  }

  private detachSignal(): void {
    if (this.onAbort !== undefined) this.opts.signal?.removeEventListener('abort', this.onAbort);
  }

  /** An O_PATH fd of `root/parentRel`; a few are kept since a walk returns to a parent often. */
  private parentFd(root: string, parentRel: string): number {
    // Consecutive entries nearly always share their parent: no key to build, no lookup.
    if (parentRel === this.lastParentRel && root === this.lastRoot && this.lastParentFd >= 0) return this.lastParentFd;
    const fd = this.openParent(root, parentRel);
    this.lastRoot = root;
    this.lastParentRel = parentRel;
    this.lastParentFd = fd;
    return fd;
  }

  private openParent(root: string, parentRel: string): number {
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
      if (oldFd === this.lastParentFd) this.lastParentFd = -1;
    }
    return fd;
  }

  private closeDirFds(): void {
    for (const fd of this.dirFds.values()) closeSync(fd);
    this.dirFds.clear();
    this.lastParentFd = -1;
  }

  /**
   * Write one entry: synchronously (the usual case), or a Promise when a large file's data must
   * stream out. Nothing of a failed entry stays in the output.
   */
  private writeEntry(root: string, rel: string): AddedKind | Promise<AddedKind> {
    if (this.opts.excludeAufsMetadata === true && isAufsMetadata(rel)) return 'skipped';
    const slash = rel.lastIndexOf('/');
    const base = slash < 0 ? rel : rel.slice(slash + 1);
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
      if (kind === 'file' && st.size > 0) {
        // Regular files with data are opened first: xattrs come from the fd, data follows from it.
        const fd = openForReading(dirFd, base);
        let closeFd = true;
        try {
          const header = this.headerOf(rel, base, kind, st, readFdXattrs(fd), '');
          if (header.kind !== 'file' || header.size === 0) {
            this.writeHeader(header);
          } else if (header.size <= SMALL_FILE) {
            this.writeSmallFile(fd, root, header);
          } else {
            closeFd = false;
            return this.writeLargeFile(fd, root, header).then(
              () => 'other' as const,
              (err: unknown) => {
                throw wrap(err, rel);
              },
            );
          }
        } finally {
          if (closeFd) closeSync(fd);
        }
        return 'other';
      }
      // overlay whiteout: an empty `.wh.<name>` file with the device's owner and mtime, as moby does.
      if (this.overlaySource && kind === 'char' && isOverlayWhiteout(true, st.rdevMajor, st.rdevMinor)) {
        this.writeHeader(plainFile(whiteoutNameFor(rel), 0o600, st.uid, st.gid, st.mtime.sec));
        return 'other';
      }
      // Everything else, empty files included, is read through its path (no open, no close).
      const xattrs = readPathXattrs(`${root}/${rel}`);
      const header = this.headerOf(rel, base, kind, st, xattrs, kind === 'symlink' ? readlinkatSync(dirFd, base) : '');
      this.writeHeader(header);
      if (kind === 'dir' && this.overlaySource && isOpaque(xattrs, this.opaqueXattr)) {
        this.writeHeader(plainFile(`${rel}/${WHITEOUT_OPAQUE_DIR}`, st.mode & 0o777, header.uid, header.gid, 0));
      }
    } catch (err) {
      throw wrap(err, rel);
    }
    return kind === 'dir' ? 'directory' : 'other';
  }

  /** The header moby writes for a filesystem entry (a later name of a hard-linked inode: a link). */
  private headerOf(
    rel: string,
    base: string,
    kind: EntryKind,
    st: NativeStat,
    xattrs: Array<[string, Buffer]>,
    linkname: string,
  ): EntryHeader {
    const isWhiteoutName = base.startsWith(WHITEOUT_PREFIX);
    const uid = isWhiteoutName ? st.uid : this.mapId(this.toContainer.uid(st.uid), 'uid', st.uid, rel);
    const gid = isWhiteoutName ? st.gid : this.mapId(this.toContainer.gid(st.gid), 'gid', st.gid, rel);
    const device = kind === 'char' || kind === 'block';
    const header: EntryHeader = {
      name: kind === 'dir' ? `${rel}/` : rel,
      kind,
      mode: st.mode & 0o7777,
      uid,
      gid,
      size: kind === 'file' ? st.size : 0,
      mtime: st.mtime.sec,
      linkname,
      devmajor: device ? st.rdevMajor : 0,
      devminor: device ? st.rdevMinor : 0,
      xattrs: xattrs.length === 0 ? xattrs : xattrs.filter(([n]) => !isOverlayXattr(n)),
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
    return header;
  }

  private mapId(id: number | undefined, what: 'uid' | 'gid', hostId: number, rel: string): number {
    if (id !== undefined) return id;
    throw new InvalidOptionError(
      'idMappings',
      `host ${what} ${hostId} of ${JSON.stringify(rel)} has no container id in the id mappings`,
    );
  }

  /** The header block(s) of `h` and `extra` more bytes reserved after them; returns where data goes. */
  private reserveEntry(h: EntryHeader, extra: number): number {
    if (fitsOneBlock(h)) {
      const off = this.out.reserve(BLOCK_SIZE + extra);
      encodeUstarInto(h, this.out.buf, off);
      return off + BLOCK_SIZE;
    }
    const head = encodeHeader(h);
    const off = this.out.reserve(head.length + extra);
    head.copy(this.out.buf, off);
    return off + head.length;
  }

  private writeHeader(h: EntryHeader): void {
    const dataAt = this.reserveEntry(h, 0);
    this.out.commit(dataAt - this.out.reservedAt);
  }

  /** Header, exactly `size` bytes of data (zero-filled if the file shrank meanwhile), padding: in place. */
  private writeSmallFile(fd: number, root: string, h: EntryHeader): void {
    const size = h.size;
    const pad = paddingFor(size);
    const dataAt = this.reserveEntry(h, size + pad);
    const buf = this.out.buf;
    const got = readFully(fd, buf, dataAt, size, 0);
    if (got < size) debug('archive: %s/%s shrank while it was packed; zero-filled', root, h.name);
    buf.fill(0, dataAt + got, dataAt + size + pad);
    // Committed only now: a read that throws leaves nothing of this entry behind.
    this.out.commit(dataAt + size + pad - this.out.reservedAt);
  }

  /**
   * A file too large for one buffer: header, then its data in CHUNK pieces as the consumer takes
   * them. Once data went out a failure cannot be undone, so it destroys the output.
   */
  private async writeLargeFile(fd: number, root: string, h: EntryHeader): Promise<void> {
    try {
      const size = h.size;
      this.writeHeader(h);
      let done = 0;
      while (done < size) {
        const want = Math.min(CHUNK, size - done);
        const chunk = Buffer.allocUnsafe(want);
        const got = readFully(fd, chunk, 0, want, done);
        if (got < want) {
          debug('archive: %s/%s shrank while it was packed; zero-filled', root, h.name);
          chunk.fill(0, got);
        }
        done += want;
        await this.out.pushNow(chunk);
      }
      const pad = paddingFor(size);
      if (pad > 0) this.out.append(ZERO_BLOCK.subarray(0, pad));
    } catch (err) {
      if (this.out.failure === undefined) this.out.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    } finally {
      closeSync(fd);
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

/** All xattrs of an open file. */
function readFdXattrs(fd: number): Array<[string, Buffer]> {
  return readXattrs(fd, '');
}

/** All xattrs of a path's own inode (a symlink's own, not its target's). */
function readPathXattrs(path: string): Array<[string, Buffer]> {
  return readXattrs(-1, path);
}

/**
 * Binary xattr values by fd (fd >= 0) or by path, without following a symlink. moby turns a v3
 * file capability (which names a namespace root uid that means nothing elsewhere) into v2.
 */
function readXattrs(fd: number, path: string): Array<[string, Buffer]> {
  let names: string[];
  try {
    names = fd >= 0 ? flistxattrSync(fd) : llistxattrSync(path);
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
      value = fd >= 0 ? fgetxattrSync(fd, name) : lgetxattrSync(path, name);
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

/** overlay's opaque flag (`<prefix>.overlay.opaque=y`) among a directory's xattrs. */
function isOpaque(xattrs: ReadonlyArray<readonly [string, Buffer]>, opaqueXattr: string): boolean {
  for (const [name, value] of xattrs) {
    if (name === opaqueXattr) return value.length === 1 && value[0] === 0x79; // 'y'
  }
  return false;
}

function wrap(err: unknown, rel: string): unknown {
  if (err instanceof GraphDriverError || err instanceof AbortError) return err;
  return new OperationFailedError(`packing ${JSON.stringify(rel)}`, undefined, err);
}
