/**
 * The aufs driver against the whole graphtest conformance suite (run by `pnpm test` before the uvu
 * tests of what is aufs's own), through fuse-overlayfs - this host's kernel has no aufs. Every case
 * must pass, SetQuota included: its 50M layer is a loop-mounted ext4 image here (no project quotas
 * on this kernel; test/quota-lane.ts runs the project-quota way in the qemu lane). DeepLayerRead
 * runs at 128 (moby's) and 200 layers. Prints one line per case, `aufs: N passed, N failed, N
 * skipped` and uvu-shaped totals for the workspace's test runner; exits non-zero when a case fails
 * or skips.
 *
 * GRAPHTEST_ONLY=<cases> narrows a run.
 */
import { join } from 'node:path';
import { conformance } from '@graphdriver/graphtest';
import { printUvuTotals } from '@graphdriver/testkit';
import { init } from '../src/index.js';

const only = process.env.GRAPHTEST_ONLY?.split(',').filter((s) => s !== '');

const report = await conformance((root) => init({ home: join(root, 'aufs'), root, options: [] }), {
  label: 'aufs',
  deepLayerRead: [128, 200],
  ...(only === undefined ? {} : { only }),
});
// A skip is a failure here: the host has everything every case needs.
for (const c of report.cases) if (c.status === 'skip') console.log(`  fail  ${c.name} was skipped: ${c.reason ?? ''}`);
const failed = report.failed + report.skipped;
printUvuTotals(report);
process.exitCode = failed > 0 ? 1 : 0;
