/**
 * `graphdriver apply ID FILE|- [--parent ID]`: a layer tar (uncompressed, gzip or zstd) applied to
 * layer ID. A layer that does not exist yet is created on --parent first, the tar extracted aside
 * where the driver stages, and removed again if anything fails or Ctrl-C stops it; an existing
 * layer gets the tar on top of what it has, in place, as moby's ApplyDiff does.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { LayerBusyError, validateLayerId } from '@graphdriver/core';
import { debuglog } from 'node:util';
import { shortId } from '../format.js';
import { applyLayer } from '../layer-apply.js';
import { boolOption, defineCommand, stringOption } from './command.js';
import { diffParent, parentLayer } from './layer-args.js';
import { UsageError } from '../errors.js';

const debug = debuglog('graphdriver:cli');

export interface ApplyResult {
  id: string;
  parent: string | undefined;
  /** Whether the layer was made by this command. */
  created: boolean;
  /** Bytes of file content applied (applyDiff's count). */
  size: number;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  entries: number;
  compression: string;
}

export const applyCommand = defineCommand<ApplyResult>({
  name: 'apply',
  summary: 'apply a layer tar to a layer (created on --parent when it does not exist)',
  usage: '[--parent ID|IMAGE] [--rw] ID FILE|-',
  options: {
    parent: { type: 'string', valueName: 'ID|IMAGE', description: "the new layer's parent; for an existing layer, what the tar is relative to" },
    rw: { type: 'boolean', description: 'create the new layer as a container layer' },
  },
  args: { min: 2, max: 2 },
  async run(ctx, args) {
    const [id, file] = args.positionals as [string, string];
    validateLayerId(id);
    const fromStdin = file === '-';
    const path = fromStdin ? '-' : resolve(file);
    const size = fromStdin ? undefined : (await stat(path)).size;
    const parentName = stringOption(args, 'parent');
    return ctx.locked(async (store, driver) => {
      const created = !(await driver.exists(id));
      let parent: string | undefined;
      if (created) {
        if (store.layer(id) !== undefined) store.deleteLayer(id); // a record whose layer is gone
        parent = parentName === undefined || parentName === '' ? undefined : await parentLayer(store, driver, parentName);
        if (boolOption(args, 'rw')) await driver.createReadWrite(id, parent);
        else await driver.create(id, parent);
      } else {
        if (boolOption(args, 'rw')) throw new UsageError(`--rw is for a new layer; ${id} exists`);
        // what layers above it or an image were made from must not change under them
        const children = store.children(id);
        if (children.length > 0) throw new LayerBusyError(id, `it is the parent of ${children.map((c) => shortId(c)).join(', ')}`);
        const images = store.imagesUsing(id);
        if (images.length > 0) throw new LayerBusyError(id, `it is a layer of image ${images[0]!.tags[0] ?? shortId(images[0]!.id)}`);
        parent = await diffParent(store, driver, id, parentName);
      }
      const task = ctx.progress.task(`apply ${shortId(id)}`, size);
      try {
        const applied = await applyLayer(
          driver,
          id,
          parent,
          {
            open: () => (fromStdin ? ctx.io.stdin : createReadStream(path, { highWaterMark: 1 << 20 })),
            reopenable: !fromStdin,
            what: fromStdin ? 'standard input' : file,
          },
          { signal: ctx.signal, progress: task, staged: created },
        );
        task.done();
        const prior = store.layer(id);
        if (created) {
          store.putLayer({
            id,
            ...(parent === undefined ? {} : { parent }),
            readWrite: boolOption(args, 'rw'),
            created: new Date().toISOString(),
            diffId: applied.diffId,
            size: applied.size,
          });
        } else if (prior !== undefined) {
          // no longer the content of one tar: its diff id and blob are not known any more
          const { diffId: _d, compressedDigest: _c, ...rest } = prior;
          store.putLayer({ ...rest, size: (prior.size ?? 0) + applied.size });
        }
        await store.save();
        return { id, parent, created, size: applied.size, diffId: applied.diffId, entries: applied.entries, compression: applied.compression };
      } catch (err) {
        task.done('failed');
        if (created) await driver.remove(id).catch((e: unknown) => debug('removing %s after a failed apply: %o', id, e));
        throw err;
      } finally {
        ctx.progress.stop();
      }
    });
  },
  render(ctx, r) {
    ctx.out(`applied to ${r.created ? 'new ' : ''}layer ${r.id}: ${r.entries} entries, ${r.size} bytes, ${r.diffId}`);
  },
});
