/** FsMagic: the table itself, and statfs of real tmpfs, ext4, xfs, btrfs and overlay mounts. */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FsMagic, FsNames, fsNameOf, getFsMagic, getFsName, UNKNOWN_FS_NAME } from '../src/fs/fsmagic.js';
import { withScratchFs } from '@graphdriver/testkit';

const run = promisify(execFile);

test('every magic has one name and no two names share a magic', () => {
  const values = Object.values(FsMagic);
  assert.is(new Set(values).size, values.length, 'no duplicate magic numbers');
  for (const [key, magic] of Object.entries(FsMagic)) assert.ok(FsNames.has(magic), `${key} has a name`);
  assert.is(FsNames.size, values.length);
});

test('moby\'s names are kept as moby prints them', () => {
  assert.is(fsNameOf(0xef53), 'extfs');
  assert.is(fsNameOf(0x794c7630), 'overlayfs');
  assert.is(fsNameOf(0x58465342), 'xfs');
  assert.is(fsNameOf(0x9123683e), 'btrfs');
  assert.is(fsNameOf(0x01021994), 'tmpfs');
  assert.is(fsNameOf(0), 'unsupported');
  assert.is(fsNameOf(0x12345678), UNKNOWN_FS_NAME);
  // statfs may report a magic with the sign bit set as a negative number on some platforms.
  assert.is(fsNameOf(0x9123683e | 0), 'btrfs');
});

test('tmpfs and overlay mounts', async () => {
  const dir = await mkdtemp('/tmp/fs-fsmagic-');
  const mounted: string[] = [];
  try {
    const t = join(dir, 'tmp');
    await mkdir(t);
    await run('mount', ['-t', 'tmpfs', 'fsmagic', t]);
    mounted.push(t);
    assert.is(await getFsMagic(t), FsMagic.Tmpfs);
    assert.is(await getFsName(t), 'tmpfs');

    for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(t, d));
    const merged = join(t, 'merged');
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${t}/lower,upperdir=${t}/upper,workdir=${t}/work`, merged]);
    mounted.push(merged);
    assert.is(await getFsMagic(merged), FsMagic.Overlay);
    assert.is(await getFsName(merged), 'overlayfs');
    // The directory the overlay sits on is still tmpfs.
    assert.is(await getFsName(join(t, 'upper')), 'tmpfs');
  } finally {
    for (const p of mounted.reverse()) await run('umount', [p]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});

for (const [fstype, magic, name, size] of [
  ['ext4', FsMagic.Extfs, 'extfs', '64M'],
  ['xfs', FsMagic.Xfs, 'xfs', '320M'],
  ['btrfs', FsMagic.Btrfs, 'btrfs', '256M'],
] as const) {
  test(`${fstype} scratch filesystem is ${name}`, async () => {
    await withScratchFs(fstype, { size }, async (fs) => {
      assert.is(await getFsMagic(fs.path), magic);
      assert.is(await getFsName(fs.path), name);
      await mkdir(join(fs.path, 'sub'));
      assert.is(await getFsName(join(fs.path, 'sub')), name);
    });
  });
}

test('a path that does not exist is an ENOENT, not a guess', async () => {
  try {
    await getFsMagic('/tmp/fs-fsmagic-no-such-dir/x');
    assert.unreachable('should reject');
  } catch (err) {
    assert.is((err as NodeJS.ErrnoException).code, 'ENOENT');
  }
});

test.run();
