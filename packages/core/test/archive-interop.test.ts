/**
 * Interop with GNU tar, the reference every other tool agrees with: a tree packed by us and
 * extracted by GNU tar, and a tree packed by GNU tar (POSIX/PAX format) and unpacked by us, both
 * come out identical to the source (names, types, modes, owners, mtimes, xattrs, link targets,
 * hard links, device numbers).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pack, unpack } from '../src/archive/index.js';
import { buildRichTree, collect, removeDir, run, scratchDir, treeDigest } from './fixtures-archive.js';

const GNU_XATTRS = ['--xattrs', "--xattrs-include=*"];

test('a tree packed by us and extracted by GNU tar is identical to the source', async () => {
  const base = scratchDir('interop-out');
  try {
    buildRichTree(`${base}/src`);
    writeFileSync(`${base}/ours.tar`, await collect(pack(`${base}/src`)));
    mkdirSync(`${base}/dst`);
    await run('tar', ['-x', '-p', '--numeric-owner', ...GNU_XATTRS, '-f', `${base}/ours.tar`, '-C', `${base}/dst`]);
    assert.equal(treeDigest(`${base}/dst`), treeDigest(`${base}/src`, { exclude: (rel) => rel === 'a/sock' }));
  } finally {
    removeDir(base);
  }
});

test('a tree packed by GNU tar --format=pax is unpacked by us identically, nanoseconds included', async () => {
  const base = scratchDir('interop-in');
  try {
    buildRichTree(`${base}/src`);
    // GNU tar warns about (and leaves out) the socket; its exit status stays 0.
    await run('tar', ['-c', '--format=pax', '--numeric-owner', ...GNU_XATTRS, '-f', `${base}/gnu.tar`, '-C', `${base}/src`, '.']);
    mkdirSync(`${base}/dst`);
    const { createReadStream } = await import('node:fs');
    await unpack(`${base}/dst`, createReadStream(`${base}/gnu.tar`));
    const noSocket = { exclude: (rel: string) => rel === 'a/sock' };
    assert.equal(treeDigest(`${base}/dst`), treeDigest(`${base}/src`, noSocket));
    // GNU tar's PAX mtime records carry nanoseconds; we apply them exactly.
    assert.equal(treeDigest(`${base}/dst`, { nsec: true }), treeDigest(`${base}/src`, { ...noSocket, nsec: true }));
  } finally {
    removeDir(base);
  }
});

test('GNU tar reads our headers as the USTAR/PAX it expects (long names, unicode, long link targets)', async () => {
  const base = scratchDir('interop-list');
  try {
    buildRichTree(`${base}/src`);
    writeFileSync(`${base}/ours.tar`, await collect(pack(`${base}/src`)));
    const { stdout, stderr } = await run('tar', ['-tvf', `${base}/ours.tar`, '--numeric-owner']);
    assert.is(stderr, '');
    assert.match(stdout, new RegExp(`${'d'.repeat(60)}/${'e'.repeat(70)}/${'f'.repeat(90)}\n`));
    assert.match(stdout, new RegExp(`${'g'.repeat(200)}\n`));
    assert.match(stdout, /ünïcødé-名前\n/);
    assert.match(stdout, new RegExp(`a/longlink -> ${'t'.repeat(150)}\n`));
    assert.match(stdout, /hrw-r-----\s+0\/0\s+0 \S+ \S+ hl\/small-link link to a\/small\n/);
    assert.match(stdout, /crw--w----\s+0\/0\s+1,3 \S+ \S+ dev\/char\n/);
  } finally {
    removeDir(base);
  }
});

test.run();
