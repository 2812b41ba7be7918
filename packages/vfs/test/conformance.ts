/**
 * The vfs driver against the whole graphtest conformance suite (run by `pnpm test` before the uvu
 * tests of what is vfs's own). Prints one line per case and `vfs: N passed, N failed, N skipped`;
 * exits non-zero when a case fails. SetQuota skips here with the reason the driver gives (no project
 * quotas on this host's filesystems); test/quota-lane.ts runs it for real in the qemu lane.
 */
import { join } from 'node:path';
import { conformance } from '@graphdriver/graphtest';
import { init } from '../src/index.js';

const quotaRoot = process.env.GRAPHTEST_QUOTA_ROOT;
const only = process.env.GRAPHTEST_ONLY?.split(',').filter((s) => s !== '');

const report = await conformance((root) => init({ home: join(root, 'vfs'), root, options: [] }), {
  label: 'vfs',
  ...(quotaRoot === undefined ? {} : { quotaRoot }),
  ...(only === undefined ? {} : { only }),
});
// uvu-shaped totals too, so that the workspace's test runner counts these cases with the rest.
console.log(`\n  Total:     ${report.cases.length}\n  Passed:    ${report.passed}\n  Skipped:   ${report.skipped}\n`);
process.exitCode = report.failed > 0 ? 1 : 0;
