/**
 * Whiteouts in both directions and layer semantics: overlay's 0/0 devices and opaque xattrs become
 * AUFS `.wh.` entries when packing and back when unpacking (checked with real overlayfs mounts),
 * 'aufs' keeps `.wh.` files as files, and 'apply' (moby's UnpackLayer) deletes, empties opaque
 * directories, merges directories and replaces everything else.
 */
import { chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AT, S, fstatatSync, lgetxattrSync, llistxattrSync } from '@graphdriver/native';
import { InvalidArchiveError } from '../src/errors.js';
import { pack, unpack } from '../src/archive/index.js';
import {
  collect,
  craftTar,
  listTar,
  mknod,
  rejects,
  removeDir,
  run,
  scratchDir,
  setXattr,
  streamOf,
  treeDigest,
} from './fixtures-archive.js';

const stat = (path: string) => fstatatSync(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
const isOverlayWhiteout = (path: string): boolean => {
  const st = stat(path);
  return (st.mode & S.IFMT) === S.IFCHR && st.rdevMajor === 0 && st.rdevMinor === 0;
};

/** Mount an overlay (read-only when there is no upper), run fn, always unmount. */
async function withOverlay<T>(target: string, options: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(target, { recursive: true });
  await run('mount', ['-t', 'overlay', 'overlay', '-o', options, target]);
  try {
    return await fn();
  } finally {
    await run('umount', [target]);
  }
}

const noOverlayXattrs = { excludeXattr: (n: string) => n.startsWith('trusted.overlay.') };

test('pack, overlay source: a 0/0 device becomes .wh.<name>, an opaque dir gets .wh..wh..opq, overlay xattrs stay home', async () => {
  const base = scratchDir('wh-pack-overlay');
  try {
    const up = `${base}/upper`;
    mkdirSync(`${up}/op`, { recursive: true });
    mknod(`${up}/gone`, 'char', 0, 0, 0);
    lchownSync(`${up}/gone`, 7, 8);
    writeFileSync(`${up}/keep`, 'k');
    writeFileSync(`${up}/op/new`, 'n');
    chmodSync(`${up}/op`, 0o1750);
    setXattr(`${up}/op`, 'trusted.overlay.opaque', 'y');
    setXattr(`${up}/op`, 'trusted.overlay.origin', Buffer.from([0, 1, 2]));
    setXattr(`${up}/op`, 'user.kept', 'k');
    const entries = await listTar(await collect(pack(up, { sourceWhiteouts: 'overlay' })));
    assert.equal(
      entries.map((e) => [e.name, e.kind, e.mode.toString(8), e.uid, e.gid, e.size]),
      [
        ['.wh.gone', 'file', '600', 7, 8, 0],
        ['keep', 'file', '644', 0, 0, 1],
        ['op/', 'dir', '1750', 0, 0, 0],
        ['op/.wh..wh..opq', 'file', '750', 0, 0, 0],
        ['op/new', 'file', '644', 0, 0, 1],
      ],
    );
    assert.equal(entries[2]?.xattrs.map(([n]) => n), ['user.kept']);
    // With the 'aufs' default the same tree is taken literally: a device and no opaque marker.
    const literal = await listTar(await collect(pack(up)));
    assert.equal(literal.map((e) => [e.name, e.kind]), [['gone', 'char'], ['keep', 'file'], ['op/', 'dir'], ['op/new', 'file']]);
    // rootless overlay keeps its flags in user.overlay.*
    setXattr(`${up}/op`, 'user.overlay.opaque', 'y');
    const user = await listTar(await collect(pack(up, { sourceWhiteouts: 'overlay', overlayXattrPrefix: 'user' })));
    assert.ok(user.some((e) => e.name === 'op/.wh..wh..opq'));
    assert.equal(user.find((e) => e.name === 'op/')?.xattrs.map(([n]) => n), ['user.kept']);
  } finally {
    removeDir(base);
  }
});

test('the kernel’s own overlay upper, packed and applied onto the lower, equals the merged view', async () => {
  const base = scratchDir('wh-kernel');
  try {
    const lower = `${base}/lower`;
    mkdirSync(`${lower}/op/oldsub`, { recursive: true });
    writeFileSync(`${lower}/gone`, 'g');
    writeFileSync(`${lower}/keep`, 'k');
    writeFileSync(`${lower}/op/old`, 'o');
    writeFileSync(`${lower}/op/oldsub/x`, 'x');
    mkdirSync(`${base}/upper`);
    mkdirSync(`${base}/work`);
    await withOverlay(`${base}/merged`, `lowerdir=${lower},upperdir=${base}/upper,workdir=${base}/work`, async () => {
      const m = `${base}/merged`;
      const { rmSync } = await import('node:fs');
      rmSync(`${m}/gone`);
      rmSync(`${m}/op`, { recursive: true });
      mkdirSync(`${m}/op`);
      writeFileSync(`${m}/op/new`, 'n');
      writeFileSync(`${m}/added`, 'a');
    });
    assert.ok(isOverlayWhiteout(`${base}/upper/gone`), 'the kernel wrote a whiteout');
    const tar = await collect(pack(`${base}/upper`, { sourceWhiteouts: 'overlay' }));
    const names = (await listTar(tar)).map((e) => e.name);
    assert.ok(names.includes('.wh.gone') && names.includes('op/.wh..wh..opq'), names.join(' '));

    // 'apply' onto a copy of the lower gives what the overlay shows
    await run('cp', ['-a', lower, `${base}/applied`]);
    await unpack(`${base}/applied`, streamOf(tar));
    await withOverlay(`${base}/view`, `lowerdir=${base}/upper:${lower}`, async () => {
      assert.equal(treeDigest(`${base}/applied`, noOverlayXattrs), treeDigest(`${base}/view`, noOverlayXattrs));
    });
    assert.not.ok(existsSync(`${base}/applied/gone`));
    assert.equal(readdirSync(`${base}/applied/op`), ['new']);
  } finally {
    removeDir(base);
  }
});

test('unpack, overlay: .wh. entries become 0/0 devices and opaque dirs get the xattr, which overlayfs honours', async () => {
  const base = scratchDir('wh-unpack-overlay');
  try {
    const lower = `${base}/lower`;
    mkdirSync(`${lower}/op`, { recursive: true });
    writeFileSync(`${lower}/gone`, 'g');
    writeFileSync(`${lower}/gone2`, 'g');
    writeFileSync(`${lower}/keep`, 'k');
    writeFileSync(`${lower}/op/old`, 'o');
    const tar = craftTar([
      { name: '.wh.gone' },
      { name: '.wh.gone2', uid: 5, gid: 6 },
      { name: 'op/' },
      { name: 'op/.wh..wh..opq' },
      { name: 'op/new', data: 'n' },
      { name: 'deep/er/.wh.nothing' },
    ]);
    const layer = `${base}/layer`;
    mkdirSync(layer);
    const size = await unpack(layer, streamOf(tar), { whiteouts: 'overlay' });
    assert.is(size, 1);
    assert.ok(isOverlayWhiteout(`${layer}/gone`));
    assert.is(lstatSync(`${layer}/gone`).mtimeMs, 1_000_000_000_000, 'the device takes the entry\'s mtime, so a diff of it gives the same tar back');
    assert.equal([stat(`${layer}/gone2`).uid, stat(`${layer}/gone2`).gid], [5, 6]);
    assert.ok(isOverlayWhiteout(`${layer}/deep/er/nothing`), 'implied parents are created for whiteouts too');
    assert.is(lgetxattrSync(`${layer}/op`, 'trusted.overlay.opaque').toString(), 'y');
    const stray = (dir: string): string[] => readdirSync(dir, { recursive: true }).map(String).filter((n) => n.includes('.wh.'));
    assert.equal(stray(layer), []);
    await withOverlay(`${base}/view`, `lowerdir=${layer}:${lower}`, async () => {
      assert.equal(readdirSync(`${base}/view`).sort(), ['deep', 'keep', 'op']);
      assert.equal(readdirSync(`${base}/view/op`), ['new']);
    });

    // rootless overlay: the opaque flag goes to user.overlay.opaque
    const layer2 = `${base}/layer2`;
    mkdirSync(layer2);
    await unpack(layer2, streamOf(tar), { whiteouts: 'overlay', overlayXattrPrefix: 'user' });
    assert.is(lgetxattrSync(`${layer2}/op`, 'user.overlay.opaque').toString(), 'y');
    assert.not.ok(llistxattrSync(`${layer2}/op`).includes('trusted.overlay.opaque'));
  } finally {
    removeDir(base);
  }
});

test('aufs: .wh. entries are stored and packed as plain files; AUFS metadata is left out only on request', async () => {
  const base = scratchDir('wh-aufs');
  try {
    const tar = craftTar([
      { name: '.wh.gone' },
      { name: '.wh..wh..opq' },
      { name: '.wh..wh.aufs' },
      { name: '.wh..wh.plnk/' },
      { name: '.wh..wh.plnk/12.34', data: 'linked' },
      { name: 'sub/' },
      { name: 'sub/.wh..wh..opq' },
      { name: 'sub/hl', kind: 'link', linkname: '.wh..wh.plnk/12.34' },
    ]);
    const branch = `${base}/branch`;
    mkdirSync(branch);
    await unpack(branch, streamOf(tar), { whiteouts: 'aufs' });
    assert.is(readFileSync(`${branch}/.wh..wh.plnk/12.34`, 'utf8'), 'linked');
    assert.is(stat(`${branch}/sub/hl`).ino, stat(`${branch}/.wh..wh.plnk/12.34`).ino, 'a real hard link in aufs mode');
    assert.is(stat(`${branch}/.wh.gone`).mode & S.IFMT, S.IFREG);

    const all = (await listTar(await collect(pack(branch)))).map((e) => e.name);
    assert.equal(all, ['.wh..wh..opq', '.wh..wh.aufs', '.wh..wh.plnk/', '.wh..wh.plnk/12.34', '.wh.gone', 'sub/', 'sub/.wh..wh..opq', 'sub/hl']);
    const clean = (await listTar(await collect(pack(branch, { excludeAufsMetadata: true })))).map((e) => e.name);
    // moby's aufs Diff: `.wh..wh.*` and `!.wh..wh..opq`, matched at the top of the branch
    assert.equal(clean, ['.wh..wh..opq', '.wh.gone', 'sub/', 'sub/.wh..wh..opq', 'sub/hl']);
  } finally {
    removeDir(base);
  }
});

test('aufs: a whiteout of "", "." or ".." is an InvalidArchiveError as in the other modes, and nothing is stored', async () => {
  const base = scratchDir('wh-aufs-bad');
  try {
    for (const bad of ['.wh.', '.wh..', '.wh...']) {
      const branch = `${base}/branch-${bad.length}`;
      mkdirSync(branch);
      const err = await unpack(branch, streamOf(craftTar([{ name: 'sub/' }, { name: `sub/${bad}` }])), { whiteouts: 'aufs' }).catch((e: unknown) => e);
      assert.instance(err, InvalidArchiveError, `sub/${bad}`);
      assert.equal(readdirSync(`${branch}/sub`), [], `sub/${bad} was not stored`);
    }
  } finally {
    removeDir(base);
  }
});

test('overlay -> tar -> aufs -> tar -> overlay keeps every whiteout and opaque marker', async () => {
  const base = scratchDir('wh-convert');
  try {
    const up = `${base}/upper`;
    mkdirSync(`${up}/op/inner`, { recursive: true });
    mknod(`${up}/gone`, 'char', 0, 0, 0);
    mknod(`${up}/op/inner/gone`, 'char', 0, 0, 0);
    setXattr(`${up}/op`, 'trusted.overlay.opaque', 'y');
    writeFileSync(`${up}/op/inner/f`, 'f');
    const tar1 = await collect(pack(up, { sourceWhiteouts: 'overlay' }));
    mkdirSync(`${base}/aufs`);
    await unpack(`${base}/aufs`, streamOf(tar1), { whiteouts: 'aufs' });
    const tar2 = await collect(pack(`${base}/aufs`));
    mkdirSync(`${base}/overlay2`);
    await unpack(`${base}/overlay2`, streamOf(tar2), { whiteouts: 'overlay' });
    const tar3 = await collect(pack(`${base}/overlay2`, { sourceWhiteouts: 'overlay' }));
    // (sets: a device `gone` sorts after `f`, its `.wh.gone` before it)
    const shape = async (t: Buffer) => (await listTar(t)).map((e) => `${e.name} ${e.kind}`).sort();
    assert.equal(await shape(tar2), await shape(tar1));
    assert.equal(await shape(tar3), await shape(tar1));
    assert.ok(isOverlayWhiteout(`${base}/overlay2/op/inner/gone`));
    assert.is(lgetxattrSync(`${base}/overlay2/op`, 'trusted.overlay.opaque').toString(), 'y');
  } finally {
    removeDir(base);
  }
});

test('apply: whiteouts remove, opaque empties except new entries, dir-over-dir merges, anything else is replaced', async () => {
  const base = scratchDir('wh-apply');
  try {
    const root = `${base}/root`;
    for (const d of ['a/sub', 'c/oldsub', 'd/inner', 'k/keep']) mkdirSync(`${root}/${d}`, { recursive: true });
    for (const f of ['a/file1', 'a/sub/x', 'b', 'c/old1', 'c/oldsub/o', 'd/inner/z', 'e', 'f', 'k/keep/old', 'k/gone']) {
      writeFileSync(`${root}/${f}`, f);
    }
    symlinkSync('a', `${root}/sym`);
    const tar = craftTar([
      { name: 'a/', mode: 0o700, mtime: 1_000_000_000, uid: 3, gid: 4 },
      { name: 'c/' },
      { name: 'c/.wh..wh..opq' },
      { name: 'c/new', data: 'new' },
      { name: 'd', data: 'file over dir' },
      { name: 'e/', mode: 0o750 },
      { name: 'f', kind: 'symlink', linkname: 'a' },
      { name: 'g/h/i', data: 'implied parents' },
      { name: '.wh.b' },
      { name: '.wh.nonexistent' },
      { name: 'sym/' },
      { name: 'sym/inside', data: 's' },
      // the opaque marker comes after entries of this tar: they stay, old content goes (also inside kept dirs)
      { name: 'k/' },
      { name: 'k/keep/' },
      { name: 'k/keep/new', data: 'k' },
      { name: 'k/implied/deep', data: 'no dir entries above me' },
      { name: 'k/.wh..wh..opq' },
    ]);
    const size = await unpack(root, streamOf(tar));
    assert.is(size, 3 + 13 + 15 + 1 + 1 + 23);
    assert.not.ok(existsSync(`${root}/b`));
    assert.equal(readdirSync(`${root}/a`).sort(), ['file1', 'sub']);
    assert.equal([stat(`${root}/a`).mode & 0o7777, stat(`${root}/a`).mtime.sec, stat(`${root}/a`).uid], [0o700, 1_000_000_000, 3]);
    assert.equal(readdirSync(`${root}/c`), ['new']);
    assert.is(readFileSync(`${root}/d`, 'utf8'), 'file over dir');
    assert.is(stat(`${root}/e`).mode & S.IFMT, S.IFDIR);
    assert.is(stat(`${root}/e`).mode & 0o7777, 0o750);
    assert.is(stat(`${root}/f`).mode & S.IFMT, S.IFLNK);
    assert.is(readFileSync(`${root}/g/h/i`, 'utf8'), 'implied parents');
    assert.is(stat(`${root}/g/h`).mode & 0o7777, 0o755);
    assert.is(stat(`${root}/sym`).mode & S.IFMT, S.IFDIR, 'a dir entry replaces a symlink, never follows it');
    assert.equal(readdirSync(`${root}/sym`), ['inside']);
    assert.equal(readdirSync(`${root}/a`).sort(), ['file1', 'sub'], 'nothing went through the old symlink');
    assert.equal(readdirSync(`${root}/k`).sort(), ['implied', 'keep']);
    assert.equal(readdirSync(`${root}/k/keep`), ['new']);
    assert.equal(readdirSync(`${root}/k/implied`), ['deep']);

    // an opaque marker at the top empties the root except this tar's entries
    await unpack(root, streamOf(craftTar([{ name: 'only', data: '1' }, { name: '.wh..wh..opq' }])));
    assert.equal(readdirSync(root), ['only']);
  } finally {
    removeDir(base);
  }
});

test('apply: hard links into .wh..wh.plnk become copies with the stored file’s metadata (moby), nothing of it stays', async () => {
  const base = scratchDir('wh-plnk');
  try {
    const root = `${base}/root`;
    mkdirSync(root);
    const tar = craftTar([
      { name: '.wh..wh.plnk/' },
      { name: '.wh..wh.plnk/123.4', data: 'linked', mode: 0o640, uid: 7, gid: 8, mtime: 1_111_111_111 },
      { name: '.wh..wh.aufs', data: 'meta' },
      { name: 'x/hl', kind: 'link', linkname: '.wh..wh.plnk/123.4' },
      { name: 'y/hl2', kind: 'link', linkname: '/.wh..wh.plnk/123.4' },
    ]);
    const size = await unpack(root, streamOf(tar));
    assert.is(size, 10);
    for (const p of ['x/hl', 'y/hl2']) {
      assert.is(readFileSync(`${root}/${p}`, 'utf8'), 'linked');
      const st = stat(`${root}/${p}`);
      assert.equal([st.mode & 0o7777, st.uid, st.gid, st.mtime.sec], [0o640, 7, 8, 1_111_111_111]);
    }
    assert.equal(readdirSync(root).sort(), ['x', 'y']);
    await rejects(
      unpack(root, streamOf(craftTar([{ name: 'z', kind: 'link', linkname: '.wh..wh.plnk/missing' }]))),
      InvalidArchiveError,
      /plnk/,
    );
    assert.equal(readdirSync(root).sort(), ['x', 'y'], 'the stash is removed after a failure too');
  } finally {
    removeDir(base);
  }
});

test.run();
