/**
 * Resolving the parent directory of a tar entry inside the unpack root, so that nothing outside
 * the root is ever created, changed or followed.
 *
 * Every parent is opened with openat2 relative to the root's fd: first with RESOLVE_BENEATH (the
 * common case: no symlink on the way, or only relative ones that stay inside), and when that says
 * EXDEV, moby's rule decides: a relative symlink that climbs above the root is a breakout
 * (ArchiveBreakoutError), an absolute symlink is interpreted inside the root (chroot semantics,
 * RESOLVE_IN_ROOT, what moby's chrootarchive gets by chrooting). The kernel does the resolution;
 * the string walk in classifyEscape only decides which error to give, it never grants access.
 *
 * Missing parents are created as moby's createImpliedDirectories does (0755, owned by the host ids
 * of container root). Directory fds are O_PATH and cached (LRU) because consecutive entries share
 * parents; the unpacker invalidates the cache whenever it removes or replaces something.
 */
import { closeSync, fstatSync } from 'node:fs';
import { AT, O, RESOLVE, S, fchmodatSync, fchownatSync, fstatatSync, mkdiratSync, openat2Sync, readlinkatSync } from '@graphdriver/native';
import { ArchiveBreakoutError, errorCode, InvalidArchiveError } from '../errors.js';

export const IMPLIED_DIRECTORY_MODE = 0o755;
const MAX_SYMLINK_HOPS = 40; // the kernel's own limit (MAXSYMLINKS)

const PATH_DIR = O.PATH | O.DIRECTORY | O.CLOEXEC;

export interface ResolverOptions {
  /** Owner of implied directories (host ids of container root). */
  impliedUid: number;
  impliedGid: number;
  /** How many directory fds to keep open. */
  maxCached?: number;
}

export class RootResolver {
  private readonly cache = new Map<string, number>();
  /** gid of each cached directory (a new entry's group unless chowned), see groupOf. */
  private readonly gids = new Map<number, number>();
  private rootGid: number | undefined;
  private readonly maxCached: number;

  constructor(
    /** An fd of the root directory (O_PATH is enough). Owned by the caller. */
    readonly rootFd: number,
    private readonly opts: ResolverOptions,
  ) {
    this.maxCached = opts.maxCached ?? 256;
  }

  /**
   * The fd of directory `rel` ('' is the root), creating missing components as implied
   * directories when `create` is true; undefined when it is missing and `create` is false.
   * The fd stays owned by the resolver: use it before the next call that may evict it (the two
   * most recently returned fds are never evicted).
   */
  dir(rel: string, entry: string, create = true): number | undefined {
    if (rel === '') return this.rootFd;
    const hit = this.cache.get(rel);
    if (hit !== undefined) {
      // LRU: move to the end so the eviction takes the least recently used.
      this.cache.delete(rel);
      this.cache.set(rel, hit);
      return hit;
    }
    let fd: number;
    try {
      fd = this.open(rel, entry);
    } catch (err) {
      const code = errorCode(err);
      // A file (or a symlink to one) where the entry needs a directory, or a symlink loop.
      if (code === 'ENOTDIR') throw new InvalidArchiveError(`a parent of it (in ${JSON.stringify(rel)}) is not a directory`, entry);
      if (code === 'ELOOP') throw new InvalidArchiveError(`its parent ${JSON.stringify(rel)} is a symlink loop`, entry);
      if (code !== 'ENOENT') throw err;
      if (!create) return undefined;
      fd = this.createImplied(rel, entry);
    }
    this.remember(rel, fd);
    return fd;
  }

  /**
   * The gid of directory fd `fd` as returned by dir(): what a new entry inside gets as its group
   * when the directory is set-gid or the filesystem is mounted grpid, else the creator's egid.
   */
  groupOf(fd: number): number {
    if (fd === this.rootFd) {
      this.rootGid ??= fstatSync(fd).gid;
      return this.rootGid;
    }
    let gid = this.gids.get(fd);
    if (gid === undefined) {
      gid = fstatSync(fd).gid;
      this.gids.set(fd, gid);
    }
    return gid;
  }

  /** Forget (and close) the cached fds of `rel` and below (replaced, or its owner changed). */
  invalidate(rel: string): void {
    const prefix = `${rel}/`;
    for (const [key, fd] of this.cache) {
      if (key === rel || key.startsWith(prefix)) this.drop(key, fd);
    }
    if (rel === '') this.rootGid = undefined;
  }

  private drop(key: string, fd: number): void {
    this.cache.delete(key);
    this.gids.delete(fd);
    closeSync(fd);
  }

  /**
   * Forget every cached fd but `keep`'s: after a directory was removed, a cached path may reach it
   * through a symlink. `keep` is the parent the caller still works in (never inside what it removed).
   */
  invalidateAllBut(keep: string): void {
    for (const [key, fd] of this.cache) {
      if (key !== keep) this.drop(key, fd);
    }
  }

  clear(): void {
    for (const fd of this.cache.values()) closeSync(fd);
    this.cache.clear();
    this.gids.clear();
  }

