/**
 * Where the aufs driver keeps things - Docker's aufs layout, which is a format (a store written by
 * moby's aufs driver is used as it is):
 *
 *   <home>/layers/<id>   a file: the layer's parent, then the parent's ancestors, one id per line
 *                        (empty for a layer without parent); its existence is the layer's existence
 *   <home>/diff/<id>     the layer's own files: its AUFS branch, whiteouts as `.wh.<name>` files,
 *                        opaque directories marked by `.wh..wh..opq`, AUFS's own metadata in
 *                        `.wh..wh.*` entries at the top (never part of a diff)
 *   <home>/mnt/<id>      the mount point of the layer's union
 *
 * Ours on top, ignored by moby: `<home>/limits/<id>.img`, the ext4 image of a size-limited layer
 * (limits.ts). Removal renames `diff/<id>` and `mnt/<id>` to `<id>-removing` first (moby's
 * atomicRemove; its init deletes such leftovers), so ids ending in `-removing` are reserved.
 */
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { errorCode, InvalidLayerIdError, isValidLayerId } from '@graphdriver/core';

export const DRIVER_NAME = 'aufs';
export const DIFF_DIR = 'diff';
export const LAYERS_DIR = 'layers';
export const MNT_DIR = 'mnt';
export const LIMITS_DIR = 'limits';
/** moby's atomicRemove suffix. */
export const REMOVING_SUFFIX = '-removing';
/**
 * fuse-overlayfs's work directory, kept inside the rw branch: it must be on the branch's filesystem
 * (a size-limited branch is a filesystem of its own), and a `.wh..wh.` name at the top of a branch is
 * AUFS metadata - hidden by aufs and fuse-overlayfs alike and left out of every diff.
 */
export const FUSE_WORKDIR = '.wh..wh.work';

/** Root mode of a layer without parent (containers/storage's aufs defaultPerms). */
export const ROOT_MODE = 0o555;

/** InvalidLayerIdError for ids the layout cannot hold (`<x>-removing` is how removal renames `<x>`). */
export function assertNotReserved(id: string): void {
  if (id.endsWith(REMOVING_SUFFIX)) {
    throw new InvalidLayerIdError(id, `ids ending in "${REMOVING_SUFFIX}" are reserved: the aufs layout renames a layer it removes to that name`);
  }
}

export class Layout {
  readonly diffRoot: string;
  readonly layersRoot: string;
  readonly mntRoot: string;
  readonly limitsRoot: string;

  constructor(readonly home: string) {
    this.diffRoot = join(home, DIFF_DIR);
    this.layersRoot = join(home, LAYERS_DIR);
    this.mntRoot = join(home, MNT_DIR);
    this.limitsRoot = join(home, LIMITS_DIR);
  }

  /** The layer's branch directory. `id` must be valid. */
  diffPath(id: string): string {
    return `${this.diffRoot}/${id}`;
  }

  mountPath(id: string): string {
    return `${this.mntRoot}/${id}`;
  }

  layersFile(id: string): string {
    return `${this.layersRoot}/${id}`;
  }

  limitImage(id: string): string {
    return `${this.limitsRoot}/${id}.img`;
  }

  /**
   * Whether layer `id` exists: its layers file is there (moby's Exists). One synchronous lstat: it
   * reads no data, and a thread-pool round trip would cost ten times the syscall.
   */
  exists(id: string): boolean {
    try {
      return lstatSync(this.layersFile(id), { throwIfNoEntry: false }) !== undefined;
    } catch (err) {
      if (errorCode(err) === 'ENOTDIR') return false;
      throw err;
    }
  }

  /**
   * The layer's parent and ancestors, parent first (moby's getParentIDs: blank lines are skipped),
   * or undefined when the layer does not exist.
   */
  readParents(id: string): string[] | undefined {
    let text: string;
    try {
      text = readFileSync(this.layersFile(id), 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    return parseLayersFile(text);
  }

  /**
   * Writes `layers/<id>` as moby writes it (each id followed by a newline), through a temporary
   * file renamed into place: the layer exists exactly when the file is complete.
   */
  writeLayersFile(id: string, parents: readonly string[]): void {
    const tmp = join(this.layersRoot, `.tmp-${id}-${randomBytes(4).toString('hex')}`);
    const fd = openSync(tmp, 'wx', 0o644);
    try {
      const text = formatLayersFile(parents);
      if (text.length > 0) writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(tmp, this.layersFile(id));
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // gone already
      }
      throw err;
    }
  }

  removeLayersFile(id: string): void {
    try {
      unlinkSync(this.layersFile(id));
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
  }

  /** The ids of the store: the files under `layers/` with valid names (moby's loadIds takes every non-directory). */
  listIds(): string[] {
    let entries;
    try {
      entries = readdirSync(this.layersRoot, { withFileTypes: true });
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return [];
      throw err;
    }
    return entries.filter((e) => !e.isDirectory() && isValidLayerId(e.name) && !e.name.endsWith(REMOVING_SUFFIX)).map((e) => e.name);
  }
}

/** The ids of a layers file, in order, blank lines skipped. */
export function parseLayersFile(text: string): string[] {
  return text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l !== '');
}

/** A layers file's text: every id followed by a newline (Go's fmt.Fprintln), nothing for no parent. */
export function formatLayersFile(parents: readonly string[]): string {
  return parents.map((p) => `${p}\n`).join('');
}
