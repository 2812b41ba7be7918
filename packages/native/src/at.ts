/**
 * The *at family, in a Sync form (returns or throws, like fs.openSync) and a Promise form that runs
 * on the libuv thread pool. Paths are relative to a directory fd, or to the working directory with
 * AT.FDCWD. These are the hot calls of a layer unpacker: the Sync forms are thin, allocation-free
 * passes to the addon.
 */
import { binding, type PathLike } from './binding.js';
import { assertObject } from './errors.js';

export type { PathLike } from './binding.js';

/** openat2's struct open_how. `mode` only with O.CREAT or O.TMPFILE; `resolve` is RESOLVE.* flags. */
export interface OpenHow {
  flags: number;
  mode?: number;
  resolve?: number;
}

/** A point in time as the kernel keeps it. */
export interface Timespec {
  sec: number;
  nsec: number;
}

/** fstatat's struct stat, with rdev also split into major and minor. */
export interface NativeStat {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  rdevMajor: number;
  rdevMinor: number;
  size: number;
  blocks: number;
  blksize: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
}

/** A directory entry: its name and the kernel's d_type (DT.*; DT.UNKNOWN where the fs has none). */
export type Dirent = [name: string, dtype: number];

export function openat2Sync(dirfd: number, path: PathLike, how: OpenHow): number {
  assertObject(how, 'how');
  return binding.openat2Sync(dirfd, path, how.flags, how.mode, how.resolve);
}
export function openat2(dirfd: number, path: PathLike, how: OpenHow): Promise<number> {
  assertObject(how, 'how');
  return binding.openat2(dirfd, path, how.flags, how.mode, how.resolve);
}

export const mkdiratSync: (dirfd: number, name: PathLike, mode: number) => void = binding.mkdiratSync;
export const mkdirat: (dirfd: number, name: PathLike, mode: number) => Promise<void> = binding.mkdirat;

/** `mode` includes the file type (S.IFCHR, S.IFBLK, S.IFIFO, S.IFREG, S.IFSOCK). A 0/0 S.IFCHR is an overlay whiteout. */
export const mknodatSync: (dirfd: number, name: PathLike, mode: number, major: number, minor: number) => void =
  binding.mknodatSync;
export const mknodat: (dirfd: number, name: PathLike, mode: number, major: number, minor: number) => Promise<void> =
  binding.mknodat;

export const symlinkatSync: (target: PathLike, dirfd: number, name: PathLike) => void = binding.symlinkatSync;
export const symlinkat: (target: PathLike, dirfd: number, name: PathLike) => Promise<void> = binding.symlinkat;

export const linkatSync: (oldDirfd: number, oldName: PathLike, newDirfd: number, newName: PathLike, flags?: number) => void =
  binding.linkatSync;
export const linkat: (
  oldDirfd: number,
  oldName: PathLike,
  newDirfd: number,
  newName: PathLike,
  flags?: number,
) => Promise<void> = binding.linkat;

export const unlinkatSync: (dirfd: number, name: PathLike, flags?: number) => void = binding.unlinkatSync;
export const unlinkat: (dirfd: number, name: PathLike, flags?: number) => Promise<void> = binding.unlinkat;

/** RENAME.NOREPLACE fails with EEXIST instead of replacing; EXCHANGE swaps; WHITEOUT leaves a whiteout behind. */
export const renameat2Sync: (
  oldDirfd: number,
  oldName: PathLike,
  newDirfd: number,
  newName: PathLike,
  flags?: number,
) => void = binding.renameat2Sync;
export const renameat2: (
  oldDirfd: number,
  oldName: PathLike,
  newDirfd: number,
  newName: PathLike,
  flags?: number,
) => Promise<void> = binding.renameat2;

/** uid or gid -1 leaves that one unchanged. */
export const fchownatSync: (dirfd: number, name: PathLike, uid: number, gid: number, flags?: number) => void =
  binding.fchownatSync;
export const fchownat: (dirfd: number, name: PathLike, uid: number, gid: number, flags?: number) => Promise<void> =
  binding.fchownat;

/** With AT.SYMLINK_NOFOLLOW, fchmodat2 (Linux 6.6) where the kernel has it, else glibc's O_PATH emulation. */
export const fchmodatSync: (dirfd: number, name: PathLike, mode: number, flags?: number) => void = binding.fchmodatSync;
export const fchmodat: (dirfd: number, name: PathLike, mode: number, flags?: number) => Promise<void> = binding.fchmodat;

function assertTimespec(t: Timespec, name: string): void {
  assertObject(t, name);
}

/** `nsec` may be UTIME.NOW or UTIME.OMIT. AT.SYMLINK_NOFOLLOW sets a symlink's own times. */
export function utimensatSync(dirfd: number, name: PathLike, atime: Timespec, mtime: Timespec, flags?: number): void {
  assertTimespec(atime, 'atime');
  assertTimespec(mtime, 'mtime');
  binding.utimensatSync(dirfd, name, atime.sec, atime.nsec, mtime.sec, mtime.nsec, flags);
}
export function utimensat(dirfd: number, name: PathLike, atime: Timespec, mtime: Timespec, flags?: number): Promise<void> {
  assertTimespec(atime, 'atime');
  assertTimespec(mtime, 'mtime');
  return binding.utimensat(dirfd, name, atime.sec, atime.nsec, mtime.sec, mtime.nsec, flags);
}

// One buffer for every fstatatSync: the addon fills it, toStat copies it out.
const statValues = new Float64Array(20);

function toStat(v: Float64Array): NativeStat {
  return {
    dev: v[0]!,
    ino: v[1]!,
    mode: v[2]!,
    nlink: v[3]!,
    uid: v[4]!,
    gid: v[5]!,
    rdev: v[6]!,
    rdevMajor: v[7]!,
    rdevMinor: v[8]!,
    size: v[9]!,
    blocks: v[10]!,
    atime: { sec: v[11]!, nsec: v[12]! },
    mtime: { sec: v[13]!, nsec: v[14]! },
    ctime: { sec: v[15]!, nsec: v[16]! },
    blksize: v[17]!,
  };
}

/** Numbers above 2^53 (ino, dev on some filesystems) lose precision, as in fs.statSync. */
export function fstatatSync(dirfd: number, name: PathLike, flags?: number): NativeStat {
  binding.fstatatSync(dirfd, name, flags, statValues);
  return toStat(statValues);
}
export async function fstatat(dirfd: number, name: PathLike, flags?: number): Promise<NativeStat> {
  return toStat(await binding.fstatat(dirfd, name, flags));
}

export const readlinkatSync: (dirfd: number, name: PathLike) => string = binding.readlinkatSync;
export const readlinkat: (dirfd: number, name: PathLike) => Promise<string> = binding.readlinkat;

// The addon packs entries as [d_type][name][NUL]...
function unpackDirents(packed: Buffer): Dirent[] {
  const out: Dirent[] = [];
  let pos = 0;
  while (pos < packed.length) {
    const end = packed.indexOf(0, pos + 1);
    out.push([packed.toString('utf8', pos + 1, end), packed[pos]!]);
    pos = end + 1;
  }
  return out;
}

/**
 * All entries of an open directory fd, read with getdents64 from the fd's current position to the
 * end (so a second call on the same fd returns [] unless the caller rewinds it). "." and ".." are left out.
 */
export function getdentsSync(dirfd: number): Dirent[] {
  return unpackDirents(binding.getdentsSync(dirfd));
}
export async function getdents(dirfd: number): Promise<Dirent[]> {
  return unpackDirents(await binding.getdents(dirfd));
}
