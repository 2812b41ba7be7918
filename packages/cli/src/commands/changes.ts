/**
 * `graphdriver changes ID [--parent ID]`: what a layer changed against its parent, as `docker
 * diff` prints it (A added, C changed, D deleted).
 */
import type { Change } from '@graphdriver/core';
import { defineCommand, stringOption } from './command.js';
import { diffParent, existingLayer } from './layer-args.js';

export interface ChangesResult {
  id: string;
  parent: string | undefined;
  changes: Change[];
}

const LETTER = { add: 'A', modify: 'C', delete: 'D' } as const;

export const changesCommand = defineCommand<ChangesResult>({
  name: 'changes',
  summary: "list a layer's changes against its parent (A, C, D)",
  usage: '[--parent ID|IMAGE] ID',
  options: {
    parent: { type: 'string', valueName: 'ID|IMAGE', description: "compare with this layer instead of the layer's parent ('' for none)" },
  },
  args: { min: 1, max: 1 },
  async run(ctx, args) {
    const driver = await ctx.driver();
    const store = await ctx.store();
    const id = await existingLayer(store, driver, args.positionals[0]!);
    const parent = await diffParent(store, driver, id, stringOption(args, 'parent'));
    const changes = await driver.changes(id, parent, ctx.signal === undefined ? {} : { signal: ctx.signal });
    return { id, parent, changes };
  },
  render(ctx, r) {
    for (const c of r.changes) ctx.out(`${LETTER[c.kind]} ${c.path}`);
  },
});
