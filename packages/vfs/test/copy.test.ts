/**
 * copyTree fidelity, beyond what graphtest's cases build: a tree with every file type, special mode
 * bits, owners, binary xattrs with security.capability, hard links across directories, a read-only
 * directory (that must still be filled), a mode-000 file, an empty file, a 3 MiB file and deep
 * nesting, copied and compared entry by entry - including nanosecond mtimes of files, symlinks and
 * directories (the digest compares whole seconds; a copy keeps them exactly).
 */
import { chmod, lchown, link, lutimes, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { treeDigest, diffDigests } from '@graphdriver/graphtest';
import { lgetxattrSync, lsetxattrSync, mknodSync, S } from '@graphdriver/native';
import { copyTree } from '../src/copy.js';

const CAP = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

async function buildTree(root: string): Promise<void> {
  await mkdir(join(root, 'a/b/c/d/e/f'), { recursive: true });
  await writeFile(join(root, 'a/b/c/d/e/f/deep'), 'deep');
  await writeFile(join(root, 'empty'), '');
  await writeFile(join(root, 'big'), Buffer.alloc(3 * 1024 * 1024, 7));
  await writeFile(join(root, 'setuid'), 'x');
  await chmod(join(root, 'setuid'), 0o6755);
  await writeFile(join(root, 'nomode'), 'secret');
  await chmod(join(root, 'nomode'), 0o000);
  await writeFile(join(root, 'cap'), 'capable');
  await lchown(join(root, 'cap'), 1000, 1001);
  lsetxattrSync(join(root, 'cap'), 'user.bin', Buffer.from([0, 0x80, 0xff, 0xfe]));
  lsetxattrSync(join(root, 'cap'), 'trusted.t', Buffer.from('t'));
  lsetxattrSync(join(root, 'cap'), 'security.capability', CAP);
  await mkdir(join(root, 'sticky'));
  await chmod(join(root, 'sticky'), 0o1777);
  await mkdir(join(root, 'readonly'));
  await writeFile(join(root, 'readonly/inside'), 'inside');
  await chmod(join(root, 'readonly'), 0o500);
  await writeFile(join(root, 'h1'), 'linked');
  await link(join(root, 'h1'), join(root, 'a/h2'));
  await link(join(root, 'h1'), join(root, 'a/b/h3'));
  await symlink('../h1', join(root, 'a/rel'));
  await symlink('/nonexistent/target', join(root, 'dangling'));
  lsetxattrSync(join(root, 'dangling'), 'trusted.link', Buffer.from('l'));
  await lchown(join(root, 'dangling'), 5, 6);
  mknodSync(join(root, 'chr'), S.IFCHR | 0o620, 4, 64);
  mknodSync(join(root, 'blk'), S.IFBLK | 0o600, 8, 16);
  mknodSync(join(root, 'fifo'), S.IFIFO | 0o600, 0, 0);
  mknodSync(join(root, 'sock'), S.IFSOCK | 0o755, 0, 0);
  await lutimes(join(root, 'a/rel'), 1_000_000_000.123456, 1_000_000_000.654321);
  await utimes(join(root, 'big'), 1_100_000_000, 1_100_000_000.5);
  await utimes(join(root, 'a/b'), 1_200_000_000, 1_200_000_000.25);
  await chmod(root, 0o751);
  await lchown(root, 10, 20);
}

test('copyTree keeps every entry: types, modes, owners, xattrs, links, device numbers, ns times', async () => {
  const base = await mkdtemp(join(tmpdir(), 'graphtest-vfs-copy-'));
  try {
    const src = join(base, 'src');
    const dst = join(base, 'dst');
    await mkdir(src);
    await mkdir(dst);
    await buildTree(src);
    const stats = await copyTree(src, dst);
    assert.is(stats.hardLinks, 2, 'two later names of h1 are links');

    const a = await treeDigest(src, { mtime: true });
    const b = await treeDigest(dst, { mtime: true });
    assert.is(b.digest, a.digest, diffDigests(a, b).join('\n'));
    assert.is(a.entries.length, 25);

    // Exact nanoseconds, for every entry (the digest compares whole seconds). Not atimes: reading
    // the source to copy and digest it moves them.
    for (const e of a.entries) {
      const rel = e.path === '/' ? '' : e.path;
      const s = lstatSync(src + rel, { bigint: true });
      const d = lstatSync(dst + rel, { bigint: true });
      assert.is(d.mtimeNs, s.mtimeNs, `mtime of ${e.path}`);
    }
    assert.equal(lgetxattrSync(join(dst, 'cap'), 'security.capability'), CAP, 'security.capability survives the chown');
    assert.is(lstatSync(join(dst, 'a/b/h3')).ino, lstatSync(join(dst, 'h1')).ino, 'hard links stay one inode');
    assert.is(lstatSync(join(dst, 'h1')).nlink, 3);
    assert.is(lstatSync(join(dst, 'sock')).isSocket(), true);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('copyTree refuses a source that is not a directory and follows no symlink at the top', async () => {
  const base = await mkdtemp(join(tmpdir(), 'graphtest-vfs-copy-'));
  try {
    await mkdir(join(base, 'real'));
    await writeFile(join(base, 'real/f'), 'f');
    await symlink('real', join(base, 'link'));
    await mkdir(join(base, 'dst'));
    const err = await copyTree(join(base, 'link'), join(base, 'dst')).catch((e: unknown) => e);
    assert.is((err as { code?: string }).code, 'ENOTDIR');
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('copyTree stops on an aborted signal', async () => {
  const base = await mkdtemp(join(tmpdir(), 'graphtest-vfs-copy-'));
  try {
    await mkdir(join(base, 'src/d'), { recursive: true });
    await mkdir(join(base, 'dst'));
    const err = await copyTree(join(base, 'src'), join(base, 'dst'), { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    assert.is((err as Error).name, 'AbortError');
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test.run();
