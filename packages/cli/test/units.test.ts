/**
 * The pieces under the commands: chain ids, the archive index (GNU tar's long names, PAX paths,
 * links followed inside the archive, '..' kept in it, truncation and non-tars told apart), the
 * tar entry counter against GNU tar's own listing, the store's lock and its refusal of a damaged
 * file, and compression detection.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { InvalidArchiveError } from '@graphdriver/core';
import { detectCompression, ZstdDecompressStream } from '../src/decompress.js';
import { chainIds, layerIdOf, parseDigest } from '../src/digest.js';
import { StoreError } from '../src/errors.js';
import { ArchiveIndex, NotATarError } from '../src/image/tar-index.js';
import { acquireLock } from '../src/lock.js';
import { Store } from '../src/store.js';
import { TarEntryCounter } from '../src/tar-counter.js';
import { run, withScratch, writeTree } from './helpers.js';

const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

test('chain ids: the bottom layer is its diff id, each other sha256("<parent chain> <diff id>")', () => {
  const d = [`sha256:${hex('a')}`, `sha256:${hex('b')}`, `sha256:${hex('c')}`];
  const c1 = `sha256:${hex(`${d[0]} ${d[1]}`)}`;
  assert.equal(chainIds(d), [d[0], c1, `sha256:${hex(`${c1} ${d[2]}`)}`]);
  assert.is(layerIdOf(c1), c1.slice(7));
  assert.is(parseDigest('sha256:abc'), undefined, 'a short hex is no digest');
  assert.is(parseDigest(`SHA256:${hex('a')}`), undefined);
  assert.equal(parseDigest(`sha512:${'0'.repeat(128)}`), { algorithm: 'sha512', hex: '0'.repeat(128) });
});

test('archive index: long names, PAX paths, symlinks and hard links inside the archive, ".." kept in it', () =>
  withScratch('unit-index', async (dir) => {
    const src = join(dir, 'src');
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}`;
    await writeTree(src, {
      [long]: 'long name\n',
      'blobs/sha256/abc': 'blob\n',
      'layer/layer.tar': { link: '../blobs/sha256/abc' },
      'alias': { link: 'blobs' },
      'abs': { link: '/blobs/sha256/abc' },
      'escape': { link: '../../../../etc/passwd' },
      'loop': { link: 'loop' },
      'é-ünïcode': 'utf8\n',
    });
    await run('ln', [join(src, 'blobs/sha256/abc'), join(src, 'hard')]);
    for (const format of ['gnu', 'pax', 'ustar'] as const) {
      const tar = join(dir, `${format}.tar`);
      // ustar cannot hold the long name: that archive leaves it out
      await run('tar', ['--format', format, '-cf', tar, '-C', src, ...(format === 'ustar' ? [] : ['.']), ...(format === 'ustar' ? ['blobs', 'layer', 'alias', 'abs', 'escape', 'loop', 'hard', 'é-ünïcode'] : [])]);
      const index = await ArchiveIndex.read(tar);
      const data = async (name: string): Promise<string | undefined> => {
        const e = index.lookup(name);
        if (e === undefined || e.type !== 'file') return undefined;
        const b = await readFile(tar);
        return b.subarray(e.offset, e.offset + e.size).toString();
      };
      if (format !== 'ustar') assert.is(await data(long), 'long name\n', `${format}: long name`);
      assert.is(await data('layer/layer.tar'), 'blob\n', `${format}: relative symlink`);
      assert.is(await data('alias/sha256/abc'), 'blob\n', `${format}: symlinked directory`);
      assert.is(await data('abs'), 'blob\n', `${format}: absolute symlink taken from the archive root`);
      assert.is(await data('./blobs/../blobs/sha256/abc'), 'blob\n', `${format}: dots`);
      assert.is(await data('../../blobs/sha256/abc'), 'blob\n', `${format}: ".." stops at the root`);
      assert.is(await data('hard'), 'blob\n', `${format}: hard link`);
      assert.is(await data('é-ünïcode'), 'utf8\n', `${format}: UTF-8 name`);
      assert.is(index.lookup('escape'), undefined, `${format}: a link out of the archive leads nowhere`);
      assert.is(index.lookup('loop'), undefined, `${format}: a symlink loop leads nowhere`);
      assert.is(index.lookup('blobs/sha256/nope'), undefined);
    }
  }));

test('archive index: not a tar, an empty file, a tar cut in a header or in data', () =>
  withScratch('unit-index-bad', async (dir) => {
    await writeFile(join(dir, 'text'), 'hello '.repeat(200));
    await writeFile(join(dir, 'empty'), '');
    for (const f of ['text', 'empty']) {
      try {
        await ArchiveIndex.read(join(dir, f));
        assert.unreachable(f);
      } catch (err) {
        assert.instance(err, NotATarError, f);
      }
    }
    await writeFile(join(dir, 'f'), Buffer.alloc(5000, 1));
    await run('tar', ['-cf', join(dir, 't.tar'), '-C', dir, 'f']);
    for (const [cut, why] of [[700, /ends inside the header|needs \d+ bytes more/], [3000, /needs \d+ bytes more than the file has/]] as const) {
      await truncate(join(dir, 't.tar'), cut);
      try {
        await ArchiveIndex.read(join(dir, 't.tar'));
        assert.unreachable(String(cut));
      } catch (err) {
        assert.instance(err, InvalidArchiveError);
        assert.not.instance(err, NotATarError);
        assert.match((err as Error).message, why);
      }
    }
  }));

test('the entry counter counts what GNU tar lists, PAX and GNU long-name headers not counted', () =>
  withScratch('unit-counter', async (dir) => {
    const src = join(dir, 'src');
    const tree: Record<string, string | null | { link: string }> = { empty: null, 'l': { link: 'x'.repeat(200) } };
    for (let i = 0; i < 50; i++) tree[`d${i % 5}/${'n'.repeat(i * 4)}f${i}`] = 'x'.repeat(i * 100);
    await writeTree(src, tree);
    for (const format of ['gnu', 'pax']) {
      await run('tar', ['--format', format, '-cf', join(dir, 'x.tar'), '-C', src, '.']);
      const listed = (await run('tar', ['-tf', join(dir, 'x.tar')])).stdout.trim().split('\n').length;
      const counter = new TarEntryCounter();
      await pipeline(Readable.from([await readFile(join(dir, 'x.tar'))]), counter, new Writable({ write: (_c, _e, cb) => cb() }));
      assert.is(counter.entries, listed, format);
    }
  }));

test('compression by magic bytes; zstd errors are archive errors', async () => {
  assert.is(detectCompression(gzipSync('x')), 'gzip');
  assert.is(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0])), 'zstd');
  assert.is(detectCompression(Buffer.from('BZh91AY')), 'bzip2');
  assert.is(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0])), 'xz');
  assert.is(detectCompression(Buffer.from('ustar')), 'none');
  assert.is(detectCompression(Buffer.alloc(0)), 'none');
  try {
    await pipeline(Readable.from([Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3])]), new ZstdDecompressStream(), new Writable({ write: (_c, _e, cb) => cb() }));
    assert.unreachable('a cut zstd frame');
  } catch (err) {
    assert.instance(err, InvalidArchiveError);
    assert.match((err as Error).message, /zstd data is truncated or corrupt/);
  }
});

test('store: a stale lock is taken over, a live one waited for; a damaged store file is refused', () =>
  withScratch('unit-store', async (dir) => {
    const lock = join(dir, 'lock');
    await writeFile(lock, '999999999\n'); // no such pid
    const release = await acquireLock(lock);
    assert.is(await readFile(lock, 'utf8'), `${process.pid}\n`);
    // a second taker waits until the first releases
    let second = false;
    const waiting = acquireLock(lock, { onWait: (pid) => assert.is(pid, process.pid) }).then((r) => {
      second = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 250));
    assert.not.ok(second, 'waits while the holder lives');
    await release();
    await (await waiting)();
    // an aborted wait rejects
    await writeFile(lock, `${process.pid}\n`);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 150);
    try {
      await acquireLock(lock, { signal: ac.signal });
      assert.unreachable('aborted');
    } catch (err) {
      assert.is((err as Error).name, 'AbortError');
    }

    await mkdir(join(dir, 'image', 'vfs'), { recursive: true });
    await writeFile(join(dir, 'image', 'vfs', 'store.json'), '{"version": 1, "layers": {');
    try {
      await Store.read(dir, 'vfs');
      assert.unreachable('damaged');
    } catch (err) {
      assert.instance(err, StoreError);
      assert.match((err as Error).message, /store\.json: is not valid JSON/);
    }
    // written atomically: a save leaves one complete file and no temporary one
    await writeFile(join(dir, 'image', 'vfs', 'store.json'), '{"version":1,"layers":{},"images":{}}');
    const s = await Store.read(dir, 'vfs');
    s.putLayer({ id: 'a', readWrite: false, created: 'now' });
    await s.save();
    assert.equal(JSON.parse(await readFile(join(dir, 'image', 'vfs', 'store.json'), 'utf8')).layers.a, { id: 'a', readWrite: false, created: 'now' });
    assert.equal((await run('ls', ['-A', join(dir, 'image', 'vfs')])).stdout.trim().split('\n'), ['store.json']);
  }));

test.run();
