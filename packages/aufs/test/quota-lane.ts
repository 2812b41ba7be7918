/**
 * Size limits the project-quota way, and an older kernel: this host's kernel has no project quotas
 * (CONFIG_XFS_QUOTA and CONFIG_QFMT_V2 are off), so on the host this script re-runs itself inside the
 * qemu lane (scripts/vm-lane.sh boots Debian's 6.1 kernel, which has them; the driver loads its fuse
 * module) and passes its exit code on. In the guest (VMLANE_GUEST=1) it runs:
 *
 *  - graphtest's SetQuota with `quotaRoot` on an xfs mounted with prjquota, where `auto` takes a
 *    project quota (so "quota not supported" there is a failure, not a skip);
 *  - createWithQuota on xfs and on ext4 with project quotas: no image, no mount, the write through
 *    the fuse-overlayfs union refused - on ext4 with EDQUOT although the union's daemon runs as root,
 *    because it runs without CAP_SYS_RESOURCE (which lets a process pass ext4's quota limits);
 *  - the loop way and a few conformance cases on Linux 6.1.
 *
 * Prints `aufs-quota: N passed, N failed, N skipped` and uvu-shaped totals; exits non-zero on failure.
 */
import { strict as assert } from 'node:assert';
import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMountPoint } from '@graphdriver/core';
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
import { init, type AufsDriver } from '../src/index.js';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LABEL = 'aufs-quota';
const MiB = 1024 * 1024;

const start = (root: string, options: string[] = []): Promise<AufsDriver> => init({ home: join(root, 'aufs'), root, options }) as Promise<AufsDriver>;

/** A 20 MiB layer on a filesystem of `fstype`, limited the way `options` say; `refusal` is the strerror expected past it. */
function limitCase(name: string, fstype: ScratchFsType, fsOpts: ScratchFsOptions, options: string[], expect: { method: string; refusal: RegExp }): Case<null> {
  return {
    name,
    async run() {
      await withScratchFs(fstype, fsOpts, async (fs) => {
        const d = await start(fs.path, options);
        try {
          const limits = (await d.status()).find(([k]) => k === 'Size limits')?.[1];
          assert.equal(limits, expect.method);
          await d.create('base');
          await d.createWithQuota('ctr', 'base', 20 * MiB);
          const image = (await readdir(join(d.home, 'limits'))).length > 0;
          assert.equal(image, expect.method !== 'project quota', 'an image only for the loop way');
          assert.equal(await isMountPoint(join(d.home, 'diff', 'ctr')), expect.method !== 'project quota');
          const p = await d.get('ctr');
          try {
            const small = await writeZerosWithoutSysResource(join(p, 'small'), 8);
            assert.equal(small.error, undefined, `8 MiB fit: ${small.error ?? ''}`);
            const big = await writeZerosWithoutSysResource(join(p, 'big'), 30);
            assert.ok(big.error !== undefined && expect.refusal.test(big.error), `30 MiB more must be refused with ${expect.refusal}, got ${JSON.stringify(big)}`);
          } finally {
            await d.put('ctr');
          }
          await d.remove('ctr');
          await d.remove('base');
        } finally {
          await d.cleanup();
        }
      });
    },
  };
}

async function inGuest(): Promise<number> {
  const reports: Report[] = [];
  await withScratchFs('xfs', { size: '512M', mountOptions: ['prjquota'] }, async (fs) => {
    reports.push(await conformance((root) => start(root), { label: `${LABEL}-setquota`, only: ['SetQuota'], quotaRoot: fs.path, output: null }));
  });
  reports.push(
    await runCases<null>(
      [
        limitCase('ProjectQuota(xfs)', 'xfs', { size: '512M', mountOptions: ['prjquota'] }, [], { method: 'project quota', refusal: /No space left on device|Disk quota exceeded/ }),
        limitCase('ProjectQuota(ext4)', 'ext4', { size: '256M', mkfsArgs: ['-O', 'quota,project'], mountOptions: ['prjquota'] }, [], { method: 'project quota', refusal: /Disk quota exceeded/ }),
        limitCase('LoopImage(xfs)', 'xfs', { size: '512M', mountOptions: ['prjquota'] }, ['aufs.limit_method=loop'], { method: 'loop-mounted ext4 image', refusal: /No space left on device/ }),
      ],
      { label: `${LABEL}-limits`, setup: async () => null, teardown: async () => undefined, output: null },
    ),
  );
  reports.push(
    await conformance((root) => start(root), {
      label: `${LABEL}-linux61`,
      only: ['DiffApply(10)', 'Changes', 'WhiteoutsAndOpaque', 'ConcurrentGetPut', 'Restart'],
      output: null,
    }),
  );
  return finishLaneReports(LABEL, reports);
}

async function onHost(): Promise<number> {
  console.log('  project-quota limits, SetQuota with a quotaRoot and Linux 6.1 run in the qemu lane: this kernel has no project quotas');
  return runReportInVmLane(LABEL, ['node', '--import', 'tsx', 'test/quota-lane.ts'], { cwd: pkgDir });
}

process.exitCode = inVmLane ? await inGuest() : await onHost();
