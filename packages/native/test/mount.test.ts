/**
 * mount/umount2 and the new mount API on the real kernel: tmpfs and bind mounts, an overlay built
 * with fsopen/fsconfig lowerdir+/fsmount/move_mount, an idmapped bind mount, and the errors
 * (EBUSY, EINVAL with the kernel's fs_context message, ENODEV).
 */
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, writeFileSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  AT, MNT, MOUNT_ATTR, MOVE_MOUNT, MS, OPEN_TREE,
  fsconfigCreate, fsconfigSetFd, fsconfigSetFlag, fsconfigSetString, fsmount, fsopen, mount, mountSetattr, moveMount,
  openTree, umount2,
} from '../src/index.js';
import { mountsAt, unmountAllUnder, withUserNamespace } from './helpers/mounts.js';
import { rejectsNative, withTmpDir } from './helpers/tmp.js';

// A directory for the test, with every mount under it removed at the end, also on failure.
const withMountDir = <T>(fn: (dir: string) => Promise<T>): Promise<T> =>
  withTmpDir('mount', async (dir) => {
    try {
      return await fn(dir);
    } finally {
      await unmountAllUnder(dir);
    }
  });

async function closeAfter<T>(fd: number, fn: (fd: number) => Promise<T>): Promise<T> {
  try {
    return await fn(fd);
  } finally {
    closeSync(fd);
  }
}

test('mount a tmpfs with data, see it in mountinfo, umount2 it', () =>
  withMountDir(async (dir) => {
    await mount('gd-test', dir, 'tmpfs', MS.NOSUID | MS.NODEV, 'size=1m,mode=0711');
    const [entry] = mountsAt(dir);
    assert.ok(entry, 'mounted');
    assert.is(entry.fstype, 'tmpfs');
    assert.is(entry.source, 'gd-test');
    assert.match(entry.options, /nosuid,nodev/);
    assert.match(entry.superOptions, /size=1024k/);
    assert.is(lstatSync(dir).mode & 0o777, 0o711);
    await umount2(dir);
    assert.is(mountsAt(dir).length, 0);
  }));

