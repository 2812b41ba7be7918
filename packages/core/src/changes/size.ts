/**
 * changesSize: how many bytes a change list weighs - moby's ChangesSize, shaped to equal what
 * archive's unpack counts when the exported tar of the same list is applied (the sum of the tar
 * entries' sizes): regular files that are added or modified, each inode once however many of its
 * hard links are listed (the tar carries the later ones as size-0 link entries). moby also adds a
 * symlink's lstat size, which its own tar never carries (symlink entries have size 0), so DiffApply
 * would see a mismatch for every symlink; we count what the tar carries.
 */
import { debuglog } from 'node:util';
import type { Change } from '../driver.js';
import { FileBytes } from './file-bytes.js';
import { lstatEntry } from './stat.js';

const debug = debuglog('graphdriver:core');

export interface ChangesSizeOptions {
  signal?: AbortSignal;
}

/** The bytes that the adds and modifies of `changes` hold in `dir`. Entries gone meanwhile count 0. */
export async function changesSize(dir: string, changes: readonly Change[], opts: ChangesSizeOptions = {}): Promise<number> {
  const root = dir.replace(/(.)\/+$/, '$1').replace(/^\/$/, '');
  const bytes = new FileBytes();
  let sinceYield = 0;
  for (const change of changes) {
    if (change.kind === 'delete') continue;
    if (++sinceYield >= 4096) {
      sinceYield = 0;
      opts.signal?.throwIfAborted();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const st = lstatEntry(root + change.path);
    if (st === undefined) {
      // moby logs and goes on: a running container may delete files while we count.
      debug('changesSize: %s vanished', root + change.path);
      continue;
    }
    bytes.add(st);
  }
  return bytes.total;
}
