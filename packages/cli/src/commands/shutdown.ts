/**
 * `graphdriver shutdown`: what a container engine does when it stops - the driver's cleanup():
 * every layer mounted by earlier commands is unmounted and the driver lets go of what it holds for
 * the store (devmapper's pool and its loop devices, aufs's size-limited images, layer0's volumes).
 * Each command is its own process, so mounts and pools otherwise stay up between commands, as they
 * stay up while an engine runs; the next command brings back what it needs.
 */
import { defineCommand } from './command.js';

export interface ShutdownResult {
  driver: string;
  root: string;
}

export const shutdownCommand = defineCommand<ShutdownResult>({
  name: 'shutdown',
  summary: 'unmount every layer and release what the driver holds for the store',
  usage: '',
  options: {},
  args: { min: 0, max: 0 },
  async run(ctx) {
    const driver = await ctx.driver();
    await driver.cleanup();
    return { driver: driver.name, root: ctx.root };
  },
  render(ctx, r) {
    ctx.out(`${r.driver} store at ${r.root}: every layer unmounted, driver resources released`);
  },
});
