/**
 * Extended attributes on the real kernel: binary values byte for byte (what tar-stream gets wrong),
 * values larger than the addon's first read buffer, symlinks themselves, fd calls, and errors.
 */
import { closeSync, mkdirSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  O, XATTR,
  fgetxattr, fgetxattrSync, flistxattrSync, fremovexattrSync, fsetxattr, fsetxattrSync, lgetxattr, lgetxattrSync,
  llistxattr, llistxattrSync, lremovexattr, lremovexattrSync, lsetxattr, lsetxattrSync,
} from '../src/index.js';
import { rejectsNative, throwsArgError, throwsNative, withTmpDir } from './helpers/tmp.js';

const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));

test('binary values with every byte 0x00-0xff round-trip, and getfattr sees the same bytes', () =>
  withTmpDir('xattr', (dir) => {
    const f = join(dir, 'f');
    writeFileSync(f, '');
    lsetxattrSync(f, 'user.bin', everyByte);
    assert.ok(lgetxattrSync(f, 'user.bin').equals(everyByte));
    // security.capability-like value: v2 header 0x02000002 little-endian and bytes >= 0x80
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    lsetxattrSync(f, 'trusted.cap', cap);
    const hex = execFileSync('getfattr', ['--absolute-names', '-e', 'hex', '-n', 'user.bin', f], { encoding: 'utf8' });
    assert.match(hex, `user.bin=0x${everyByte.toString('hex')}`);
    assert.equal(llistxattrSync(f).sort(), ['trusted.cap', 'user.bin']);
  }));

test('a 60 000-byte value (beyond the first 4 KiB read) and an empty value', () =>
  withTmpDir('xattr', async (dir) => {
    // ext4 without ea_inode keeps a value within one block: a tmpfs takes up to 64 KiB.
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    try {
      const f = join(mnt, 'f');
      writeFileSync(f, '');
      const big = Buffer.alloc(60000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
      lsetxattrSync(f, 'trusted.big', big);
      assert.ok(lgetxattrSync(f, 'trusted.big').equals(big));
      assert.ok((await lgetxattr(f, 'trusted.big')).equals(big));
      const fd = openSync(f, O.RDONLY);
      try {
        assert.ok(fgetxattrSync(fd, 'trusted.big').equals(big));
      } finally {
        closeSync(fd);
      }
      // a name list longer than 4 KiB
      const names = Array.from({ length: 40 }, (_, i) => `trusted.${'n'.repeat(120)}${i}`);
      for (const name of names) lsetxattrSync(f, name, Buffer.from('1'));
      assert.equal(llistxattrSync(f).sort(), ['trusted.big', ...names].sort());
      lsetxattrSync(f, 'trusted.empty', Buffer.alloc(0));
      assert.is(lgetxattrSync(f, 'trusted.empty').length, 0);
    } finally {
      execFileSync('umount', [mnt]);
    }
  }));

test('l* calls act on a symlink itself; user.* on a symlink gives EPERM', () =>
  withTmpDir('xattr', (dir) => {
    const f = join(dir, 'f');
    const l = join(dir, 'l');
    writeFileSync(f, '');
    symlinkSync('f', l);
    lsetxattrSync(l, 'trusted.overlay.opaque', Buffer.from('y'));
    assert.is(lgetxattrSync(l, 'trusted.overlay.opaque').toString(), 'y');
    assert.equal(llistxattrSync(f), [], 'the target has none');
    throwsNative(() => lsetxattrSync(l, 'user.x', Buffer.from('1')), { code: 'EPERM', syscall: 'lsetxattr', path: l });
    lremovexattrSync(l, 'trusted.overlay.opaque');
    assert.equal(llistxattrSync(l), []);
  }));

test('errors: ENODATA with the path, XATTR.CREATE on an existing name, XATTR.REPLACE on a missing one', () =>
  withTmpDir('xattr', async (dir) => {
    const f = join(dir, 'f');
    writeFileSync(f, '');
    throwsNative(() => lgetxattrSync(f, 'user.none'), {
      code: 'ENODATA', syscall: 'lgetxattr', path: f, message: `ENODATA: no data available, lgetxattr '${f}'`,
    });
    await rejectsNative(lgetxattr(f, 'user.none'), { code: 'ENODATA', syscall: 'lgetxattr', path: f });
    lsetxattrSync(f, 'user.a', Buffer.from('1'), XATTR.CREATE);
    throwsNative(() => lsetxattrSync(f, 'user.a', Buffer.from('2'), XATTR.CREATE), { code: 'EEXIST', syscall: 'lsetxattr' });
    throwsNative(() => lsetxattrSync(f, 'user.b', Buffer.from('2'), XATTR.REPLACE), { code: 'ENODATA' });
    await rejectsNative(lremovexattr(f, 'user.b'), { code: 'ENODATA', syscall: 'lremovexattr', path: f });
    throwsNative(() => llistxattrSync(join(dir, 'missing')), { code: 'ENOENT', syscall: 'llistxattr', path: join(dir, 'missing') });
    throwsArgError(() => lsetxattrSync(f, 'user.a', 'text' as never), TypeError, 'ERR_INVALID_ARG_TYPE', /"value"/);
  }));

test('async l* forms and the f* family on an open fd', () =>
  withTmpDir('xattr', async (dir) => {
    const f = join(dir, 'f');
    writeFileSync(f, '');
    const value = Buffer.from([0x80, 0xff, 0x00, 0x41]);
    await lsetxattr(f, 'user.async', value);
    assert.equal(await llistxattr(f), ['user.async']);
    const fd = openSync(f, O.RDWR);
    try {
      assert.ok(fgetxattrSync(fd, 'user.async').equals(value));
      fsetxattrSync(fd, 'user.fd', everyByte);
      assert.ok((await fgetxattr(fd, 'user.fd')).equals(everyByte));
      await fsetxattr(fd, 'user.fd2', Buffer.from('z'));
      assert.equal(flistxattrSync(fd).sort(), ['user.async', 'user.fd', 'user.fd2']);
      fremovexattrSync(fd, 'user.fd');
      throwsNative(() => fgetxattrSync(fd, 'user.fd'), { code: 'ENODATA', syscall: 'fgetxattr', path: undefined });
    } finally {
      closeSync(fd);
    }
    throwsNative(() => fgetxattrSync(fd, 'user.fd'), { code: 'EBADF', syscall: 'fgetxattr' });
  }));

test('the value Buffer of an async set may change right after the call', () =>
  withTmpDir('xattr', async (dir) => {
    const f = join(dir, 'f');
    writeFileSync(f, '');
    const value = Buffer.from('original');
    const pending = lsetxattr(f, 'user.v', value);
    value.fill(0x21);
    await pending;
    assert.is(lgetxattrSync(f, 'user.v').toString(), 'original');
  }));

test.run();
