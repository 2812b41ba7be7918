/**
 * A process that dies in the middle of a transaction: it starts the driver on an existing store,
 * creates (`create`) or removes (`delete`) the layer `victim`, and kills itself with SIGKILL right
 * after the named transaction step - no error handling, no cleanup, exactly what a crash leaves.
 * Exits 3 when the step never came. Used by the crash tests in driver-cases.ts.
 *
 *   node --import tsx test/helpers/crash-child.ts <root> <backend> <create|delete> <step> [options...]
 */
import type { TransactionStep } from '../../src/index.js';
import { start, type Backend } from './stores.js';

const [root, backend, operation, step, ...options] = process.argv.slice(2) as [string, Backend, 'create' | 'delete', TransactionStep, ...string[]];

const driver = await start(root, backend, options, {
  hooks: {
    afterStep(s, _op, hash) {
      if (hash === 'victim' && s === step) process.kill(process.pid, 'SIGKILL');
    },
  },
});
if (operation === 'create') await driver.create('victim', 'parent');
else await driver.remove('victim');
process.exitCode = 3;
