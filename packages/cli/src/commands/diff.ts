/**
 * `graphdriver diff ID [--parent ID] [-o FILE]`: a layer's changes against its parent as a layer
 * tar (AUFS whiteouts, what an image layer holds), to standard output or a file.
 */
import { bytesSize } from '@graphdriver/core';
import { defineCommand, stringOption } from './command.js';
import { diffParent, existingLayer } from './layer-args.js';
import { checkTarDestination, writeTar, type TarWritten } from './tar-output.js';
import { shortId } from '../format.js';

export interface DiffResult extends TarWritten {
  id: string;
  parent: string | undefined;
}

export const diffCommand = defineCommand<DiffResult>({
  name: 'diff',
  summary: "write a layer's changes against its parent as a layer tar",
  usage: '[--parent ID|IMAGE] [-o FILE] ID',
  options: {
    parent: { type: 'string', valueName: 'ID|IMAGE', description: "against this layer instead of the layer's parent ('' for the whole layer)" },
    output: { type: 'string', short: 'o', valueName: 'FILE', description: 'write the tar to FILE instead of standard output' },
  },
  args: { min: 1, max: 1 },
  async run(ctx, args) {
    const output = stringOption(args, 'output');
    checkTarDestination(ctx, output);
    const driver = await ctx.driver();
    const store = await ctx.store();
    const id = await existingLayer(store, driver, args.positionals[0]!);
    const parent = await diffParent(store, driver, id, stringOption(args, 'parent'));
    const tar = await driver.diff(id, parent, ctx.signal === undefined ? {} : { signal: ctx.signal });
    const written = await writeTar(ctx, tar, output, `diff ${shortId(id)}`);
    return { id, parent, ...written };
  },
  render(ctx, r) {
    if (r.file !== undefined) ctx.out(`wrote ${r.file}: ${bytesSize(r.bytes)}, ${r.entries} entries, ${r.digest}`);
  },
});
