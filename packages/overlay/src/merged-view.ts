/**
 * The merged view of a layer stack, read from the layers' diff directories without mounting it:
 * what diff(), changes() and diffSize() of a layer against no parent need (the whole layer as its
 * mount shows it), which moby and containers/storage compute by mounting the layer and walking the
 * mount. The rules are overlayfs's own, for kernels whose uppers the probes found plain (no
 * redirect_dir, no metacopy - otherwise the driver mounts, as they do):
 *
 *  - a directory merges the same directory of the layers below, nearest first, up to a layer in
 *    which it is opaque (`trusted.overlay.opaque=y`) or in which the name is not a directory;
 *  - a name's topmost entry is what is seen; a 0/0 character device (whiteout) hides the name below;
 *  - an entry is read from the layer it is seen in (mode, owner, times, xattrs of that copy), so the
 *    tar is byte for byte the one a walk of the mount gives - without the mount, its cost, or the
 *    overlay's lookups.
 *
 * Entries are visited in the order pack() writes them (each directory's names in byte order, a
 * directory before its contents); core's packUnion, unionChanges and unionFileBytes make the tar,
 * changes and size of what the walk sees.
 */
import { lstatSync, readdirSync, type Dirent } from 'node:fs';
import { lgetxattrSync, llistxattrSync } from '@graphdriver/native';
import { errorCode, sortedNames, type UnionEntry } from '@graphdriver/core';

const OPAQUE = 'trusted.overlay.opaque';

function listDir(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

function isWhiteout(path: string): boolean {
  const st = lstatSync(path, { throwIfNoEntry: false });
  return st !== undefined && st.isCharacterDevice() && st.rdev === 0;
}

function isOpaque(dir: string): boolean {
  // listing first: a missing xattr read would throw, and exceptions cost more than the syscall
  if (!llistxattrSync(dir).includes(OPAQUE)) return false;
  return lgetxattrSync(dir, OPAQUE).toString() === 'y';
}

/**
 * Visits every entry of the merged view of `layers` (diff directories, topmost first). `visit`
 * may return a Promise (the tar writer's backpressure); `signal` stops the walk.
 */
export async function walkMergedView(
  layers: readonly string[],
  visit: (e: UnionEntry) => void | Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let sinceYield = 0;
  const walk = async (rel: string, dirLayers: readonly number[]): Promise<void> => {
    signal?.throwIfAborted();
    const seen = new Map<string, { layer: number; isDir: boolean }>();
    const hidden = new Set<string>();
    for (let k = 0; k < dirLayers.length; k++) {
      const li = dirLayers[k]!;
      const dir = rel === '' ? layers[li]! : `${layers[li]!}/${rel}`;
      for (const de of listDir(dir)) {
        const name = de.name;
        if (seen.has(name) || hidden.has(name)) continue;
        if (de.isCharacterDevice() && isWhiteout(`${dir}/${name}`)) {
          hidden.add(name);
          continue;
        }
        seen.set(name, { layer: li, isDir: de.isDirectory() });
      }
      // opaque only matters when layers below would merge in; the root is never opaque
      if (rel !== '' && k < dirLayers.length - 1 && isOpaque(dir)) break;
    }
    for (const name of sortedNames([...seen.keys()])) {
      const { layer, isDir } = seen.get(name)!;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const r = visit({ rel: childRel, root: layers[layer]!, isDir });
      if (r !== undefined) await r;
      if (++sinceYield >= 2048) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (!isDir) continue;
      // the directory merges the same directory of the layers below it, until a non-directory or whiteout
      const below: number[] = [layer];
      for (const lj of dirLayers.slice(dirLayers.indexOf(layer) + 1)) {
        const st = lstatSync(`${layers[lj]!}/${childRel}`, { throwIfNoEntry: false });
        if (st === undefined) continue;
        if (!st.isDirectory()) break;
        below.push(lj);
      }
      await walk(childRel, below);
    }
  };
  await walk('', layers.map((_, i) => i));
}
