/**
 * Project quotas for real, and an older kernel: this host's kernel has no project quotas
 * (CONFIG_XFS_QUOTA and CONFIG_QFMT_V2 are off), so on the host this script re-runs itself inside
 * the qemu lane (scripts/vm-lane.sh boots Debian's 6.1 kernel, which has them - and whose overlay
 * has no `lowerdir+`, so `auto` mounts through mount(2) there) and passes its exit code on. In the
 * guest (VMLANE_GUEST=1) it runs, on an xfs loop filesystem mounted with prjquota:
 *
 *  - graphtest's SetQuota (a 50M layer takes 25 MiB and refuses 50 MiB more) with `quotaRoot`, so
 *    "quota not supported" is a failure there, not a skip;
 *  - `overlay.size` as the default of writable layers, a per-layer `size` over it, read-only layers
 *    without a limit; and the same on ext4 with the project and quota features;
 *  - a few conformance cases on the 6.1 kernel (no lowerdir+: mount(2) in all its forms).
 *
 * Prints `overlay-quota: N passed, N failed, N skipped` and uvu-shaped totals; exits non-zero on failure.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformance, runCases, type Case, type Report } from '@graphdriver/graphtest';
import {
  finishLaneReports,
  inVmLane,
  runReportInVmLane,
  withScratchFs,
  writeZerosWithoutSysResource,
  type ScratchFsOptions,
  type ScratchFsType,
} from '@graphdriver/testkit';
import { init, type OverlayDriver } from '../src/index.js';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LABEL = 'overlay-quota';

const start = (root: string, options: string[] = []): Promise<OverlayDriver> =>
  init({ home: join(root, 'overlay'), root, options }) as Promise<OverlayDriver>;

/** overlay.size and storageOpt.size on a filesystem with project quotas. */
function defaultSizeCase(fstype: ScratchFsType, opts: ScratchFsOptions, extra: string[] = []): Case<null> {
  return {
    name: `DefaultSize(${[fstype, ...extra].join(', ')})`,
    async run() {
      await withScratchFs(fstype, opts, async (fs) => {
        const d = await start(fs.path, ['overlay.size=20M', ...extra]);
        try {
          await d.create('base');
          await d.createReadWrite('ctr', 'base');
          await d.createReadWrite('big', 'base', { storageOpt: { size: '60M' } });
          const ctr = await d.get('ctr');
          const big = await d.get('big');
          try {
            const small = await writeZerosWithoutSysResource(join(ctr, 'fill'), 30);
            assert.ok(small.error !== undefined && /quota|space/i.test(small.error), `30 MiB into a 20M layer must fail, got ${JSON.stringify(small)}`);
            const large = await writeZerosWithoutSysResource(join(big, 'fill'), 30);
            assert.equal(large.error, undefined, `30 MiB into a 60M layer must fit: ${large.error ?? ''}`);
          } finally {
            await d.put('big');
            await d.put('ctr');
          }
          await d.create('image');
          const image = await d.get('image');
          try {
            const free = await writeZerosWithoutSysResource(join(image, 'fill'), 30);
            assert.equal(free.error, undefined, `a read-only (image) layer has no limit: ${free.error ?? ''}`);
          } finally {
            await d.put('image');
          }
        } finally {
          await d.cleanup();
        }
      });
    },
  };
}

async function inGuest(): Promise<number> {
  // the lane's kernel loads modules on demand, but /dev/fuse appears only once fuse is loaded
  if (!existsSync('/dev/fuse')) execFileSync('modprobe', ['fuse']);
  const reports: Report[] = [];
  await withScratchFs('xfs', { size: '512M', mountOptions: ['prjquota'] }, async (fs) => {
    reports.push(
      await conformance((root) => start(root), {
        label: `${LABEL}-setquota`,
        only: ['SetQuota'],
        quotaRoot: fs.path,
        output: null,
      }),
    );
  });
  reports.push(
    await runCases<null>(
      [
        defaultSizeCase('xfs', { size: '512M', mountOptions: ['prjquota'] }),
        defaultSizeCase('ext4', { size: '256M', mkfsArgs: ['-O', 'quota,project'], mountOptions: ['prjquota'] }),
        // fuse-overlayfs writes for the container: with CAP_SYS_RESOURCE it would pass ext4's limit
        defaultSizeCase('ext4', { size: '256M', mkfsArgs: ['-O', 'quota,project'], mountOptions: ['prjquota'] }, ['overlay.mount_program=/usr/bin/fuse-overlayfs']),
      ],
      { label: `${LABEL}-size`, setup: async () => null, teardown: async () => undefined, output: null },
    ),
  );
  reports.push(
    await conformance((root) => start(root), {
      label: `${LABEL}-linux61`,
      only: ['DiffApply(10)', 'Changes', 'DeepLayerRead'],
      // 100 lowers: past what absolute paths fit in a page, so the fd-path form of mount(2) runs
      deepLayerRead: [100],
      output: null,
    }),
  );
  return finishLaneReports(LABEL, reports);
}

async function onHost(): Promise<number> {
  console.log('  SetQuota, overlay.size and Linux 6.1 run in the qemu lane: this kernel has no project quotas');
  return runReportInVmLane(LABEL, ['node', '--import', 'tsx', 'test/quota-lane.ts'], { cwd: pkgDir });
}

process.exitCode = inVmLane ? await inGuest() : await onHost();
