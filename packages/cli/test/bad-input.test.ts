/**
 * Bad input gives one clear line on stderr (the command, the error code, what failed), a non-zero
 * exit, and leaves nothing behind: no layer, no record, no mount, no spool file, no store root
 * that was not there before. Inputs: not an image, truncated archives, missing blobs, tampered
 * blobs (corrupt gzip, a valid tar of other content, a docker archive layer changed in place), an
 * unknown driver, an unknown driver option.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  DRIVERS,
  assertClean,
  blobPath,
  cli,
  entries,
  json,
  layersOnDisk,
  layoutBlobs,
  ok,
  ourImage,
  run,
  skopeo,
  store,
  withScratch,
  type CliResult,
  type Tree,
} from './helpers.js';

const TREES: Tree[] = [{ 'etc/a': 'a'.repeat(3000) }, { 'etc/b': 'b\n', 'usr/bin/c': 'c\n' }, { 'var/d': 'd'.repeat(2000) }];

/** One line on stderr, `graphdriver <cmd>: <code>: ...`, nothing on stdout, the exit status given. */
function oneLine(r: CliResult, command: string, code: string, message: RegExp, status = 1): void {
  assert.is(r.code, status, `exit status (stderr: ${r.stderr})`);
  assert.is(r.stdout, '', 'nothing on stdout');
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  // a usage error adds where to find the usage
  if (status === 2) assert.match(lines.pop()!, /^Run 'graphdriver( \w+)? --help' for usage\.$/);
  assert.is(lines.length, 1, `one line: ${r.stderr}`);
  assert.ok(lines[0]!.startsWith(`graphdriver ${command}: ${code}: `), lines[0]);
  assert.match(lines[0]!, message);
}

/** The store holds no layer and no image, on disk or in its records, and nothing else is left. */
async function assertEmpty(root: string, driver: string): Promise<void> {
  assert.equal(layersOnDisk(root, driver), [], 'no layer on disk');
  if (existsSync(join(root, 'image', driver, 'store.json'))) {
    assert.equal((await json<{ layers: unknown[] }>([...store(root, driver), 'ls'])).layers, [], 'no layer recorded');
    assert.equal((await json<{ images: unknown[] }>([...store(root, driver), 'images'])).images, [], 'no image recorded');
  }
  await assertClean(root, driver);
}

test('not an image: a text file, an empty directory, a directory of other files, a path that does not exist', () =>
  withScratch('bad-notimage', async (dir) => {
    const root = join(dir, 'root');
    const g = store(root, 'overlay');
    await writeFile(join(dir, 'notes.txt'), 'just some text\n'.repeat(100));
    oneLine(await cli([...g, 'import', join(dir, 'notes.txt')]), 'import', 'ERR_GRAPHDRIVER_INVALID_IMAGE', /notes\.txt: is not an image: neither an OCI layout directory nor a tar archive/);
    await mkdir(join(dir, 'empty'));
    oneLine(await cli([...g, 'import', join(dir, 'empty')]), 'import', 'ERR_GRAPHDRIVER_INVALID_IMAGE', /has neither manifest\.json \(docker save\) nor index\.json \(OCI\)/);
    // a tar of something else
    await run('tar', ['-cf', join(dir, 'other.tar'), '-C', dir, 'notes.txt']);
    oneLine(await cli([...g, 'import', join(dir, 'other.tar')]), 'import', 'ERR_GRAPHDRIVER_INVALID_IMAGE', /other\.tar: is not an image: the archive has neither manifest\.json/);
    oneLine(await cli([...g, 'import', join(dir, 'nope.tar')]), 'import', 'ERR_GRAPHDRIVER_INVALID_IMAGE', /nope\.tar: no such file or directory/);
    // gzip of a text file: decompressed to the spool, found not to be a tar, the spool removed
    await writeFile(join(dir, 'notes.gz'), gzipSync('text\n'));
    oneLine(await cli([...g, 'import', join(dir, 'notes.gz')]), 'import', 'ERR_GRAPHDRIVER_INVALID_IMAGE', /is not an image/);
    await assertEmpty(root, 'overlay');
  }));

