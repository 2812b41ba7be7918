/**
 * The vfs driver against the whole graphtest conformance suite (run by `pnpm test` before the uvu
 * tests of what is vfs's own). Prints one line per case and `vfs: N passed, N failed, N skipped`;
 * exits non-zero when a case fails. SetQuota skips here with the reason the driver gives (no project
 * quotas on this host's filesystems); test/quota-lane.ts runs it for real in the qemu lane.
 */
import { join } from 'node:path';
import { conformance } from '@graphdriver/graphtest';
import { printUvuTotals } from '@graphdriver/testkit';
import { init } from '../src/index.js';

const quotaRoot = process.env.GRAPHTEST_QUOTA_ROOT;
const only = process.env.GRAPHTEST_ONLY?.split(',').filter((s) => s !== '');

const report = await conformance((root) => init({ home: join(root, 'vfs'), root, options: [] }), {
  label: 'vfs',
  ...(quotaRoot === undefined ? {} : { quotaRoot }),
  ...(only === undefined ? {} : { only }),
});
printUvuTotals(report);
process.exitCode = report.failed > 0 ? 1 : 0;
