/**
 * A layer stays an AUFS branch on disk whichever backend mounted it: what a container does through
 * a fuse-overlayfs union (deleting files and directories, replacing a directory, renaming one,
 * copying up a file, making a device) is, once the union is down, `.wh.` files and `.wh..wh..opq`
 * markers - no 0/0 character device, no fuse-overlayfs xattr, no work directory - and the diff taken
 * while the container still runs carries none of fuse-overlayfs's state either. normalizeBranch()
 * itself on a branch made by hand the way fuse-overlayfs writes without our settings.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rename, rm, symlink, writeFile, appendFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildTar } from '@graphdriver/graphtest';
import { lsetxattrSync, mknod, S } from '@graphdriver/native';
import { FUSE_WORKDIR, normalizeBranch } from '../src/index.js';
import { codeOf, readBranch, start, tarEntries, withRoot, xattrsOf } from './helpers.js';

const base = (): Readable =>
  Readable.from([
    buildTar([
      { name: 'a', type: 'file', data: 'a' },
      { name: 'keep', type: 'file', data: 'keep' },
      { name: 'd1', type: 'dir', mode: 0o755 },
      { name: 'd1/b', type: 'file', data: 'b' },
      { name: 'd1/sub', type: 'dir', mode: 0o755 },
      { name: 'd1/sub/c', type: 'file', data: 'c' },
      { name: 'd2', type: 'dir', mode: 0o755 },
      { name: 'd2/x', type: 'file', data: 'x' },
      { name: 'd3', type: 'dir', mode: 0o755 },
      { name: 'd3/y', type: 'file', data: 'y' },
      { name: 'mod', type: 'file', data: 'mod', mode: 0o644 },
      { name: 'mvdir', type: 'dir', mode: 0o755 },
      { name: 'mvdir/m', type: 'file', data: 'm' },
    ]),
  ]);

/** What the container does through its union. */
async function containerChanges(p: string): Promise<void> {
  await rm(join(p, 'a'));
  await rm(join(p, 'd1/sub'), { recursive: true });
  await rm(join(p, 'd2'), { recursive: true });
  await rm(join(p, 'd3'), { recursive: true });
  await mkdir(join(p, 'd3'));
  await writeFile(join(p, 'd3/new'), 'new');
  await appendFile(join(p, 'mod'), '+more');
  lsetxattrSync(join(p, 'mod'), 'user.keep', Buffer.from('1'));
  // a lower directory cannot be renamed in place (EXDEV, as with overlayfs); mv(1) copies it then
  assert.is(await codeOf(rename(join(p, 'mvdir'), join(p, 'moved'))), 'EXDEV');
  await run('mv', [join(p, 'mvdir'), join(p, 'moved')]);
  await mknod(join(p, 'dev'), S.IFCHR | 0o600, 1, 3);
}

const run = promisify(execFile);

const PRIVATE = /^(trusted\.overlay\.|user\.fuseoverlayfs\.)/;

test('whiteouts, opaque and renamed directories made through the union are AUFS files on disk after put(); the live diff has no fuse-overlayfs state', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    try {
      await d.create('base');
      await d.applyDiff('base', undefined, base());
      await d.createReadWrite('ctr', 'base');
      const p = await d.get('ctr');
      assert.is(p, join(d.home, 'mnt', 'ctr'));
      await containerChanges(p);
      const branch = join(d.home, 'diff', 'ctr');
      assert.ok((await stat(join(branch, FUSE_WORKDIR))).isDirectory(), 'while mounted, the work directory is in the branch');
      assert.equal((await readFile(join(p, 'd3/new'), 'utf8')), 'new');

      // docker commit of a running container: the diff is taken from the live branch
      const live = await tarEntries(await d.diff('ctr', 'base'));
      assert.equal(
        live.map((e) => `${e.kind} ${e.name}`),
        [
          'file .wh.a',
          'file .wh.d2',
          'file .wh.mvdir',
          'dir d1/',
          'file d1/.wh.sub',
          'dir d3/',
          'file d3/.wh..wh..opq',
          'file d3/new',
          'char dev',
          'file mod',
          'dir moved/',
          'file moved/.wh..wh..opq',
          'file moved/m',
        ],
      );
      for (const e of live) {
        const names = e.xattrs.map(([n]) => n);
        assert.ok(!names.some((n) => PRIVATE.test(n)), `${e.name} carries ${names.join(', ')}`);
        if (e.name === 'mod') assert.equal(names, ['user.keep']);
      }
      await d.put('ctr');

      const onDisk = await readBranch(branch);
      assert.equal(
        onDisk.map((e) => `${e.type} ${e.path}${e.rdev === undefined ? '' : ` ${e.rdev}`}${e.xattrs.length === 0 ? '' : ` [${e.xattrs.join(',')}]`}`),
        [
          'file .wh.a',
          'file .wh.d2',
          'file .wh.mvdir',
          'dir d1',
          'file d1/.wh.sub',
          'dir d3',
          'file d3/.wh..wh..opq',
          'file d3/new',
          'char dev 1:3',
          'file mod [user.keep]',
          'dir moved',
          'file moved/.wh..wh..opq',
          'file moved/m',
        ],
      );
      assert.equal(xattrsOf(branch).filter((n) => PRIVATE.test(n)), []);
      for (const e of onDisk) if (e.path.split('/').pop()!.startsWith('.wh.')) assert.is(e.size, 0, `${e.path} is an empty file`);

      // the same layer read back: the union, the changes and the diff agree with what was done
      assert.equal(await d.changes('ctr', 'base'), [
        { path: '/a', kind: 'delete' },
        { path: '/d1', kind: 'modify' },
        { path: '/d1/sub', kind: 'delete' },
        { path: '/d2', kind: 'delete' },
        { path: '/d3', kind: 'modify' },
        { path: '/d3/new', kind: 'add' },
        { path: '/d3/y', kind: 'delete' },
        { path: '/dev', kind: 'add' },
        { path: '/mod', kind: 'modify' },
        { path: '/moved', kind: 'add' },
        { path: '/moved/m', kind: 'add' },
        { path: '/mvdir', kind: 'delete' },
      ]);
      const again = await d.get('ctr');
      try {
        assert.equal(await readFile(join(again, 'mod'), 'utf8'), 'mod+more');
        assert.equal(await codeOf(readFile(join(again, 'a'))), 'ENOENT');
        assert.equal(await codeOf(readFile(join(again, 'd3/y'))), 'ENOENT');
        assert.equal(await readFile(join(again, 'moved/m'), 'utf8'), 'm');
      } finally {
        await d.put('ctr');
      }
      assert.equal(await codeOf(stat(join(branch, FUSE_WORKDIR))), 'ENOENT', 'the work directory goes with the union');

      // applied to a sibling, the diff gives the same tree
      await d.createReadWrite('copy', 'base');
      await d.applyDiff('copy', 'base', await d.diff('ctr', 'base'));
      assert.equal(
        (await readBranch(join(d.home, 'diff', 'copy'))).map((e) => `${e.type} ${e.path}`),
        onDisk.map((e) => `${e.type} ${e.path}`),
      );
    } finally {
      await d.cleanup();
    }
  });
});