test('bind mount, remount read-only, then EROFS on write', () =>
  withMountDir(async (dir) => {
    const src = join(dir, 'src');
    const dst = join(dir, 'dst');
    mkdirSync(src);
    mkdirSync(dst);
    writeFileSync(join(src, 'f'), 'hello');
    await mount(src, dst, null, MS.BIND);
    assert.is(readFileSync(join(dst, 'f'), 'utf8'), 'hello');
    await mount(null, dst, null, MS.REMOUNT | MS.BIND | MS.RDONLY);
    assert.throws(() => writeFileSync(join(dst, 'g'), 'x'), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
    await umount2(dst);
  }));

test('umount2: EBUSY while a file is open (message without dest), DETACH works, EINVAL on a non-mount', () =>
  withMountDir(async (dir) => {
    await mount('tmpfs', dir, 'tmpfs', 0, 'size=1m');
    const fd = openSync(join(dir, 'open'), 'w');
    try {
      const err = await rejectsNative(umount2(dir), {
        code: 'EBUSY', syscall: 'umount2', path: dir, message: `EBUSY: device or resource busy, umount2 '${dir}'`,
      });
      assert.not.ok('dest' in err);
      await umount2(dir, MNT.DETACH);
      assert.is(mountsAt(dir).length, 0);
    } finally {
      closeSync(fd);
    }
    await rejectsNative(umount2(dir), { code: 'EINVAL', syscall: 'umount2', path: dir });
    await rejectsNative(mount('/nonexistent-src', dir, null, MS.BIND), {
      code: 'ENOENT', syscall: 'mount', path: '/nonexistent-src', dest: dir,
      message: `ENOENT: no such file or directory, mount '/nonexistent-src' -> '${dir}'`,
    });
  }));

test('mount data longer than a page is refused instead of silently cut', () =>
  withMountDir(async (dir) => {
    try {
      await mount('tmpfs', dir, 'tmpfs', 0, 'x'.repeat(5000));
      assert.unreachable('accepted 5000 bytes of data');
    } catch (err) {
      assert.instance(err, RangeError);
      assert.is((err as { code?: string }).code, 'ERR_OUT_OF_RANGE');
    }
    assert.is(mountsAt(dir).length, 0);
  }));

test('overlay through fsopen, fsconfig lowerdir+ (by path and by fd), fsmount, move_mount', () =>
  withMountDir(async (dir) => {
    for (const d of ['l1', 'l2', 'upper', 'work', 'merged']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'l1/top'), 'l1');
    writeFileSync(join(dir, 'l1/shadowed'), 'from l1');
    writeFileSync(join(dir, 'l2/bottom'), 'l2');
    writeFileSync(join(dir, 'l2/shadowed'), 'from l2');
    const fsfd = await fsopen('overlay');
    await closeAfter(fsfd, async () => {
      await fsconfigSetString(fsfd, 'lowerdir+', join(dir, 'l1'));
      await closeAfter(openSync(join(dir, 'l2'), 'r'), (l2fd) => fsconfigSetFd(fsfd, 'lowerdir+', l2fd));
      await fsconfigSetString(fsfd, 'upperdir', join(dir, 'upper'));
      await fsconfigSetString(fsfd, 'workdir', join(dir, 'work'));
      await fsconfigCreate(fsfd);
      const mfd = await fsmount(fsfd, undefined, MOUNT_ATTR.NODEV);
      await closeAfter(mfd, () => moveMount(mfd, '', AT.FDCWD, join(dir, 'merged'), MOVE_MOUNT.F_EMPTY_PATH));
    });
    const merged = join(dir, 'merged');
    const [entry] = mountsAt(merged);
    assert.ok(entry, 'the overlay is in mountinfo');
    assert.is(entry.fstype, 'overlay');
    assert.match(entry.options, /nodev/);
    assert.equal(readdirSync(merged).sort(), ['bottom', 'shadowed', 'top']);
    assert.is(readFileSync(join(merged, 'shadowed'), 'utf8'), 'from l1', 'the first lowerdir+ is on top');
    writeFileSync(join(merged, 'new'), 'written');
    assert.is(readFileSync(join(dir, 'upper/new'), 'utf8'), 'written', 'writes land in upper');
    await umount2(merged);
  }));

test('fsconfigSetFlag: a tmpfs made read-only by the "ro" flag', () =>
  withMountDir(async (dir) => {
    const fsfd = await fsopen('tmpfs');
    await closeAfter(fsfd, async () => {
      await fsconfigSetString(fsfd, 'size', '1m');
      await fsconfigSetFlag(fsfd, 'ro');
      await fsconfigCreate(fsfd);
      const mfd = await fsmount(fsfd);
      await closeAfter(mfd, () => moveMount(mfd, '', AT.FDCWD, dir, MOVE_MOUNT.F_EMPTY_PATH));
    });
    const [entry] = mountsAt(dir);
    assert.ok(entry);
    assert.is(entry.fstype, 'tmpfs');
    assert.match(entry.superOptions, /^ro,/);
    await rejectsNative(fsconfigSetFlag(987654, 'ro'), { code: 'EBADF', syscall: 'fsconfig', path: 'ro' });
  }));

test('fsconfig EINVAL carries the kernel overlay message in fsContext; fsopen of no fs gives ENODEV', async () => {
  const fsfd = await fsopen('overlay');
  try {
    const err = await rejectsNative(fsconfigSetString(fsfd, 'redirect_dir', 'sideways'), {
      code: 'EINVAL', syscall: 'fsconfig', path: 'redirect_dir',
      message: "EINVAL: invalid argument, fsconfig 'redirect_dir' (overlay: Bad value for 'redirect_dir')",
    });
    assert.equal(err.fsContext, ["e overlay: Bad value for 'redirect_dir'"]);
    const err2 = await rejectsNative(fsconfigSetString(fsfd, 'no_such_option', 'x'), { code: 'EINVAL', path: 'no_such_option' });
    assert.equal(err2.fsContext, ["e overlay: Unknown parameter 'no_such_option'"], 'the earlier message was drained');
    await rejectsNative(fsconfigSetString(fsfd, 'lowerdir+', '/nonexistent-lower'), { code: 'ENOENT', path: 'lowerdir+' });
    await rejectsNative(fsconfigCreate(fsfd), { code: 'EINVAL', syscall: 'fsconfig' });
  } finally {
    closeSync(fsfd);
  }
  await rejectsNative(fsopen('no-such-filesystem'), { code: 'ENODEV', syscall: 'fsopen', path: 'no-such-filesystem' });
  await rejectsNative(fsmount(987654), { code: 'EBADF', syscall: 'fsmount' });
});

