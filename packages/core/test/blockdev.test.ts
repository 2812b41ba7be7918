/**
 * Filesystems on loop devices: sparse images, mkfs (ext4, xfs) with a label, the UUID from the
 * superblock checked against blkid, mount, write, grow the image and the filesystem online, and
 * the tools' failures reported with what they said.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, statfs, truncate } from 'node:fs/promises';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  attachLoop,
  createSparseFile,
  detachLoop,
  fsUuid,
  listLoops,
  mkfs,
  resizeFs,
  ToolError,
  type MkfsType,
} from '../src/blockdev/index.js';
import { errorCode, InvalidOptionError, OperationFailedError } from '../src/errors.js';

const run = promisify(execFile);
const CAP_SYS_RESOURCE = 24;

function hasCapability(bit: number): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m !== null && ((BigInt(`0x${m[1]}`) >> BigInt(bit)) & 1n) === 1n;
}
const MiB = 1024 * 1024;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp('/tmp/changes-blockdev-');
  try {
    await fn(dir);
  } finally {
    await run('umount', [`${dir}/mnt`]).catch(() => undefined);
    for (const l of await listLoops()) if (l.backingFile.startsWith(`${dir}/`)) await detachLoop(l.path);
    await rm(dir, { recursive: true, force: true });
  }
}

test('createSparseFile: the size without the blocks; EEXIST unless allowed, then it only grows', () =>
  withDir(async (dir) => {
    const f = `${dir}/s.img`;
    await createSparseFile(f, 1024 * MiB);
    const st = statSync(f);
    assert.is(st.size, 1024 * MiB);
    assert.ok(st.blocks < 16, `sparse: ${st.blocks} blocks`);
    assert.is(errorCode(await createSparseFile(f, MiB).catch((e: unknown) => e)), 'EEXIST');
    await createSparseFile(f, 2048 * MiB, { allowExisting: true });
    assert.is(statSync(f).size, 2048 * MiB);
    await createSparseFile(f, MiB, { allowExisting: true });
    assert.is(statSync(f).size, 2048 * MiB, 'never shrinks');
  }));

for (const [fstype, first, second] of [
  ['ext4', 64, 160],
  ['xfs', 320, 640],
] as Array<[MkfsType, number, number]>) {
  test(`${fstype}: mkfs with a label, UUID as blkid says, mount, write, grow online`, () =>
    withDir(async (dir) => {
      const img = `${dir}/fs.img`;
      await createSparseFile(img, first * MiB);
      const dev = await attachLoop(img);
      try {
        await mkfs(dev.path, fstype, { label: 'gd-test' });
        const { stdout: label } = await run('blkid', ['-p', '-o', 'value', '-s', 'LABEL', dev.path]);
        assert.is(label.trim(), 'gd-test');
        const { stdout: blkidUuid } = await run('blkid', ['-p', '-o', 'value', '-s', 'UUID', dev.path]);
        const uuid = await fsUuid(dev.path);
        assert.match(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        assert.is(uuid, blkidUuid.trim());
        assert.is(await fsUuid(img), uuid, 'the image file itself has the same superblock');

        mkdirSync(`${dir}/mnt`);
        await run('mount', [dev.path, `${dir}/mnt`]);
        const data = Buffer.alloc(8 * MiB, 0x5a);
        writeFileSync(`${dir}/mnt/data`, data);
        const before = await statfs(`${dir}/mnt`);

        await truncate(img, second * MiB);
        if (fstype === 'ext4' && !hasCapability(CAP_SYS_RESOURCE)) {
          // online ext4 growth is the kernel's EXT4_IOC_RESIZE_FS, refused without CAP_SYS_RESOURCE
          const err = await resizeFs(dev.path, `${dir}/mnt`, fstype).catch((e: unknown) => e);
          assert.instance(err, OperationFailedError);
          assert.match(String((err as Error).cause), /CAP_SYS_RESOURCE/);
          await run('umount', [`${dir}/mnt`]);
          await resizeFs(dev.path, undefined, fstype);
          await run('mount', [dev.path, `${dir}/mnt`]);
        } else {
          await resizeFs(dev.path, `${dir}/mnt`, fstype);
        }
        const after = await statfs(`${dir}/mnt`);
        const grownBy = (after.blocks * after.bsize - before.blocks * before.bsize) / MiB;
        assert.ok(grownBy > (second - first) * 0.9, `grew by ${grownBy.toFixed(1)} MiB, expected about ${second - first}`);
        assert.is(Number(readFileSync(`/sys/block/loop${dev.number}/size`, 'utf8')) * 512, second * MiB);
        assert.ok(readFileSync(`${dir}/mnt/data`).equals(data), 'data survives the resize');
        await run('umount', [`${dir}/mnt`]);
      } finally {
        await dev.detach();
      }
    }));
}

test('fsUuid reads btrfs too, and falls back to blkid for other filesystems', () =>
  withDir(async (dir) => {
    const img = `${dir}/b.img`;
    await createSparseFile(img, 128 * MiB);
    await run('mkfs.btrfs', ['-q', '-f', img]);
    const { stdout } = await run('blkid', ['-p', '-o', 'value', '-s', 'UUID', img]);
    assert.is(await fsUuid(img), stdout.trim());
    const ext2 = `${dir}/e2.img`;
    await createSparseFile(ext2, 8 * MiB);
    await run('mkfs.ext2', ['-q', '-F', ext2]); // ext2 shares ext4's superblock layout
    const { stdout: e2 } = await run('blkid', ['-p', '-o', 'value', '-s', 'UUID', ext2]);
    assert.is(await fsUuid(ext2), e2.trim());
    const swap = `${dir}/swap.img`; // not a layout we read: blkid answers
    await createSparseFile(swap, 8 * MiB);
    await run('mkswap', [swap]);
    const { stdout: sw } = await run('blkid', ['-p', '-o', 'value', '-s', 'UUID', swap]);
    assert.match(sw.trim(), /^[0-9a-f-]{36}$/);
    assert.is(await fsUuid(swap), sw.trim());
    const empty = `${dir}/empty.img`;
    await createSparseFile(empty, MiB);
    const err = await fsUuid(empty).catch((e: unknown) => e);
    assert.instance(err, OperationFailedError, 'no filesystem: a clear error');
  }));

test('mkfs failures say which tool failed and what it printed; bad labels are refused first', () =>
  withDir(async (dir) => {
    const err = await mkfs(`${dir}/no-such-device`, 'ext4').catch((e: unknown) => e);
    assert.instance(err, OperationFailedError);
    const cause = (err as Error).cause;
    assert.instance(cause, ToolError);
    assert.is((cause as ToolError).tool, 'mkfs.ext4');
    assert.ok((cause as ToolError).exitCode !== 0);
    assert.match((err as Error).message, /no-such-device/);
    const long = await mkfs(`${dir}/x`, 'xfs', { label: 'longer-than-12' }).catch((e: unknown) => e);
    assert.instance(long, InvalidOptionError);
    const xfsNoMount = await resizeFs(`${dir}/x`, undefined, 'xfs').catch((e: unknown) => e);
    assert.instance(xfsNoMount, InvalidOptionError);
  }));

test.run();