  private remember(rel: string, fd: number): void {
    this.cache.set(rel, fd);
    while (this.cache.size > this.maxCached) {
      const [oldest, oldFd] = this.cache.entries().next().value as [string, number];
      this.drop(oldest, oldFd);
    }
  }

  /** Open existing directory `rel` under the root, or throw (ENOENT when a component is missing). */
  private open(rel: string, entry: string): number {
    try {
      return openat2Sync(this.rootFd, rel, { flags: PATH_DIR, resolve: RESOLVE.BENEATH | RESOLVE.NO_MAGICLINKS });
    } catch (err) {
      if (errorCode(err) !== 'EXDEV') throw err;
    }
    // Something on the way leaves the root lexically: a '..' symlink or an absolute symlink.
    const why = this.classifyEscape(rel);
    if (why !== undefined) throw new ArchiveBreakoutError(entry, why);
    return openat2Sync(this.rootFd, rel, { flags: PATH_DIR, resolve: RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS });
  }

  /** Create the missing components of `rel` one by one, each inside its resolved parent. */
  private createImplied(rel: string, entry: string): number {
    const parts = rel.split('/');
    let parentFd = this.rootFd;
    let opened: number | undefined;
    let prefix = '';
    try {
      for (const part of parts) {
        prefix = prefix === '' ? part : `${prefix}/${part}`;
        let fd: number;
        const cached = this.cache.get(prefix);
        if (cached !== undefined) {
          fd = openat2Sync(cached, '.', { flags: PATH_DIR });
        } else {
          try {
            fd = this.open(prefix, entry);
          } catch (err) {
            if (errorCode(err) !== 'ENOENT') throw err;
            fd = this.mkdirImplied(parentFd, part, prefix, entry);
          }
        }
        if (opened !== undefined) closeSync(opened);
        opened = fd;
        parentFd = fd;
      }
    } catch (err) {
      if (opened !== undefined) closeSync(opened);
      throw err;
    }
    return opened as number;
  }

  private mkdirImplied(parentFd: number, name: string, rel: string, entry: string): number {
    try {
      mkdiratSync(parentFd, name, IMPLIED_DIRECTORY_MODE);
    } catch (err) {
      // Only a directory that appeared meanwhile is acceptable; anything else there is refused below.
      if (errorCode(err) !== 'EEXIST') throw err;
    }
    let fd: number;
    try {
      fd = openat2Sync(parentFd, name, { flags: PATH_DIR | O.NOFOLLOW, resolve: RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS });
    } catch (err) {
      const code = errorCode(err);
      if (code !== 'ENOTDIR' && code !== 'ELOOP') throw err;
      // What stands there is not a directory: a symlink whose target is not a directory inside the
      // root (dangling in the container's view, or out of it), or a file. Writing through either
      // is refused with a typed error; moby's MkdirAll fails there too, untyped.
      if ((fstatatSync(parentFd, name, AT.SYMLINK_NOFOLLOW).mode & S.IFMT) === S.IFLNK) {
        throw new ArchiveBreakoutError(entry, `its parent ${JSON.stringify(rel)} is a symlink that does not lead to a directory inside the layer`);
      }
      throw new InvalidArchiveError(`its parent ${JSON.stringify(rel)} is not a directory`, entry);
    }
    try {
      if (this.opts.impliedUid !== 0 || this.opts.impliedGid !== 0) {
        fchownatSync(parentFd, name, this.opts.impliedUid, this.opts.impliedGid, AT.SYMLINK_NOFOLLOW);
      }
      // mkdir's mode went through the umask; moby re-applies it so it is exactly 0755.
      fchmodatSync(parentFd, name, IMPLIED_DIRECTORY_MODE, AT.SYMLINK_NOFOLLOW);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return fd;
  }

  /**
   * Why resolving `rel` would be a breakout, or undefined when it only follows absolute symlinks
   * (interpreted inside the root). moby's rule: a relative escape that happens before any absolute
   * symlink was followed is a breakout; after one, '..' is clamped at the root as in a chroot.
   */
  classifyEscape(rel: string): string | undefined {
    const resolved: string[] = [];
    const pending = rel.split('/').reverse();
    let hops = 0;
    let followedAbsolute = false;
    while (pending.length > 0) {
      const part = pending.pop() as string;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (resolved.length > 0) resolved.pop();
        else if (!followedAbsolute) return `its path ${JSON.stringify(rel)} leads out of the root through a relative symlink`;
        continue;
      }
      const candidate = [...resolved, part].join('/');
      let mode: number;
      try {
        mode = fstatatSync(this.rootFd, candidate, AT.SYMLINK_NOFOLLOW).mode;
      } catch {
        return undefined; // missing or unreadable: the real open reports it
      }
      if ((mode & S.IFMT) !== S.IFLNK) {
        resolved.push(part);
        continue;
      }
      if (++hops > MAX_SYMLINK_HOPS) return undefined; // ELOOP from the real open
      const target = readlinkatSync(this.rootFd, candidate);
      if (target.startsWith('/')) {
        followedAbsolute = true;
        resolved.length = 0;
      }
      const targetParts = target.split('/');
      for (let i = targetParts.length - 1; i >= 0; i--) pending.push(targetParts[i] as string);
    }
    return undefined;
  }
}
