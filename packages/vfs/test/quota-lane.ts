/**
 * graphtest's SetQuota for real: on an xfs loop filesystem mounted with prjquota, a 50M vfs layer
 * takes 25 MiB and refuses 50 MiB more. This host's kernel has no project quotas (CONFIG_XFS_QUOTA
 * is off), so on the host this script re-runs itself inside the qemu lane (vm-lane.sh boots
 * Debian's 6.1 kernel, which has them) and passes its exit code on; only when qemu is missing does
 * it skip, saying why. In the guest (VMLANE_GUEST=1) it makes the filesystem and runs the case with
 * `quotaRoot` on it, so a "quota not supported" there is a failure, not a skip.
 *
 * Prints `vfs-quota: N passed, N failed, N skipped` and uvu-shaped totals; exits non-zero on failure.
 */
import { execFile, spawn } from 'node:child_process';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { conformance, formatSummaryLine, type Report } from '@graphdriver/graphtest';
import { withScratchFs } from '../../core/test/helpers/scratch-fs.js';
import { init } from '../src/index.js';

const run = promisify(execFile);
const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repoRoot = resolve(pkgDir, '../..');
const VMLANE = process.env.GRAPHDRIVER_VMLANE ?? join(repoRoot, 'scripts/vm-lane.sh');
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
  const qemu = await run('sh', ['-c', 'command -v qemu-system-x86_64']).then(
    () => true,
    () => false,
  );
  if (!qemu) {
    console.log(`  skip  SetQuota: qemu-system-x86_64 is not installed, so the qemu lane with project quotas cannot run`);
    const r = { driver: LABEL, passed: 0, failed: 0, skipped: 1 };
    console.log(formatSummaryLine(r));
    printTotals(r);
    return 0;
  }
  console.log(`  SetQuota runs in the qemu lane (${VMLANE}): this kernel has no project quotas`);
  const started = Date.now();
  const child = spawn(VMLANE, ['node', '--import', 'tsx', 'test/quota-lane.ts'], {
    cwd: pkgDir,
    env: { ...process.env, VMLANE_SHARE: repoRoot },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
    process.stdout.write(d);
  });
  const code = await new Promise<number | null>((res) => child.on('close', res));
  console.log(`  qemu lane: exit ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // The guest printed the summary line; a lane that died before it is a failure of its own.
  if (!new RegExp(`^${LABEL}: \\d+ passed`, 'm').test(output)) {
    const r = { driver: LABEL, passed: 0, failed: 1, skipped: 0 };
    console.log(formatSummaryLine(r));
    printTotals(r);
    return 1;
  }
  return code === 0 ? 0 : 1;
}

process.exitCode = process.env.VMLANE_GUEST === '1' ? await inGuest() : await onHost();
