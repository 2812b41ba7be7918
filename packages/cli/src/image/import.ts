/**
 * Carrying out an import: each image's layers bottom first, each stored under its chain id with
 * its parent's chain id as parent. A layer the store already has complete is used as it is (shared
 * layers are stored once); one the driver has but the store does not record is what a killed
 * import left, and is made again. A layer is recorded only once it is complete and verified, and
 * images only once all their layers are. On any failure, an interrupt included, the layer being
 * made is removed (its staged extraction discarded first) and so are the layers this import made
 * before it: a failed import leaves the store as it found it.
 */
import { debuglog } from 'node:util';
import type { Driver } from '@graphdriver/core';
import { applyLayer } from '../layer-apply.js';
import type { Progress } from '../progress.js';
import type { ImageRecord, Store } from '../store.js';
import { UsageError } from '../errors.js';
import { checkBlobsPresent, type ImagePlan, type LayerPlan } from './plan.js';
import type { ImageSource } from './source.js';

const debug = debuglog('graphdriver:cli');

export interface ImportedLayer {
  id: string;
  parent: string | undefined;
  diffId: string;
  /** Already in the store: nothing was read. */
  reused: boolean;
  /** Bytes of file content (applyDiff's count). */
  size: number;
  entries: number;
  compression: string | undefined;
}

export interface ImportedImage {
  id: string;
  tags: string[];
  /** The image's top layer id (undefined for an image without layers). */
  topLayer: string | undefined;
  layers: ImportedLayer[];
}

export interface ImportOptions {
  signal?: AbortSignal | undefined;
  progress?: Progress;
  /** Tags to give the image instead of those in the archive (only for an archive of one image). */
  tags?: string[];
}

function short(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

async function importLayer(driver: Driver, store: Store, source: ImageSource, img: ImagePlan, plan: LayerPlan, opts: ImportOptions): Promise<ImportedLayer> {
  const record = store.layer(plan.id);
  const exists = await driver.exists(plan.id);
  const base = { id: plan.id, parent: plan.parent, diffId: plan.diffId };
  if (record !== undefined && exists) {
    debug('layer %s (%s) already stored', plan.id, plan.diffId);
    opts.progress?.log(`layer ${plan.index + 1}/${img.layers.length} ${short(plan.id)}: already stored`);
    return { ...base, reused: true, size: record.size ?? 0, entries: 0, compression: undefined };
  }
  if (exists) {
    // complete layers are always recorded: this one is the remains of an interrupted import
    debug('removing unrecorded layer %s before importing it again', plan.id);
    await driver.remove(plan.id);
  }
  if (record !== undefined) store.deleteLayer(plan.id); // recorded, but its layer is gone

  const st = await source.stat(plan.blob);
  const task = opts.progress?.task(`${plan.index + 1}/${img.layers.length} ${short(plan.id)}`, plan.blobSize ?? st?.size);
  await driver.create(plan.id, plan.parent);
  try {
    const applied = await applyLayer(
      driver,
      plan.id,
      plan.parent,
      {
        open: () => source.open(plan.blob),
        reopenable: true,
        what: `layer ${plan.index + 1}/${img.layers.length} of image ${short(img.id)} (${plan.blobDigest ?? plan.blob})`,
        ...(plan.blobDigest === undefined ? {} : { blobDigest: plan.blobDigest }),
        ...(plan.blobSize === undefined ? {} : { blobSize: plan.blobSize }),
        diffId: plan.diffId,
      },
      { signal: opts.signal, ...(task === undefined ? {} : { progress: task }) },
    );
    task?.done();
    store.putLayer({
      id: plan.id,
      ...(plan.parent === undefined ? {} : { parent: plan.parent }),
      readWrite: false,
      created: new Date().toISOString(),
      diffId: applied.diffId,
      ...(plan.blobDigest === undefined ? {} : { compressedDigest: plan.blobDigest }),
      size: applied.size,
    });
    await store.save();
    return { ...base, reused: false, size: applied.size, entries: applied.entries, compression: applied.compression };
  } catch (err) {
    task?.done('failed');
    await driver.remove(plan.id).catch((e: unknown) => debug('removing the failed layer %s: %o', plan.id, e));
    throw err;
  }
}

/**
 * Imports `images` from `source` into `driver`, recording them in `store` (which must be locked).
 * All or nothing: when anything fails (a digest, a missing blob, the driver, an interrupt), the
 * layers this import made are removed again and no image is recorded; layers that were there
 * before stay as they were.
 */
export async function importImages(driver: Driver, store: Store, source: ImageSource, images: ImagePlan[], opts: ImportOptions = {}): Promise<ImportedImage[]> {
  if (opts.tags !== undefined && opts.tags.length > 0 && images.length !== 1) {
    throw new UsageError(`--tag names one image, but ${source.location} holds ${images.length}`);
  }
  // every blob there before the first layer is made: a missing one fails with nothing stored
  await checkBlobsPresent(source, images);
  const made: string[] = [];
  const out: ImportedImage[] = [];
  try {
    for (const img of images) {
      const layers: ImportedLayer[] = [];
      for (const plan of img.layers) {
        opts.signal?.throwIfAborted();
        const layer = await importLayer(driver, store, source, img, plan, opts);
        if (!layer.reused) made.push(layer.id);
        layers.push(layer);
      }
      out.push({ id: img.id, tags: opts.tags !== undefined && opts.tags.length > 0 ? opts.tags : img.tags, topLayer: img.layers[img.layers.length - 1]?.id, layers });
    }
  } catch (err) {
    await rollBack(driver, store, made);
    throw err;
  }
  for (const [i, img] of images.entries()) {
    const rec: ImageRecord = {
      id: img.id,
      tags: out[i]!.tags,
      layers: img.layers.map((l) => l.id),
      diffIds: img.layers.map((l) => l.diffId),
      imported: new Date().toISOString(),
      format: img.format,
    };
    if (img.os !== undefined) rec.os = img.os;
    if (img.architecture !== undefined) rec.architecture = img.architecture;
    if (img.created !== undefined) rec.created = img.created;
    store.putImage(rec);
  }
  await store.save();
  for (const img of out) img.tags = store.findImage(img.id)?.tags ?? img.tags;
  return out;
}

/** Removes the layers an import made, top down, and their records. */
async function rollBack(driver: Driver, store: Store, made: string[]): Promise<void> {
  for (const id of [...made].reverse()) {
    try {
      await driver.remove(id);
      store.deleteLayer(id);
    } catch (err) {
      debug('rolling back the import: removing layer %s: %o', id, err);
    }
  }
  if (made.length > 0) await store.save().catch((err: unknown) => debug('rolling back the import: saving the store: %o', err));
}
