/**
 * A union of layer directories - a stack as its mount shows it - read from the directories
 * instead of through a mount: its layer tar (what pack() of the mount writes, byte for byte), its
 * changes against nothing, and its size. Drivers compute a whole layer's diff this way (moby mounts
 * the layer and walks the mount). Which entry of which directory is seen is the union's rule
 * (overlayfs's, AUFS's): the driver's walk decides it, this is what is done with what it sees.
 */
import type { Readable } from 'node:stream';
import { AT, fstatatSync } from '@graphdriver/native';
import { FileBytes } from '../changes/file-bytes.js';
import type { Change } from '../driver.js';
import { LayerTarWriter, type PackOptions } from './writer.js';

/** An entry of the union, read from the directory it is seen in. */
export interface UnionEntry {
  /** Path relative to the union's root, `a/b`. */
  rel: string;
  /** The layer directory the entry is seen in (its mode, owner, times, xattrs are that copy's). */
  root: string;
  isDir: boolean;
}

/**
 * A walk of a union: calls `visit` for each visible entry in pack() order (each directory's names
 * in byte order, a directory before its contents), waiting when a visit returns a Promise.
 */
export type UnionWalk = (visit: (e: UnionEntry) => void | Promise<void>) => Promise<void>;

/** The union as a layer tar. Errors of the walk (and aborts) destroy the stream. */
export function packUnion(walk: UnionWalk, opts: PackOptions = {}): Readable {
  const writer = new LayerTarWriter(opts);
  walk((e) => {
    // no await per entry unless the writer has to wait (a large file, a consumer that is behind)
    const added = writer.addTreeEntryNow(e.root, e.rel);
    return added instanceof Promise ? added.then(() => undefined) : undefined;
  })
    .then(() => writer.finalize())
    .catch((err: unknown) => writer.destroy(err instanceof Error ? err : new Error(String(err))));
  return writer.stream;
}

/** Every entry of the union as an add (the changes of a layer against no parent), in walk order. */
export async function unionChanges(walk: UnionWalk): Promise<Change[]> {
  const out: Change[] = [];
  await walk((e) => void out.push({ path: `/${e.rel}`, kind: 'add' }));
  return out;
}

/** The bytes the union's tar carries: its regular files, each inode once. */
export async function unionFileBytes(walk: UnionWalk): Promise<number> {
  const bytes = new FileBytes();
  await walk((e) => {
    if (!e.isDir) bytes.add(fstatatSync(AT.FDCWD, `${e.root}/${e.rel}`, AT.SYMLINK_NOFOLLOW));
  });
  return bytes.total;
}
