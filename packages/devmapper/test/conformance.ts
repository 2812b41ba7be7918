/**
 * The devmapper driver on the reflink pool (this host has no device-mapper) against the whole
 * graphtest conformance suite, run by `pnpm test` before the uvu tests of what is devmapper's own.
 * Prints one line per case and `devmapper: N passed, N failed, N skipped`; exits non-zero when a
 * case fails. Layers are snapshots of a 40M ext4 base device (so that SetQuota's `size: 50M` is a
 * larger device whose filesystem grows, as moby's devmapper treats `size`), in a pool on an 8G
 * sparse loop file. test/thin-lane.ts runs the same suite on dm-thin in the qemu lane.
 */
import { join } from 'node:path';
import { conformance } from '@graphdriver/graphtest';
import { printUvuTotals } from '@graphdriver/testkit';
import { init, ROOTFS_MODE } from '../src/index.js';

export const CONFORMANCE_OPTIONS = ['dm.fs=ext4', 'dm.basesize=40M', 'dm.loopdatasize=8G', 'dm.loopmetadatasize=64M'];

const only = process.env.GRAPHTEST_ONLY?.split(',').filter((s) => s !== '');

const report = await conformance((root) => init({ home: join(root, 'devmapper'), root, options: [...CONFORMANCE_OPTIONS, 'dm.backend=reflink'] }), {
  label: 'devmapper',
  capabilities: { rootMode: ROOTFS_MODE },
  ...(only === undefined ? {} : { only }),
});
printUvuTotals(report);
process.exitCode = report.failed > 0 ? 1 : 0;
