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
import { conformance, formatSummaryLine, type Report } from '@graphdriver/graphtest';
import { inVmLane, runInVmLane, withScratchFs } from '@graphdriver/testkit';
import { init } from '../src/index.js';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LABEL = 'vfs-quota';

function printTotals(r: Pick<Report, 'passed' | 'failed' | 'skipped'>): void {
  console.log(`\n  Total:     ${r.passed + r.failed + r.skipped}\n  Passed:    ${r.passed}\n  Skipped:   ${r.skipped}\n`);
}

async function inGuest(): Promise<number> {
  return withScratchFs('xfs', { size: '512M', mountOptions: ['prjquota'] }, async (fs) => {
    const report = await conformance((root) => init({ home: join(root, 'vfs'), root, options: [] }), {
      label: LABEL,
      only: ['SetQuota'],
      quotaRoot: fs.path,
    });
    printTotals(report);
    return report.failed === 0 && report.passed === 1 ? 0 : 1;
  });
}

async function onHost(): Promise<number> {
  console.log('  SetQuota runs in the qemu lane: this kernel has no project quotas');
  const lane = await runInVmLane(['node', '--import', 'tsx', 'test/quota-lane.ts'], { cwd: pkgDir }).catch((err: unknown) => {
    console.log(`  fail  SetQuota: ${(err as Error).message}`);
    return undefined;
  });
  // The guest printed the summary line; a lane that died before it is a failure of its own.
  if (lane === undefined || !new RegExp(`^${LABEL}: \\d+ passed`, 'm').test(lane.output)) {
    const r = { driver: LABEL, passed: 0, failed: 1, skipped: 0 };
    console.log(formatSummaryLine(r));
    printTotals(r);
    return 1;
  }
  console.log(`  qemu lane: exit ${lane.code} after ${lane.seconds.toFixed(1)} s`);
  return lane.code === 0 ? 0 : 1;
}

process.exitCode = inVmLane ? await inGuest() : await onHost();
