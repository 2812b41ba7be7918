/**
 * `graphdriver create [--rw] [--parent ID|IMAGE] ID`: a new image layer (or, with --rw, a
 * container layer) on a parent layer or on an image's top layer.
 */
import { LayerExistsError, validateLayerId } from '@graphdriver/core';
import { UsageError } from '../errors.js';
import { boolOption, defineCommand, listOption, stringOption } from './command.js';
import { parentLayer } from './layer-args.js';

export interface CreateResult {
  id: string;
  parent: string | undefined;
  readWrite: boolean;
}

/** `--storage-opt size=10G` values as a storageOpt object. */
export function storageOpts(values: string[]): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`--storage-opt takes key=value, got ${JSON.stringify(v)}`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

export const createCommand = defineCommand<CreateResult>({
  name: 'create',
  summary: 'create a layer (image layer, or container layer with --rw)',
  usage: '[--rw] [--parent ID|IMAGE] [--storage-opt KEY=VALUE]... ID',
  options: {
    rw: { type: 'boolean', description: 'a writable container layer' },
    parent: { type: 'string', valueName: 'ID|IMAGE', description: "the parent: a layer, or an image (its top layer)" },
    'storage-opt': { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: "a per-layer driver option, e.g. size=10G" },
  },
  args: { min: 1, max: 1 },
  async run(ctx, args) {
    const id = args.positionals[0]!;
    validateLayerId(id);
    const readWrite = boolOption(args, 'rw');
    const storageOpt = storageOpts(listOption(args, 'storage-opt'));
    const parentName = stringOption(args, 'parent');
    return ctx.locked(async (store, driver) => {
      if (store.layer(id) !== undefined || (await driver.exists(id))) throw new LayerExistsError(id);
      const parent = parentName === undefined || parentName === '' ? undefined : await parentLayer(store, driver, parentName);
      const opts = storageOpt === undefined ? {} : { storageOpt };
      if (readWrite) await driver.createReadWrite(id, parent, opts);
      else await driver.create(id, parent, opts);
      try {
        store.putLayer({ id, ...(parent === undefined ? {} : { parent }), readWrite, created: new Date().toISOString() });
        await store.save();
      } catch (err) {
        await driver.remove(id).catch(() => undefined);
        throw err;
      }
      return { id, parent, readWrite };
    });
  },
  render(ctx, r) {
    ctx.out(r.id);
  },
});
