/**
 * Keeping a rw branch in AUFS format whichever backend wrote it. The kernel's aufs writes AUFS
 * branches by definition; fuse-overlayfs (run with FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT=1, see
 * fuse-backend.ts) writes `.wh.` whiteouts and `.wh..wh..opq` markers too, but leaves state of its
 * own in the branch, which normalizeBranch() removes:
 *
 *  - `user.fuseoverlayfs.*` xattrs (the origin of copied-up files) and `trusted.overlay.*` xattrs
 *    (the opaque flag beside `.wh..wh..opq`): a diff would carry the first, and neither means
 *    anything to aufs;
 *  - a directory flagged opaque by xattr only gets its `.wh..wh..opq` file;
 *  - a 0/0 character device - what fuse-overlayfs writes for a deletion when it was run without the
 *    variable (a store mounted by some other tool) - becomes the `.wh.<name>` file it stands for,
 *    with the device's owner and permissions (moby's overlay-to-AUFS tar conversion does the same);
 *  - its work directory `.wh..wh.work` at the top, unless the branch is still mounted.
 *
 * It walks the branch with directory fds (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, getdents),
 * and touches entries only by name relative to their directory (xattrs of a directory through its
 * fd, of a file through `/proc/self/fd/<dir>/<name>` with the l* calls, which resolve the pinned
 * directory and never follow the name), so it may run on a branch a container is changing: a directory swapped for a symlink
 * meanwhile cannot lead it outside the branch.
 */
import { closeSync, fchownSync, fstatSync, rmSync } from 'node:fs';
import { debuglog } from 'node:util';
import {
  AT,
  DT,
  O,
  RESOLVE,
  S,
  fstatatSync,
  getdentsSync,
  fgetxattrSync,
  flistxattrSync,
  fremovexattrSync,
  llistxattrSync,
  lremovexattrSync,
  openat2Sync,
  unlinkatSync,
} from '@graphdriver/native';
import { errorCode, OperationFailedError } from '@graphdriver/core';
import { FUSE_WORKDIR } from './layout.js';

const debug = debuglog('graphdriver:aufs');

export const WHITEOUT_PREFIX = '.wh.';
export const META_PREFIX = '.wh..wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/** xattrs that are a union filesystem's private state, never a layer's content. */
export function isUnionPrivateXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.fuseoverlayfs.');
}

const OPAQUE_XATTRS = ['trusted.overlay.opaque', 'user.fuseoverlayfs.opaque'];

export interface NormalizeOptions {
  /** Leave the work directory (the branch is still mounted). */
  keepWorkdir?: boolean;
  signal?: AbortSignal;
}

export interface NormalizeReport {
  /** Entries looked at. */
  entries: number;
  /** 0/0 character devices turned into `.wh.` files. */
  whiteouts: number;
  /** `.wh..wh..opq` files written for directories flagged opaque by xattr only. */
  opaqueMarkers: number;
  /** Private xattrs removed. */
  xattrs: number;
}

const DIR_FLAGS = O.RDONLY | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC;
const BENEATH = RESOLVE.BENEATH | RESOLVE.NO_SYMLINKS | RESOLVE.NO_MAGICLINKS;

function isAbsent(err: unknown): boolean {
  const c = errorCode(err);
  return c === 'ENOENT' || c === 'ENODATA' || c === 'ENOTSUP' || c === 'EOPNOTSUPP';
}

/** The names of the private xattrs of `path` (an l* path: the last component is not followed). */
function privateXattrs(path: string): string[] {
  try {
    return llistxattrSync(path).filter(isUnionPrivateXattr);
  } catch (err) {
    if (isAbsent(err)) return [];
    throw err;
  }
}

function removeXattrs(path: string, names: readonly string[]): number {
  let n = 0;
  for (const name of names) {
    try {
      lremovexattrSync(path, name);
      n++;
    } catch (err) {
      if (!isAbsent(err)) throw err;
    }
  }
  return n;
}

/** Removes `name` from `dirFd` when it is a 0/0 character device. */
function dropDeviceWhiteout(dirFd: number, name: string, report: NormalizeReport): void {
  let st;
  try {
    st = fstatatSync(dirFd, name, AT.SYMLINK_NOFOLLOW);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return;
    throw err;
  }
  if ((st.mode & S.IFMT) !== S.IFCHR || st.rdevMajor !== 0 || st.rdevMinor !== 0) return;
  unlinkatSync(dirFd, name);
  report.whiteouts++;
}

