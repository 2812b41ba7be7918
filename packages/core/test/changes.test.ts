/**
 * changesDirs: two real trees on the root filesystem, the second a `cp -a` copy of the first
 * mutated the ways a container mutates files (moby's TestChangesDirsMutated, extended with the
 * changes stat alone cannot see: capabilities, user xattrs, symlink targets, owners).
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { changesDirs } from '../src/changes/changes-dirs.js';
import { compareBytewise, sortChanges } from '../src/changes/paths.js';
import type { Change } from '../src/driver.js';

const run = promisify(execFile);

async function scratch(): Promise<string> {
  return mkdtemp('/tmp/changes-test-');
}

const fmt = (changes: Change[]): string[] => changes.map((c) => `${c.kind} ${c.path}`);

/** Write files, dirs and symlinks under root: a value ending in '/' is a dir, '-> x' a symlink. */
function build(root: string, entries: Record<string, string>): void {
  for (const [rel, value] of Object.entries(entries)) {
    const path = `${root}/${rel}`;
    if (value === '/') mkdirSync(path, { recursive: true });
    else if (value.startsWith('-> ')) symlinkSync(value.slice(3), path);
    else writeFileSync(path, value);
  }
}

test('a mutated copy: adds, deletes, modifies, parents, and what stat does not show', async () => {
  const dir = await scratch();
  try {
    const oldDir = `${dir}/old`;
    const newDir = `${dir}/new`;
    mkdirSync(oldDir);
    build(oldDir, {
      'a.txt': 'a',
      dir1: '/',
      'dir1/f1': 'one',
      'dir1/f2': 'two',
      'dir1/sub': '/',
      'dir1/sub/deep': 'deep',
      dir2: '/',
      'dir2/x': 'x',
      dir3: '/',
      dir4: '/',
      'dir4/q': 'q',
      link: '-> target1',
      caps: 'binary',
      same: 'same',
      'f.time': 't',
      'g.time': 'g',
      todir: 'file',
      tofile: '/',
      'tofile/c': 'c',
      userx: 'u',
    });
    chmodSync(`${oldDir}/dir3`, 0o755);
    utimesSync(`${oldDir}/f.time`, 1_600_000_000, 1_600_000_000); // whole second, as after a tar round trip
    utimesSync(`${oldDir}/g.time`, 1_600_000_000.25, 1_600_000_000.25);
    await run('setfattr', ['-n', 'user.k', '-v', 'v1', `${oldDir}/userx`]);
    await run('cp', ['-a', oldDir, newDir]);

    unlinkSync(`${newDir}/dir1/f2`);
    const f1 = statSync(`${newDir}/dir1/f1`);
    writeFileSync(`${newDir}/dir1/f1`, 'ONE'); // same size
    utimesSync(`${newDir}/dir1/f1`, f1.atime, new Date(f1.mtimeMs + 2000));
    build(newDir, { 'dir2/new': 'n', newdir: '/', 'newdir/n1': '1', 'newdir/sub': '/', 'newdir/sub/n2': '2' });
    unlinkSync(`${newDir}/link`);
    symlinkSync('target2', `${newDir}/link`); // same length, same mtime (to the ns): only the target differs
    await run('touch', ['-h', '-r', `${oldDir}/link`, `${newDir}/link`]);
    // cap_net_raw+ep, VFS_CAP_REVISION_2: a setxattr changes ctime only
    await run('setfattr', ['-n', 'security.capability', '-v', '0x0100000200200000000000000000000000000000', `${newDir}/caps`]);
    utimesSync(`${newDir}/f.time`, 1_600_000_000.5, 1_600_000_000.5); // same second: tolerated
    utimesSync(`${newDir}/g.time`, 1_600_000_000.5, 1_600_000_000.5); // both sub-second and different
    rmSync(`${newDir}/todir`);
    build(newDir, { todir: '/', 'todir/c': 'c' });
    rmSync(`${newDir}/tofile`, { recursive: true });
    build(newDir, { tofile: 'now a file' });
    await run('setfattr', ['-n', 'user.k', '-v', 'v2', `${newDir}/userx`]);
    chmodSync(`${newDir}/dir3`, 0o700);
    chownSync(`${newDir}/dir4/q`, 1000, 1000);

    const changes = await changesDirs(newDir, oldDir);
    assert.equal(fmt(changes), [
      'modify /caps',
      'modify /dir1',
      'modify /dir1/f1',
      'delete /dir1/f2',
      'modify /dir2',
      'add /dir2/new',
      'modify /dir3',
      'modify /dir4',
      'modify /dir4/q',
      'modify /g.time',
      'modify /link',
      'add /newdir',
      'add /newdir/n1',
      'add /newdir/sub',
      'add /newdir/sub/n2',
      'modify /todir',
      'add /todir/c',
      'modify /tofile',
      'modify /userx',
    ]);

    // The copy compared with itself has no changes; with its original swapped, adds become deletes.
    assert.equal(await changesDirs(oldDir, oldDir), []);
    const reverse = fmt(await changesDirs(oldDir, newDir));
    assert.ok(reverse.includes('delete /newdir'));
    assert.ok(reverse.includes('add /dir1/f2'));
    assert.not.ok(reverse.some((c) => c.startsWith('delete /newdir/')), 'descendants of a delete are not listed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('without an old tree every entry is an add, sorted in byte order', async () => {
  const dir = await scratch();
  try {
    build(dir, { a: '/', 'a/b': 'b', 'a.txt': 'x', '\u{1F600}': 'emoji', '\uFFFD': 'bmp', z: '-> nowhere' });
    const changes = await changesDirs(dir);
    // '.' (0x2e) sorts before '/' (0x2f); U+FFFD (EF BF BD) before U+1F600 (F0 9F 98 80) in UTF-8
    assert.equal(fmt(changes), ['add /a', 'add /a.txt', 'add /a/b', 'add /z', 'add /\uFFFD', 'add /\u{1F600}']);
    assert.equal(await changesDirs(dir, ''), changes, "'' means no parent, as in moby");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('hard links shared by both trees are the same file: no change', async () => {
  const dir = await scratch();
  try {
    mkdirSync(`${dir}/old`);
    build(`${dir}/old`, { d: '/', 'd/f': 'content', g: 'x' });
    await run('cp', ['-al', `${dir}/old`, `${dir}/new`]);
    assert.equal(await changesDirs(`${dir}/new`, `${dir}/old`), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('sortChanges and compareBytewise follow Go string order', () => {
  const list: Change[] = [
    { path: '/a/b', kind: 'add' },
    { path: '/a.txt', kind: 'add' },
    { path: '/x', kind: 'add' },
    { path: '/x', kind: 'delete' },
    { path: '/a', kind: 'modify' },
  ];
  assert.equal(fmt(sortChanges(list)), ['modify /a', 'add /a.txt', 'add /a/b', 'delete /x', 'add /x']);
  assert.ok(compareBytewise('\uFFFD', '\u{1F600}') < 0);
  assert.ok(compareBytewise('\u{1F600}', '\uFFFE') > 0);
  assert.ok(compareBytewise('ab', 'abc') < 0);
  assert.is(compareBytewise('same', 'same'), 0);
});

test('an aborted signal stops the walk with an AbortError', async () => {
  const dir = await scratch();
  try {
    build(dir, { f: 'x' });
    const err = await changesDirs(dir, undefined, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    assert.instance(err, Error);
    assert.is((err as Error).name, 'AbortError');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('10,000 files in 100 directories: the right 30 changes, fast', async () => {
  const dir = await scratch();
  try {
    const oldDir = `${dir}/old`;
    mkdirSync(oldDir);
    for (let d = 0; d < 100; d++) {
      mkdirSync(`${oldDir}/d${d}`);
      for (let f = 0; f < 100; f++) writeFileSync(`${oldDir}/d${d}/f${f}`, `content of ${d}/${f}\n`);
    }
    await run('cp', ['-a', oldDir, `${dir}/new`]);
    const expected: Change[] = [];
    for (let k = 0; k < 10; k++) {
      const d = k * 10;
      writeFileSync(`${dir}/new/d${d}/f1`, 'changed, and longer than before\n');
      unlinkSync(`${dir}/new/d${d}/f2`);
      writeFileSync(`${dir}/new/d${d}/added`, 'new\n');
      expected.push(
        { path: `/d${d}`, kind: 'modify' },
        { path: `/d${d}/added`, kind: 'add' },
        { path: `/d${d}/f1`, kind: 'modify' },
        { path: `/d${d}/f2`, kind: 'delete' },
      );
    }
    sortChanges(expected);
    const times: number[] = [];
    let changes: Change[] = [];
    for (let round = 0; round < 3; round++) {
      const t0 = performance.now();
      changes = await changesDirs(`${dir}/new`, oldDir);
      times.push(performance.now() - t0);
    }
    assert.equal(changes, expected);
    const best = Math.min(...times);
    console.log(`  changesDirs 2 x 10,100 entries: ${times.map((t) => t.toFixed(0)).join(' / ')} ms`);
    // moby's vfs diff of the same shape takes 250-350 ms including the tar; 10x slack for a busy CI box.
    assert.ok(best < 1500, `changesDirs took ${best} ms`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
