/**
 * mknod, syncfs, FICLONE and copy_file_range on real filesystems: reflinks on an xfs made with
 * reflink=1, EOPNOTSUPP on ext4, EXDEV across the two.
 */
import { closeSync, lstatSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withScratchFs } from '@graphdriver/testkit';
import { O, S, copyFileRange, ficlone, mknod, mknodSync, syncfs } from '../src/index.js';
import { rejectsNative, throwsNative, withTmpDir } from './helpers/tmp.js';

function withFds<T>(paths: Array<[string, number]>, fn: (...fds: number[]) => Promise<T>): Promise<T> {
  const fds = paths.map(([p, flags]) => openSync(p, flags, 0o644));
  return fn(...fds).finally(() => fds.forEach((fd) => closeSync(fd)));
}

test('mknod makes a whiteout and a FIFO by path; EEXIST names the path', () =>
  withTmpDir('files', async (dir) => {
    mknodSync(join(dir, 'wh'), S.IFCHR, 0, 0);
    const st = lstatSync(join(dir, 'wh'));
    assert.ok(st.isCharacterDevice());
    assert.is(st.rdev, 0);
    await mknod(join(dir, 'fifo'), S.IFIFO | 0o600, 0, 0);
    assert.ok(lstatSync(join(dir, 'fifo')).isFIFO());
    throwsNative(() => mknodSync(join(dir, 'wh'), S.IFCHR, 0, 0), { code: 'EEXIST', syscall: 'mknod', path: join(dir, 'wh') });
    await rejectsNative(mknod(join(dir, 'no/x'), S.IFIFO, 0, 0), { code: 'ENOENT', path: join(dir, 'no/x') });
  }));

test('syncfs flushes; a bad fd gives EBADF', () =>
  withTmpDir('files', async (dir) => {
    writeFileSync(join(dir, 'f'), 'x');
    await withFds([[join(dir, 'f'), O.RDONLY]], (fd) => syncfs(fd!));
    await rejectsNative(syncfs(987654), { code: 'EBADF', syscall: 'syncfs' });
  }));

test('copy_file_range copies with explicit offsets and with the fds own offsets', () =>
  withTmpDir('files', async (dir) => {
    const src = join(dir, 'src');
    writeFileSync(src, '0123456789');
    await withFds([[src, O.RDONLY], [join(dir, 'dst'), O.WRONLY | O.CREAT]], async (s, d) => {
      assert.is(await copyFileRange(s!, d!, 4, 2, 0), 4);
      assert.is(readFileSync(join(dir, 'dst'), 'utf8'), '2345');
      // fd offsets: both start at 0 (the explicit call above did not move them)
      assert.is(await copyFileRange(s!, d!, 3), 3);
      assert.is(await copyFileRange(s!, d!, 100, null, 10), 7, 'the source offset moved to 3');
      assert.is(await copyFileRange(s!, d!, 100), 0, 'end of file');
    });
    assert.is(readFileSync(join(dir, 'dst'), 'utf8'), '0125\0\0\0\0\0\u00003456789');
    await rejectsNative(copyFileRange(987654, 987655, 1), { code: 'EBADF', syscall: 'copy_file_range' });
  }));

test('FICLONE shares extents on xfs reflink=1, gives EOPNOTSUPP on ext4 and EXDEV across them', async () => {
  await withScratchFs('xfs', { size: '320M', mkfsArgs: ['-m', 'reflink=1'] }, (xfs) =>
    withScratchFs('ext4', { size: '64M' }, async (ext4) => {
      const data = Buffer.alloc(1 << 20, 'reflink');
      const src = join(xfs.path, 'src');
      writeFileSync(src, data);
      await withFds([[src, O.RDONLY], [join(xfs.path, 'clone'), O.WRONLY | O.CREAT]], (s, d) => ficlone(d!, s!));
      assert.ok(readFileSync(join(xfs.path, 'clone')).equals(data));
      assert.is(statSync(join(xfs.path, 'clone')).size, data.length);
      // a clone, not a copy: its extents are marked shared
      assert.match(execFileSync('filefrag', ['-v', join(xfs.path, 'clone')], { encoding: 'utf8' }), /shared/);

      const e4src = join(ext4.path, 'src');
      writeFileSync(e4src, data);
      await withFds([[e4src, O.RDONLY], [join(ext4.path, 'clone'), O.WRONLY | O.CREAT]], (s, d) =>
        rejectsNative(ficlone(d!, s!), { code: 'EOPNOTSUPP', syscall: 'ioctl(FICLONE)' }));
      await withFds([[e4src, O.RDONLY], [join(xfs.path, 'cross'), O.WRONLY | O.CREAT]], (s, d) =>
        rejectsNative(ficlone(d!, s!), { code: 'EXDEV', syscall: 'ioctl(FICLONE)' }));
    }));
});

test.run();
