/**
 * diffGetter for overlay (containers/storage's overlayFileGetter): single files of a layer's diff
 * by their path in the tar, looked up in the layer's own diff directory and then in its lowers'
 * (a template layer's files may live below it). Each directory is entered with openat2
 * RESOLVE_IN_ROOT, so a symlink in a layer cannot lead a read out of it; a whiteout in a nearer
 * layer ends the search.
 */
import { closeSync, createReadStream, fstatSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { AT, O, RESOLVE, fstatatSync, openat2Sync } from '@graphdriver/native';
import { errorCode, type FileGetter } from '@graphdriver/core';

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;

export function layerFileGetter(dirs: readonly string[], whiteouts: 'overlay' | 'aufs'): FileGetter {
  let fds: number[] | undefined = [];
  try {
    for (const d of dirs) fds.push(openat2Sync(AT.FDCWD, d, { flags: O.PATH | O.DIRECTORY | O.CLOEXEC }));
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    throw err;
  }
  return {
    async get(path: string): Promise<Readable> {
      if (fds === undefined) throw new Error('the file getter is closed');
      const rel = path.replace(/^\/+/, '') || '.';
      let lastError: unknown;
      for (const dirFd of fds) {
        if (whiteouts === 'overlay') {
          try {
            const st = fstatatSync(dirFd, rel, AT.SYMLINK_NOFOLLOW);
            if ((st.mode & S_IFMT) === S_IFCHR && st.rdev === 0) break;
          } catch (err) {
            lastError = err;
            continue;
          }
        }
        try {
          const fd = openat2Sync(dirFd, rel, { flags: O.RDONLY | O.CLOEXEC, resolve: RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS });
          if (!fstatSync(fd).isFile()) {
            closeSync(fd);
            continue;
          }
          return createReadStream('', { fd, autoClose: true });
        } catch (err) {
          lastError = err;
          if (errorCode(err) !== 'ENOENT' && errorCode(err) !== 'ENOTDIR') throw err;
        }
      }
      throw lastError ?? Object.assign(new Error(`ENOENT: no such file in the layer, ${path}`), { code: 'ENOENT' });
    },
    async close(): Promise<void> {
      for (const fd of fds ?? []) closeSync(fd);
      fds = undefined;
    },
  };
}
