/**
 * changesFromLayerDir on layer directories the real kernel wrote: an overlay upper dir produced by
 * operations through a mounted overlay (copy-up, whiteouts, an opaque directory made by rm -r and
 * mkdir), and aufs-format branches (`.wh.` files, `.wh..wh..opq`, aufs metadata) built by hand.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { changesFromLayerDir } from '../src/changes/layer-changes.js';
import type { Change } from '../src/driver.js';

const run = promisify(execFile);
const fmt = (changes: Change[]): string[] => changes.map((c) => `${c.kind} ${c.path}`);

function build(root: string, entries: Record<string, string>): void {
  for (const [rel, value] of Object.entries(entries)) {
    const path = `${root}/${rel}`;
    if (value === '/') mkdirSync(path, { recursive: true });
    else writeFileSync(path, value);
  }
}

/** Mount an overlay of `lowers` (topmost first) with `upper`, run fn on the merged dir, unmount. */
async function withOverlay(dir: string, lowers: string[], upper: string, fn: (merged: string) => Promise<void> | void): Promise<void> {
  mkdirSync(`${dir}/work`, { recursive: true });
  mkdirSync(`${dir}/merged`, { recursive: true });
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${dir}/work`, `${dir}/merged`]);
  try {
    await fn(`${dir}/merged`);
  } finally {
    await run('umount', [`${dir}/merged`]);
  }
}

test('overlay: an upper dir written by the kernel', async () => {
  const dir = await mkdtemp('/tmp/changes-layer-');
  try {
    const l1 = `${dir}/l1`; // top lower
    const l2 = `${dir}/l2`; // bottom lower
    const upper = `${dir}/upper`;
    mkdirSync(l1);
    mkdirSync(l2);
    mkdirSync(upper);
    build(l2, {
      etc: '/',
      'etc/passwd': 'root:x:0:0\n',
      'etc/hosts': '127.0.0.1 localhost\n',
      gone: '/',
      'gone/x': 'x',
      opq: '/',
      'opq/old1': 'o',
      'opq/keep': 'k',
      'opq/sub': '/',
      'opq/sub/s1': 's',
      bin: '/',
      'bin/sh': 'sh',
    });
    // l1 deletes /gone (an overlay whiteout made by the kernel's own format: char 0/0)
    await run('mknod', [`${l1}/gone`, 'c', '0', '0']);
    build(l1, { etc: '/', 'etc/new-in-l1': 'n' });
    await run('touch', ['-r', `${l2}/etc`, `${l1}/etc`]);

    await withOverlay(dir, [l1, l2], upper, (m) => {
      appendFileSync(`${m}/etc/passwd`, 'user:x:1000:1000\n'); // copy-up
      unlinkSync(`${m}/etc/hosts`); // whiteout
      mkdirSync(`${m}/gone`); // over l1's whiteout: new, not a modify
      writeFileSync(`${m}/gone/y`, 'y');
      rmSync(`${m}/opq`, { recursive: true });
      mkdirSync(`${m}/opq`); // the kernel makes this upper dir opaque
      writeFileSync(`${m}/opq/new`, 'n');
      mkdirSync(`${m}/opq/sub`);
      chmodSync(`${m}/bin`, 0o700);
    });

    const changes = await changesFromLayerDir(upper, { whiteouts: 'overlay', lowerDirs: [l1, l2] });
    assert.equal(fmt(changes), [
      'modify /bin',
      'modify /etc',
      'delete /etc/hosts',
      'modify /etc/passwd',
      'add /gone',
      'add /gone/y',
      'modify /opq',
      'delete /opq/keep',
      'add /opq/new',
      'delete /opq/old1',
      'modify /opq/sub',
      'delete /opq/sub/s1',
    ]);

    // The same upper over no lowers (a base layer): everything it holds is new, whiteouts stay deletes.
    const alone = fmt(await changesFromLayerDir(upper, { whiteouts: 'overlay', lowerDirs: [] }));
    assert.ok(alone.includes('add /etc/passwd'));
    assert.ok(alone.includes('delete /etc/hosts'));
    assert.not.ok(alone.some((c) => c.startsWith('delete /opq/')), 'an opaque dir over nothing hides nothing');
  } finally {
    await run('umount', [`${dir}/merged`]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});

test('overlay: a directory copied up unchanged is not listed, a modified file does not list its parent', async () => {
  const dir = await mkdtemp('/tmp/changes-layer-');
  try {
    mkdirSync(`${dir}/lower`);
    mkdirSync(`${dir}/upper`);
    build(`${dir}/lower`, { a: '/', 'a/b': '/', 'a/b/c': 'c', d: '/', 'd/e': 'e' });
    await withOverlay(dir, [`${dir}/lower`], `${dir}/upper`, (m) => {
      appendFileSync(`${m}/a/b/c`, 'more');
    });
    assert.equal(fmt(await changesFromLayerDir(`${dir}/upper`, { whiteouts: 'overlay', lowerDirs: [`${dir}/lower`] })), [
      'modify /a/b/c',
    ]);
  } finally {
    await run('umount', [`${dir}/merged`]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});

test('aufs: .wh. deletions, an opaque directory, metadata skipped, lower whiteouts honoured', async () => {
  const dir = await mkdtemp('/tmp/changes-layer-');
  try {
    const top = `${dir}/top`;
    const bottom = `${dir}/bottom`;
    const rw = `${dir}/rw`;
    mkdirSync(bottom);
    mkdirSync(top);
    mkdirSync(rw);
    build(bottom, { a: '/', 'a/x': 'x', 'a/y': 'y', b: '/', 'b/z': 'z', 'b/zz': '/', 'b/zz/deep': 'd', keep: 'k', p: '/', 'p/f': 'f' });
    build(top, { p: '/', 'p/.wh.f': '' }); // the top lower deleted /p/f
    await run('touch', ['-r', `${bottom}/p`, `${top}/p`]);
    build(rw, {
      a: '/',
      'a/.wh.x': '',
      '.wh.keep': '',
      b: '/',
      'b/.wh..wh..opq': '',
      'b/n': 'n',
      '.wh..wh.plnk': '/',
      '.wh..wh.plnk/1234.5678': 'hard link store',
      '.wh..wh.aufs': '',
      new: 'new',
      p: '/',
      'p/f': 'again',
    });
    for (const d of ['a', 'b', 'p']) await run('touch', ['-r', `${bottom}/${d}`, `${rw}/${d}`]);
    const changes = await changesFromLayerDir(rw, { whiteouts: 'aufs', lowerDirs: [top, bottom] });
    assert.equal(fmt(changes), [
      'modify /a',
      'delete /a/x',
      'modify /b',
      'add /b/n',
      'delete /b/z',
      'delete /b/zz',
      'delete /keep',
      'add /new',
      'modify /p',
      'add /p/f',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('aufs: a whiteout hides the name in its own branch too, and an opaque marker at a branch root hides the branches below', async () => {
  const dir = await mkdtemp('/tmp/changes-layer-');
  try {
    const top = `${dir}/top`;
    const bottom = `${dir}/bottom`;
    const rw = `${dir}/rw`;
    for (const d of [top, bottom, rw]) mkdirSync(d);
    // bottom's own q is whited out in bottom itself (aufs's lookup tests the whiteout first)
    build(bottom, { q: 'old', '.wh.q': '', d: '/', 'd/e': 'e', 'd/.wh.e': '' });
    build(rw, { q: 'new', d: '/', 'd/e': 'again' });
    await run('touch', ['-r', `${bottom}/d`, `${rw}/d`]);
    assert.equal(fmt(await changesFromLayerDir(rw, { whiteouts: 'aufs', lowerDirs: [bottom] })), ['modify /d', 'add /d/e', 'add /q']);

    // top's root is opaque: nothing of bottom is visible, so rw's keep is new
    build(top, { '.wh..wh..opq': '' });
    build(bottom, { keep: 'k' });
    rmSync(`${rw}/q`);
    rmSync(`${rw}/d`, { recursive: true });
    build(rw, { keep: 'k2' });
    assert.equal(fmt(await changesFromLayerDir(rw, { whiteouts: 'aufs', lowerDirs: [top, bottom] })), ['add /keep']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an aborted signal stops the walk', async () => {
  const dir = await mkdtemp('/tmp/changes-layer-');
  try {
    const err = await changesFromLayerDir(dir, { whiteouts: 'overlay', lowerDirs: [], signal: AbortSignal.abort() }).catch((e: unknown) => e);
    assert.is((err as Error).name, 'AbortError');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
