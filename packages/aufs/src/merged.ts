/**
 * The union of a layer's branches as aufs (and fuse-overlayfs reading AUFS branches) shows it,
 * read from the branches without mounting them: what diff(), changes() and diffSize() of a layer
 * against no parent need (the whole layer as its mount shows it), which moby computes by mounting
 * the layer and walking the mount. The rules are AUFS's:
 *
 *  - a name is seen in the topmost branch that has it; `.wh.<name>` in a branch hides the name in
 *    that branch and every branch below; `.wh..wh.*` entries are AUFS's own and never seen (the top ones are
 *    metadata, `.wh..wh..opq` marks its directory opaque);
 *  - a directory merges the same directory of the branches below, nearest first, up to a branch in
 *    which it is opaque, or in which the name is not a directory, or below a whiteout of it;
 *  - an entry is read from the branch it is seen in (mode, owner, times, xattrs of that copy), so
 *    the tar is the one a walk of the mount gives - without a FUSE mount and its per-entry round
 *    trips.
 *
 * Entries come in the order pack() writes them: each directory's names in byte order, a directory
 * before its contents; core's packUnion, unionChanges and unionFileBytes make the tar, changes and
 * size of what the walk sees.
 */
import { readdirSync, type Dirent } from 'node:fs';
import { AT, S, fstatatSync } from '@graphdriver/native';
import { errorCode, sortedNames, type UnionEntry } from '@graphdriver/core';
import { META_PREFIX, OPAQUE_MARKER, WHITEOUT_PREFIX } from './branch.js';

/** One branch's listing of one directory. */
interface Listing {
  /** Index of the branch. */
  layer: number;
  /** Names and whether each is a directory. */
  entries: Map<string, boolean>;
  /** Names this branch whites out in the directory. */
  whiteouts: Set<string>;
  opaque: boolean;
}

function listDir(dir: string): Dirent[] | undefined {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function isDirEntry(d: Dirent, path: string): boolean {
  if (d.isDirectory()) return true;
  // a filesystem without d_type answers "unknown": ask lstat
  if (d.isFile() || d.isSymbolicLink() || d.isCharacterDevice() || d.isBlockDevice() || d.isFIFO() || d.isSocket()) return false;
  return (fstatatSync(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW).mode & S.IFMT) === S.IFDIR;
}

function readListing(branches: readonly string[], layer: number, rel: string): Listing | undefined {
  const dir = rel === '' ? branches[layer]! : `${branches[layer]!}/${rel}`;
  const ents = listDir(dir);
  if (ents === undefined) return undefined;
  const l: Listing = { layer, entries: new Map(), whiteouts: new Set(), opaque: false };
  for (const d of ents) {
    const name = d.name;
    if (name.startsWith(WHITEOUT_PREFIX)) {
      if (name === OPAQUE_MARKER) l.opaque = true;
      else if (!name.startsWith(META_PREFIX)) l.whiteouts.add(name.slice(WHITEOUT_PREFIX.length));
      continue;
    }
    l.entries.set(name, isDirEntry(d, `${dir}/${name}`));
  }
  return l;
}

/**
 * Visits the union of `branches` (topmost first) below the root: `visit` gets each visible entry
 * in pack() order and may return a Promise (a writer that has to wait). Yields to the event loop
 * every few thousand entries.
 */
export async function walkMerged(branches: readonly string[], visit: (e: UnionEntry) => void | Promise<void>, signal?: AbortSignal): Promise<void> {
  let sinceYield = 0;
  const walkDir = async (rel: string, layers: readonly number[]): Promise<void> => {
    signal?.throwIfAborted();
    const listings: Listing[] = [];
    for (const li of layers) {
      const l = readListing(branches, li, rel);
      if (l === undefined) continue;
      listings.push(l);
      if (l.opaque) break;
    }
    // the topmost sighting of each name, unless a branch at or above it whites it out (aufs looks
    // for the whiteout first and stops there, so one beside the name hides it too; so does fuse-overlayfs)
    const seen = new Map<string, { at: number; isDir: boolean }>();
    const hidden = new Set<string>();
    for (let i = 0; i < listings.length; i++) {
      const l = listings[i]!;
      for (const name of l.whiteouts) if (!seen.has(name)) hidden.add(name);
      for (const [name, isDir] of l.entries) if (!seen.has(name) && !hidden.has(name)) seen.set(name, { at: i, isDir });
    }
    for (const name of sortedNames([...seen.keys()])) {
      const { at, isDir } = seen.get(name)!;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const r = visit({ rel: childRel, root: branches[listings[at]!.layer]!, isDir });
      if (r !== undefined) await r;
      if (++sinceYield >= 2048) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
        signal?.throwIfAborted();
      }
      if (!isDir) continue;
      // the branches whose same directory merges into this one, nearest first
      const below: number[] = [listings[at]!.layer];
      for (let i = at + 1; i < listings.length; i++) {
        const l = listings[i]!;
        if (l.whiteouts.has(name)) break;
        const childIsDir = l.entries.get(name);
        if (childIsDir === undefined) continue;
        if (!childIsDir) break;
        below.push(l.layer);
      }
      await walkDir(childRel, below);
    }
  };
  await walkDir('', branches.map((_, i) => i));
}
