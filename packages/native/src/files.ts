/**
 * Whole-file and whole-filesystem calls: mknod by path, syncfs, FICLONE (reflink) and
 * copy_file_range. All but mknodSync run on the thread pool.
 */
import { binding, type PathLike } from './binding.js';

/** `mode` includes the file type (S.IFCHR...); a 0/0 character device is an overlay whiteout. */
export const mknodSync: (path: PathLike, mode: number, major: number, minor: number) => void = binding.mknodSync;
export const mknod: (path: PathLike, mode: number, major: number, minor: number) => Promise<void> = binding.mknod;

/** Flushes the whole filesystem that `fd` lives on. */
export const syncfs: (fd: number) => Promise<void> = binding.syncfs;

/** ioctl(FICLONE): `destFd` becomes a copy-on-write clone of `srcFd`. EOPNOTSUPP where the fs cannot, EXDEV across filesystems. */
export const ficlone: (destFd: number, srcFd: number) => Promise<void> = binding.ficlone;

/**
 * One copy_file_range(2) call: copies up to `length` bytes and resolves to the number copied (0 at
 * end of file). Offsets left out (or null) use and advance the fds' own file offsets.
 */
export function copyFileRange(
  srcFd: number,
  destFd: number,
  length: number,
  srcOffset?: number | null,
  destOffset?: number | null,
): Promise<number> {
  return binding.copyFileRange(srcFd, destFd, length, srcOffset, destOffset);
}
