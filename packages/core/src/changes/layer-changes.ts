/**
 * changesFromLayerDir: the changes a layer's own directory (an overlay upper dir, an aufs rw
 * branch) holds against the lowers it sits on, read from the directory and its whiteouts without
 * comparing whole trees - moby's OverlayChanges and aufs Changes (pkg/archive changes.go `changes`,
 * changes_linux.go overlayDeletedFile) with containers/storage's lower-whiteout rules.
 *
 * - overlay: a 0/0 character device deletes its name; a directory with `trusted.overlay.opaque=y`
 *   replaces the directory of the lowers. aufs: `.wh.<name>` deletes `<name>`, `.wh..wh..opq`
 *   marks its directory opaque, other `.wh..wh.*` entries are aufs metadata and skipped.
 * - Any other entry is an add, or a modify when the lowers show something at its path. A
 *   directory that only came up because of a child (same mode, owner, size and mtime as below)
 *   is not listed for itself.
 * - Every directory above an add or a delete is listed as modified (containers/storage lists all
 *   of them, moby only the parent), the root excepted.
 * - A replaced (opaque) directory hides every lower entry it does not hold again. moby reports it
 *   as a delete of the directory, which loses the directory when such a list is exported to a tar;
 *   we list it as what it is for the merged view - the directory modified, and a delete for each
 *   name the lowers showed in it (recursively in subdirectories it holds again) - so that the list
 *   alone exports and applies to the same tree.
 */
import { readdirSync } from 'node:fs';
import { debuglog } from 'node:util';
import type { Change, ChangeKind } from '../driver.js';
import { ancestorsOf, sortChanges } from './paths.js';
import {
  AUFS_META_PREFIX,
  AUFS_OPAQUE,
  AUFS_WHITEOUT_PREFIX,
  LowerStack,
  type WhiteoutFormat,
} from './lower-stack.js';
import { isDir, isOverlayWhiteout, lstatEntry, sameDirectory } from './stat.js';
import { isOverlayOpaque } from './xattrs.js';

const debug = debuglog('graphdriver:core');

export interface LayerChangesOptions {
  /** How the layer directory (and its lowers) store deletions. */
  whiteouts: WhiteoutFormat;
  /** The lower layers' directories, topmost first (overlay's `lowerdir` order). */
  lowerDirs: readonly string[];
  /** Which namespace overlay's opaque xattr lives in: `trusted` (default) or `user` (userxattr mounts). */
  overlayXattrPrefix?: 'trusted' | 'user';
  signal?: AbortSignal;
}

interface Walk {
  root: string;
  format: WhiteoutFormat;
  prefix: 'trusted' | 'user';
  lowers: LowerStack;
  recorded: Map<string, ChangeKind>;
  signal: AbortSignal | undefined;
  visited: number;
}

function record(w: Walk, path: string, kind: ChangeKind): void {
  if (w.recorded.has(path)) return;
  w.recorded.set(path, kind);
  if (kind === 'modify') return;
  for (const dir of ancestorsOf(path)) if (!w.recorded.has(dir)) w.recorded.set(dir, 'modify');
}

function isOpaqueDir(w: Walk, dir: string): boolean {
  if (w.format === 'overlay') return isOverlayOpaque(dir, w.prefix);
  return lstatEntry(`${dir}/${AUFS_OPAQUE}`) !== undefined;
}

/** Walk the layer's directory `rel` ('' = root); `replaced` when the lowers' view of it is hidden. */
async function walkLayerDir(w: Walk, rel: string, replaced: boolean): Promise<void> {
  w.signal?.throwIfAborted();
  const names = readdirSync(w.root + rel || '/').sort();
  const held = new Set<string>();
  const subdirs: Array<{ path: string; replaced: boolean }> = [];
  for (const name of names) {
    if (w.format === 'aufs' && name.startsWith(AUFS_WHITEOUT_PREFIX)) {
      if (name.startsWith(AUFS_META_PREFIX)) continue;
      const target = name.slice(AUFS_WHITEOUT_PREFIX.length);
      held.add(target);
      record(w, `${rel}/${target}`, 'delete');
      continue;
    }
    held.add(name);
    const path = `${rel}/${name}`;
    const st = lstatEntry(w.root + path);
    w.visited++;
    if (st === undefined) continue;
    if (w.format === 'overlay' && isOverlayWhiteout(st)) {
      record(w, path, 'delete');
      continue;
    }
    const below = w.lowers.lookup(path);
    if (below === undefined) record(w, path, 'add');
    else if (!(isDir(st) && isDir(below) && sameDirectory(st, below))) record(w, path, 'modify');
    if (isDir(st)) subdirs.push({ path, replaced: replaced || isOpaqueDir(w, w.root + path) });
  }
  if (replaced) {
    for (const name of w.lowers.listDir(rel || '/')) if (!held.has(name)) record(w, `${rel}/${name}`, 'delete');
  }
  for (const sub of subdirs) {
    if (w.visited >= 2048) {
      w.visited = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await walkLayerDir(w, sub.path, sub.replaced);
  }
}

/** The changes held by the layer directory `layerDir` over `opts.lowerDirs`, sorted by path. */
export async function changesFromLayerDir(layerDir: string, opts: LayerChangesOptions): Promise<Change[]> {
  const started = performance.now();
  const root = layerDir.replace(/(.)\/+$/, '$1').replace(/^\/$/, '');
  const w: Walk = {
    root,
    format: opts.whiteouts,
    prefix: opts.overlayXattrPrefix ?? 'trusted',
    lowers: new LowerStack(opts.lowerDirs, opts.whiteouts, opts.overlayXattrPrefix ?? 'trusted'),
    recorded: new Map(),
    signal: opts.signal,
    visited: 0,
  };
  await walkLayerDir(w, '', isOpaqueDir(w, root || '/'));
  const changes = sortChanges([...w.recorded].map(([path, kind]): Change => ({ path, kind })));
  debug('changesFromLayerDir %s (%s, %d lowers): %d changes in %d ms', layerDir, opts.whiteouts, opts.lowerDirs.length, changes.length, Math.round(performance.now() - started));
  return changes;
}
