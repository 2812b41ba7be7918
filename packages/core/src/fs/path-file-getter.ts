/**
 * A FileGetter over one directory (moby's storage.NewPathFileGetter): single files of a layer read
 * by their path in its tar - what tar-split needs to rebuild a layer tar - for drivers whose layer
 * diff is a plain directory (vfs's layer, aufs's branch). Paths are resolved inside the directory
 * with openat2 RESOLVE_IN_ROOT, so a symlink in the layer cannot lead a read outside it.
 */
import { closeSync, createReadStream, openSync, constants as fsConstants } from 'node:fs';
import type { Readable } from 'node:stream';
import { O, RESOLVE, openat2Sync } from '@graphdriver/native';
import type { FileGetter } from '../driver.js';

export function pathFileGetter(dir: string): FileGetter {
  let dirFd: number | undefined = openSync(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  return {
    async get(path: string): Promise<Readable> {
      if (dirFd === undefined) throw new Error('the file getter is closed');
      const rel = path.replace(/^\/+/, '') || '.';
      const fd = openat2Sync(dirFd, rel, { flags: O.RDONLY | O.CLOEXEC, resolve: RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS });
      return createReadStream('', { fd, autoClose: true });
    },
    async close(): Promise<void> {
      if (dirFd !== undefined) closeSync(dirFd);
      dirFd = undefined;
    },
  };
}
