/**
 * The overlay driver against the whole graphtest conformance suite, twice: with the kernel's
 * overlay (native diffs: DiffApply and Changes must pass, not skip; DeepLayerRead at 128 and at
 * the kernel's 500) and through fuse-overlayfs (`overlay.mount_program`, AUFS whiteouts, naive
 * diffs). Run by `pnpm test` before the uvu tests of what is overlay's own. Prints one line per
 * case, `overlay: N passed, N failed, N skipped` and `overlay-fuse: ...`, and uvu-shaped totals
 * for the workspace's test runner; exits non-zero when a case fails or when a case that must run
 * in native-diff mode was skipped. SetQuota skips here (no project quotas on this host's kernel);
 * test/quota-lane.ts runs it for real in the qemu lane.
 *
 * GRAPHTEST_ONLY=<cases> and OVERLAY_MODES=native,fuse narrow a run.
 */
import { join } from 'node:path';
import { conformance, type Report } from '@graphdriver/graphtest';
import { printUvuTotals, totalsOf } from '@graphdriver/testkit';
import { init, type OverlayDriver } from '../src/index.js';

const only = process.env.GRAPHTEST_ONLY?.split(',').filter((s) => s !== '');
const modes = (process.env.OVERLAY_MODES ?? 'native,fuse').split(',').filter((s) => s !== '');

/** Cases that must pass in native-diff mode: a skip there is a failure of this run. */
const MUST_RUN_NATIVE = ['DiffApply(10)', 'DiffApply(100)', 'Changes', 'DeepLayerRead(128)', 'DeepLayerRead(500)'];

const reports: Report[] = [];
let extraFailures = 0;

if (modes.includes('native')) {
  let seen: OverlayDriver | undefined;
  const factory = async (root: string): Promise<OverlayDriver> => {
    seen = (await init({ home: join(root, 'overlay'), root, options: [] })) as OverlayDriver;
    return seen;
  };
  const report = await conformance(factory, {
    label: 'overlay',
    deepLayerRead: [128, 500],
    ...(only === undefined ? {} : { only }),
  });
  reports.push(report);
  for (const c of report.cases) {
    if (MUST_RUN_NATIVE.includes(c.name) && c.status === 'skip') {
      console.log(`  fail  ${c.name} was skipped in native-diff mode: ${c.reason ?? ''}`);
      extraFailures++;
    }
  }
  // Native diff must really have been in use, or DiffApply and Changes passed through the naive path.
  if (seen !== undefined && !seen.features.nativeDiff.ok) {
    console.log(`  fail  native diff was not in use: ${seen.features.nativeDiff.reason}`);
    extraFailures++;
  }
}

if (modes.includes('fuse')) {
  const report = await conformance(
    (root) => init({ home: join(root, 'overlay'), root, options: ['overlay.mount_program=/usr/bin/fuse-overlayfs'] }),
    {
      label: 'overlay-fuse',
      ...(only === undefined ? {} : { only }),
    },
  );
  reports.push(report);
}

const totals = totalsOf(reports, extraFailures);
printUvuTotals(totals);
process.exitCode = totals.failed > 0 ? 1 : 0;
