/**
 * The whole-layer diff, changes and size read from the branches (merged.ts) against the same read
 * through the mounted union (core's NaiveDiffDriver, what moby does): a stack with whiteouts of files
 * and directories, opaque directories (the root's too), a directory replaced by a file and a file by
 * a directory, hard links, symlinks and xattrs must give the same tar entries, the same change list
 * and the same size; and a whole tree applied into a fresh child (laid into its empty branch) must
 * show what the union of the source shows.
 */
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NaiveDiffDriver } from '@graphdriver/core';
import { assertSameTree, buildTar, treeDigest, type TarEntry as BuildEntry } from '@graphdriver/graphtest';
import type { AufsDriver } from '../src/index.js';
import { start, tarEntries, withRoot } from './helpers.js';

const layers: BuildEntry[][] = [
  [
    { name: 'keep', type: 'file', data: 'keep' },
    { name: 'gone', type: 'file', data: 'gone' },
    { name: 'dir', type: 'dir', mode: 0o755 },
    { name: 'dir/a', type: 'file', data: 'a' },
    { name: 'dir/sub', type: 'dir', mode: 0o700 },
    { name: 'dir/sub/deep', type: 'file', data: 'deep' },
    { name: 'becomes-file', type: 'dir', mode: 0o755 },
    { name: 'becomes-file/x', type: 'file', data: 'x' },
    { name: 'becomes-dir', type: 'file', data: 'f' },
    { name: 'opq', type: 'dir', mode: 0o755 },
    { name: 'opq/old', type: 'file', data: 'old' },
    { name: 'link-src', type: 'file', data: 'linked', mode: 0o640 },
    { name: 'hard', type: 'link', linkname: 'link-src' },
    { name: 'sym', type: 'symlink', linkname: 'keep' },
  ],
  [
    { name: '.wh.gone', type: 'file' },
    { name: 'dir', type: 'dir', mode: 0o750 },
    { name: 'dir/.wh.sub', type: 'file' },
    { name: 'dir/b', type: 'file', data: 'b' },
    { name: '.wh.becomes-file', type: 'file' },
    { name: 'becomes-file', type: 'file', data: 'now a file' },
    { name: 'becomes-dir', type: 'dir', mode: 0o711 },
    { name: 'becomes-dir/in', type: 'file', data: 'in' },
    { name: 'opq', type: 'dir', mode: 0o755 },
    { name: 'opq/.wh..wh..opq', type: 'file' },
    { name: 'opq/new', type: 'file', data: 'new' },
  ],
  [
    { name: 'dir', type: 'dir', mode: 0o755 },
    { name: 'dir/sub', type: 'dir', mode: 0o755 },
    { name: 'dir/sub/again', type: 'file', data: 'again' },
    { name: 'keep', type: 'file', data: 'kept, changed' },
    { name: '.wh..wh.plnk', type: 'dir', mode: 0o700 },
  ],
];

async function buildStack(d: AufsDriver, top: BuildEntry[] = []): Promise<string> {
  let parent: string | undefined;
  const all = top.length === 0 ? layers : [...layers, top];
  for (let i = 0; i < all.length; i++) {
    const id = `l${i}`;
    await d.create(id, parent);
    await d.applyDiff(id, parent, Readable.from([buildTar(all[i]!)]));
    parent = id;
  }
  return parent!;
}

async function sameAsTheUnion(d: AufsDriver, top: string): Promise<void> {
  const naive = new NaiveDiffDriver(d);
  const viaBranches = await tarEntries(await d.diff(top));
  const viaUnion = await tarEntries(await naive.diff(top));
  const shape = (es: typeof viaBranches): string[] =>
    es.map((e) => `${e.kind} ${e.name} ${e.mode.toString(8)} ${e.size}${e.linkname === '' ? '' : ` -> ${e.linkname}`} [${e.xattrs.map(([n]) => n).join(',')}]`);
  assert.equal(shape(viaBranches), shape(viaUnion));
  assert.equal(await d.changes(top), await naive.changes(top));
  assert.is(await d.diffSize(top), await naive.diffSize(top));
}

test('whole-layer diff, changes and size from the branches equal what the mounted union gives', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    try {
      const top = await buildStack(d);
      await sameAsTheUnion(d, top);
      // a writable layer with changes made through its union, still mounted while diffed
      await d.createReadWrite('ctr', top);
      const p = await d.get('ctr');
      try {
        const fs = await import('node:fs/promises');
        await fs.rm(`${p}/dir`, { recursive: true });
        await fs.mkdir(`${p}/dir`);
        await fs.writeFile(`${p}/dir/fresh`, 'fresh');
        await fs.appendFile(`${p}/keep`, '+ctr');
        await sameAsTheUnion(d, 'ctr');
      } finally {
        await d.put('ctr');
      }
      await sameAsTheUnion(d, 'ctr');
    } finally {
      await d.cleanup();
    }
  });
});

test('an opaque root in a branch hides every branch below it, as the union does', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    try {
      const top = await buildStack(d, [
        { name: '.wh..wh..opq', type: 'file' },
        { name: 'only', type: 'file', data: 'only' },
      ]);
      await sameAsTheUnion(d, top);
      assert.equal((await d.changes(top)).map((c) => c.path), ['/only']);
    } finally {
      await d.cleanup();
    }
  });
});

test('a whole tree applied into a fresh child with parents (laid into its empty branch) shows what applying it through the union shows', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    try {
      const top = await buildStack(d);
      await d.create('via-branch', 'l0');
      await d.create('via-union', 'l0');
      const size = await d.applyDiff('via-branch', undefined, await d.diff(top));
      const naiveSize = await new NaiveDiffDriver(d).applyDiff('via-union', undefined, await d.diff(top));
      assert.is(size, naiveSize);
      assert.is(size, await d.diffSize(top));
      const want = await treeDigest(await d.get('via-union'), { mtime: true });
      await d.put('via-union');
      const got = await treeDigest(await d.get('via-branch'), { mtime: true });
      await d.put('via-branch');
      assertSameTree(got, want, 'the child with the whole tree laid into its branch');
      // what was below and not in the tree still shows, in both
      assert.ok(want.entries.some((e) => e.path === '/gone'));
    } finally {
      await d.cleanup();
    }
  });
});

test.run();
