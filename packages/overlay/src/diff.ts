/**
 * Diffs of overlay layers. A layer's `diff/` is an overlay upper dir: it holds exactly its changes
 * against its parent, deletions as 0/0 character devices and replaced directories as
 * `trusted.overlay.opaque=y`. So, when asked about the layer against its own parent (moby's and
 * containers/storage's isParent) and the probes found the kernel's uppers trustworthy:
 *
 *  - diff:     the tar of `diff/`, whiteouts converted to AUFS entries (`.wh.<name>`, `.wh..wh..opq`);
 *  - changes:  read from `diff/` and its whiteouts against the lower diffs (containers/storage's
 *              native changes; moby computes them naively);
 *  - diffSize: the bytes of the regular files of `diff/`, which is what applying that tar counts.
 *
 * Any other parent, or a kernel whose uppers mislead (redirect_dir, metacopy, opaque copy-up), or a
 * mount program, goes through core's NaiveDiffDriver (mount and compare trees).
 *
 * applyDiff extracts straight into `diff/` when the parent is the layer's own (converting AUFS
 * whiteouts to the kernel's, or keeping them as files for a mount program, which reads them), as
 * containers/storage does whatever the diff probe said: writing an upper is always right, only
 * reading one back can be wrong.
 */
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  changesFromLayerDir,
  errorCode,
  GraphDriverError,
  OperationFailedError,
  pack,
  packUnion,
  unionChanges,
  unionFileBytes,
  unpack,
  type ApplyDiffOpts,
  type Change,
  type DiffOpts,
  type IdMappings,
  type NaiveDiffDriver,
  type UnpackOptions,
} from '@graphdriver/core';
import { DIFF, type LayerLocation, type Layout } from './layout.js';
import { linkTargetLayer } from './links.js';
import { walkMergedView } from './merged-view.js';
import { regularFileBytes } from './usage.js';

export interface LayerDiffsInit {
  layout: Layout;
  naive: NaiveDiffDriver;
  /** The probes found upper dirs trustworthy (and no mount program is used). */
  nativeDiff: boolean;
  /** How whiteouts are stored in diff dirs: the kernel's, or AUFS files for a mount program. */
  whiteouts: 'overlay' | 'aufs';
  idMappings: IdMappings | undefined;
  /** Makes missing short links again (the driver's repairLinks); called once when a lower's link is gone. */
  repairLinks: () => Promise<unknown>;
}

function wrap(operation: string, id: string, err: unknown): unknown {
  if (err instanceof GraphDriverError || (err instanceof Error && err.name === 'AbortError')) return err;
  return new OperationFailedError(operation, id, err);
}

/** Extracts a layer tar into `dir`; returns the sum of the entries' sizes. */
export async function applyLayerTar(dir: string, tar: Readable, opts: UnpackOptions, id: string): Promise<number> {
  try {
    return await unpack(dir, tar, opts);
  } catch (err) {
    tar.destroy();
    throw wrap('applyDiff', id, err);
  }
}

export class LayerDiffs {
  constructor(private readonly init: LayerDiffsInit) {}

  /** The id of the layer a lower entry's link points at, or undefined when it cannot be read. */
  #layerOfEntry(entry: string): string | undefined {
    try {
      return linkTargetLayer(readlinkSync(this.init.layout.lowerLinkPath(entry)));
    } catch {
      return undefined;
    }
  }

  /** Whether `parent` is the layer's direct parent (`undefined`: the layer has none). */
  isParent(layer: LayerLocation, parent: string | undefined): boolean {
    const lowers = this.init.layout.lowerEntries(layer);
    if (parent === undefined) return lowers.length === 0;
    return lowers.length > 0 && this.#layerOfEntry(lowers[0]!) === parent;
  }

  #native(layer: LayerLocation, parent: string | undefined): boolean {
    return this.init.nativeDiff && this.isParent(layer, parent);
  }

  /**
   * The layers of the merged view when the whole of a layer with lowers is asked for (no parent)
   * and the uppers are plain enough to merge by hand (merged-view.ts); else undefined.
   */
  async #wholeView(layer: LayerLocation, parent: string | undefined): Promise<string[] | undefined> {
    if (!this.init.nativeDiff || parent !== undefined) return undefined;
    const lowers = await this.lowerDiffDirs(layer);
    return lowers.length === 0 ? undefined : [join(layer.dir, DIFF), ...lowers];
  }

  /** The lower layers' diff directories, nearest first. */
  async lowerDiffDirs(layer: LayerLocation): Promise<string[]> {
    const read = (): string[] => this.init.layout.lowerEntries(layer).map((e) => this.init.layout.lowerDiffDir(e));
    try {
      return read();
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      // a short link lost to a crash: made again from the layers' link files, then read once more
      await this.init.repairLinks();
      return read();
    }
  }

  async diff(layer: LayerLocation, parent: string | undefined, opts: DiffOpts): Promise<Readable> {
    const idMappings = opts.idMappings ?? this.init.idMappings;
    const view = await this.#wholeView(layer, parent);
    if (view !== undefined) {
      opts.signal?.throwIfAborted();
      return packUnion((visit) => walkMergedView(view, visit, opts.signal), { ...(idMappings === undefined ? {} : { idMappings }), ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
    }
    if (!this.#native(layer, parent)) return this.init.naive.diff(layer.id, parent, opts);
    opts.signal?.throwIfAborted();
    return pack(join(layer.dir, DIFF), {
      sourceWhiteouts: 'overlay',
      ...(idMappings === undefined ? {} : { idMappings }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    });
  }

  async changes(layer: LayerLocation, parent: string | undefined, opts: DiffOpts): Promise<Change[]> {
    const view = await this.#wholeView(layer, parent);
    if (view !== undefined) return unionChanges((visit) => walkMergedView(view, visit, opts.signal)).catch((err: unknown) => Promise.reject(wrap('changes', layer.id, err)));
    if (!this.#native(layer, parent)) return this.init.naive.changes(layer.id, parent, opts);
    try {
      return await changesFromLayerDir(join(layer.dir, DIFF), {
        whiteouts: 'overlay',
        lowerDirs: await this.lowerDiffDirs(layer),
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      });
    } catch (err) {
      throw wrap('changes', layer.id, err);
    }
  }

  async diffSize(layer: LayerLocation, parent: string | undefined, opts: DiffOpts): Promise<number> {
    const view = await this.#wholeView(layer, parent);
    if (view !== undefined) return unionFileBytes((visit) => walkMergedView(view, visit, opts.signal)).catch((err: unknown) => Promise.reject(wrap('diffSize', layer.id, err)));
    if (!this.#native(layer, parent)) return this.init.naive.diffSize(layer.id, parent, opts);
    try {
      return await regularFileBytes(join(layer.dir, DIFF), opts.signal);
    } catch (err) {
      throw wrap('diffSize', layer.id, err);
    }
  }

  /** Whether applyDiff may extract straight into `diff/` (the tar is against the layer's own parent). */
  appliesNatively(layer: LayerLocation, parent: string | undefined): boolean {
    return this.isParent(layer, parent);
  }

  /** unpack's options for extracting into a diff dir. */
  unpackOptions(opts: ApplyDiffOpts): UnpackOptions {
    const idMappings = opts.idMappings ?? this.init.idMappings;
    return {
      whiteouts: this.init.whiteouts,
      ...(idMappings === undefined ? {} : { idMappings }),
      ...(opts.ignoreChownErrors === undefined ? {} : { ignoreChownErrors: opts.ignoreChownErrors }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    };
  }
}
