/**
 * exportChanges: the layer tar of a change list - moby's ExportChanges. The list is sorted by
 * path; a delete becomes a `.wh.<name>` whiteout entry, an add or modify the entry itself (a
 * directory without its contents: its changed children are in the list on their own). Entries
 * are written by archive's LayerTarWriter, so headers, xattrs, hard links and id mapping are the
 * same as in every other tar we make.
 */
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import { LayerTarWriter, type PackOptions } from '../archive/index.js';
import type { Change } from '../driver.js';
import { errorCode } from '../errors.js';
import { sortChanges } from './paths.js';

const debug = debuglog('graphdriver:core');

export type ExportChangesOptions = PackOptions;

/**
 * The uncompressed layer tar of `changes`, read from `dir`. An entry that vanished since the list
 * was made is left out (a running container may still be changing the tree, as moby notes);
 * any other failure, and an abort, destroy the stream with the error.
 */
export function exportChanges(dir: string, changes: readonly Change[], opts: ExportChangesOptions = {}): Readable {
  const writer = new LayerTarWriter(opts);
  const sorted = sortChanges([...changes]);
  const write = async (): Promise<void> => {
    for (const change of sorted) {
      opts.signal?.throwIfAborted();
      const rel = change.path.replace(/^\/+/, '');
      if (rel === '') continue;
      if (change.kind === 'delete') {
        await writer.addWhiteout(rel);
        continue;
      }
      try {
        await writer.addPath(dir, rel);
      } catch (err) {
        // the writer wraps the syscall error as the cause of a domain error
        const code = errorCode(err instanceof Error && err.cause !== undefined ? err.cause : err);
        if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
        debug('exportChanges: %s/%s vanished, left out', dir, rel);
      }
    }
    await writer.finalize();
  };
  write().catch((err: unknown) => writer.destroy(err instanceof Error ? err : new Error(String(err))));
  return writer.stream;
}
