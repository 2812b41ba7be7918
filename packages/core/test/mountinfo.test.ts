/**
 * mountinfo parsing, on lines written by hand for the corner cases and on real tmpfs mounts whose
 * paths hold spaces, tabs, newlines and backslashes (made with util-linux mount(8) as fixtures).
 */
import { execFile } from 'node:child_process';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  isMountPoint,
  mountAt,
  mountContaining,
  mounts,
  mountsUnder,
  mountTreeDepths,
  parseMountinfo,
  parseMountinfoLine,
  unescapeMountinfo,
} from '../src/fs/index.js';
import { withMountTmp } from './helpers/mount-tmp.js';

const run = promisify(execFile);

test('a full line: optional fields, escapes, super options', () => {
  const m = parseMountinfoLine(
    '36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue',
  );
  assert.equal(m, {
    id: 36,
    parent: 35,
    major: 98,
    minor: 0,
    root: '/mnt1',
    mountPoint: '/mnt 2',
    options: 'rw,noatime',
    optional: ['master:1', 'shared:7'],
    fsType: 'ext3',
    source: '/dev/root',
    superOptions: 'rw,errors=continue',
  });
});

test('no optional fields; a cifs super option with spaces (old kernels)', () => {
  const m = parseMountinfoLine('40 35 0:33 / /srv rw - cifs //srv/My Docs rw,unc=//srv/My Docs');
  assert.equal(m.optional, []);
  assert.is(m.fsType, 'cifs');
  assert.is(m.source, '//srv/My');
  assert.is(m.superOptions, 'Docs rw,unc=//srv/My Docs');
});

test('unescape: space, tab, newline, backslash, UTF-8 passes through', () => {
  assert.is(unescapeMountinfo('/a\\040b\\011c\\012d\\134e'), '/a b\tc\nd\\e');
  assert.is(unescapeMountinfo('/ünï\\040cødé'), '/ünï cødé');
  assert.is(unescapeMountinfo('/plain'), '/plain');
  assert.throws(() => unescapeMountinfo('/bad\\04'), /bad escape/);
  assert.throws(() => unescapeMountinfo('/bad\\089'), /bad escape/);
  assert.throws(() => unescapeMountinfo('/bad\\777'), /out of range/);
});

test('malformed lines are refused', () => {
  assert.throws(() => parseMountinfoLine('1 2 3:4 / /x rw'), /not enough fields/);
  assert.throws(() => parseMountinfoLine('1 2 3:4 / /x rw a b c d e'), /separator/);
  assert.throws(() => parseMountinfoLine('1 2 34 / /x rw - tmpfs tmpfs rw'), /major:minor/);
});

test('the real table parses and has the root mount', async () => {
  const all = await mounts();
  assert.ok(all.length > 0);
  assert.ok(all.some((m) => m.mountPoint === '/'));
  assert.ok(await isMountPoint('/'));
  assert.ok(await isMountPoint('/proc'));
  assert.is((await mountAt('/proc'))?.fsType, 'proc');
  const depths = mountTreeDepths(all);
  assert.is(depths.size, all.length);
});

const withTmp = (fn: (dir: string) => Promise<void>): Promise<void> => withMountTmp('fs-mountinfo', fn);

test('real mounts whose paths have spaces, tabs, newlines and backslashes', async () => {
  await withTmp(async (dir) => {
    const odd = join(dir, 'with space', 'tab\there', 'new\nline\\back');
    const plain = join(dir, 'plain');
    const nested = join(odd, 'inner dir');
    await mkdir(odd, { recursive: true });
    await mkdir(plain);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0755', 'src with space', odd]);
    await mkdir(nested);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'inner', nested]);

    const m = await mountAt(odd);
    assert.ok(m, 'mount found at the odd path');
    assert.is(m!.mountPoint, odd);
    assert.is(m!.fsType, 'tmpfs');
    assert.is(m!.source, 'src with space');
    assert.match(m!.superOptions, /size=1024k/);
    assert.ok(await isMountPoint(odd));
    assert.ok(await isMountPoint(nested));
    assert.not.ok(await isMountPoint(plain));
    assert.not.ok(await isMountPoint(join(dir, 'with space')));

    const under = await mountsUnder(dir);
    assert.equal(under.map((x) => x.mountPoint), [odd, nested], 'parents before children');
    assert.equal((await mountsUnder(odd)).map((x) => x.mountPoint), [odd, nested]);
    assert.equal(await mountsUnder(plain), []);
    // A sibling whose name starts with the same characters is not "under".
    assert.equal(await mountsUnder(join(dir, 'with')), []);

    assert.is((await mountContaining(join(nested, 'no-such-file')))?.mountPoint, nested);
    assert.is((await mountContaining(join(odd, 'x')))?.mountPoint, odd);

    const depths = mountTreeDepths(await mounts());
    assert.is(depths.get(under[1]!.id), depths.get(under[0]!.id)! + 1);
  });
});

test('stacked mounts: mountAt is the one on top; bind mounts count as mount points', async () => {
  await withTmp(async (dir) => {
    const p = join(dir, 'stack');
    const src = join(dir, 'src');
    const bind = join(dir, 'bind');
    await mkdir(p);
    await mkdir(src);
    await mkdir(bind);
    await run('mount', ['-t', 'tmpfs', 'bottom', p]);
    await run('mount', ['-t', 'tmpfs', 'top', p]);
    assert.is((await mountAt(p))?.source, 'top');
    assert.is((await mountsUnder(p)).length, 2);
    // A bind mount of a directory of the same filesystem: st_dev is the same on both sides, mountinfo knows.
    await run('mount', ['--bind', src, bind]);
    assert.ok(await isMountPoint(bind));
    assert.is((await mountAt(bind))?.root.endsWith('/src'), true);
  });
});

test('isMountPoint through symlinks: a symlink to a mount point, a mount under a symlinked parent', async () => {
  await withTmp(async (dir) => {
    const real = join(dir, 'real');
    const mnt = join(real, 'mnt');
    await mkdir(mnt, { recursive: true });
    await run('mount', ['-t', 'tmpfs', 'sym', mnt]);
    await symlink(mnt, join(dir, 'link-to-mnt'));
    await symlink(real, join(dir, 'link-to-real'));
    assert.ok(await isMountPoint(join(dir, 'link-to-mnt')));
    assert.ok(await isMountPoint(join(dir, 'link-to-real', 'mnt')));
    assert.ok(await isMountPoint(`${mnt}/`));
    assert.ok(await isMountPoint(join(mnt, 'x', '..')));
    assert.not.ok(await isMountPoint(join(dir, 'link-to-real')));
    assert.not.ok(await isMountPoint(join(dir, 'dangling-nothing')));
    assert.is((await mountAt(join(dir, 'link-to-mnt')))?.source, 'sym');
  });
});

test('parseMountinfo skips the empty last line', () => {
  const text = '1 0 0:1 / / rw - rootfs rootfs rw\n2 1 0:2 / /proc rw - proc proc rw\n';
  assert.is(parseMountinfo(text).length, 2);
});

test.run();
