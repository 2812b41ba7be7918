/**
 * Where the overlay driver keeps things - a format shared with moby's overlay2 and
 * containers/storage's overlay, read and written byte for byte as they do:
 *
 *   <home>/<id>/diff       the layer's own files (an overlay upper dir)
 *   <home>/<id>/link       the layer's short link name, 26 base32 characters, no newline (0644)
 *   <home>/<id>/lower      `l/<name>:l/<name>:...` of every layer below, nearest first (0644; absent without parent)
 *   <home>/<id>/work       overlay's work dir (0700; made for layers with a parent)
 *   <home>/<id>/merged     the mount point (0700; made on get)
 *   <home>/<id>/committed  empty (0600): the layer has children, so it is mounted read-only
 *   <home>/l/<name>        symlink to `../<id>/diff`
 *
 * and of our own (containers/storage has the same): `<home>/staging/` for layers being made,
 * removed or applied (garbage there is removed on start). Read-only additional image stores hold
 * layers at `<store>/overlay/<id>` with their links in `<store>/overlay/l/`.
 *
 * Lookups are synchronous on purpose: each is one stat or one small read, and exists()/get() are
 * called per container operation (moby's Go does the same blocking calls); a thread-pool round trip
 * costs more than the syscall.
 */
import { readFileSync, readlinkSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { errorCode, isValidLayerId, InvalidLayerIdError } from '@graphdriver/core';
import { isLinkName } from './link-id.js';

export const DRIVER_NAME = 'overlay';
/** The kernel's limit of lower layers in one overlay mount (OVL_MAX_STACK). */
export const MAX_LOWERS = 500;
export const LINK_DIR = 'l';
export const STAGING_DIR = 'staging';
/** Mount points of layers of read-only image stores (we cannot make `merged` there). */
export const STORE_MOUNTS_DIR = '.imagestore-mounts';
/** containers/storage's marker: `true` when the store's layers were written through a mount program. */
export const MOUNT_PROGRAM_MARKER = '.has-mount-program';

/** Names in a home that are not layers even though they would be valid ids. */
const RESERVED = new Set([LINK_DIR, STAGING_DIR, 'tempdirs', 'backingFsBlockDev']);

export const DIFF = 'diff';
export const WORK = 'work';
export const MERGED = 'merged';
export const LINK_FILE = 'link';
export const LOWER_FILE = 'lower';
export const COMMITTED_FILE = 'committed';

/** A layer found in this store or in an additional image store. */
export interface LayerLocation {
  readonly id: string;
  /** `<home>/<id>` or `<store>/overlay/<id>`. */
  readonly dir: string;
  /** The overlay home holding it (whose `l/` has its link). */
  readonly home: string;
  /** True in an additional image store: never written, never removed. */
  readonly readOnly: boolean;
  /** The inode of its directory when it was found (a layer removed and made again has another). */
  readonly ino?: number;
}

/** True when `id` names a layer directory and not one of the driver's own (`l`, `staging`...). */
export function isLayerName(name: string): boolean {
  return isValidLayerId(name) && !RESERVED.has(name);
}

/** validateLayerId's check plus the driver's reserved names, before an id becomes a path. */
export function assertNotReserved(id: string): void {
  if (RESERVED.has(id)) throw new InvalidLayerIdError(id, 'the name is reserved by the overlay driver');
}

/** The stat of `path` when it is a directory, else undefined. */
function directoryStat(path: string): Stats | undefined {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    return st?.isDirectory() ? st : undefined;
  } catch (err) {
    if (errorCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

function isDirectory(path: string): boolean {
  return directoryStat(path) !== undefined;
}

function exists(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    if (errorCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}

/** A file's content, or undefined when it does not exist. */
export function readOptional(path: string): string | undefined {
  if (!exists(path)) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

export class Layout {
  readonly linkDir: string;
  readonly stagingDir: string;
  readonly storeMountsDir: string;
  /** `<store>/overlay` of each additional image store. */
  readonly storeHomes: readonly string[];

  constructor(
    readonly home: string,
    imageStores: readonly string[],
  ) {
    this.linkDir = join(home, LINK_DIR);
    this.stagingDir = join(home, STAGING_DIR);
    this.storeMountsDir = join(home, STORE_MOUNTS_DIR);
    this.storeHomes = imageStores.map((s) => join(s, DRIVER_NAME));
  }

  /** `<home>/<id>`, whether it exists or not. `id` must be valid. */
  layerDir(id: string): string {
    return join(this.home, id);
  }

  /** Layer `id` in this store, else in an additional image store; undefined when none has it. */
  find(id: string): LayerLocation | undefined {
    if (RESERVED.has(id)) return undefined;
    // ids are validated: a plain concatenation is the path (join would normalise for nothing)
    const own = `${this.home}/${id}`;
    const st = directoryStat(own);
    if (st !== undefined) return { id, dir: own, home: this.home, readOnly: false, ino: st.ino };
    for (const home of this.storeHomes) {
      const dir = `${home}/${id}`;
      const sst = directoryStat(dir);
      if (sst !== undefined) return { id, dir, home, readOnly: true, ino: sst.ino };
    }
    return undefined;
  }

  /** Where get() mounts the layer: `<id>/merged`, or under our home for a layer of a read-only store. */
  mergedDir(layer: LayerLocation): string {
    return layer.readOnly ? join(this.storeMountsDir, layer.id, MERGED) : join(layer.dir, MERGED);
  }

  /** The layer's `link` name, or undefined when the file is missing, empty or not a link name. */
  readLinkName(layer: LayerLocation): string | undefined {
    const name = readOptional(join(layer.dir, LINK_FILE))?.trim();
    return name !== undefined && isLinkName(name) ? name : undefined;
  }

  /**
   * The entries of the layer's `lower` file (`l/<name>`, nearest lower first); [] for a layer
   * without parent. A malformed entry (not `l/<name>`) is an error: it would lead a mount out of `l/`.
   */
  lowerEntries(layer: LayerLocation): string[] {
    const text = readOptional(join(layer.dir, LOWER_FILE));
    if (text === undefined || text.trim() === '') return [];
    const entries = text.trim().split(':');
    for (const e of entries) {
      if (!e.startsWith(`${LINK_DIR}/`) || !isLinkName(e.slice(LINK_DIR.length + 1))) {
        throw new Error(`malformed entry ${JSON.stringify(e)} in ${join(layer.dir, LOWER_FILE)}`);
      }
    }
    return entries;
  }

  /**
   * The path of a lower entry (`l/<name>`) as given to the kernel: the symlink in this store's `l/`,
   * else in the first additional store that has it. Without additional stores no stat is made
   * (a missing link shows when the mount resolves it).
   */
  lowerLinkPath(entry: string): string {
    const own = join(this.home, entry);
    if (this.storeHomes.length === 0) return own;
    try {
      if (statSync(own, { throwIfNoEntry: false }) !== undefined) return own;
    } catch {
      return own;
    }
    for (const home of this.storeHomes) {
      const p = join(home, entry);
      if (exists(p)) return p;
    }
    return own;
  }

  /**
   * The real diff directory a lower entry stands for (its link read), as moby's getLowerDirs
   * reports them in metadata: `<home>/<id>/diff`. Throws ENOENT for a missing link.
   */
  lowerDiffDir(entry: string): string {
    const link = this.lowerLinkPath(entry);
    const target = readlinkSync(link);
    return resolve(dirname(link), target);
  }

  /** The layer ids of this store's home (not of additional stores). */
  isLayerDir(name: string): boolean {
    return isLayerName(name) && isDirectory(join(this.home, name));
  }
}
