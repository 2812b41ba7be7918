/**
 * `graphdriver images` lists the imported images; `graphdriver rmi REF...` untags an image and,
 * once it has no tag left (or is named by id), removes it and the layers no other image or layer
 * stands on, top down - `docker rmi`.
 */
import { debuglog } from 'node:util';
import { shortId, size, table } from '../format.js';
import type { ImageRecord } from '../store.js';
import { boolOption, defineCommand } from './command.js';

const debug = debuglog('graphdriver:cli');

export interface ImagesResult {
  images: Array<ImageRecord & { topLayer: string | undefined; size: number }>;
}

export const imagesCommand = defineCommand<ImagesResult>({
  name: 'images',
  summary: 'list imported images',
  usage: '[--no-trunc]',
  options: {
    'no-trunc': { type: 'boolean', description: 'full ids' },
  },
  args: { min: 0, max: 0 },
  async run(ctx) {
    const store = await ctx.store();
    const images = store.images().map((img) => ({
      ...img,
      topLayer: img.layers[img.layers.length - 1],
      size: img.layers.reduce((n, id) => n + (store.layer(id)?.size ?? 0), 0),
    }));
    images.sort((a, b) => b.imported.localeCompare(a.imported));
    return { images };
  },
  render(ctx, r, args) {
    const full = boolOption(args, 'no-trunc');
    const rows: string[][] = [];
    for (const img of r.images) {
      for (const tag of img.tags.length > 0 ? img.tags : ['<none>']) {
        rows.push([tag, shortId(img.id, full), String(img.layers.length), img.topLayer === undefined ? '-' : shortId(img.topLayer, full), size(img.size), img.created ?? '-']);
      }
    }
    for (const line of table(['IMAGE', 'ID', 'LAYERS', 'TOP LAYER', 'SIZE', 'CREATED'], rows)) ctx.out(line);
  },
});

export interface RmiResult {
  untagged: string[];
  deletedImages: string[];
  deletedLayers: string[];
}

export const rmiCommand = defineCommand<RmiResult>({
  name: 'rmi',
  summary: 'untag or remove images, and the layers only they used',
  usage: 'IMAGE...',
  options: {},
  args: { min: 1, max: Infinity },
  async run(ctx, args) {
    return ctx.locked(async (store, driver) => {
      const result: RmiResult = { untagged: [], deletedImages: [], deletedLayers: [] };
      for (const ref of args.positionals) {
        const img = store.getImage(ref);
        const tag = img.tags.find((t) => [ref, `${ref}:latest`, `docker.io/library/${ref}`, `docker.io/library/${ref}:latest`].includes(t));
        if (tag !== undefined) {
          img.tags = img.tags.filter((t) => t !== tag);
          result.untagged.push(tag);
          if (img.tags.length > 0) {
            await store.save();
            continue;
          }
        }
        store.deleteImage(img.id);
        result.deletedImages.push(img.id);
        // top down: a layer goes when no other image uses it and no layer stands on it
        for (const id of [...img.layers].reverse()) {
          if (store.imagesUsing(id).length > 0 || store.children(id).length > 0) break;
          if (await driver.exists(id)) await driver.remove(id);
          store.deleteLayer(id);
          result.deletedLayers.push(id);
          debug('rmi %s: removed layer %s', ref, id);
        }
        await store.save();
      }
      return result;
    });
  },
  render(ctx, r) {
    for (const t of r.untagged) ctx.out(`Untagged: ${t}`);
    for (const i of r.deletedImages) ctx.out(`Deleted image: ${i}`);
    for (const l of r.deletedLayers) ctx.out(`Deleted layer: ${l}`);
  },
});
