/**
 * The file metadata change detection looks at, read with lstat, and moby's rules for comparing it
 * (pkg/archive changes_unix.go statDifferent, changes.go sameFsTimeSpec). Times are kept as whole
 * seconds plus nanoseconds because the comparison tolerates a missing sub-second part.
 */
import { lstatSync, type BigIntStats } from 'node:fs';
import { errorCode } from '../errors.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

export interface EntryStat {
  dev: bigint;
  ino: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  mtimeSec: bigint;
  mtimeNsec: number;
}

const NS_PER_SEC = 1_000_000_000n;

function toEntryStat(s: BigIntStats): EntryStat {
  let sec = s.mtimeNs / NS_PER_SEC;
  let nsec = s.mtimeNs % NS_PER_SEC;
  // BigInt division truncates toward zero; times before 1970 need the floor.
  if (nsec < 0n) {
    nsec += NS_PER_SEC;
    sec -= 1n;
  }
  return {
    dev: s.dev,
    ino: s.ino,
    mode: Number(s.mode),
    nlink: Number(s.nlink),
    uid: Number(s.uid),
    gid: Number(s.gid),
    rdev: Number(s.rdev),
    size: Number(s.size),
    mtimeSec: sec,
    mtimeNsec: Number(nsec),
  };
}

/**
 * lstat that answers `undefined` when the entry is gone (ENOENT, or ENOTDIR when a parent was
 * replaced by a file): a tree can change while we walk it, and a vanished entry is simply absent.
 */
export function lstatEntry(path: string): EntryStat | undefined {
  try {
    const s = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    return s === undefined ? undefined : toEntryStat(s);
  } catch (err) {
    if (errorCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

export const isDir = (s: EntryStat): boolean => (s.mode & S_IFMT) === S_IFDIR;
export const isRegular = (s: EntryStat): boolean => (s.mode & S_IFMT) === S_IFREG;
export const isSymlink = (s: EntryStat): boolean => (s.mode & S_IFMT) === S_IFLNK;
/** overlayfs' whiteout: a character device 0/0. */
export const isOverlayWhiteout = (s: EntryStat): boolean => (s.mode & S_IFMT) === S_IFCHR && s.rdev === 0;
export const sameObject = (a: EntryStat, b: EntryStat): boolean => a.dev === b.dev && a.ino === b.ino;

/**
 * moby's sameFsTimeSpec: equal, or the same second with either side lacking nanoseconds (a tar
 * round trip truncates mtimes to whole seconds).
 */
export function sameFsTime(a: EntryStat, b: EntryStat): boolean {
  return a.mtimeSec === b.mtimeSec && (a.mtimeNsec === b.mtimeNsec || a.mtimeNsec === 0 || b.mtimeNsec === 0);
}

/**
 * moby's statDifferent: type and permission bits, owner, device number, and for non-directories
 * size and mtime. A directory's size and mtime are no measure of change (moby#9874).
 */
export function statDifferent(oldStat: EntryStat, newStat: EntryStat): boolean {
  if (oldStat.mode !== newStat.mode || oldStat.uid !== newStat.uid || oldStat.gid !== newStat.gid) return true;
  if (oldStat.rdev !== newStat.rdev) return true;
  if (!isDir(oldStat) && (!sameFsTime(oldStat, newStat) || oldStat.size !== newStat.size)) return true;
  return false;
}

/**
 * The rule moby's layer-dir walk uses to drop a directory copied up unchanged: same mode, size and
 * mtime as in the lower layer. We also compare the owner, which moby forgets: a chown'd directory
 * would otherwise be missing from the diff.
 */
export function sameDirectory(upper: EntryStat, lower: EntryStat): boolean {
  return (
    upper.mode === lower.mode &&
    upper.uid === lower.uid &&
    upper.gid === lower.gid &&
    upper.size === lower.size &&
    sameFsTime(upper, lower)
  );
}
