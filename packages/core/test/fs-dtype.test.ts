/**
 * supportsDType on real filesystems: ext4, tmpfs and xfs report d_type; xfs made with
 * `-m crc=0 -n ftype=0` does not. Current mkfs.xfs refuses ftype=0 on its default (V5, crc=1)
 * format, and kernels built without CONFIG_XFS_SUPPORT_V4 (this host's 6.18) refuse to mount the
 * V4 format that allows it; the case then prints why it is skipped and runs under vm-lane's 6.1.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { supportsDType } from '../src/fs/dtype.js';
import { createScratchFs, withScratchFs } from '@graphdriver/testkit';

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

test('xfs with ftype=0 does not report d_type', async () => {
  const refused = await run('mkfs.xfs', ['-N', '-f', '-n', 'ftype=0', '-d', 'name=/dev/null,size=320m']).then(
    () => false,
    () => true,
  );
  assert.ok(refused, 'this mkfs.xfs refuses ftype=0 with its defaults (crc=1)');
  let fs;
  try {
    fs = await createScratchFs('xfs', { size: '320M', mkfsArgs: ['-m', 'crc=0', '-n', 'ftype=0'] });
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    console.log(`  skipped: xfs V4 (crc=0, ftype=0) cannot be made or mounted on kernel ${(await run('uname', ['-r'])).stdout.trim()}: ${why}`);
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

test('a path that is not a directory is an error, not an answer', async () => {
  try {
    await supportsDType('/proc/self/status');
    assert.unreachable('should reject');
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'ENOTDIR');
  }
});

test.run();
