/**
 * The directory a driver's checks of its backing filesystem run on before its home exists: the
 * home, or its nearest existing ancestor (moby's testdir), so that a store about to be made on a
 * mounted filesystem is judged by that filesystem and not by the one it will be mounted over.
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errorCode } from '../errors.js';

export async function nearestExistingDir(path: string): Promise<string> {
  let dir = path;
  for (;;) {
    try {
      if ((await stat(dir)).isDirectory()) return dir;
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
    const up = dirname(dir);
    if (up === dir) return dir;
    dir = up;
  }
}