/** Creates the empty file `name` in `dirFd` (nothing when it exists), owned as given. */
function createMarker(dirFd: number, name: string, mode: number, uid: number, gid: number): boolean {
  let fd: number;
  try {
    fd = openat2Sync(dirFd, name, { flags: O.WRONLY | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC, mode, resolve: BENEATH });
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    throw err;
  }
  try {
    fchownSync(fd, uid, gid);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Brings the branch at `dir` to pure AUFS format (see the top of the file). */
export async function normalizeBranch(dir: string, opts: NormalizeOptions = {}): Promise<NormalizeReport> {
  const started = performance.now();
  const report: NormalizeReport = { entries: 0, whiteouts: 0, opaqueMarkers: 0, xattrs: 0 };
  let rootFd: number;
  try {
    rootFd = openat2Sync(AT.FDCWD, dir, { flags: DIR_FLAGS });
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return report;
    throw new OperationFailedError(`opening the branch ${dir}`, undefined, err);
  }
  const stack: number[] = [rootFd];
  let sinceYield = 0;
  try {
    normalizeDirItself(rootFd, report);
    while (stack.length > 0) {
      const dirFd = stack.pop()!;
      try {
        opts.signal?.throwIfAborted();
        const base = `/proc/self/fd/${dirFd}`;
        for (const [name, dtype] of getdentsSync(dirFd)) {
          if (name.startsWith(WHITEOUT_PREFIX)) {
            // whiteouts, markers and AUFS metadata stay; a 0/0 device under such a name (fuse-overlayfs
            // without the variable writes `.wh..opq` beside an opaque marker) stands for nothing in AUFS
            if (dtype === DT.CHR || dtype === DT.UNKNOWN) dropDeviceWhiteout(dirFd, name, report);
            continue;
          }
          report.entries++;
          let type = dtype;
          if (type === DT.UNKNOWN || type === DT.CHR) {
            let st;
            try {
              st = fstatatSync(dirFd, name, AT.SYMLINK_NOFOLLOW);
            } catch (err) {
              if (errorCode(err) === 'ENOENT') continue;
              throw err;
            }
            const fmt = st.mode & S.IFMT;
            if (fmt === S.IFCHR && st.rdevMajor === 0 && st.rdevMinor === 0) {
              unlinkatSync(dirFd, name);
              createMarker(dirFd, `${WHITEOUT_PREFIX}${name}`, st.mode & 0o7777, st.uid, st.gid);
              report.whiteouts++;
              continue;
            }
            type = fmt === S.IFDIR ? DT.DIR : fmt === S.IFREG ? DT.REG : DT.UNKNOWN;
          }
          if (type === DT.REG) {
            const path = `${base}/${name}`;
            const names = privateXattrs(path);
            if (names.length > 0) report.xattrs += removeXattrs(path, names);
          } else if (type === DT.DIR) {
            let fd: number;
            try {
              fd = openat2Sync(dirFd, name, { flags: DIR_FLAGS, resolve: BENEATH });
            } catch (err) {
              // gone, or swapped for something else meanwhile
              if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR' || errorCode(err) === 'ELOOP') continue;
              throw err;
            }
            try {
              normalizeDirItself(fd, report);
            } catch (err) {
              closeSync(fd);
              throw err;
            }
            stack.push(fd);
          }
          if (++sinceYield >= 2048) {
            sinceYield = 0;
            await new Promise<void>((resolve) => setImmediate(resolve));
            opts.signal?.throwIfAborted();
          }
        }
      } finally {
        if (dirFd !== rootFd) closeSync(dirFd);
      }
    }
  } finally {
    for (const fd of stack) if (fd !== rootFd) closeSync(fd);
    closeSync(rootFd);
  }
  // synchronous: fuse-overlayfs leaves it holding an empty `work/`, a few metadata calls that cost
  // less than the thread-pool round trips of the async form (about 1 ms per put measured)
  if (opts.keepWorkdir !== true) rmSync(`${dir}/${FUSE_WORKDIR}`, { recursive: true, force: true });
  debug('normalizeBranch %s: %o in %d ms', dir, report, Math.round(performance.now() - started));
  return report;
}

/** A directory's own private xattrs, by its fd; an opaque flag becomes its `.wh..wh..opq` file first. */
function normalizeDirItself(fd: number, report: NormalizeReport): void {
  let names: string[];
  try {
    names = flistxattrSync(fd).filter(isUnionPrivateXattr);
  } catch (err) {
    if (isAbsent(err)) return;
    throw err;
  }
  if (names.length === 0) return;
  let opaque = false;
  for (const n of names) {
    if (!OPAQUE_XATTRS.includes(n)) continue;
    try {
      const v = fgetxattrSync(fd, n);
      if (v.length === 1 && v[0] === 0x79) opaque = true;
    } catch (err) {
      if (!isAbsent(err)) throw err;
    }
  }
  if (opaque) {
    const st = fstatSync(fd);
    // fuse-overlayfs writes the marker itself (0700, owned by the directory's owner); only a missing one is made
    if (createMarker(fd, OPAQUE_MARKER, 0o700, st.uid, st.gid)) report.opaqueMarkers++;
  }
  for (const name of names) {
    try {
      fremovexattrSync(fd, name);
      report.xattrs++;
    } catch (err) {
      if (!isAbsent(err)) throw err;
    }
  }
}

/** Whether the branch holds fuse-overlayfs's work directory: it was mounted writable and not normalized since. */
export function hasFuseWorkdir(dir: string): boolean {
  try {
    fstatatSync(AT.FDCWD, `${dir}/${FUSE_WORKDIR}`, AT.SYMLINK_NOFOLLOW);
    return true;
  } catch {
    return false;
  }
}
