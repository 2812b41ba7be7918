/**
 * diffGetter for vfs: reads single files of a layer by their path in its tar (what tar-split needs
 * to rebuild a layer tar), resolved inside the layer directory with openat2 RESOLVE_IN_ROOT, so a
 * symlink in the layer cannot lead a read outside it.
 */
import { closeSync, createReadStream, openSync, constants as fsConstants } from 'node:fs';
import type { Readable } from 'node:stream';
import { O, RESOLVE, openat2Sync } from '@graphdriver/native';
import type { FileGetter } from '@graphdriver/core';

export function layerFileGetter(layerDir: string): FileGetter {
  let dirFd: number | undefined = openSync(layerDir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
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
