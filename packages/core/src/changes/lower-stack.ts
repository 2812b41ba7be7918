/**
 * The merged view of a stack of lower layer directories, as overlayfs or aufs would show it,
 * answered one path at a time: is `/a/b` visible below the layer being examined, and what is it.
 * Each lower may carry whiteouts of its own (overlay: 0/0 character devices and opaque dirs;
 * aufs: `.wh.<name>` files and `.wh..wh..opq`), which hide what the lowers under it hold - the
 * rule containers/storage added to moby's walk (overlayLowerContainsWhiteout / aufsWhiteoutPresent),
 * applied here to every path component.
 */
import { readdirSync } from 'node:fs';
import { errorCode } from '../errors.js';
import { baseOf, parentOf } from './paths.js';
import { isDir, isOverlayWhiteout, lstatEntry, type EntryStat } from './stat.js';
import { isOverlayOpaque } from './xattrs.js';

export type WhiteoutFormat = 'overlay' | 'aufs';

export const AUFS_WHITEOUT_PREFIX = '.wh.';
export const AUFS_META_PREFIX = '.wh..wh.';
export const AUFS_OPAQUE = '.wh..wh..opq';

interface Resolved {
  /** The entry seen at this path (from the topmost lower that has it), if any. */
  top: EntryStat | undefined;
  /** When the path is a directory: the lowers whose directories merge into it, topmost first. */
  dirLayers: number[];
}

export class LowerStack {
  private readonly cache = new Map<string, Resolved>();

  private readonly lowers: readonly string[];

  constructor(
    lowers: readonly string[],
    private readonly format: WhiteoutFormat,
    private readonly xattrPrefix: 'trusted' | 'user' = 'trusted',
  ) {
    this.lowers = lowers.map((l) => l.replace(/(.)\/+$/, '$1'));
    // An opaque marker at a lower's root hides every lower under it, as anywhere else.
    const rootLayers: number[] = [];
    for (let li = 0; li < this.lowers.length; li++) {
      rootLayers.push(li);
      if (this.isOpaque(li, '/')) break;
    }
    this.cache.set('/', { top: undefined, dirLayers: rootLayers });
  }

  /** What the lowers show at `path`, or undefined when nothing is visible there. */
  lookup(path: string): EntryStat | undefined {
    return this.resolve(path).top;
  }

  /** The names the lowers show in directory `path` (empty when it is not a visible directory). */
  listDir(path: string): Set<string> {
    const visible = new Set<string>();
    const decided = new Set<string>();
    for (const li of this.resolve(path).dirLayers) {
      const dir = this.at(li, path);
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch (err) {
        if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') continue;
        throw err;
      }
      // aufs: a branch's whiteouts hide the name in that branch too (its lookup tests the
      // whiteout first), so they are taken before the branch's own entries.
      const whitedOut = new Set<string>();
      if (this.format === 'aufs') {
        for (const name of names) {
          if (name.startsWith(AUFS_WHITEOUT_PREFIX) && !name.startsWith(AUFS_META_PREFIX)) whitedOut.add(name.slice(AUFS_WHITEOUT_PREFIX.length));
        }
      }
      for (const name of names) {
        if (this.format === 'aufs' && name.startsWith(AUFS_WHITEOUT_PREFIX)) continue;
        if (decided.has(name) || whitedOut.has(name)) continue;
        decided.add(name);
        if (this.format === 'overlay') {
          const st = lstatEntry(`${dir}/${name}`);
          if (st === undefined || isOverlayWhiteout(st)) continue;
        }
        visible.add(name);
      }
      for (const name of whitedOut) decided.add(name);
    }
    return visible;
  }

  private at(layer: number, path: string): string {
    return path === '/' ? (this.lowers[layer] as string) : (this.lowers[layer] as string) + path;
  }

  private isOpaque(layer: number, path: string): boolean {
    const dir = this.at(layer, path);
    if (this.format === 'overlay') return isOverlayOpaque(dir, this.xattrPrefix);
    return lstatEntry(`${dir}/${AUFS_OPAQUE}`) !== undefined;
  }

  private resolve(path: string): Resolved {
    const cached = this.cache.get(path);
    if (cached !== undefined) return cached;
    const parent = this.resolve(parentOf(path));
    const name = baseOf(path);
    const result: Resolved = { top: undefined, dirLayers: [] };
    for (const li of parent.dirLayers) {
      // aufs marks a deletion with a sibling file; it hides this name in its own branch (aufs tests
      // the whiteout first) and in every lower below.
      if (this.format === 'aufs' && lstatEntry(`${this.at(li, parentOf(path))}/${AUFS_WHITEOUT_PREFIX}${name}`) !== undefined) break;
      const st = lstatEntry(this.at(li, path));
      if (st === undefined) continue;
      if (this.format === 'overlay' && isOverlayWhiteout(st)) break;
      if (result.top === undefined) result.top = st;
      // A non-directory hides everything below it; below a directory only directories merge.
      if (!isDir(st) || !isDir(result.top)) break;
      result.dirLayers.push(li);
      if (this.isOpaque(li, path)) break;
    }
    this.cache.set(path, result);
    return result;
  }
}