test('truncated archives: a docker archive cut short, a gzip-compressed one cut short, a layer blob cut short', () =>
  withScratch('bad-truncated', async (dir) => {
    const root = join(dir, 'root');
    const g = store(root, 'vfs');
    await ourImage(dir, TREES, 'img');
    await skopeo(`oci:${join(dir, 'layout')}:img`, `docker-archive:${join(dir, 'img.tar')}:img:latest`);
    const full = await readFile(join(dir, 'img.tar'));
    for (const cut of [Math.floor(full.length / 2) + 100, full.length - 700]) {
      await writeFile(join(dir, 'cut.tar'), full.subarray(0, cut));
      const r = await cli([...g, 'import', join(dir, 'cut.tar')]);
      assert.is(r.code, 1);
      assert.match(r.stderr, /^graphdriver import: ERR_GRAPHDRIVER_(INVALID_ARCHIVE: .*cut\.tar: the archive is truncated|INVALID_IMAGE: .*is missing)/);
      assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    const gz = gzipSync(full);
    await writeFile(join(dir, 'cut.tar.gz'), gz.subarray(0, Math.floor(gz.length / 2)));
    oneLine(await cli([...g, 'import', join(dir, 'cut.tar.gz')]), 'import', 'ERR_GRAPHDRIVER_INVALID_ARCHIVE', /cut\.tar\.gz: gzip data is truncated or corrupt/);

    const blobs = await layoutBlobs(join(dir, 'layout'));
    await truncate(blobPath(join(dir, 'layout'), blobs.layers[1]!), 20);
    oneLine(await cli([...g, 'import', join(dir, 'layout')]), 'import', 'ERR_GRAPHDRIVER_DIGEST_MISMATCH', /layer 2\/3 blob sha256:[0-9a-f]{64} size: expected \d+ bytes, got 20 bytes/);
    await assertEmpty(root, 'vfs');
  }));

test('missing blobs: a layer, the config, a manifest', () =>
  withScratch('bad-missing', async (dir) => {
    const root = join(dir, 'root');
    const g = store(root, 'overlay');
    const layout = join(dir, 'layout');
    await ourImage(dir, TREES, 'img');
    const blobs = await layoutBlobs(layout);
    const hide = async (digest: string, fn: () => Promise<void>): Promise<void> => {
      const p = blobPath(layout, digest);
      const bytes = await readFile(p);
      await rm(p);
      try {
        await fn();
      } finally {
        await writeFile(p, bytes);
      }
    };
    await hide(blobs.layers[2]!, async () =>
      oneLine(await cli([...g, 'import', layout]), 'import', 'ERR_GRAPHDRIVER_INVALID_IMAGE', new RegExp(`layer 3/3 is missing: no blobs/sha256/${blobs.layers[2]!.slice(7)}`)));
    await hide(blobs.config, async () => oneLine(await cli([...g, 'import', layout]), 'import', 'ERR_GRAPHDRIVER_INVALID_IMAGE', /the image config sha256:[0-9a-f]{64} is missing/));
    await hide(blobs.manifest, async () => oneLine(await cli([...g, 'import', layout]), 'import', 'ERR_GRAPHDRIVER_INVALID_IMAGE', /the manifest sha256:[0-9a-f]{64} is missing/));
    // a blob that is a symlink out of the layout is looked up inside it (openat2 RESOLVE_IN_ROOT)
    await hide(blobs.layers[0]!, async () => {
      await symlink('/etc/hostname', blobPath(layout, blobs.layers[0]!));
      oneLine(await cli([...g, 'import', layout]), 'import', 'ERR_GRAPHDRIVER_INVALID_IMAGE', /layer 1\/3 is missing/);
      await rm(blobPath(layout, blobs.layers[0]!));
    });
    // a spool directory a killed import left is cleared by the next one
    await mkdir(join(root, 'image', 'overlay', 'import-leftover'), { recursive: true });
    await assertEmpty(root, 'overlay').then(
      () => assert.unreachable('the leftover is seen'),
      () => undefined,
    );
    oneLine(await cli([...g, 'import', join(dir, 'nope')]), 'import', 'ERR_GRAPHDRIVER_INVALID_IMAGE', /no such file/);
    await assertEmpty(root, 'overlay');
    // and with every blob back, it imports
    assert.is((await json<{ images: unknown[] }>([...g, 'import', layout])).images.length, 1);
  }));

for (const driver of DRIVERS) {
  test(`${driver}: tampered blobs are refused and what the import made is removed`, () =>
    withScratch(`bad-tampered-${driver}`, async (dir) => {
      const root = join(dir, 'root');
      const g = store(root, driver);
      const layout = join(dir, 'layout');
      await ourImage(dir, TREES, 'img');
      const blobs = await layoutBlobs(layout);
      const p = blobPath(layout, blobs.layers[2]!);
      const original = await readFile(p);

      // a flipped byte in the compressed data: gzip fails, the blob's digest says why
      const flipped = Buffer.from(original);
      flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
      await writeFile(p, flipped);
      oneLine(await cli([...g, 'import', layout]), 'import', 'ERR_GRAPHDRIVER_DIGEST_MISMATCH', new RegExp(`layer 3/3 of image [0-9a-f]{12} \\(${blobs.layers[2]}\\): blob digest: expected ${blobs.layers[2]}, got sha256:[0-9a-f]{64}`));
      await assertEmpty(root, driver);

      // a valid gzip tar of other content in its place, padded to the promised size
      const other = gzipSync(await readFile(join(dir, 'layout', 'oci-layout')));
      await writeFile(p, Buffer.concat([other, Buffer.alloc(Math.max(0, original.length - other.length))]).subarray(0, original.length));
      const r = await cli([...g, 'import', layout]);
      assert.is(r.code, 1);
      assert.match(r.stderr, /^graphdriver import: ERR_GRAPHDRIVER_(DIGEST_MISMATCH|INVALID_ARCHIVE): layer 3\/3 /);
      await writeFile(p, original);
      await assertEmpty(root, driver);

      // a docker archive whose layer tar was changed in place (still a valid tar): the diff id
      await skopeo(`oci:${layout}:img`, `docker-archive:${join(dir, 'img.tar')}:img:latest`);
      const archive = await readFile(join(dir, 'img.tar'));
      const at = archive.indexOf('d'.repeat(2000));
      assert.ok(at > 0, 'found the file content in the archive');
      archive[at + 10] = 0x41;
      await writeFile(join(dir, 'img.tar'), archive);
      oneLine(await cli([...g, 'import', join(dir, 'img.tar')]), 'import', 'ERR_GRAPHDRIVER_DIGEST_MISMATCH', /layer 3\/3 .*: diff id \(digest of the uncompressed layer\): expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/);
      await assertEmpty(root, driver);

      // layers stored before stay when a later import fails (and are used by it, unread)
      await ourImage(join(dir, 'two'), TREES.slice(0, 2), 'two');
      await ok([...g, 'import', join(dir, 'two', 'layout')]);
      const before = layersOnDisk(root, driver);
      assert.is(before.length, 2);
      oneLine(await cli([...g, 'import', join(dir, 'img.tar')]), 'import', 'ERR_GRAPHDRIVER_DIGEST_MISMATCH', /diff id/);
      assert.equal(layersOnDisk(root, driver), before);
      await assertClean(root, driver);
    }));
}

test('an unknown driver or driver option: one line, and a store root that did not exist is not left behind', () =>
  withScratch('bad-driver', async (dir) => {
    const fresh = join(dir, 'fresh');
    oneLine(await cli(['--root', fresh, '--driver', 'nope', 'ls']), 'ls', 'ERR_GRAPHDRIVER_NOT_SUPPORTED', /unknown storage driver "nope" \(known: overlay, aufs, devmapper, vfs/);
    assert.not.ok(existsSync(fresh), 'no root made');
    oneLine(await cli(['--root', fresh, '--driver', 'vfs', '--opt', 'vfs.bogus=1', 'ls']), 'ls', 'ERR_GRAPHDRIVER_INVALID_OPTION', /vfs: unknown option "vfs\.bogus"/);
    assert.not.ok(existsSync(fresh), 'no root made');
    oneLine(await cli(['--root', fresh, '--opt', 'overlay.bogus=1', 'import', join(dir, 'x')]), 'import', 'ERR_GRAPHDRIVER_INVALID_OPTION', /overlay: unknown option "overlay\.bogus"/);
    assert.not.ok(existsSync(fresh), 'no root made');
    oneLine(await cli(['--root', fresh, '--opt', 'novalue', 'ls']), 'ls', 'ERR_GRAPHDRIVER_USAGE', /--opt takes key=value/, 2);
    // an existing store keeps exactly what it had
    const root = join(dir, 'root');
    await ok([...store(root, 'vfs'), 'create', 'a']);
    const had = await entries(root);
    oneLine(await cli(['--root', root, '--driver', 'overlay', '--opt', 'overlay.bogus=1', 'ls']), 'ls', 'ERR_GRAPHDRIVER_INVALID_OPTION', /overlay\.bogus/);
    assert.equal(await entries(root), had);
    // and without --driver, the driver of the earlier run is used, so its options are checked
    oneLine(await cli(['--root', root, '--opt', 'overlay.mountopt=nodev', 'ls']), 'ls', 'ERR_GRAPHDRIVER_OPERATION_FAILED', /starting storage driver "vfs", whose state from an earlier run is in .*, failed: vfs: unknown option "overlay\.mountopt"/);
    assert.equal(await entries(root), had);
    // --debug adds the cause chain under the one line
    const debug = await cli(['--root', root, '--opt', 'overlay.mountopt=nodev', '--debug', 'ls']);
    const lines = debug.stderr.trim().split('\n');
    assert.ok(lines.length > 2, debug.stderr);
    assert.match(lines[1]!, /^ {2}caused by InvalidOptionError: ERR_GRAPHDRIVER_INVALID_OPTION: vfs: unknown option "overlay\.mountopt"/);
    // unknown layers and images
    oneLine(await cli([...store(root, 'vfs'), 'mount', 'nope']), 'mount', 'ERR_GRAPHDRIVER_LAYER_UNKNOWN', /layer "nope" does not exist/);
    oneLine(await cli([...store(root, 'vfs'), 'rmi', 'nope']), 'rmi', 'ERR_GRAPHDRIVER_LAYER_UNKNOWN', /image "nope" does not exist/);
    oneLine(await cli([...store(root, 'vfs'), 'create', '../x']), 'create', 'ERR_GRAPHDRIVER_INVALID_LAYER_ID', /invalid layer id "\.\.\/x"/);
  }));

test.run();
