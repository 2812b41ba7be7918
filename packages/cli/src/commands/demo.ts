/**
 * `graphdriver demo`: the README's walk-through (demo.ts) in a scratch store; --driver and --opt
 * choose the driver as for any command, --root is not used (the demo's store is its own).
 */
import { runDemo } from '../demo.js';
import { UsageError } from '../errors.js';
import { boolOption, defineCommand } from './command.js';

export const demoCommand = defineCommand<{ status: number }>({
  name: 'demo',
  summary: 'build an image, import it, change, diff and apply a layer, step by step (scratch store)',
  usage: '[--keep]',
  options: {
    keep: { type: 'boolean', description: 'keep the scratch directory (store, image, tars) afterwards' },
  },
  args: { min: 0, max: 0 },
  details: ['Runs on the machine\'s default driver (or --driver) in a scratch store under the temporary directory.'],
  async run(ctx, args) {
    if (ctx.json) throw new UsageError('the demo prints for people; it has no --json output');
    const { main } = await import('../main.js');
    const status = await runDemo(ctx.io, main, { driver: ctx.globals.driver, opts: ctx.globals.opt, keep: boolOption(args, 'keep') });
    if (status !== 0) throw new Error('the demo failed (see above)');
    return { status };
  },
});
