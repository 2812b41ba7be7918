/**
 * graphtest's SetQuota for real: on an xfs loop filesystem mounted with prjquota, a 50M vfs layer
 * takes 25 MiB and refuses 50 MiB more. This host's kernel has no project quotas (CONFIG_XFS_QUOTA
 * is off), so on the host this script re-runs itself inside the qemu lane (vm-lane.sh boots
 * Debian's 6.1 kernel, which has them) and passes its exit code on. In the guest (VMLANE_GUEST=1) it makes the filesystem and runs the case with
 * `quotaRoot` on it, so a "quota not supported" there is a failure, not a skip.
 *
 * Prints `vfs-quota: N passed, N failed, N skipped` and uvu-shaped totals; exits non-zero on failure.
 */
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformance } from '@graphdriver/graphtest';
import { inVmLane, printReportLines, runReportInVmLane, withScratchFs } from '@graphdriver/testkit';
import { init } from '../src/index.js';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LABEL = 'vfs-quota';

async function inGuest(): Promise<number> {
  return withScratchFs('xfs', { size: '512M', mountOptions: ['prjquota'] }, async (fs) => {
    const report = await conformance((root) => init({ home: join(root, 'vfs'), root, options: [] }), {
      label: LABEL,
      only: ['SetQuota'],
      quotaRoot: fs.path,
    });
    printReportLines(LABEL, report);
    return report.failed === 0 && report.passed === 1 ? 0 : 1;
  });
}

async function onHost(): Promise<number> {
  console.log('  SetQuota runs in the qemu lane: this kernel has no project quotas');
  return runReportInVmLane(LABEL, ['node', '--import', 'tsx', 'test/quota-lane.ts'], { cwd: pkgDir });
}

process.exitCode = inVmLane ? await inGuest() : await onHost();
