/**
 * The whole of a layer with lowers (diff, changes and diffSize against no parent) is read from the
 * diff directories without a mount (merged-view.ts). It must be exactly what the mount shows: the
 * tar is compared byte for byte with pack() of the mounted layer, the changes and the size with
 * core's NaiveDiffDriver, over a stack with every way a layer can hide or merge what is below it.
 */
import { chmodSync, linkSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lsetxattrSync, mknodSync, S } from '@graphdriver/native';
import { NaiveDiffDriver, pack } from '@graphdriver/core';
import { readStream, start, withRoot } from './helpers.js';

test('diff, changes and diffSize of a whole stack without a mount equal what the mount shows', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    assert.ok(d.features.nativeDiff.ok);
    await d.create('l1');
    let p = await d.get('l1');
    mkdirSync(join(p, 'dir/sub'), { recursive: true });
    writeFileSync(join(p, 'dir/sub/deep'), 'deep');
    writeFileSync(join(p, 'dir/a'), 'a1');
    writeFileSync(join(p, 'replaced-by-dir'), 'file');
    mkdirSync(join(p, 'replaced-by-file'));
    writeFileSync(join(p, 'replaced-by-file/inner'), 'x');
    mkdirSync(join(p, 'opaque-me'));
    writeFileSync(join(p, 'opaque-me/old'), 'old');
    mkdirSync(join(p, 'gap'));
    writeFileSync(join(p, 'gap/from-1'), '1');
    writeFileSync(join(p, 'linked'), 'hard');
    linkSync(join(p, 'linked'), join(p, 'linked-too'));
    symlinkSync('dir/a', join(p, 'sym'));
    mknodSync(join(p, 'fifo'), S.IFIFO | 0o644, 0, 0);
    mknodSync(join(p, 'null'), S.IFCHR | 0o666, 1, 3);
    writeFileSync(join(p, 'xattr'), 'x');
    lsetxattrSync(join(p, 'xattr'), 'user.k', Buffer.from([0, 1, 255]));
    writeFileSync(join(p, 'ünï'), 'utf8 name');
    await d.put('l1');

    await d.create('l2', 'l1');
    p = await d.get('l2');
    writeFileSync(join(p, 'dir/a'), 'a2');
    rmSync(join(p, 'dir/sub'), { recursive: true }); // a whiteout of a directory
    rmSync(join(p, 'replaced-by-dir'));
    mkdirSync(join(p, 'replaced-by-dir'));
    writeFileSync(join(p, 'replaced-by-dir/now'), 'dir');
    rmSync(join(p, 'replaced-by-file'), { recursive: true });
    writeFileSync(join(p, 'replaced-by-file'), 'file now');
    rmSync(join(p, 'opaque-me'), { recursive: true });
    mkdirSync(join(p, 'opaque-me')); // made over a whiteout: opaque
    writeFileSync(join(p, 'opaque-me/new'), 'new');
    chmodSync(join(p, 'linked'), 0o600); // copies one name of the hard-linked pair up
    renameSync(join(p, 'fifo'), join(p, 'fifo2'));
    await d.put('l2');

    await d.create('l3', 'l2');
    p = await d.get('l3');
    writeFileSync(join(p, 'gap/from-3'), '3'); // l2 never touched gap/: a gap in the stack
    mkdirSync(join(p, 'dir/sub'));
    writeFileSync(join(p, 'dir/sub/again'), 'again');
    unlinkSync(join(p, 'null'));
    chmodSync(join(p, 'dir'), 0o711);
    await d.put('l3');

    const naive = new NaiveDiffDriver(d);
    for (const id of ['l2', 'l3']) {
      const mounted = await d.get(id);
      let viaMount: Buffer;
      try {
        viaMount = await readStream(pack(mounted));
      } finally {
        await d.put(id);
      }
      const direct = await readStream(await d.diff(id));
      assert.ok(direct.equals(viaMount), `${id}: the tar of the merged view is the tar of the mount (${direct.length} / ${viaMount.length} bytes)`);
      assert.equal(
        (await d.changes(id)).map((c) => `${c.kind} ${c.path}`).sort(),
        (await naive.changes(id)).map((c) => `${c.kind} ${c.path}`).sort(),
        `${id}: changes`,
      );
      assert.is(await d.diffSize(id), await naive.diffSize(id), `${id}: diffSize`);
    }
    await d.cleanup();
  });
});

test('an opaque root of an upper layer (a tar with a top-level .wh..wh..opq) hides the lowers as the mount does', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    await d.create('base');
    const b = await d.get('base');
    writeFileSync(join(b, 'below'), 'b');
    await d.put('base');
    await d.create('top', 'base');
    const { Readable } = await import('node:stream');
    const { buildTar } = await import('@graphdriver/graphtest');
    await d.applyDiff('top', 'base', Readable.from([buildTar([{ name: '.wh..wh..opq', type: 'file' }, { name: 'above', type: 'file', data: 'a' }])]));
    const mounted = await d.get('top');
    let viaMount: Buffer;
    try {
      viaMount = await readStream(pack(mounted));
    } finally {
      await d.put('top');
    }
    assert.ok((await readStream(await d.diff('top'))).equals(viaMount));
    await d.cleanup();
  });
});

test('applyDiff of a whole tree (no parent) into an empty layer with lowers: the view extracting through the mount gives', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    const { treeDigest, assertSameTree } = await import('@graphdriver/graphtest');
    const { Readable } = await import('node:stream');
    // the lowers: a usrmerge symlink, a directory and a file the tree will replace, a file it keeps
    await d.create('base');
    let p = await d.get('base');
    mkdirSync(join(p, 'usr/lib'), { recursive: true });
    writeFileSync(join(p, 'usr/lib/libc'), 'libc');
    symlinkSync('usr/lib', join(p, 'lib'));
    mkdirSync(join(p, 'was-dir'));
    writeFileSync(join(p, 'was-dir/inner'), 'x');
    writeFileSync(join(p, 'was-file'), 'x');
    writeFileSync(join(p, 'kept'), 'kept below');
    await d.put('base');
    // the tree: lib a real directory, was-dir a file, was-file a directory, hard links
    await d.create('tree');
    p = await d.get('tree');
    mkdirSync(join(p, 'lib'));
    writeFileSync(join(p, 'lib/ld'), 'ld');
    writeFileSync(join(p, 'was-dir'), 'now a file');
    mkdirSync(join(p, 'was-file'));
    writeFileSync(join(p, 'was-file/inner'), 'y');
    writeFileSync(join(p, 'h1'), 'linked');
    linkSync(join(p, 'h1'), join(p, 'h2'));
    await d.put('tree');
    const tar = await readStream(await d.diff('tree'));

    await d.create('native', 'base');
    await d.create('mounted', 'base');
    const applied = await d.applyDiff('native', undefined, Readable.from([tar]));
    assert.ok(readdirSync(join(root, 'overlay', 'native', 'diff')).includes('lib'), 'extracted into the upper directly');
    const viaMount = await new NaiveDiffDriver(d).applyDiff('mounted', undefined, Readable.from([tar]));
    assert.is(applied, viaMount);
    const digest = async (id: string) => {
      const m = await d.get(id);
      try {
        return await treeDigest(m, { mtime: true });
      } finally {
        await d.put(id);
      }
    };
    assertSameTree(await digest('native'), await digest('mounted'), 'the same view');
    await d.cleanup();
  });
});

test.run();
