/**
 * The tree digest: a faithful copy (cp -a) digests the same, and each thing a container would notice
 * changes it and is named by diffDigests - content, mode bits, owner, a binary xattr, a symlink
 * target, a hard link broken into two files, device numbers, an mtime (only when asked), an entry
 * added. lost+found is left out as the Go suites' readDir does.
 */
import { execFile } from 'node:child_process';
import { chmod, lchown, link, mkdir, mkdtemp, rm, symlink, unlink, utimes, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lsetxattrSync, mknodSync, S } from '@graphdriver/native';
import { diffDigests, treeDigest } from '../src/digest.js';

const run = promisify(execFile);

async function fixture(root: string): Promise<void> {
  await mkdir(join(root, 'dir/sub'), { recursive: true });
  await writeFile(join(root, 'dir/sub/file'), 'content');
  await writeFile(join(root, 'x'), Buffer.from([0, 1, 2, 255]));
  lsetxattrSync(join(root, 'x'), 'user.bin', Buffer.from([0x80, 0x81]));
  await link(join(root, 'x'), join(root, 'dir/x-link'));
  await symlink('dir/sub/file', join(root, 'sym'));
  mknodSync(join(root, 'dev'), S.IFCHR | 0o600, 1, 3);
  mknodSync(join(root, 'fifo'), S.IFIFO | 0o600, 0, 0);
  await mkdir(join(root, 'lost+found'));
  await utimes(join(root, 'x'), 1_600_000_000, 1_600_000_000);
}

async function withPair(fn: (a: string, b: string) => Promise<void>): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'graphtest-digest-'));
  try {
    const a = join(base, 'a');
    await mkdir(a);
    await fixture(a);
    await run('cp', ['-a', a, join(base, 'b')]);
    await fn(a, join(base, 'b'));
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

test('a faithful copy digests the same', async () => {
  await withPair(async (a, b) => {
    const da = await treeDigest(a, { mtime: true });
    const db = await treeDigest(b, { mtime: true });
    assert.is(db.digest, da.digest, diffDigests(da, db).join('\n'));
    assert.is(da.entries.length, 9, 'lost+found is not an entry');
    assert.ok(da.entries.find((e) => e.path === '/dir/x-link')!.line.includes('links="/dir/x-link"'), 'hard links are a group named by their first path');
  });
});

const mutations: Array<[string, (b: string) => Promise<void>, string]> = [
  ['content', (b) => writeFile(join(b, 'dir/sub/file'), 'contenT'), '/dir/sub/file'],
  ['mode', (b) => chmod(join(b, 'dir/sub'), 0o4755), '/dir/sub'],
  ['owner', (b) => lchown(join(b, 'sym'), 1, 1), '/sym'],
  ['binary xattr', async (b) => lsetxattrSync(join(b, 'x'), 'user.bin', Buffer.from([0x80, 0x82])), '/x'],
  [
    'symlink target',
    async (b) => {
      await unlink(join(b, 'sym'));
      await symlink('dir/sub/filE', join(b, 'sym'));
    },
    '/sym',
  ],
  [
    'hard link broken',
    async (b) => {
      await unlink(join(b, 'dir/x-link'));
      await copyFile(join(b, 'x'), join(b, 'dir/x-link'));
    },
    '/dir/x-link',
  ],
  [
    'device numbers',
    async (b) => {
      await unlink(join(b, 'dev'));
      mknodSync(join(b, 'dev'), S.IFCHR | 0o600, 1, 5);
    },
    '/dev',
  ],
  ['added entry', (b) => writeFile(join(b, 'new'), ''), '/new'],
];

for (const [what, mutate, path] of mutations) {
  test(`a difference in ${what} changes the digest and is named`, async () => {
    await withPair(async (a, b) => {
      await mutate(b);
      const da = await treeDigest(a);
      const db = await treeDigest(b);
      assert.is.not(db.digest, da.digest);
      const lines = diffDigests(da, db);
      assert.ok(lines.some((l) => l.includes(JSON.stringify(path))), `${path} in:\n${lines.join('\n')}`);
    });
  });
}

test('mtimes count only when asked, in whole seconds, and never the root\'s', async () => {
  await withPair(async (a, b) => {
    await utimes(join(b, 'x'), 1_600_000_000, 1_600_000_000.9);
    assert.is((await treeDigest(b, { mtime: true })).digest, (await treeDigest(a, { mtime: true })).digest, 'sub-second parts do not count');
    await utimes(join(b, 'x'), 1_600_000_000, 1_600_000_001);
    assert.is((await treeDigest(b)).digest, (await treeDigest(a)).digest, 'without mtime: equal');
    assert.is.not((await treeDigest(b, { mtime: true })).digest, (await treeDigest(a, { mtime: true })).digest, 'with mtime: different');
    await utimes(b, 1, 1);
    await utimes(join(b, 'x'), 1_600_000_000, 1_600_000_000);
    assert.is((await treeDigest(b, { mtime: true })).digest, (await treeDigest(a, { mtime: true })).digest, 'the root mtime is not compared');
  });
});

test.run();
