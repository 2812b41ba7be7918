/**
 * exportChanges: the tar of a change list, and the round trip that matters - the changes an
 * overlay upper dir holds (whiteouts, an opaque directory) exported from the merged view and
 * applied to a copy of the lowers give exactly the merged view.
 */
import { execFile } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listTar, unpack } from '../src/archive/index.js';
import { changesDirs, changesFromLayerDir, changesSize, exportChanges } from '../src/changes/index.js';

const run = promisify(execFile);

function build(root: string, entries: Record<string, string>): void {
  for (const [rel, value] of Object.entries(entries)) {
    const path = `${root}/${rel}`;
    if (value === '/') mkdirSync(path, { recursive: true });
    else writeFileSync(path, value);
  }
}

async function names(stream: Readable): Promise<string[]> {
  return (await listTar(stream)).map((e) => `${e.kind} ${e.name}`);
}

test('a change list as a tar: sorted, deletes as .wh. entries, directories without their contents, vanished entries left out', async () => {
  const dir = await mkdtemp('/tmp/changes-export-');
  try {
    build(dir, { d: '/', 'd/keep': 'not listed', 'd/new': 'n', 'f.txt': 'f' });
    const tar = exportChanges(dir, [
      { path: '/f.txt', kind: 'modify' },
      { path: '/d/new', kind: 'add' },
      { path: '/d', kind: 'modify' },
      { path: '/d/gone', kind: 'delete' },
      { path: '/vanished', kind: 'add' },
      { path: '/old', kind: 'delete' },
    ]);
    assert.equal(await names(tar), ['dir d/', 'file d/.wh.gone', 'file d/new', 'file f.txt', 'file .wh.old']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('overlay upper -> changes -> tar -> applied to the lowers = the merged view', async () => {
  const dir = await mkdtemp('/tmp/changes-export-');
  const mounts: string[] = [];
  try {
    const [l1, l2, upper, lowerCopy] = ['l1', 'l2', 'upper', 'lowercopy'].map((n) => `${dir}/${n}`) as [string, string, string, string];
    for (const d of [l1, l2, upper, `${dir}/work`, `${dir}/merged`, `${dir}/lowerview`]) mkdirSync(d);
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
      'opq/sub/s2': '/',
      'opq/sub/s2/deep': 'd',
      bin: '/',
      'bin/sh': 'sh',
    });
    await run('mknod', [`${l1}/gone`, 'c', '0', '0']);
    build(l1, { etc: '/', 'etc/new-in-l1': 'n' });

    // the lowers as a container would see them, copied: what the tar is applied to
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${l1}:${l2}`, `${dir}/lowerview`]);
    mounts.push(`${dir}/lowerview`);
    await run('cp', ['-a', `${dir}/lowerview`, lowerCopy]);

    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${l1}:${l2},upperdir=${upper},workdir=${dir}/work`, `${dir}/merged`]);
    mounts.push(`${dir}/merged`);
    const m = `${dir}/merged`;
    appendFileSync(`${m}/etc/passwd`, 'user:x:1000:1000\n');
    unlinkSync(`${m}/etc/hosts`);
    mkdirSync(`${m}/gone`);
    writeFileSync(`${m}/gone/y`, 'y');
    rmSync(`${m}/opq`, { recursive: true });
    mkdirSync(`${m}/opq`);
    writeFileSync(`${m}/opq/new`, 'n');
    mkdirSync(`${m}/opq/sub`);
    writeFileSync(`${m}/opq/sub/s1`, 'rewritten');
    chmodSync(`${m}/bin`, 0o700);

    const changes = await changesFromLayerDir(upper, { whiteouts: 'overlay', lowerDirs: [l1, l2] });
    const tarNames = await names(exportChanges(m, changes));
    assert.ok(tarNames.includes('file opq/sub/.wh.s2'), 'what the opaque dir hid is deleted explicitly');
    assert.not.ok(tarNames.some((n) => n.includes('.wh..wh.')), 'no opaque marker is needed');

    const applied = await unpack(lowerCopy, exportChanges(m, changes), { whiteouts: 'apply' });
    assert.is(applied, await changesSize(m, changes), 'unpack counts what changesSize counts');
    assert.equal(await changesDirs(lowerCopy, m), [], 'the applied copy is the merged view');
  } finally {
    for (const mp of mounts.reverse()) await run('umount', [mp]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});

test('an aborted export ends the stream with an AbortError', async () => {
  const dir = await mkdtemp('/tmp/changes-export-');
  try {
    build(dir, { a: 'a' });
    const err = await names(exportChanges(dir, [{ path: '/a', kind: 'add' }], { signal: AbortSignal.abort() })).catch((e: unknown) => e);
    assert.is((err as Error).name, 'AbortError');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
