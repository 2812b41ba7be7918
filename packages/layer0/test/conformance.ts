/**
 * The layer0 driver against the whole graphtest conformance suite, twice (run by `pnpm test` before
 * the uvu tests of what is layer0's own):
 *
 *  - `layer0`: as the engine uses it - graphtest's layers are plain overlay layers inside layer0
 *    (none is made on an `<X>-init`). SetQuota skips here with overlay's reason (no project quotas
 *    on this host's kernel; overlay's own qemu lane runs that path).
 *  - `layer0-volumes`: every writable layer graphtest makes is put on a loopback volume of its own
 *    (storageOpt `volume`), so the whole suite runs against layers inside ext4 volume images -
 *    snapshots on them, diffs of them, restarts with them mounted - and SetQuota passes for real:
 *    a 50M layer is a 50M volume, and the 50 MiB write fails with ENOSPC.
 *
 * Prints one line per case, `layer0: N passed, N failed, N skipped` and `layer0-volumes: ...`, and
 * uvu-shaped totals for the workspace's test runner; exits non-zero when a case fails or when
 * SetQuota did not pass on volumes. GRAPHTEST_ONLY=<cases> and LAYER0_MODES=plain,volumes narrow a run.
 */
import { join } from 'node:path';
import { conformance, type Report } from '@graphdriver/graphtest';
import { printUvuTotals, totalsOf } from '@graphdriver/testkit';
import { init, type Layer0Driver } from '../src/index.js';
import { onVolumes } from './on-volumes.js';

const only = process.env.GRAPHTEST_ONLY?.split(',').filter((s) => s !== '');
const modes = (process.env.LAYER0_MODES ?? 'plain,volumes').split(',').filter((s) => s !== '');

const reports: Report[] = [];
let extraFailures = 0;

if (modes.includes('plain')) {
  reports.push(
    await conformance((root) => init({ home: join(root, 'layer0'), root, options: [] }), {
      label: 'layer0',
      ...(only === undefined ? {} : { only }),
    }),
  );
}

if (modes.includes('volumes')) {
  const report = await conformance(
    async (root) => onVolumes((await init({ home: join(root, 'layer0'), root, options: ['layer0.volume_size=64M'] })) as Layer0Driver),
    { label: 'layer0-volumes', ...(only === undefined ? {} : { only }) },
  );
  reports.push(report);
  const quota = report.cases.find((c) => c.name === 'SetQuota');
  if (quota !== undefined && quota.status !== 'pass') {
    console.log(`  fail  SetQuota must pass on loopback volumes (a 50M volume), but: ${quota.status} ${quota.reason ?? ''}`);
    extraFailures++;
  }
}

const totals = totalsOf(reports, extraFailures);
printUvuTotals(totals);
process.exitCode = totals.failed > 0 ? 1 : 0;
