/**
 * Unpacking a layer tar into a directory with layer semantics, safely: moby's UnpackLayer (the
 * 'apply' mode), overlay2's applyDiff (whiteouts stored as overlayfs wants them) and the aufs
 * driver's untar (whiteouts stored as plain files).
 *
 * Every entry's parent directory is resolved inside the root by resolver.ts (openat2); the entry
 * itself is then created, replaced or changed with *at calls on its final name relative to that
 * directory fd, never following a symlink in the last component. Names are checked before any of
 * that: names that climb out with '..' are ArchiveBreakoutErrors (absolute names are taken inside
 * the root, as moby joins them to it), as are symlinks whose relative target leaves the root
 * (moby's rule; absolute targets are interpreted inside the container) and hard links to targets
 * outside it.
 *
 * The syscalls are the Sync forms of the native addon and Node's fd calls: an entry is a handful
 * of metadata calls, cheaper than a round trip through the thread pool. Directory times are set
 * last, after everything inside them was created.
 */
import { closeSync, fchmodSync, fchownSync, futimesSync, readFileSync, readSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import {
  AT,
  DT,
  O,
  S,
  fchmodatSync,
  fchownatSync,
  fsetxattrSync,
  fstatatSync,
  getdentsSync,
  linkatSync,
  lsetxattrSync,
  mkdiratSync,
  mknodatSync,
  openat2Sync,
  symlinkatSync,
  utimensatSync,
  type Timespec,
} from '@graphdriver/native';
import type { IdMappings } from '../driver.js';
import {
  ArchiveBreakoutError,
  GraphDriverError,
  InvalidArchiveError,
  OperationFailedError,
  errorCode,
} from '../errors.js';
import { throwIfAborted } from './abort.js';
import { IdTranslator, hostRootPair } from './idmap.js';
import { removeAllAt, removeChild } from './remove.js';
import { RootResolver } from './resolver.js';
import { readLayerTar, type DataSink, type TarEntry } from './tar-reader.js';
import {
  WHITEOUT_LINK_DIR,
  WHITEOUT_META_PREFIX,
  WHITEOUT_OPAQUE_DIR,
  WHITEOUT_PREFIX,
  isOverlayXattr,
  overlayOpaqueXattr,
  type OverlayXattrPrefix,
} from './whiteouts.js';

const debug = debuglog('graphdriver:core');

export interface UnpackOptions {
  /**
   * 'apply' (default, moby's ApplyLayer/UnpackLayer): whiteouts delete what exists, an opaque
   * marker empties its directory except what this tar created; 'overlay': whiteouts are stored as
   * 0/0 character devices and opaque markers as `<prefix>.overlay.opaque=y` (moby's overlay2
   * applyDiff); 'aufs': `.wh.` entries are stored as the plain files they are (moby's aufs driver).
   */
  whiteouts?: 'apply' | 'overlay' | 'aufs';
  overlayXattrPrefix?: OverlayXattrPrefix;
  /** Container ids in the tar -> host ids on disk. */
  idMappings?: IdMappings;
  /** Keep going when chown fails (rootless, unmapped ids on the filesystem). */
  ignoreChownErrors?: boolean;
  /** Refuse character and block device entries (InvalidArchiveError); 0/0 whiteout devices are still fine. */
  noDevices?: boolean;
  signal?: AbortSignal;
}

/**
 * Extract the layer tar `tar` into the existing directory `root`; resolves with the sum of the
 * entries' sizes as moby counts it (every entry's header size, whiteouts and skipped entries
 * included). Rejects with ArchiveBreakoutError or InvalidArchiveError for a hostile or broken tar
 * (what was extracted before stays: the caller removes the layer), AbortError on abort.
 */
export async function unpack(root: string, tar: Readable, opts: UnpackOptions = {}): Promise<number> {
  throwIfAborted(opts.signal);
  let rootFd: number;
  try {
    rootFd = openat2Sync(AT.FDCWD, root, { flags: O.PATH | O.DIRECTORY | O.CLOEXEC });
  } catch (err) {
    tar.destroy();
    throw new OperationFailedError(`opening the unpack root ${JSON.stringify(root)}`, undefined, err);
  }
  const unpacker = new LayerUnpacker(rootFd, opts);
  try {
    await readLayerTar(tar, (entry) => unpacker.handle(entry), { signal: opts.signal });
    unpacker.finish();
    return unpacker.size;
  } finally {
    unpacker.close();
    closeSync(rootFd);
  }
}

/** A whiteout's target that names no entry of its directory. */
function isBadWhiteoutTarget(original: string): boolean {
  return original === '' || original === '.' || original === '..';
}

/** The process umask, read without changing it (process.umask() with no argument is deprecated). */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    if (m?.[1] !== undefined) return parseInt(m[1], 8);
  } catch {
    // fall through: assume the worst, so every mode is re-applied
  }
  return 0o777;
}

