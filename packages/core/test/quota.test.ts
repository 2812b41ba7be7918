/**
 * Project quotas for real, on xfs (-o prjquota) and on ext4 (-O quota,project, -o prjquota) loop
 * images: limits enforced on writes, read back, distinct ids per directory, ids found again by a
 * new QuotaControl. This host's kernel has no project quotas (CONFIG_XFS_QUOTA, CONFIG_QFMT_V2 are
 * off), so here the file checks that detection says so and then re-runs itself inside the qemu
 * lane (scripts/vm-lane.sh, a Debian 6.1 kernel that has them).
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isNotSupported, LayerUnknownError, QuotaNotSupportedError } from '../src/errors.js';
import { QuotaControl } from '../src/quota/index.js';
import {
  inVmLane,
  kernelHasProjectQuota,
  runUvuInVmLane,
  runWithoutSysResource,
  withScratchFs,
  type ScratchFsOptions,
  type ScratchFsType,
} from '@graphdriver/testkit';

const MiB = 1024 * 1024;
const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const LANES: Array<{ fs: ScratchFsType; opts: ScratchFsOptions }> = [
  { fs: 'xfs', opts: { size: '512M', mountOptions: ['prjquota'] } },
  { fs: 'ext4', opts: { size: '256M', mkfsArgs: ['-O', 'quota,project'], mountOptions: ['prjquota'] } },
];

/**
 * Run a shell command as a process without CAP_SYS_RESOURCE, as a container's processes are: the
 * kernel lets that capability exceed quota limits (the VFS quota of ext4 honours it; xfs does not).
 * Resolves with the command's stderr when it failed, undefined when it succeeded.
 */
async function runLimited(script: string): Promise<string | undefined> {
  const r = await runWithoutSysResource(['sh', '-c', script]);
  return r.code === 0 ? undefined : r.stderr.trim() || `exit ${r.code}`;
}

/** Write `mib` MiB to `path` and fsync, without CAP_SYS_RESOURCE. */
function writeMiB(path: string, mib: number): Promise<string | undefined> {
  return runLimited(`dd if=/dev/zero of='${path}' bs=1M count=${mib} conv=fsync status=none`);
}

const QUOTA_ERROR = /Disk quota exceeded|No space left on device/;

if (inVmLane || (await kernelHasProjectQuota())) {
  for (const lane of LANES) {
    test(`${lane.fs}: limits enforced and read back, distinct ids, found again by a new QuotaControl`, () =>
      withScratchFs(lane.fs, lane.opts, async (scratch) => {
        const base = `${scratch.path}/store`;
        mkdirSync(base);
        const qc = await QuotaControl.create(base);
        assert.is(qc.backingFs, lane.fs);
        const a = `${base}/a`;
        const b = `${base}/b`;
        mkdirSync(a);
        mkdirSync(b);
        await qc.setQuota(a, { size: 50 * MiB });
        await qc.setQuota(b, { size: 20 * MiB, inodes: 50 });
        const idA = await qc.projectId(a);
        const idB = await qc.projectId(b);
        assert.ok(idA !== undefined && idB !== undefined && idA !== idB, `distinct ids: ${idA} ${idB}`);
        assert.ok((idA as number) > qc.baseProjectId + 1, 'the first id above the base is the probe, as in moby');

        const qb = await qc.getQuota(b);
        assert.equal([qb.size, qb.inodes, qb.usedInodes], [20 * MiB, 50, 1], 'limits read back; the dir itself is charged');
        assert.ok(qb.used <= 4096, `an empty dir uses at most a block: ${qb.used}`);
        assert.is(await writeMiB(`${a}/25M`, 25), undefined, '25 MiB fit in 50 MiB');
        mkdirSync(`${a}/sub`);
        const deepErr = await writeMiB(`${a}/sub/50M`, 50); // inherited project id: counted too
        assert.match(deepErr ?? 'no error', QUOTA_ERROR, '50 more MiB are refused');
        const qa = await qc.getQuota(a);
        assert.is(qa.size, 50 * MiB);
        assert.is(qa.inodes, 0);
        assert.ok(qa.used >= 25 * MiB && qa.used <= 50 * MiB, `used ${qa.used}`);
        assert.ok(qa.usedInodes >= 4, `usedInodes ${qa.usedInodes}`);

        const inodeErr = await runLimited(`for i in $(seq 60); do : > '${b}'/f$i || exit 1; done`);
        assert.match(inodeErr ?? 'no error', QUOTA_ERROR, 'the inode limit holds');

        // A new control (a restarted daemon) knows the ids and hands out new ones above them.
        const again = await QuotaControl.create(base);
        assert.is(await again.projectId(a), idA);
        assert.is(await again.projectId(b), idB);
        const c = `${base}/c`;
        mkdirSync(c);
        await again.setQuota(c, { size: 10 * MiB });
        assert.ok((await again.projectId(c)) as number > Math.max(idA as number, idB as number));
        assert.equal((await again.getQuota(a)).size, 50 * MiB);

        await again.clearQuota(a);
        assert.is((await again.getQuota(a)).size, 0);
        assert.is(await writeMiB(`${a}/sub/50M`, 50), undefined, 'no limit after clearQuota');

        mkdirSync(`${scratch.path}/other`);
        assert.instance(await again.getQuota(`${scratch.path}/other`).catch((e: unknown) => e), LayerUnknownError);
        await again.clearQuota(`${scratch.path}/other`); // nothing to clear: no error
      }));
  }
  test('a filesystem mounted without prjquota: QuotaNotSupportedError naming the mount option', () =>
    withScratchFs('xfs', { size: '320M' }, async (scratch) => {
      const err = await QuotaControl.create(scratch.path).catch((e: unknown) => e);
      assert.instance(err, QuotaNotSupportedError);
      assert.match((err as Error).message, /prjquota/);
    }));
} else {
  test('detection on this host says what is missing', async () => {
    await withScratchFs('xfs', { size: '320M' }, async (scratch) => {
      const err = await QuotaControl.create(scratch.path).catch((e: unknown) => e);
      assert.instance(err, QuotaNotSupportedError);
      assert.ok(isNotSupported(err));
      assert.match((err as Error).message, /CONFIG_XFS_QUOTA|prjquota/);
      console.log(`  xfs: ${(err as Error).message}`);
    });
    await withScratchFs('ext4', { size: '64M' }, async (scratch) => {
      const err = await QuotaControl.create(scratch.path).catch((e: unknown) => e);
      assert.instance(err, QuotaNotSupportedError);
      assert.match((err as Error).message, /CONFIG_QFMT_V2|prjquota/);
      console.log(`  ext4: ${(err as Error).message}`);
    });
    const tmpfs = await QuotaControl.create('/dev/shm').catch((e: unknown) => e);
    assert.instance(tmpfs, QuotaNotSupportedError);
    assert.match((tmpfs as Error).message, /need xfs or ext4/);
  });

  test('the quota tests, in the qemu lane (this kernel has no project quotas)', () =>
    runUvuInVmLane(pkgDir, 'quota\.test\.ts$', LANES.length + 1));
}

test.run();