test('a layer with children mounts read-only and leaves no work directory', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    try {
      await d.create('base');
      await d.applyDiff('base', undefined, base());
      await d.create('mid', 'base');
      await d.create('top', 'mid');
      const p = await d.get('mid');
      try {
        assert.equal(await readFile(join(p, 'keep'), 'utf8'), 'keep');
        assert.is(await codeOf(writeFile(join(p, 'new'), 'x')), 'EROFS');
      } finally {
        await d.put('mid');
      }
      assert.is(await codeOf(stat(join(d.home, 'diff', 'mid', FUSE_WORKDIR))), 'ENOENT');
      // a parentless layer with children: a read-only bind mount of its branch
      const b = await d.get('base');
      try {
        assert.is(b, join(d.home, 'mnt', 'base'));
        assert.is(await codeOf(writeFile(join(b, 'new'), 'x')), 'EROFS');
      } finally {
        await d.put('base');
      }
      // without children it is its branch directory, as in moby
      await d.createReadWrite('lone');
      assert.is(await d.get('lone'), join(d.home, 'diff', 'lone'));
      await d.put('lone');
    } finally {
      await d.cleanup();
    }
  });
});

test('normalizeBranch: 0/0 devices become .wh. files, opaque xattrs .wh..wh..opq, private xattrs and the work directory go', async () => {
  await withRoot(async (root) => {
    const b = join(root, 'branch');
    await mkdir(join(b, 'dir/opq'), { recursive: true });
    await mkdir(join(b, FUSE_WORKDIR, 'work'), { recursive: true });
    await writeFile(join(b, FUSE_WORKDIR, 'work/tmp'), '');
    await mknod(join(b, 'gone'), S.IFCHR | 0o640, 0, 0);
    await mknod(join(b, 'dir/gone2'), S.IFCHR | 0o600, 0, 0);
    await mknod(join(b, 'dir/opq/.wh..opq'), S.IFCHR, 0, 0); // fuse-overlayfs's own, beside the marker
    await mknod(join(b, 'null'), S.IFCHR | 0o666, 1, 3);
    lsetxattrSync(join(b, 'dir/opq'), 'trusted.overlay.opaque', Buffer.from('y'));
    await writeFile(join(b, 'dir/opq/f'), 'f');
    await writeFile(join(b, 'copied'), 'c');
    lsetxattrSync(join(b, 'copied'), 'user.fuseoverlayfs.origin', Buffer.from('copied\0'));
    lsetxattrSync(join(b, 'copied'), 'user.keep', Buffer.from('1'));
    await symlink('/etc', join(b, 'link'));
    await chmod(b, 0o755);

    const report = await normalizeBranch(b);
    assert.equal({ whiteouts: report.whiteouts, opaqueMarkers: report.opaqueMarkers, xattrs: report.xattrs }, { whiteouts: 3, opaqueMarkers: 1, xattrs: 2 });
    const after = await readBranch(b);
    assert.equal(
      after.map((e) => `${e.type} ${e.path}${e.rdev === undefined ? '' : ` ${e.rdev}`}${e.xattrs.length === 0 ? '' : ` [${e.xattrs.join(',')}]`}`),
      ['file .wh.gone', 'file copied [user.keep]', 'dir dir', 'file dir/.wh.gone2', 'dir dir/opq', 'file dir/opq/.wh..wh..opq', 'file dir/opq/f', 'symlink link', 'char null 1:3'],
    );
    assert.is((await stat(join(b, '.wh.gone'))).mode & 0o7777, 0o640, 'the whiteout keeps the device\'s permissions');
    // a second run finds nothing to do
    const second = await normalizeBranch(b);
    assert.equal({ whiteouts: second.whiteouts, opaqueMarkers: second.opaqueMarkers, xattrs: second.xattrs }, { whiteouts: 0, opaqueMarkers: 0, xattrs: 0 });
  });
});

test.run();
