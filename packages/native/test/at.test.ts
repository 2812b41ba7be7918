/**
 * The *at family against the real kernel: each call's effect checked with Node's fs, and its
 * failures checked for code, errno, syscall and path.
 */
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, readSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AT, DT, O, RENAME, RESOLVE, S, UTIME,
  fchmodatSync, fchownat, fchownatSync, fstatat, fstatatSync, getdents, getdentsSync, linkatSync, mkdirat, mkdiratSync,
  mknodatSync, openat2, openat2Sync, readlinkat, readlinkatSync, renameat2, renameat2Sync, symlinkatSync, unlinkatSync,
  utimensatSync,
} from '../src/index.js';
import { rejectsNative, throwsArgError, throwsNative, withTmpDir } from './helpers/tmp.js';

function readFd(fd: number): string {
  const buf = Buffer.alloc(256);
  const n = readSync(fd, buf, 0, buf.length, 0);
  return buf.toString('utf8', 0, n);
}

// Opens `dir`, runs `fn` with its fd, closes it when `fn` is done (also when it returns a Promise).
function withDirFd<T>(dir: string, fn: (fd: number) => T): T {
  const fd = openSync(dir, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
  let result: T;
  try {
    result = fn(fd);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  if (result instanceof Promise) return result.finally(() => closeSync(fd)) as T;
  closeSync(fd);
  return result;
}

test('openat2 RESOLVE.IN_ROOT keeps ../../etc/passwd and absolute symlinks inside the root', () =>
  withTmpDir('at', (dir) => {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc/passwd'), 'inside\n');
    symlinkSync('/etc/passwd', join(root, 'abs'));
    symlinkSync('../../../../etc/passwd', join(root, 'rel'));
    withDirFd(root, (rootFd) => {
      for (const path of ['../../etc/passwd', '/etc/passwd', 'abs', 'rel']) {
        const fd = openat2Sync(rootFd, path, { flags: O.RDONLY | O.CLOEXEC, resolve: RESOLVE.IN_ROOT });
        try {
          assert.is(readFd(fd), 'inside\n', path);
        } finally {
          closeSync(fd);
        }
      }
      // Without IN_ROOT the absolute symlink leads to the host's file: the test above can fail.
      const hostFd = openat2Sync(rootFd, 'abs', { flags: O.RDONLY | O.CLOEXEC });
      try {
        assert.is.not(readFd(hostFd), 'inside\n');
      } finally {
        closeSync(hostFd);
      }
    });
  }));

test('openat2 RESOLVE.BENEATH refuses to leave the dirfd with EXDEV', () =>
  withTmpDir('at', async (dir) => {
    mkdirSync(join(dir, 'root'));
    symlinkSync('/etc/passwd', join(dir, 'root/abs'));
    await withDirFd(join(dir, 'root'), async (rootFd) => {
      for (const path of ['../x', '/etc/passwd', 'abs']) {
        throwsNative(() => openat2Sync(rootFd, path, { flags: O.RDONLY, resolve: RESOLVE.BENEATH }), {
          code: 'EXDEV', syscall: 'openat2', path, message: `EXDEV: invalid cross-device link, openat2 '${path}'`,
        });
      }
      await rejectsNative(openat2(rootFd, '../x', { flags: O.RDONLY, resolve: RESOLVE.BENEATH }), { code: 'EXDEV', path: '../x' });
    });
  }));

test('openat2 creates with a mode, and its async form returns a usable fd', () =>
  withTmpDir('at', async (dir) => {
    const fd = await openat2(AT.FDCWD, join(dir, 'new'), { flags: O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC, mode: 0o640 });
    closeSync(fd);
    assert.is(lstatSync(join(dir, 'new')).mode & 0o7777, 0o640 & ~process.umask());
    throwsNative(() => openat2Sync(AT.FDCWD, join(dir, 'new'), { flags: O.WRONLY | O.CREAT | O.EXCL, mode: 0o640 }), {
      code: 'EEXIST', path: join(dir, 'new'),
    });
    throwsArgError(() => openat2Sync(AT.FDCWD, dir, null as never), TypeError, 'ERR_INVALID_ARG_TYPE', /"how"/);
  }));

test('mkdirat, fstatat and unlinkat(REMOVEDIR) relative to a dirfd', () =>
  withTmpDir('at', async (dir) =>
    withDirFd(dir, async (dirFd) => {
      mkdiratSync(dirFd, 'sub', 0o700);
      await mkdirat(dirFd, 'sub2', 0o755);
      const st = fstatatSync(dirFd, 'sub');
      assert.is(st.mode & S.IFMT, S.IFDIR);
      assert.is(st.mode & 0o777, 0o700);
      assert.is(st.ino, lstatSync(join(dir, 'sub')).ino);
      assert.is((await fstatat(dirFd, 'sub2')).mode & S.IFMT, S.IFDIR);
      throwsNative(() => mkdiratSync(dirFd, 'sub', 0o700), { code: 'EEXIST', syscall: 'mkdirat', path: 'sub' });
      throwsNative(() => unlinkatSync(dirFd, 'sub'), { code: 'EISDIR', syscall: 'unlinkat', path: 'sub' });
      unlinkatSync(dirFd, 'sub', AT.REMOVEDIR);
      throwsNative(() => fstatatSync(dirFd, 'sub'), {
        code: 'ENOENT', syscall: 'fstatat', path: 'sub', message: "ENOENT: no such file or directory, fstatat 'sub'",
      });
    })));

test('mknodat makes an overlay whiteout (0/0 char device) and a FIFO', () =>
  withTmpDir('at', (dir) =>
    withDirFd(dir, (dirFd) => {
      mknodatSync(dirFd, 'wh', S.IFCHR | 0o000, 0, 0);
      const st = fstatatSync(dirFd, 'wh');
      assert.is(st.mode & S.IFMT, S.IFCHR);
      assert.is(st.rdev, 0);
      assert.ok(lstatSync(join(dir, 'wh')).isCharacterDevice());
      mknodatSync(dirFd, 'null', S.IFCHR | 0o666, 1, 3);
      const dev = fstatatSync(dirFd, 'null');
      assert.equal([dev.rdevMajor, dev.rdevMinor], [1, 3]);
      mknodatSync(dirFd, 'fifo', S.IFIFO | 0o644, 0, 0);
      assert.ok(lstatSync(join(dir, 'fifo')).isFIFO());
    })));

test('symlinkat and readlinkat, also a target of 4095 bytes', () =>
  withTmpDir('at', async (dir) =>
    withDirFd(dir, async (dirFd) => {
      symlinkatSync('../some/target', dirFd, 'link');
      assert.is(readlinkSync(join(dir, 'link')), '../some/target');
      assert.is(readlinkatSync(dirFd, 'link'), '../some/target');
      assert.is(await readlinkat(dirFd, 'link'), '../some/target');
      const long = 'a/'.repeat(2047) + 'b';
      symlinkatSync(long, dirFd, 'long');
      assert.is(readlinkatSync(dirFd, 'long'), long);
      assert.is(await readlinkat(dirFd, 'long'), long);
      throwsNative(() => symlinkatSync('x', dirFd, 'link'), {
        code: 'EEXIST', syscall: 'symlinkat', path: 'x', dest: 'link', message: "EEXIST: file exists, symlinkat 'x' -> 'link'",
      });
      throwsNative(() => readlinkatSync(dirFd, '.'), { code: 'EINVAL', syscall: 'readlinkat', path: '.' });
    })));

test('linkat makes a hard link; renameat2 NOREPLACE gives EEXIST, EXCHANGE swaps, WHITEOUT leaves a whiteout', () =>
  withTmpDir('at', async (dir) =>
    withDirFd(dir, async (dirFd) => {
      writeFileSync(join(dir, 'a'), 'A');
      writeFileSync(join(dir, 'b'), 'B');
      linkatSync(dirFd, 'a', dirFd, 'a2');
      assert.is(lstatSync(join(dir, 'a')).nlink, 2);
      throwsNative(() => renameat2Sync(dirFd, 'a', dirFd, 'b', RENAME.NOREPLACE), {
        code: 'EEXIST', syscall: 'renameat2', path: 'a', dest: 'b', message: "EEXIST: file exists, renameat2 'a' -> 'b'",
      });
      assert.is(readFileSync(join(dir, 'b'), 'utf8'), 'B');
      renameat2Sync(dirFd, 'a', dirFd, 'b', RENAME.EXCHANGE);
      assert.is(readFileSync(join(dir, 'a'), 'utf8'), 'B');
      assert.is(readFileSync(join(dir, 'b'), 'utf8'), 'A');
      await renameat2(dirFd, 'b', dirFd, 'c', RENAME.NOREPLACE);
      assert.is(readFileSync(join(dir, 'c'), 'utf8'), 'A');
      await rejectsNative(renameat2(dirFd, 'nope', dirFd, 'd'), { code: 'ENOENT', path: 'nope', dest: 'd' });
      // WHITEOUT: the source name becomes an overlay whiteout (0/0 character device)
      renameat2Sync(dirFd, 'c', dirFd, 'moved', RENAME.WHITEOUT);
      const wh = lstatSync(join(dir, 'c'));
      assert.ok(wh.isCharacterDevice());
      assert.is(wh.rdev, 0);
      assert.is(readFileSync(join(dir, 'moved'), 'utf8'), 'A');
    })));

test('fchownat changes owners, of a symlink itself with SYMLINK_NOFOLLOW', () =>
  withTmpDir('at', async (dir) =>
    withDirFd(dir, async (dirFd) => {
      writeFileSync(join(dir, 'f'), '');
      symlinkSync('f', join(dir, 'l'));
      fchownatSync(dirFd, 'f', 1234, 5678);
      assert.equal([lstatSync(join(dir, 'f')).uid, lstatSync(join(dir, 'f')).gid], [1234, 5678]);
      await fchownat(dirFd, 'l', 4000000000, -1, AT.SYMLINK_NOFOLLOW);
      assert.is(lstatSync(join(dir, 'l')).uid, 4000000000);
      assert.is(lstatSync(join(dir, 'l')).gid, 0);
      assert.is(lstatSync(join(dir, 'f')).uid, 1234, 'the target is untouched');
    })));

test('fchmodat with SYMLINK_NOFOLLOW: a file changes, a symlink cannot (EOPNOTSUPP)', () =>
  withTmpDir('at', (dir) =>
    withDirFd(dir, (dirFd) => {
      writeFileSync(join(dir, 'f'), '');
      symlinkSync('f', join(dir, 'l'));
      fchmodatSync(dirFd, 'f', 0o4751);
      assert.is(lstatSync(join(dir, 'f')).mode & 0o7777, 0o4751);
      fchmodatSync(dirFd, 'f', 0o600, AT.SYMLINK_NOFOLLOW);
      assert.is(lstatSync(join(dir, 'f')).mode & 0o7777, 0o600);
      throwsNative(() => fchmodatSync(dirFd, 'l', 0o600, AT.SYMLINK_NOFOLLOW), { code: 'EOPNOTSUPP', syscall: 'fchmodat', path: 'l' });
    })));

test('utimensat sets nanosecond times, of a symlink itself too, and UTIME.OMIT leaves one alone', () =>
  withTmpDir('at', (dir) =>
    withDirFd(dir, (dirFd) => {
      writeFileSync(join(dir, 'f'), '');
      symlinkSync('f', join(dir, 'l'));
      utimensatSync(dirFd, 'f', { sec: 1000, nsec: 1 }, { sec: 1_700_000_000, nsec: 123_456_789 });
      const st = fstatatSync(dirFd, 'f');
      assert.equal(st.atime, { sec: 1000, nsec: 1 });
      assert.equal(st.mtime, { sec: 1_700_000_000, nsec: 123_456_789 });
      utimensatSync(dirFd, 'l', { sec: 5, nsec: 0 }, { sec: -86400, nsec: 0 }, AT.SYMLINK_NOFOLLOW);
      assert.equal(fstatatSync(dirFd, 'l', AT.SYMLINK_NOFOLLOW).mtime, { sec: -86400, nsec: 0 });
      assert.equal(fstatatSync(dirFd, 'f').mtime, { sec: 1_700_000_000, nsec: 123_456_789 });
      utimensatSync(dirFd, 'f', { sec: 0, nsec: UTIME.OMIT }, { sec: 42, nsec: 0 });
      assert.equal(fstatatSync(dirFd, 'f').atime, { sec: 1000, nsec: 1 });
      assert.equal(fstatatSync(dirFd, 'f').mtime, { sec: 42, nsec: 0 });
    })));

test('getdents lists every entry with its d_type, beyond one 32 KiB kernel batch', () =>
  withTmpDir('at', async (dir) => {
    mkdirSync(join(dir, 'd'));
    symlinkSync('x', join(dir, 'l'));
    writeFileSync(join(dir, 'f'), '');
    withDirFd(dir, (dirFd) => mknodatSync(dirFd, 'wh', S.IFCHR, 0, 0));
    const many = 3000;
    for (let i = 0; i < many; i++) writeFileSync(join(dir, `file-with-a-longish-name-${i}`), '');
    const entries = withDirFd(dir, (fd) => getdentsSync(fd));
    assert.is(entries.length, many + 4);
    const byName = new Map(entries);
    assert.is(byName.get('d'), DT.DIR);
    assert.is(byName.get('l'), DT.LNK);
    assert.is(byName.get('f'), DT.REG);
    assert.is(byName.get('wh'), DT.CHR);
    assert.not.ok(byName.has('.') || byName.has('..'));
    assert.is(new Set(entries.map(([n]) => n)).size, entries.length, 'no name twice');
    const asyncEntries = await withDirFd(dir, (fd) => getdents(fd));
    assert.is(asyncEntries.length, many + 4);
    throwsNative(() => getdentsSync(999999), { code: 'EBADF', syscall: 'getdents64' });
  }));

test('paths may be Buffers; names over 512 bytes work and over PATH_MAX give ENAMETOOLONG', () =>
  withTmpDir('at', (dir) =>
    withDirFd(dir, (dirFd) => {
      mkdiratSync(dirFd, Buffer.from('from-buffer'), 0o755);
      assert.ok(lstatSync(join(dir, 'from-buffer')).isDirectory());
      let deep = '';
      for (let i = 0; i < 3; i++) {
        deep += (i ? '/' : '') + 'd'.repeat(200) + i;
        mkdiratSync(dirFd, deep, 0o755);
      }
      assert.ok(deep.length > 512);
      assert.is(fstatatSync(dirFd, deep).mode & S.IFMT, S.IFDIR);
      const tooLong = 'x/'.repeat(3000);
      throwsNative(() => mkdiratSync(dirFd, tooLong, 0o755), { code: 'ENAMETOOLONG', path: tooLong });
    })));

test('arguments are validated like Node does', () => {
  throwsArgError(() => mkdiratSync(AT.FDCWD, 42 as never, 0o755), TypeError, 'ERR_INVALID_ARG_TYPE', /"name" argument must be of type string or an instance of Buffer\. Received type number \(42\)/);
  throwsArgError(() => mkdiratSync(1.5, 'x', 0o755), RangeError, 'ERR_OUT_OF_RANGE', /"dirfd" is out of range\. It must be an integer\. Received 1\.5/);
  throwsArgError(() => mkdiratSync(AT.FDCWD, 'x', 0o10000), RangeError, 'ERR_OUT_OF_RANGE', /"mode"/);
  throwsArgError(() => mkdiratSync(AT.FDCWD, 'a\0b', 0o755), TypeError, 'ERR_INVALID_ARG_VALUE', /without null bytes/);
  throwsArgError(() => mkdiratSync(AT.FDCWD, 'x', undefined as never), TypeError, 'ERR_INVALID_ARG_TYPE', /"mode".*Received undefined/);
  throwsArgError(() => mkdirat(AT.FDCWD, 'x', 'a' as never), TypeError, 'ERR_INVALID_ARG_TYPE');
});

test.run();
