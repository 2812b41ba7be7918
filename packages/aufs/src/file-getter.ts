/**
 * diffGetter for aufs: single files of a layer's diff read by their path in its tar (what tar-split
 * needs to rebuild the layer tar) - moby's storage.NewPathFileGetter on `diff/<id>`, which is exactly
 * the tree the layer's tar was made from. Paths are resolved inside the branch with openat2
 * RESOLVE_IN_ROOT, so a symlink in the layer cannot lead a read outside it.
 */
import { closeSync, createReadStream, openSync, constants as fsConstants } from 'node:fs';
import type { Readable } from 'node:stream';
import { O, RESOLVE, openat2Sync } from '@graphdriver/native';
import type { FileGetter } from '@graphdriver/core';

export function branchFileGetter(branch: string): FileGetter {
  let dirFd: number | undefined = openSync(branch, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
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
