/**
 * Loop devices on the real kernel: configure read-only with autoclear, read the status (full
 * backing path from sysfs), see the device vanish when its last fd closes; offset/size limit,
 * capacity after growth, explicit clear, and the errors.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LO_FLAGS, O, loopClear, loopConfigure, loopSetCapacity, loopSetFlags, loopStatus } from '../src/index.js';
import { attachLoop } from './helpers/loop.js';
import { rejectsNative, withTmpDir } from './helpers/tmp.js';

const sysfs = (n: number, file: string): string => readFileSync(`/sys/block/loop${n}/${file}`, 'utf8').trim();
const backing = (n: number): string | undefined =>
  existsSync(`/sys/block/loop${n}/loop/backing_file`) ? sysfs(n, 'loop/backing_file') : undefined;

async function waitUntil(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await sleep(10);
  }
  assert.unreachable(`timed out waiting until ${what}`);
}

test('read-only + autoclear: status shows the backing file, writes fail, the device is gone after close', () =>
  withTmpDir('loop', async (dir) => {
    // a long name: the ioctl's lo_file_name would cut it at 63 bytes
    const file = join(dir, `backing-image-with-a-name-long-enough-to-overflow-lo-file-name.img`);
    writeFileSync(file, Buffer.alloc(4 << 20, 0xab));
    const { n, fd } = await attachLoop(file, { flags: LO_FLAGS.READ_ONLY | LO_FLAGS.AUTOCLEAR });
    let open = true;
    try {
      const st = await loopStatus(fd);
      assert.is(st.number, n);
      assert.is(st.backingFile, file);
      assert.ok(file.length > 63);
      assert.is(st.flags & LO_FLAGS.READ_ONLY, LO_FLAGS.READ_ONLY);
      assert.is(st.flags & LO_FLAGS.AUTOCLEAR, LO_FLAGS.AUTOCLEAR);
      assert.is(st.offset, 0);
      assert.is(sysfs(n, 'ro'), '1');
      assert.is(Number(sysfs(n, 'size')) * 512, 4 << 20);
      const buf = Buffer.alloc(16);
      readSync(fd, buf, 0, 16, 0);
      assert.ok(buf.equals(Buffer.alloc(16, 0xab)), 'reads the backing bytes');
      assert.throws(() => writeSync(fd, Buffer.from('x'), 0, 1, 0), (e: NodeJS.ErrnoException) => e.code === 'EPERM' || e.code === 'EROFS');
      closeSync(fd);
      open = false;
      await waitUntil(`loop${n} is cleared`, () => backing(n) === undefined);
    } finally {
      if (open) {
        await loopClear(fd).catch(() => undefined);
        closeSync(fd);
      }
    }
  }));

test('offset and sizeLimit, loopSetCapacity after growth, explicit loopClear, EBUSY, ENXIO', () =>
  withTmpDir('loop', async (dir) => {
    const file = join(dir, 'img');
    writeFileSync(file, Buffer.alloc(2 << 20));
    const { n, fd } = await attachLoop(file, { offset: 1 << 20 }, O.RDWR);
    try {
      let st = await loopStatus(fd);
      assert.is(st.offset, 1 << 20);
      assert.is(Number(sysfs(n, 'size')) * 512, 1 << 20, 'the offset is cut off');
      truncateSync(file, 5 << 20);
      await loopSetCapacity(fd);
      assert.is(Number(sysfs(n, 'size')) * 512, 4 << 20, 'the device grew with its file');
      const other = openSync(file, O.RDONLY | O.CLOEXEC);
      try {
        await rejectsNative(loopConfigure(fd, other), { code: 'EBUSY', syscall: 'ioctl(LOOP_CONFIGURE)' });
      } finally {
        closeSync(other);
      }
      st = await loopStatus(fd);
      assert.is(st.flags & LO_FLAGS.AUTOCLEAR, 0);
      // Since 5.x the kernel defers the detach to the last close (ours): the device is in rundown
      // (status ENXIO) until then.
      await loopClear(fd);
      await rejectsNative(loopStatus(fd), { code: 'ENXIO', syscall: 'ioctl(LOOP_GET_STATUS64)' });
    } finally {
      await loopClear(fd).catch(() => undefined); // a no-op unless an assertion above failed
      closeSync(fd);
    }
    await waitUntil(`loop${n} is cleared`, () => backing(n) === undefined);
    const sizeLimited = await attachLoop(file, { sizeLimit: 512 * 1024, flags: LO_FLAGS.AUTOCLEAR });
    try {
      assert.is(Number(sysfs(sizeLimited.n, 'size')) * 512, 512 * 1024);
    } finally {
      closeSync(sizeLimited.fd);
    }
    await waitUntil('the size-limited device is cleared', () => backing(sizeLimited.n) === undefined);
    await rejectsNative(loopStatus(0 /* stdin: not a loop device */), { code: 'ENOTTY' });
  }));

test('a LOOP_CLR_FD waiting for the last close is taken back by clearing AUTOCLEAR with loopSetFlags', () =>
  withTmpDir('loop', async (dir) => {
    const file = join(dir, 'img');
    writeFileSync(file, Buffer.alloc(1 << 20));
    const { n, fd } = await attachLoop(file, {}, O.RDWR);
    // a second opener, as a mount would be: the clear cannot happen now and waits for the last close
    const user = openSync(`/dev/loop${n}`, O.RDONLY | O.CLOEXEC);
    try {
      await loopClear(fd);
      const pending = await loopStatus(fd);
      assert.is(pending.flags & LO_FLAGS.AUTOCLEAR, LO_FLAGS.AUTOCLEAR, 'the clear is pending as autoclear');
      await loopSetFlags(fd, pending.flags & ~LO_FLAGS.AUTOCLEAR);
      const after = await loopStatus(fd);
      assert.is(after.flags & LO_FLAGS.AUTOCLEAR, 0);
      assert.is(after.offset, pending.offset);
      assert.is(after.backingFile, file);
    } finally {
      closeSync(user);
      closeSync(fd);
    }
    await sleep(200);
    assert.is(backing(n), file, 'still bound after every user closed it: the clear was taken back');
    const again = openSync(`/dev/loop${n}`, O.RDWR | O.CLOEXEC);
    try {
      await loopSetFlags(again, LO_FLAGS.AUTOCLEAR);
      assert.is((await loopStatus(again)).flags & LO_FLAGS.AUTOCLEAR, LO_FLAGS.AUTOCLEAR, 'and set again');
    } finally {
      closeSync(again);
    }
    await waitUntil(`loop${n} is cleared at its last close`, () => backing(n) === undefined);
    await rejectsNative(loopSetFlags(0, 0), { code: 'ENOTTY', syscall: 'ioctl(LOOP_GET_STATUS64)' });
  }));

test.run();
