/**
 * `graphdriver mount ID` and `graphdriver umount ID`: the driver's get and put. A mount outlives
 * the command that made it: `mount` prints the path and leaves it. The next command's driver
 * adopts it and counts it once (moby's rule for mounts an earlier process left), so one `umount`
 * unmounts it however many `mount`s came before; an `umount` of a layer not mounted does nothing.
 */
import { boolOption, defineCommand, listOption } from './command.js';
import { existingLayer } from './layer-args.js';

export interface MountResult {
  id: string;
  path: string;
}

export const mountCommand = defineCommand<MountResult>({
  name: 'mount',
  summary: "mount a layer's root filesystem and print its path",
  usage: '[--ro] [--mount-opt OPT]... ID',
  options: {
    ro: { type: 'boolean', description: 'mount read-only' },
    'mount-opt': { type: 'string', multiple: true, valueName: 'OPT', description: 'an extra mount option for this mount (e.g. nodev)' },
  },
  args: { min: 1, max: 1 },
  async run(ctx, args) {
    const driver = await ctx.driver();
    const store = await ctx.store();
    const id = await existingLayer(store, driver, args.positionals[0]!);
    const options = listOption(args, 'mount-opt');
    const path = await driver.get(id, { ...(boolOption(args, 'ro') ? { readOnly: true } : {}), ...(options.length > 0 ? { options } : {}) });
    return { id, path };
  },
  render(ctx, r) {
    ctx.out(r.path);
  },
});

export interface UmountResult {
  id: string;
}

export const umountCommand = defineCommand<UmountResult>({
  name: 'umount',
  summary: 'unmount a layer mounted by mount',
  usage: 'ID',
  options: {},
  args: { min: 1, max: 1 },
  async run(ctx, args) {
    const driver = await ctx.driver();
    const store = await ctx.store();
    const id = await existingLayer(store, driver, args.positionals[0]!);
    await driver.put(id);
    return { id };
  },
});
