/**
 * pack(): a whole directory tree as a layer tar, deterministic: depth first, each directory's
 * names sorted bytewise (Go's filepath.WalkDir order, which moby's TarWithOptions follows), a
 * directory before its contents, the root itself left out.
 */
import { readdirSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { OperationFailedError } from '../errors.js';
import { isAufsMetadata } from './whiteouts.js';
import { LayerTarWriter, type PackOptions } from './writer.js';

const ASCII = /^[\x00-\x7f]*$/;

/** Names of a directory in UTF-8 byte order (not JavaScript's UTF-16 order). */
export function sortedNames(names: string[]): string[] {
  // For ASCII names UTF-16 order is byte order, and the default sort needs no comparator calls.
  if (names.every((n) => ASCII.test(n))) return names.sort();
  return names
    .map((n) => [n, Buffer.from(n, 'utf8')] as const)
    .sort((a, b) => Buffer.compare(a[1], b[1]))
    .map(([n]) => n);
}

/** The tree under `root` as an uncompressed layer tar. Errors (and aborts) destroy the stream. */
export function pack(root: string, opts: PackOptions = {}): Readable {
  const writer = new LayerTarWriter(opts);
  const walk = async (dirRel: string): Promise<void> => {
    let names: string[];
    try {
      names = readdirSync(dirRel === '' ? root : `${root}/${dirRel}`);
    } catch (err) {
      throw new OperationFailedError(`packing ${JSON.stringify(dirRel === '' ? '.' : dirRel)}`, undefined, err);
    }
    for (const name of sortedNames(names)) {
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      if (opts.excludeAufsMetadata === true && isAufsMetadata(rel)) continue;
      // No await per entry unless the writer has to wait (a large file, a consumer that is behind).
      let added = writer.addTreeEntryNow(root, rel);
      if (added instanceof Promise) added = await added;
      if (added === 'directory') await walk(rel);
    }
  };
  walk('')
    .then(() => writer.finalize())
    .catch((err: unknown) => writer.destroy(err instanceof Error ? err : new Error(String(err))));
  return writer.stream;
}
