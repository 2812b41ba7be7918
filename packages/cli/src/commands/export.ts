/**
 * `graphdriver export ID [-o FILE]`: the layer's whole root filesystem as the mount shows it
 * (parents included, no whiteouts), as a tar - `docker export` of a layer.
 */
import { bytesSize, pack } from '@graphdriver/core';
import { shortId } from '../format.js';
import { defineCommand, stringOption } from './command.js';
import { existingLayer } from './layer-args.js';
import { checkTarDestination, writeTar, type TarWritten } from './tar-output.js';

export interface ExportResult extends TarWritten {
  id: string;
}

export const exportCommand = defineCommand<ExportResult>({
  name: 'export',
  summary: "write a layer's mounted root filesystem as a tar",
  usage: '[-o FILE] ID',
  options: {
    output: { type: 'string', short: 'o', valueName: 'FILE', description: 'write the tar to FILE instead of standard output' },
  },
  args: { min: 1, max: 1 },
  async run(ctx, args) {
    const output = stringOption(args, 'output');
    checkTarDestination(ctx, output);
    const driver = await ctx.driver();
    const store = await ctx.store();
    const id = await existingLayer(store, driver, args.positionals[0]!);
    const root = await driver.get(id);
    try {
      const tar = pack(root, ctx.signal === undefined ? {} : { signal: ctx.signal });
      return { id, ...(await writeTar(ctx, tar, output, `export ${shortId(id)}`)) };
    } finally {
      await driver.put(id);
    }
  },
  render(ctx, r) {
    if (r.file !== undefined) ctx.out(`wrote ${r.file}: ${bytesSize(r.bytes)}, ${r.entries} entries, ${r.digest}`);
  },
});
