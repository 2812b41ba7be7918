/**
 * Removing a name and everything under it, relative to a directory fd, never following a symlink:
 * the unpacker's RemoveAll. Each level is opened with O_NOFOLLOW|O_DIRECTORY and emptied with
 * getdents + unlinkat, so a symlink anywhere in the subtree is removed, not followed.
 */
import { closeSync } from 'node:fs';
import { AT, DT, O, getdentsSync, openat2Sync, unlinkatSync } from '@graphdriver/native';
import { errorCode } from '../errors.js';

/** What removeAllAt found at the name. */
export type Removed = 'nothing' | 'non-directory' | 'directory';

/** Remove `name` in `dirfd` (a directory tree is emptied first). ENOENT is not an error. */
export function removeAllAt(dirfd: number, name: string): Removed {
  try {
    unlinkatSync(dirfd, name, 0);
    return 'non-directory';
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') return 'nothing';
    if (code !== 'EISDIR') throw err;
  }
  emptyDirectoryAt(dirfd, name);
  try {
    unlinkatSync(dirfd, name, AT.REMOVEDIR);
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
  }
  return 'directory';
}

/** Remove everything inside directory `name` of `dirfd`, keeping the directory itself. */
export function emptyDirectoryAt(dirfd: number, name: string): void {
  const fd = openat2Sync(dirfd, name, { flags: O.RDONLY | O.DIRECTORY | O.NOFOLLOW | O.CLOEXEC });
  try {
    emptyOpenDirectory(fd);
  } finally {
    closeSync(fd);
  }
}

/** Remove every entry of the open directory `fd`. */
export function emptyOpenDirectory(fd: number): void {
  for (const [child, dtype] of getdentsSync(fd)) {
    removeChild(fd, child, dtype);
  }
}

/** Remove one entry of the open directory `fd` whose getdents d_type is `dtype`. */
export function removeChild(fd: number, child: string, dtype: number): Removed {
  // A known directory skips the unlink attempt that would fail with EISDIR.
  if (dtype === DT.DIR) {
    emptyDirectoryAt(fd, child);
    try {
      unlinkatSync(fd, child, AT.REMOVEDIR);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
    return 'directory';
  }
  return removeAllAt(fd, child);
}
