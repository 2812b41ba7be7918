/**
 * BLKDISCARD and BLKGETSIZE64 on a real loop device: a discard punches a hole in the backing file
 * (its allocated blocks drop, the range reads back as zeros, the rest is untouched); the errors are
 * Node-style.
 */
import { closeSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LO_FLAGS, O, blkDiscard, blkGetSize64, loopClear } from '../src/index.js';
import { attachLoop } from './helpers/loop.js';
import { rejectsNative, withTmpDir } from './helpers/tmp.js';

const MiB = 1 << 20;

test('a discard punches a hole in the loop file; the size is the device size', () =>
  withTmpDir('blockdev', async (dir) => {
    const file = join(dir, 'data.img');
    writeFileSync(file, Buffer.alloc(8 * MiB, 0x5a));
    const allocated = (): number => statSync(file).blocks * 512;
    assert.ok(allocated() >= 8 * MiB, 'the file starts fully allocated');
    const { fd } = await attachLoop(file, { flags: LO_FLAGS.AUTOCLEAR }, O.RDWR);
    try {
      assert.is(await blkGetSize64(fd), 8 * MiB);
      await blkDiscard(fd, 2 * MiB, 4 * MiB);
      const buf = Buffer.alloc(4096);
      readSync(fd, buf, 0, buf.length, 3 * MiB);
      assert.ok(buf.equals(Buffer.alloc(4096, 0)), 'the discarded range reads as zeros');
      readSync(fd, buf, 0, buf.length, 7 * MiB);
      assert.ok(buf.equals(Buffer.alloc(4096, 0x5a)), 'the rest keeps its bytes');
      assert.ok(allocated() <= 4 * MiB + 64 * 1024, `4 MiB handed back to the filesystem (${allocated()} bytes allocated)`);
      await rejectsNative(blkDiscard(fd, 1, 4096), { code: 'EINVAL', syscall: 'ioctl(BLKDISCARD)' });
    } finally {
      await loopClear(fd).catch(() => undefined);
      closeSync(fd);
    }
  }));

test('a file is not a block device: ENOTTY', () =>
  withTmpDir('blockdev', async (dir) => {
    writeFileSync(join(dir, 'f'), 'x');
    const fd = openSync(join(dir, 'f'), O.RDWR);
    try {
      await rejectsNative(blkGetSize64(fd), { code: 'ENOTTY', syscall: 'ioctl(BLKGETSIZE64)' });
      await rejectsNative(blkDiscard(fd, 0, 4096), { code: 'ENOTTY', syscall: 'ioctl(BLKDISCARD)' });
    } finally {
      closeSync(fd);
    }
  }));

test.run();