test('open_tree CLONE + mount_setattr RDONLY + move_mount: a read-only bind mount', () =>
  withMountDir(async (dir) => {
    mkdirSync(join(dir, 'src'));
    mkdirSync(join(dir, 'dst'));
    writeFileSync(join(dir, 'src/f'), 'data');
    const tree = await openTree(AT.FDCWD, join(dir, 'src'), OPEN_TREE.CLONE | OPEN_TREE.CLOEXEC);
    await closeAfter(tree, async () => {
      await mountSetattr(tree, '', AT.EMPTY_PATH, { attrSet: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID });
      await moveMount(tree, '', AT.FDCWD, join(dir, 'dst'), MOVE_MOUNT.F_EMPTY_PATH);
    });
    const [entry] = mountsAt(join(dir, 'dst'));
    assert.ok(entry);
    assert.match(entry.options, /^ro,nosuid/);
    assert.is(readFileSync(join(dir, 'dst/f'), 'utf8'), 'data');
    assert.throws(() => writeFileSync(join(dir, 'dst/g'), 'x'), (e: NodeJS.ErrnoException) => e.code === 'EROFS');
    await rejectsNative(openTree(AT.FDCWD, join(dir, 'missing'), OPEN_TREE.CLONE), {
      code: 'ENOENT', syscall: 'open_tree', path: join(dir, 'missing'),
    });
    await rejectsNative(mountSetattr(AT.FDCWD, join(dir, 'missing'), 0, { attrSet: MOUNT_ATTR.RDONLY }), {
      code: 'ENOENT', syscall: 'mount_setattr',
    });
    await rejectsNative(moveMount(AT.FDCWD, join(dir, 'missing'), AT.FDCWD, join(dir, 'dst')), {
      code: 'ENOENT', syscall: 'move_mount', path: join(dir, 'missing'), dest: join(dir, 'dst'),
    });
  }));

test('an idmapped bind mount (MOUNT_ATTR.IDMAP with a user namespace fd) shows shifted owners', () =>
  withMountDir(async (dir) => {
    mkdirSync(join(dir, 'src'));
    mkdirSync(join(dir, 'dst'));
    writeFileSync(join(dir, 'src/root-owned'), '');
    writeFileSync(join(dir, 'src/user-owned'), '');
    chownSync(join(dir, 'src/user-owned'), 1000, 1001);
    await withUserNamespace(100000, 65536, async (usernsFd) => {
      const tree = await openTree(AT.FDCWD, join(dir, 'src'), OPEN_TREE.CLONE | OPEN_TREE.CLOEXEC);
      await closeAfter(tree, async () => {
        await mountSetattr(tree, '', AT.EMPTY_PATH, { attrSet: MOUNT_ATTR.IDMAP, usernsFd });
        await moveMount(tree, '', AT.FDCWD, join(dir, 'dst'), MOVE_MOUNT.F_EMPTY_PATH);
      });
    });
    const root = lstatSync(join(dir, 'dst/root-owned'));
    const user = lstatSync(join(dir, 'dst/user-owned'));
    assert.equal([root.uid, root.gid], [100000, 100000]);
    assert.equal([user.uid, user.gid], [101000, 101001]);
    assert.is(lstatSync(join(dir, 'src/user-owned')).uid, 1000, 'the source is unchanged');
    assert.match(mountsAt(join(dir, 'dst'))[0]?.options ?? '', /idmapped/);
  }));

test.run();