/**
 * A tar name as a clean relative path ('' for the root itself), or ArchiveBreakoutError. An
 * absolute name is taken inside the root, as moby's Unpack does (filepath.Join(dest, name)): umoci
 * writes its layers' root directory as "/".
 */
export function normalizeEntryName(raw: string): string {
  if (raw.startsWith('/')) return posix.normalize(raw).replace(/^\/+|\/+$/g, ''); // '/..' is '/' (Go's Clean)
  // Fast path for the usual `a/b/c` or `a/b/` (no '.', '..' or empty components).
  if (!raw.includes('//') && !/(^|\/)\.\.?(\/|$)/.test(raw)) return raw.endsWith('/') ? raw.slice(0, -1) : raw;
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new ArchiveBreakoutError(raw, 'its name leads out of the root');
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return parts.join('/');
}

/** A hard-link target as a clean relative path; absolute targets are taken inside the root (as moby, for kaniko). */
function normalizeLinkTarget(name: string, target: string): string {
  let parts: string[];
  try {
    parts = normalizeEntryName(target.replace(/^\/+/, '')).split('/');
  } catch {
    throw new ArchiveBreakoutError(name, `hard link target ${JSON.stringify(target)} is outside the root`);
  }
  const clean = parts.join('/');
  if (clean === '') throw new ArchiveBreakoutError(name, `invalid hard link target ${JSON.stringify(target)}`);
  return clean;
}

/** moby's rule: a relative symlink target that, taken from the link's directory, leaves the root. */
function symlinkEscapes(name: string, target: string): boolean {
  if (target.startsWith('/')) return false;
  const parts = name.split('/');
  parts.pop();
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) return true;
      parts.pop();
    } else {
      parts.push(part);
    }
  }
  return false;
}

function splitName(name: string): [parent: string, base: string] {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? ['', name] : [name.slice(0, slash), name.slice(slash + 1)];
}

function latest(a: Timespec | undefined, b: Timespec): Timespec {
  if (a === undefined) return b;
  return a.sec > b.sec || (a.sec === b.sec && a.nsec > b.nsec) ? a : b;
}

const TYPE_BITS: Partial<Record<TarEntry['kind'], number>> = { char: S.IFCHR, block: S.IFBLK, fifo: S.IFIFO };

interface PendingDir {
  name: string;
  atime: Timespec;
  mtime: Timespec;
}

interface PlnkStore {
  /** The temporary directory's name in the root. */
  name: string;
  fd: number;
  entries: Map<string, TarEntry>;
}

/** Where an entry goes: its parent directory (fd and path) and its final name. */
interface Target {
  name: string;
  parentRel: string;
  parentFd: number;
  base: string;
}

class LayerUnpacker {
  size = 0;
  private readonly mode: 'apply' | 'overlay' | 'aufs';
  private readonly toHost: IdTranslator;
  private readonly resolver: RootResolver;
  private readonly umask = currentUmask();
  private readonly euid = process.geteuid?.() ?? -1;
  private readonly egid = process.getegid?.() ?? -1;
  private readonly opaqueXattr: string;
  /** 'apply' only: what this tar created (and their ancestors), spared by opaque markers. */
  private readonly created: Set<string> | undefined;
  private readonly createdAncestors: Set<string> | undefined;
  private readonly dirs: PendingDir[] = [];
  private plnk: PlnkStore | undefined;
  private lastParent = '';

  constructor(
    private readonly rootFd: number,
    private readonly opts: UnpackOptions,
  ) {
    this.mode = opts.whiteouts ?? 'apply';
    this.toHost = new IdTranslator(opts.idMappings, 'toHost');
    const implied = hostRootPair(opts.idMappings);
    this.resolver = new RootResolver(rootFd, { impliedUid: implied.uid, impliedGid: implied.gid });
    this.opaqueXattr = overlayOpaqueXattr(opts.overlayXattrPrefix ?? 'trusted');
    if (this.mode === 'apply') {
      this.created = new Set();
      this.createdAncestors = new Set();
    }
  }

