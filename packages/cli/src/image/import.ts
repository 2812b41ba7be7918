/**
 * Carrying out an import: each image's layers bottom first, each stored under its chain id with
 * its parent's chain id as parent. A layer the store already has complete is used as it is (shared
 * layers are stored once); one the driver has but the store does not record is what an interrupted
 * import left, and is made again. A layer is recorded only once it is complete and verified; on
 * any failure, an interrupt included, the layer being made is removed (its staged extraction
 * discarded first) and nothing of it remains. Images are recorded with their tags at the end.
 */
import { debuglog } from 'node:util';
import type { Driver } from '@graphdriver/core';
import { applyLayer } from '../layer-apply.js';
import type { Progress } from '../progress.js';
import type { ImageRecord, Store } from '../store.js';
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

/** Imports `images` from `source` into `driver`, recording them in `store` (which must be locked). */
export async function importImages(driver: Driver, store: Store, source: ImageSource, images: ImagePlan[], opts: ImportOptions = {}): Promise<ImportedImage[]> {
  if (opts.tags !== undefined && opts.tags.length > 0 && images.length !== 1) {
    throw new TypeError(`--tag names one image, but ${source.location} holds ${images.length}`);
  }
  // every blob there before the first layer is made: a missing one fails with nothing stored
  await checkBlobsPresent(source, images);
  const out: ImportedImage[] = [];
  for (const img of images) {
    const layers: ImportedLayer[] = [];
    for (const plan of img.layers) {
      opts.signal?.throwIfAborted();
      layers.push(await importLayer(driver, store, source, img, plan, opts));
    }
    const tags = opts.tags !== undefined && opts.tags.length > 0 ? opts.tags : img.tags;
    const rec: ImageRecord = {
      id: img.id,
      tags,
      layers: img.layers.map((l) => l.id),
      diffIds: img.layers.map((l) => l.diffId),
      imported: new Date().toISOString(),
      format: img.format,
    };
    if (img.os !== undefined) rec.os = img.os;
    if (img.architecture !== undefined) rec.architecture = img.architecture;
    if (img.created !== undefined) rec.created = img.created;
    store.putImage(rec);
    await store.save();
    out.push({ id: img.id, tags: store.findImage(img.id)?.tags ?? tags, topLayer: img.layers[img.layers.length - 1]?.id, layers });
  }
  return out;
}
