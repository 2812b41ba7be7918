/**
 * `graphdriver status`: the driver, the store root and what the driver reports about itself (as
 * `docker info` shows it), with the number of layers and images recorded.
 */
import { defineCommand } from './command.js';

export interface StatusResult {
  driver: string;
  root: string;
  home: string;
  status: Array<[string, string]>;
  layers: number;
  images: number;
}

export const statusCommand = defineCommand<StatusResult>({
  name: 'status',
  summary: "show the driver and what it reports about the store",
  usage: '',
  options: {},
  args: { min: 0, max: 0 },
  async run(ctx) {
    const driver = await ctx.driver();
    const store = await ctx.store();
    return {
      driver: driver.name,
      root: ctx.root,
      home: driver.home,
      status: await driver.status(),
      layers: store.layers().length,
      images: store.images().length,
    };
  },
  render(ctx, r) {
    ctx.out(`Storage Driver: ${r.driver}`);
    for (const [k, v] of r.status) ctx.out(` ${k}: ${v}`);
    ctx.out(`Root: ${r.root}`);
    ctx.out(`Layers: ${r.layers}`);
    ctx.out(`Images: ${r.images}`);
  },
});
