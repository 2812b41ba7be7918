/**
 * supportsDType on real filesystems: ext4, tmpfs and xfs report d_type; xfs made with
 * `-m crc=0 -n ftype=0` does not. Current mkfs.xfs refuses ftype=0 on its default (V5, crc=1)
 * format, and kernels built without CONFIG_XFS_SUPPORT_V4 (this host's 6.18) refuse to mount the
 * V4 format that allows it; there this file re-runs itself in the qemu lane (Debian's 6.1 kernel
 * mounts V4 xfs), so the case runs for real wherever the tests run.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { supportsDType } from '../src/fs/dtype.js';
import { fileURLToPath } from 'node:url';
import { createScratchFs, inVmLane, runUvuInVmLane, withScratchFs, type ScratchFs } from '@graphdriver/testkit';

const run = promisify(execFile);

test('ext4 reports d_type; an empty directory is checked with a dummy file that is removed again', async () => {
  await withScratchFs('ext4', { size: '64M' }, async (fs) => {
    const empty = join(fs.path, 'empty');
    await mkdir(empty);
    assert.is(await supportsDType(empty), true);
    assert.equal(await readdir(empty), [], 'the dummy file is gone');
    await writeFile(join(fs.path, 'f'), 'x');
    assert.is(await supportsDType(fs.path), true);
  });
});

test('tmpfs and default xfs report d_type', async () => {
  const dir = await mkdtemp('/tmp/fs-dtype-');
  try {
    await run('mount', ['-t', 'tmpfs', 'dtype', dir]);
    try {
      assert.is(await supportsDType(dir), true);
    } finally {
      await run('umount', [dir]);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await withScratchFs('xfs', { size: '320M' }, async (fs) => {
    assert.is(await supportsDType(fs.path), true);
  });
});

const V4_NO_FTYPE = { size: '320M', mkfsArgs: ['-m', 'crc=0', '-n', 'ftype=0'] };

/** A V4 xfs without d_type, or why this kernel cannot mount one. */
async function xfsWithoutDType(): Promise<ScratchFs | string> {
  try {
    return await createScratchFs('xfs', V4_NO_FTYPE);
  } catch (err) {
    return err instanceof Error ? (err.message.split('\n')[0] ?? err.message) : String(err);
  }
}

const v4 = await xfsWithoutDType();
if (typeof v4 !== 'string' || inVmLane) {
  test('xfs with ftype=0 does not report d_type', async () => {
    const refused = await run('mkfs.xfs', ['-N', '-f', '-n', 'ftype=0', '-d', 'name=/dev/null,size=320m']).then(
      () => false,
      () => true,
    );
    assert.ok(refused, 'this mkfs.xfs refuses ftype=0 with its defaults (crc=1)');
    const fs = v4;
    if (typeof fs === 'string') {
      assert.unreachable(`the qemu lane kernel cannot mount V4 xfs either: ${fs}`);
      return;
    }
    try {
      await mkdir(join(fs.path, 'sub'));
      await writeFile(join(fs.path, 'file'), 'x');
      assert.is(await supportsDType(fs.path), false);
      assert.is(await supportsDType(join(fs.path, 'sub')), false, 'empty directory, dummy entry');
      assert.equal(await readdir(join(fs.path, 'sub')), []);
    } finally {
      await fs.dispose();
    }
  });
} else {
  test(`xfs with ftype=0 does not report d_type (in the qemu lane: this kernel cannot mount V4 xfs: ${v4})`, () =>
    runUvuInVmLane(fileURLToPath(new URL('..', import.meta.url)), 'fs-dtype\\.test\\.ts$', 4));
}

test('a path that is not a directory is an error, not an answer', async () => {
  try {
    await supportsDType('/proc/self/status');
    assert.unreachable('should reject');
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'ENOTDIR');
  }
});

test.run();
