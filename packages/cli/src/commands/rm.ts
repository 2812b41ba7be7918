/**
 * `graphdriver rm ID...`: removes layers. A layer that is the parent of another or part of an
 * image is refused (remove the child, or the image with rmi, first), as moby refuses.
 */
import { LayerBusyError } from '@graphdriver/core';
import { shortId } from '../format.js';
import { defineCommand } from './command.js';
import { existingLayer } from './layer-args.js';

export interface RmResult {
  removed: string[];
}

export const rmCommand = defineCommand<RmResult>({
  name: 'rm',
  summary: 'remove layers',
  usage: 'ID...',
  options: {},
  args: { min: 1, max: Infinity },
  async run(ctx, args) {
    return ctx.locked(async (store, driver) => {
      const removed: string[] = [];
      for (const name of args.positionals) {
        const id = await existingLayer(store, driver, name);
        const children = store.children(id);
        if (children.length > 0) {
          throw new LayerBusyError(id, `it is the parent of ${children.map((c) => shortId(c)).join(', ')}: remove ${children.length === 1 ? 'that layer' : 'those layers'} first`);
        }
        const images = store.imagesUsing(id);
        if (images.length > 0) {
          const names = images.map((i) => i.tags[0] ?? shortId(i.id));
          throw new LayerBusyError(id, `image ${names.join(', ')} uses it: remove the image with rmi`);
        }
        await driver.remove(id);
        store.deleteLayer(id);
        await store.save();
        removed.push(id);
      }
      return { removed };
    });
  },
  render(ctx, r) {
    for (const id of r.removed) ctx.out(id);
  },
});
