/**
 * changesSize: the bytes a change list weighs, counted as the exported tar carries them (regular
 * files once per inode; directories, symlinks and deletes weigh nothing).
 */
import { linkSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { changesSize } from '../src/changes/size.js';
import { changesDirs } from '../src/changes/changes-dirs.js';

test('regular files count, hard links once, dirs, symlinks, deletes and vanished entries not', async () => {
  const dir = await mkdtemp('/tmp/changes-size-');
  try {
    mkdirSync(`${dir}/d`);
    writeFileSync(`${dir}/d/a`, Buffer.alloc(1000));
    writeFileSync(`${dir}/b`, Buffer.alloc(234));
    linkSync(`${dir}/b`, `${dir}/d/b-link`);
    symlinkSync('a-rather-long-symlink-target-that-has-a-size', `${dir}/s`);
    const size = await changesSize(dir, [
      { path: '/d', kind: 'modify' },
      { path: '/d/a', kind: 'add' },
      { path: '/b', kind: 'add' },
      { path: '/d/b-link', kind: 'add' },
      { path: '/s', kind: 'add' },
      { path: '/gone', kind: 'modify' },
      { path: '/d/deleted', kind: 'delete' },
    ]);
    assert.is(size, 1234);
    // with a whole tree as the list (no parent), the same files
    assert.is(await changesSize(dir, await changesDirs(dir)), 1234);
    assert.is(await changesSize(`${dir}/`, [{ path: '/d/a', kind: 'modify' }]), 1000, 'a trailing slash is fine');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