  handle(entry: TarEntry): DataSink | null {
    this.size += entry.size;
    const name = normalizeEntryName(entry.name);
    if (name === '') return null; // the root itself: moby leaves its metadata alone
    try {
      return this.dispatch(name, entry);
    } catch (err) {
      throw wrap(err, name);
    }
  }

  private dispatch(name: string, entry: TarEntry): DataSink | null {
    // AUFS metadata at the top of the tar never becomes layer content, except hard-link sources.
    if (this.mode !== 'aufs' && name.startsWith(WHITEOUT_META_PREFIX)) {
      if (name.startsWith(WHITEOUT_LINK_DIR) && entry.kind === 'file') return this.storePlnk(name, entry);
      if (name !== WHITEOUT_OPAQUE_DIR) return null;
    }
    const [parentRel, base] = splitName(name);
    const parentFd = this.resolver.dir(parentRel, name) as number;
    const target: Target = { name, parentRel, parentFd, base };
    if (this.mode !== 'aufs' && base.startsWith(WHITEOUT_PREFIX)) {
      this.whiteout(target, entry);
      return null;
    }
    // 'aufs' stores whiteouts as files, but one of '', '.' or '..' is as malformed there as in the
    // other modes: a branch reader (aufs, fuse-overlayfs) would take it for a deletion of the parent.
    if (base.startsWith(WHITEOUT_PREFIX) && !base.startsWith(WHITEOUT_META_PREFIX) && isBadWhiteoutTarget(base.slice(WHITEOUT_PREFIX.length))) {
      throw new InvalidArchiveError('invalid whiteout entry', name);
    }
    return this.create(target, entry);
  }

  // ---- whiteouts -------------------------------------------------------------------------------

  private whiteout(t: Target, entry: TarEntry): void {
    if (t.base === WHITEOUT_OPAQUE_DIR) {
      if (this.mode === 'apply') this.makeOpaque(t.parentFd, t.parentRel);
      else this.markOpaque(t.parentFd);
      return;
    }
    const original = t.base.slice(WHITEOUT_PREFIX.length);
    if (isBadWhiteoutTarget(original)) {
      throw new InvalidArchiveError('invalid whiteout entry', t.name);
    }
    const originalRel = t.parentRel === '' ? original : `${t.parentRel}/${original}`;
    this.removeExisting({ ...t, base: original, name: originalRel });
    if (this.mode === 'overlay') {
      const fd = this.resolver.dir(t.parentRel, t.name) as number;
      mknodatSync(fd, original, S.IFCHR, 0, 0);
      const uid = this.hostUid(entry, t.name);
      const gid = this.hostGid(entry, t.name);
      // As moby: a whiteout made by root for root keeps the owner mknod gave it.
      if (uid !== 0 || gid !== 0) this.chownAt(fd, original, uid, gid);
      // The device takes the entry's times (moby leaves the time of the mknod): a diff of the
      // applied layer then gives back the same tar, byte for byte, whenever it is taken.
      utimensatSync(fd, original, latest(entry.atime, entry.mtime), entry.mtime, AT.SYMLINK_NOFOLLOW);
    }
  }

  /** overlay: the directory itself carries the opaque xattr. */
  private markOpaque(dirFd: number): void {
    const fd = openat2Sync(dirFd, '.', { flags: O.RDONLY | O.DIRECTORY | O.CLOEXEC });
    try {
      fsetxattrSync(fd, this.opaqueXattr, Buffer.from('y'));
    } finally {
      closeSync(fd);
    }
  }

  /** apply: empty the directory except what this tar created in it (at any depth). */
  private makeOpaque(dirFd: number, dirRel: string): void {
    const fd = openat2Sync(dirFd, '.', { flags: O.RDONLY | O.DIRECTORY | O.CLOEXEC });
    try {
      this.prune(fd, dirRel);
    } finally {
      closeSync(fd);
    }
    // Removed directories may be cached (also behind symlinks): keep only the opaque dir's own fd.
    this.resolver.invalidateAllBut(dirRel);
  }

