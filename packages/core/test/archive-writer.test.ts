/**
 * LayerTarWriter's output side on its own: the one-block header fast path writes exactly what the
 * general encoder writes, an added entry goes out without waiting for more adds, the writer stops
 * while the consumer is behind (and memory stays bounded), and a failed add leaves nothing of
 * itself in the tar.
 */
import { lchownSync, linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LayerTarWriter, listTar, pack, unpack } from '../src/archive/index.js';
import { BLOCK_SIZE, encodeHeader, encodeUstarInto, fitsOneBlock, type EntryHeader } from '../src/archive/header.js';
import { collect, rejects, removeDir, scratchDir, setXattr, streamOf, treeDigest } from './fixtures-archive.js';

const base: EntryHeader = {
  name: 'a', kind: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: [],
};

test('the one-block fast path writes the bytes encodeHeader writes, for every field at its limits', () => {
  const values = {
    name: ['a', 'dir/', 'x'.repeat(99), 'y'.repeat(100), 'z'.repeat(101), 'ü', 'nul\0name', `${'p'.repeat(150)}/${'q'.repeat(99)}`],
    kind: ['file', 'dir', 'symlink', 'link', 'char', 'block', 'fifo'] as const,
    mode: [0, 0o644, 0o7777, 0o170755],
    uid: [0, 1, 8 ** 7 - 1, 8 ** 7, 2 ** 32],
    gid: [0, 65534, 8 ** 7 - 1, 8 ** 7],
    size: [0, 1, 511, 512, 8 ** 11 - 1, 8 ** 11],
    mtime: [0, 1, 1_700_000_000, 8 ** 11 - 1, 8 ** 11, -1],
    linkname: ['', 't', 'l'.repeat(100), 'l'.repeat(101), 'é'],
    devmajor: [0, 1, 8 ** 7 - 1],
    devminor: [0, 255, 8 ** 7 - 1],
  };
  let fast = 0;
  let checked = 0;
  const dirty = Buffer.alloc(BLOCK_SIZE + 7, 0xaa); // encodeUstarInto must overwrite every byte
  for (const [field, list] of Object.entries(values)) {
    for (const value of list) {
      const h = { ...base, [field]: value } as EntryHeader;
      const expected = encodeHeader(h);
      checked++;
      if (!fitsOneBlock(h)) {
        assert.ok(expected.length > BLOCK_SIZE || h.name.includes('\0') || /[^\x00-\x7f]/.test(h.name) || h.name.length > 100,
          `${field}=${String(value)} takes the general path only when it must`);
        continue;
      }
      fast++;
      encodeUstarInto(h, dirty, 7);
      assert.ok(dirty.subarray(7).equals(expected), `${field}=${String(value)}: same bytes`);
    }
  }
  assert.ok(fast >= 30 && checked - fast >= 10, `${fast} fast, ${checked - fast} general`);
  assert.not.ok(fitsOneBlock({ ...base, xattrs: [['user.a', Buffer.from('b')]] }), 'xattrs need PAX');
});

test('an added entry goes out on the next turn of the event loop, without more adds or finalize', async () => {
  const dir = scratchDir('writer-flush');
  try {
    writeFileSync(`${dir}/f`, 'data');
    const w = new LayerTarWriter();
    const chunks: Buffer[] = [];
    w.stream.on('data', (c: Buffer) => chunks.push(c));
    await w.addPath(dir, 'f');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const got = Buffer.concat(chunks);
    assert.is(got.length, 1024, 'header and data block');
    assert.is(got.toString('latin1', 0, 1), 'f');
    assert.is(got.toString('latin1', 512, 516), 'data');
    await w.finalize();
  } finally {
    removeDir(dir);
  }
});

test('backpressure: with nobody reading, adds stop after about a megabyte; reading lets them finish', async () => {
  const dir = scratchDir('writer-backpressure');
  try {
    const data = Buffer.alloc(100 * 1024, 0x61);
    for (let i = 0; i < 60; i++) writeFileSync(`${dir}/f${i}`, data);
    const w = new LayerTarWriter();
    let added = 0;
    const adding = (async () => {
      for (let i = 0; i < 60; i++) {
        await w.addPath(dir, `f${i}`);
        added++;
      }
      await w.finalize();
    })();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(added < 30, `the writer waited for the consumer (${added} of 60 added)`);
    assert.ok(w.stream.readableLength <= 2 * 1024 * 1024, `${w.stream.readableLength} bytes buffered`);
    const tar = await collect(w.stream);
    await adding;
    const entries = await listTar(streamOf(tar));
    assert.is(entries.length, 60);
    assert.ok(entries.every((e) => e.size === data.length));
  } finally {
    removeDir(dir);
  }
});

test('a failed add leaves nothing of its entry behind; later adds and the tar are whole', async () => {
  const dir = scratchDir('writer-failed');
  try {
    mkdirSync(`${dir}/d`);
    writeFileSync(`${dir}/d/a`, 'A');
    writeFileSync(`${dir}/d/b`, 'B'.repeat(3000));
    const w = new LayerTarWriter();
    const tar = collect(w.stream);
    await w.addPath(dir, 'd');
    await w.addPath(dir, 'd/a');
    const err = await rejects(w.addPath(dir, 'd/missing'), Error, /packing "d\/missing"/);
    assert.is((err.cause as NodeJS.ErrnoException | undefined)?.code, 'ENOENT');
    await w.addPath(dir, 'd/b');
    await w.addWhiteout('d/gone');
    await w.finalize();
    const entries = await listTar(streamOf(await tar));
    assert.equal(entries.map((e) => [e.name, e.size]), [['d/', 0], ['d/a', 1], ['d/b', 3000], ['d/.wh.gone', 0]]);
  } finally {
    removeDir(dir);
  }
});

test('empty files are packed through their path: xattrs, owners and hard links come through', async () => {
  const dir = scratchDir('writer-empty');
  try {
    mkdirSync(`${dir}/src`);
    writeFileSync(`${dir}/src/empty`, '');
    setXattr(`${dir}/src/empty`, 'user.e', Buffer.from([0xff, 0, 1]));
    lchownSync(`${dir}/src/empty`, 7, 8);
    linkSync(`${dir}/src/empty`, `${dir}/src/empty-link`);
    writeFileSync(`${dir}/src/full`, 'x');
    const entries = await listTar(streamOf(await collect(pack(`${dir}/src`))));
    assert.equal(entries.map((e) => [e.name, e.kind, e.uid, e.linkname, e.xattrs]), [
      ['empty', 'file', 7, '', [['user.e', Buffer.from([0xff, 0, 1])]]],
      ['empty-link', 'link', 7, 'empty', [['user.e', Buffer.from([0xff, 0, 1])]]],
      ['full', 'file', 0, '', []],
    ]);
    mkdirSync(`${dir}/dst`);
    await unpack(`${dir}/dst`, pack(`${dir}/src`));
    assert.equal(treeDigest(`${dir}/dst`), treeDigest(`${dir}/src`));
  } finally {
    removeDir(dir);
  }
});

test.run();
