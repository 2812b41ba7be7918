/**
 * Project quotas for real: a project id with PROJINHERIT on a directory, a 10 MiB hard limit read
 * back, and a write over the limit refused (ENOSPC on xfs, EDQUOT on ext4), on xfs (prjquota) and on ext4
 * (-O quota,project + prjquota), through both quotactl (device path) and quotactl_fd.
 *
 * This host kernel has no quota support (CONFIG_XFS_QUOTA and CONFIG_QFMT_V2 are off). When a
 * prjquota mount fails here, this file re-runs itself inside the qemu lane (scripts/vm-lane.sh), whose
 * Debian 6.1 kernel has both.
 */
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  inVmLane,
  kernelHasProjectQuota,
  runUvuInVmLane,
  withScratchFs,
  writeZerosWithoutSysResource,
  type ScratchFsOptions,
  type ScratchFsType,
} from '@graphdriver/testkit';
import { FS_XFLAG, QFMT, fsGetXattr, fsSetXattr, quotaFormat, quotaGet, quotaSet, type QuotaTarget } from '../src/index.js';
import { rejectsNative } from './helpers/tmp.js';

const MiB = 1 << 20;

/** The block device mounted at `path`, from mountinfo. */
function deviceOf(path: string): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (left?.split(' ')[4] === path) return right!.split(' ')[1]!;
  }
  throw new Error(`nothing mounted at ${path}`);
}

async function withFd<T>(path: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = openSync(path, 'r');
  try {
    return await fn(fd);
  } finally {
    closeSync(fd);
  }
}


// xfs treats a project like a filesystem of its own and says ENOSPC when it is full; VFS quota
// (ext4) says EDQUOT.
const quotaFilesystems: Array<[ScratchFsType, ScratchFsOptions, 'device' | 'fd', string]> = [
  ['xfs', { size: '320M', mountOptions: ['prjquota'] }, 'device', 'No space left on device'],
  ['ext4', { size: '64M', mkfsArgs: ['-O', 'quota,project'], mountOptions: ['prjquota'] }, 'fd', 'Disk quota exceeded'],
];

// Needs no quota support: project ids and flags are inode attributes.
test('fsSetXattr sets a project id and PROJINHERIT; new children inherit it; quotactl without quota fails', () =>
  withScratchFs('xfs', { size: '320M' }, async (fs) => {
    const dir = join(fs.path, 'proj');
    mkdirSync(dir);
    await withFd(dir, async (fd) => {
      const before = await fsGetXattr(fd);
      assert.is(before.projid, 0);
      await fsSetXattr(fd, { projid: 4242, xflags: before.xflags | FS_XFLAG.PROJINHERIT });
      const after = await fsGetXattr(fd);
      assert.is(after.projid, 4242);
      assert.is(after.xflags & FS_XFLAG.PROJINHERIT, FS_XFLAG.PROJINHERIT);
      await fsSetXattr(fd, { projid: 4243 });
      assert.is((await fsGetXattr(fd)).xflags & FS_XFLAG.PROJINHERIT, FS_XFLAG.PROJINHERIT, 'xflags kept when only projid is set');
    });
    mkdirSync(join(dir, 'child'));
    await withFd(join(dir, 'child'), async (fd) => assert.is((await fsGetXattr(fd)).projid, 4243, 'inherited'));
    await rejectsNative(fsGetXattr(987654), { code: 'EBADF', syscall: 'ioctl(FS_IOC_FSGETXATTR)' });
    await rejectsNative(quotaGet(fs.path, 'project', 1), { code: 'ENOTBLK', syscall: 'quotactl', path: fs.path });
    // xfs mounted without quota options (or built without quota): no quota ops at all
    await withFd(fs.path, (fd) => rejectsNative(quotaGet(fd, 'project', 1), { code: 'ENOSYS', syscall: 'quotactl_fd' }));
  }));

if (await kernelHasProjectQuota()) {
  for (const [fstype, opts, via, overLimit] of quotaFilesystems) {
    test(`${fstype}: project id with inherit, 10 MiB hard limit read back, '${overLimit}' past it (quotactl by ${via})`, () =>
      withScratchFs(fstype, opts, async (fs) => {
        const dir = join(fs.path, 'layer');
        mkdirSync(dir);
        const rootFd = openSync(fs.path, 'r');
        try {
          const target: QuotaTarget = via === 'device' ? deviceOf(fs.path) : rootFd;
          await withFd(dir, async (fd) => {
            const attr = await fsGetXattr(fd);
            await fsSetXattr(fd, { projid: 100, xflags: attr.xflags | FS_XFLAG.PROJINHERIT });
          });
          await quotaSet(target, 'project', 100, { blockHardLimit: 10 * MiB });
          let q = await quotaGet(target, 'project', 100);
          assert.is(q.blockHardLimit, 10 * MiB);
          assert.is(q.blockSoftLimit, 0, 'fields not given are left alone');
          // only the inode limits: the block limit must survive
          await quotaSet(target, 'project', 100, { inodeHardLimit: 1000, inodeSoftLimit: 900 });
          q = await quotaGet(target, 'project', 100);
          assert.equal([q.blockHardLimit, q.inodeHardLimit, q.inodeSoftLimit], [10 * MiB, 1000, 900]);

          mkdirSync(join(dir, 'sub'));
          const { written, error } = await writeZerosWithoutSysResource(join(dir, 'sub/big'), 20);
          assert.ok(error, `a write past 10 MiB failed (wrote ${written} bytes)`);
          assert.is(error, overLimit);
          assert.ok(written >= 8 * MiB && written <= 10 * MiB, `stopped near the limit: ${written}`);
          q = await quotaGet(target, 'project', 100);
          assert.ok(q.spaceUsed >= 8 * MiB && q.spaceUsed <= 10 * MiB, `spaceUsed ${q.spaceUsed}`);
          assert.ok(q.inodesUsed >= 3, 'layer, sub and big are counted');

          // an id that owns no inode yet (xfs keeps no record for it and answers ENOENT to a read)
          await quotaSet(target, 'project', 4000, { blockHardLimit: 3 * MiB });
          assert.is((await quotaGet(target, 'project', 4000)).blockHardLimit, 3 * MiB, 'limit on a fresh id');

          // other projects are not limited
          const free = await writeZerosWithoutSysResource(join(fs.path, 'outside'), 12);
          assert.is(free.error, undefined);
          assert.is(free.written, 12 * MiB);

          if (fstype === 'ext4') {
            assert.is(await quotaFormat(target, 'project'), QFMT.VFS_V1);
          } else {
            // xfs keeps its own quota format: Q_GETFMT says ESRCH even with quotas on
            await rejectsNative(quotaFormat(target, 'project'), { code: 'ESRCH' });
            await rejectsNative(quotaGet(target, 'user', 0), { code: 'ESRCH' }); // user quota is off
          }
        } finally {
          closeSync(rootFd);
        }
      }));
  }
} else if (inVmLane) {
  test('the qemu lane kernel has project quotas', () => assert.unreachable('a prjquota mount failed inside vm-lane'));
} else {
  test('project quotas on xfs and ext4 inside the qemu lane (this kernel has none)', () =>
    runUvuInVmLane(fileURLToPath(new URL('..', import.meta.url)), 'quota\\.test\\.ts$', quotaFilesystems.length + 1));
}

test.run();
