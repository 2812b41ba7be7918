/**
 * Where vfs keeps things - a format shared with moby's and containers/storage's vfs:
 * `<home>/dir/<id>` holds each layer's full tree; `<home>/staging/` holds layers being made (renamed
 * into `dir/` only when complete) and layers being removed (renamed out of `dir/` first, so that a
 * crash never leaves half a layer under a valid id). Read-only additional image stores keep their
 * layers at `<store>/vfs/dir/<id>`.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { errorCode, isValidLayerId } from '@graphdriver/core';

export const DRIVER_NAME = 'vfs';

export class Layout {
  readonly layersDir: string;
  readonly stagingDir: string;

  constructor(
    readonly home: string,
    /** Roots of additional read-only image stores. */
    readonly imageStores: readonly string[],
  ) {
    this.layersDir = join(home, 'dir');
    this.stagingDir = join(home, 'staging');
  }

  /** The layer's directory in this store (whether it exists or not). `id` must be valid. */
  layerDir(id: string): string {
    return join(this.layersDir, id);
  }

  /** The directory of layer `id` in this store or else in an additional store, if it exists. */
  find(id: string): { dir: string; readOnly: boolean } | undefined {
    const own = this.layerDir(id);
    if (isDirectory(own)) return { dir: own, readOnly: false };
    for (const store of this.imageStores) {
      const dir = join(store, DRIVER_NAME, 'dir', id);
      if (isDirectory(dir)) return { dir, readOnly: true };
    }
    return undefined;
  }
}

/**
 * One synchronous stat: it only looks up a name (no data is read), and a thread-pool round trip
 * costs ten times the syscall - exists() and get() are called per container operation (moby's Go
 * does the same blocking stat).
 */
function isDirectory(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch (err) {
    if (errorCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}

/** Whether a name under `<home>/dir` is a layer (ids are validated; anything else is not ours). */
export function isLayerName(name: string): boolean {
  return isValidLayerId(name);
}