  private prune(fd: number, dirRel: string): void {
    const created = this.created as Set<string>;
    const ancestors = this.createdAncestors as Set<string>;
    for (const [child, dtype] of getdentsSync(fd)) {
      if (dirRel === '' && child === this.plnk?.name) continue;
      const rel = dirRel === '' ? child : `${dirRel}/${child}`;
      if (!created.has(rel) && !ancestors.has(rel)) {
        removeChild(fd, child, dtype);
        continue;
      }
      if (dtype !== DT.DIR && dtype !== DT.UNKNOWN) continue;
      let sub: number;
      try {
        sub = openat2Sync(fd, child, { flags: O.RDONLY | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC });
      } catch (err) {
        const code = errorCode(err);
        if (code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENOENT') continue; // not a directory after all
        throw err;
      }
      try {
        this.prune(sub, rel);
      } finally {
        closeSync(sub);
      }
    }
  }

  // ---- entries ---------------------------------------------------------------------------------

  private create(t: Target, entry: TarEntry): DataSink | null {
    if ((entry.kind === 'char' || entry.kind === 'block') && this.opts.noDevices === true) {
      const whiteoutDevice = entry.kind === 'char' && entry.devmajor === 0 && entry.devminor === 0;
      if (!whiteoutDevice) throw new InvalidArchiveError('device nodes are not allowed here', t.name);
    }
    if (entry.kind === 'symlink' && symlinkEscapes(t.name, entry.linkname)) {
      throw new ArchiveBreakoutError(t.name, `symlink target ${JSON.stringify(entry.linkname)} is outside the root`);
    }
    const uid = this.hostUid(entry, t.name);
    const gid = this.hostGid(entry, t.name);
    let sink: DataSink | null = null;
    switch (entry.kind) {
      case 'dir':
        this.createDir(t, entry, uid, gid);
        break;
      case 'file':
        sink = this.createFile(t, entry, uid, gid);
        break;
      case 'symlink':
        this.createSymlink(t, entry, uid, gid);
        break;
      case 'link':
        sink = this.createHardLink(t, entry, uid, gid);
        break;
      case 'char':
      case 'block':
      case 'fifo':
        this.createNode(t, entry, uid, gid);
        break;
    }
    this.recordCreated(t.name);
    return sink;
  }

  /** Run `make` in the parent; when the name exists, remove what is there and run it again. */
  private makeReplacing(t: Target, make: (parentFd: number) => void): number {
    try {
      make(t.parentFd);
      return t.parentFd;
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
    }
    this.removeExisting(t);
    const fd = this.resolver.dir(t.parentRel, t.name) as number;
    make(fd);
    return fd;
  }

  private removeExisting(t: Target): void {
    const removed = removeAllAt(t.parentFd, t.base);
    if (removed === 'directory') this.resolver.invalidateAllBut(t.parentRel);
    else if (removed === 'non-directory') this.resolver.invalidate(t.name);
  }

  private createDir(t: Target, entry: TarEntry, uid: number, gid: number): void {
    let fd = t.parentFd;
    try {
      mkdiratSync(fd, t.base, entry.mode & 0o777);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      const existing = fstatatSync(fd, t.base, AT.SYMLINK_NOFOLLOW);
      if ((existing.mode & S.IFMT) !== S.IFDIR) {
        this.removeExisting(t);
        fd = this.resolver.dir(t.parentRel, t.name) as number;
        mkdiratSync(fd, t.base, entry.mode & 0o777);
      } else {
        // Directory over directory keeps the contents and takes the new metadata; its cached fd
        // (and the group recorded with it) is dropped, the owner is about to change.
        this.resolver.invalidate(t.name);
        fd = this.resolver.dir(t.parentRel, t.name) as number;
      }
    }
    this.chownAt(fd, t.base, uid, gid);
    if (this.hasXattrs(entry)) {
      const dirFd = openat2Sync(fd, t.base, { flags: O.RDONLY | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC });
      try {
        this.setXattrs(entry, (n, v) => fsetxattrSync(dirFd, n, v), t.name);
      } finally {
        closeSync(dirFd);
      }
    }
    // Always: mkdir applied the umask, and a set-gid parent hands its bit down.
    fchmodatSync(fd, t.base, entry.mode, AT.SYMLINK_NOFOLLOW);
    this.dirs.push({ name: t.name, atime: latest(entry.atime, entry.mtime), mtime: entry.mtime });
  }

  /** Create `t` as a new empty regular file (replacing what is there); its fd and the parent fd used. */
  private openNewFile(t: Target, mode: number): { fd: number; parentFd: number } {
    const how = { flags: O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC, mode: mode & 0o777 };
    try {
      return { fd: openat2Sync(t.parentFd, t.base, how), parentFd: t.parentFd };
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
    }
    this.removeExisting(t);
    const parentFd = this.resolver.dir(t.parentRel, t.name) as number;
    return { fd: openat2Sync(parentFd, t.base, how), parentFd };
  }

  private createFile(t: Target, entry: TarEntry, uid: number, gid: number): DataSink {
    const { fd, parentFd } = this.openNewFile(t, entry.mode);
    return new FileSink(this, fd, parentFd, t, entry, uid, gid);
  }

  /** Metadata of a regular file whose data was written (called by FileSink.end). */
  finishFile(fd: number, parentFd: number, t: Target, entry: TarEntry, uid: number, gid: number): void {
    if (!this.ownedAlready(parentFd, uid, gid)) this.chown(() => fchownSync(fd, uid, gid), t.name, uid, gid);
    if (this.hasXattrs(entry)) this.setXattrs(entry, (n, v) => fsetxattrSync(fd, n, v), t.name);
    // chown clears set-id bits and open() applied the umask: re-apply the mode only when it matters.
    if ((entry.mode & 0o7000) !== 0 || (entry.mode & this.umask) !== 0) fchmodSync(fd, entry.mode);
    if (entry.mtime.nsec === 0 && entry.atime === undefined && entry.mtime.sec >= 0) {
      // Whole seconds (what moby writes) are exact as doubles: futimens on the fd, no lookup.
      // (Node takes a negative time for "now", hence only from the epoch on.)
      futimesSync(fd, entry.mtime.sec, entry.mtime.sec);
    } else {
      utimensatSync(parentFd, t.base, latest(entry.atime, entry.mtime), entry.mtime, AT.SYMLINK_NOFOLLOW);
    }
  }

  private createSymlink(t: Target, entry: TarEntry, uid: number, gid: number): void {
    const fd = this.makeReplacing(t, (dir) => symlinkatSync(entry.linkname, dir, t.base));
    if (!this.ownedAlready(fd, uid, gid)) this.chownAt(fd, t.base, uid, gid);
    if (this.hasXattrs(entry)) this.setXattrs(entry, (n, v) => lsetxattrSync(procPath(fd, t.base), n, v), t.name);
    utimensatSync(fd, t.base, latest(entry.atime, entry.mtime), entry.mtime, AT.SYMLINK_NOFOLLOW);
  }

  private createNode(t: Target, entry: TarEntry, uid: number, gid: number): void {
    const type = TYPE_BITS[entry.kind] as number;
    const fd = this.makeReplacing(t, (dir) =>
      mknodatSync(dir, t.base, type | (entry.mode & 0o7777), entry.devmajor, entry.devminor),
    );
    if (!this.ownedAlready(fd, uid, gid)) this.chownAt(fd, t.base, uid, gid);
    if (this.hasXattrs(entry)) this.setXattrs(entry, (n, v) => lsetxattrSync(procPath(fd, t.base), n, v), t.name);
    if ((entry.mode & 0o7000) !== 0 || (entry.mode & this.umask) !== 0) {
      fchmodatSync(fd, t.base, entry.mode, AT.SYMLINK_NOFOLLOW);
    }
    utimensatSync(fd, t.base, latest(entry.atime, entry.mtime), entry.mtime, AT.SYMLINK_NOFOLLOW);
  }

  private createHardLink(t: Target, entry: TarEntry, uid: number, gid: number): DataSink | null {
    const targetName = normalizeLinkTarget(t.name, entry.linkname);
    if (this.mode !== 'aufs' && targetName.startsWith(WHITEOUT_LINK_DIR)) {
      return this.copyFromPlnk(t, targetName);
    }
    const [targetParent, targetBase] = splitName(targetName);
    // The link's parent fd is the most recently used cache entry, so resolving the target's
    // directory (which may insert and evict) never closes it.
    const linkDir = this.makeReplacing(t, (dir) => {
      const targetDir = this.resolver.dir(targetParent, t.name, false);
      if (targetDir === undefined) {
        throw new InvalidArchiveError(`hard link target ${JSON.stringify(entry.linkname)} does not exist`, t.name);
      }
      linkatSync(targetDir, targetBase, dir, t.base, 0);
    });
    this.chownAt(linkDir, t.base, uid, gid);
    if (this.hasXattrs(entry)) this.setXattrs(entry, (n, v) => lsetxattrSync(procPath(linkDir, t.base), n, v), t.name);
    // There is no lchmod: a hard link to a symlink keeps the symlink's mode and times (as moby).
    const isSymlink = (fstatatSync(linkDir, t.base, AT.SYMLINK_NOFOLLOW).mode & S.IFMT) === S.IFLNK;
    if (!isSymlink) {
      fchmodatSync(linkDir, t.base, entry.mode, AT.SYMLINK_NOFOLLOW);
      utimensatSync(linkDir, t.base, latest(entry.atime, entry.mtime), entry.mtime, AT.SYMLINK_NOFOLLOW);
    }
    return null;
  }

  // ---- AUFS hard-link sources (.wh..wh.plnk) ---------------------------------------------------

  /** Keep a `.wh..wh.plnk/<ino>` file aside: hard links in the tar may point at it. */
  private storePlnk(name: string, entry: TarEntry): DataSink {
    if (this.plnk === undefined) {
      const dirName = `.graphdriver-plnk-${randomBytes(6).toString('hex')}`;
      mkdiratSync(this.rootFd, dirName, 0o700);
      const fd = openat2Sync(this.rootFd, dirName, { flags: O.PATH | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC });
      this.plnk = { name: dirName, fd, entries: new Map() };
    }
    const store = this.plnk;
    const base = splitName(name)[1];
    store.entries.set(base, entry);
    const t: Target = { name, parentRel: store.name, parentFd: store.fd, base };
    const { fd } = this.openNewFile(t, 0o600);
    return new FileSink(undefined, fd, store.fd, t, entry, 0, 0);
  }

  /** moby turns a hard link into `.wh..wh.plnk` into a copy of the stored file, with its metadata. */
  private copyFromPlnk(t: Target, targetName: string): null {
    const base = splitName(targetName)[1];
    const src = this.plnk?.entries.get(base);
    if (this.plnk === undefined || src === undefined) {
      throw new InvalidArchiveError('invalid aufs hard link: its .wh..wh.plnk source is not in the tar', t.name);
    }
    const uid = this.hostUid(src, t.name);
    const gid = this.hostGid(src, t.name);
    const srcFd = openat2Sync(this.plnk.fd, base, { flags: O.RDONLY | O.NOFOLLOW | O.CLOEXEC });
    try {
      const { fd, parentFd } = this.openNewFile(t, src.mode);
      try {
        copyAll(srcFd, fd);
        this.finishFile(fd, parentFd, t, src, uid, gid);
      } finally {
        closeSync(fd);
      }
    } finally {
      closeSync(srcFd);
    }
    return null;
  }

  // ---- metadata helpers ------------------------------------------------------------------------

  private hostUid(entry: TarEntry, name: string): number {
    const id = this.toHost.uid(entry.uid);
    if (id === undefined) throw new InvalidArchiveError(`uid ${entry.uid} has no host id in the id mappings`, name);
    return id;
  }

  private hostGid(entry: TarEntry, name: string): number {
    const id = this.toHost.gid(entry.gid);
    if (id === undefined) throw new InvalidArchiveError(`gid ${entry.gid} has no host id in the id mappings`, name);
    return id;
  }

  /**
   * True when a node just created in `parentFd` already has owner uid:gid: we made it as that
   * user, and its group is `gid` whether it came from our egid or from the parent (set-gid
   * directory, grpid mount). Saves a chown per file for the usual root-owned layer content.
   */
  private ownedAlready(parentFd: number, uid: number, gid: number): boolean {
    return uid === this.euid && gid === this.egid && this.resolver.groupOf(parentFd) === gid;
  }

  private chownAt(dirFd: number, base: string, uid: number, gid: number): void {
    this.chown(() => fchownatSync(dirFd, base, uid, gid, AT.SYMLINK_NOFOLLOW), base, uid, gid);
  }

  private chown(fn: () => void, name: string, uid: number, gid: number): void {
    try {
      fn();
    } catch (err) {
      if (this.opts.ignoreChownErrors !== true) throw err;
      debug('archive: ignoring chown(%s, %d, %d) failure: %s', name, uid, gid, err);
    }
  }

  private hasXattrs(entry: TarEntry): boolean {
    return entry.xattrs.length > 0;
  }

  private setXattrs(entry: TarEntry, set: (name: string, value: Buffer) => void, name: string): void {
    for (const [key, value] of entry.xattrs) {
      // overlay's own bookkeeping (redirects, metacopy, opaque) is never taken from a tar.
      if (isOverlayXattr(key)) continue;
      try {
        set(key, value);
      } catch (err) {
        // As moby: EPERM (e.g. user.* on a symlink, or not allowed here) is a warning, not a failure.
        if (errorCode(err) !== 'EPERM') throw err;
        debug('archive: ignoring xattr %s on %s: %s', key, name, err);
      }
    }
  }

  private recordCreated(name: string): void {
    if (this.created === undefined || this.createdAncestors === undefined) return;
    this.created.add(name);
    let slash = name.lastIndexOf('/');
    // Entries come grouped by directory: the same parent as last time needs no walk up.
    if (slash > 0 && name.length > slash && this.lastParent.length === slash && name.startsWith(this.lastParent)) return;
    if (slash > 0) this.lastParent = name.slice(0, slash);
    while (slash > 0) {
      const parent = name.slice(0, slash);
      if (this.createdAncestors.has(parent)) break;
      this.createdAncestors.add(parent);
      slash = parent.lastIndexOf('/');
    }
  }

  // ---- end -------------------------------------------------------------------------------------

  /** Set directory times, after everything inside the directories was created. */
  finish(): void {
    for (const d of this.dirs) {
      const [parentRel, base] = splitName(d.name);
      try {
        const fd = this.resolver.dir(parentRel, d.name, false);
        if (fd === undefined) continue;
        if ((fstatatSync(fd, base, AT.SYMLINK_NOFOLLOW).mode & S.IFMT) !== S.IFDIR) continue; // replaced later
        utimensatSync(fd, base, d.atime, d.mtime, AT.SYMLINK_NOFOLLOW);
      } catch (err) {
        if (errorCode(err) === 'ENOENT') continue; // removed later in the tar
        throw wrap(err, d.name);
      }
    }
  }

  /** Release fds and remove the `.wh..wh.plnk` stash; never throws (it runs after failures too). */
  close(): void {
    this.resolver.clear();
    if (this.plnk !== undefined) {
      const { name, fd } = this.plnk;
      this.plnk = undefined;
      try {
        closeSync(fd);
        removeAllAt(this.rootFd, name);
      } catch (err) {
        debug('archive: could not remove %s: %s', name, err);
      }
    }
  }
}

/**
 * The data sink of one regular file: writes go straight to the fd, end() applies the metadata and
 * closes it, abort() only closes. A class rather than closures: one of these is made per file.
 */
class FileSink implements DataSink {
  private open = true;

  constructor(
    /** undefined for a `.wh..wh.plnk` stash file: content only. */
    private readonly unpacker: LayerUnpacker | undefined,
    private readonly fd: number,
    private readonly parentFd: number,
    private readonly t: Target,
    private readonly entry: TarEntry,
    private readonly uid: number,
    private readonly gid: number,
  ) {}

  write(buf: Buffer, offset: number, length: number): void {
    try {
      writeAll(this.fd, buf, offset, length);
    } catch (err) {
      throw wrap(err, this.t.name);
    }
  }

  end(): void {
    try {
      this.unpacker?.finishFile(this.fd, this.parentFd, this.t, this.entry, this.uid, this.gid);
    } catch (err) {
      throw wrap(err, this.t.name);
    } finally {
      this.abort();
    }
  }

  abort(): void {
    if (this.open) {
      this.open = false;
      closeSync(this.fd);
    }
  }
}

function wrap(err: unknown, name: string): unknown {
  if (err instanceof GraphDriverError) return err;
  return new OperationFailedError(`unpacking tar entry ${JSON.stringify(name)}`, undefined, err);
}

function procPath(dirFd: number, base: string): string {
  // The fd's magic link is an intermediate component (followed to the directory we resolved);
  // the l*xattr call does not follow `base` itself.
  return `/proc/self/fd/${dirFd}/${base}`;
}

function writeAll(fd: number, buf: Buffer, offset: number, length: number): void {
  const end = offset + length;
  let off = offset;
  while (off < end) off += writeSync(fd, buf, off, end - off);
}

function copyAll(src: number, dst: number): void {
  const buf = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    const n = readSync(src, buf, 0, buf.length, null);
    if (n === 0) return;
    writeAll(dst, buf, 0, n);
  }
}
