/**
 * Every command end to end, on vfs and on overlay, in-process against the real kernel: an image of
 * ours imported, a container layer made, mounted, changed, diffed, the diff applied to a fresh
 * layer (same tree), exported (same tree as GNU tar sees it), listed, inspected and removed, with
 * --json results checked field by field and the human output checked for what a person reads.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chainIds } from '../src/digest.js';
import {
  DRIVERS,
  assertClean,
  cli,
  describeTree,
  json,
  layersOnDisk,
  ok,
  ourImage,
  run,
  store,
  withScratch,
} from './helpers.js';

const BASE = {
  'etc/os-release': 'ID=test\n',
  'etc/motd': 'base motd\n',
  'bin/tool': { mode: 0o755, data: '#!/bin/sh\necho tool\n' },
  'usr/share/doc/README': 'docs\n',
  'etc/link': { link: '../bin/tool' },
  'var/empty': null,
};
const APP = { 'app/server.js': 'serve()\n', 'app/config.json': '{}\n', 'etc/motd': 'app motd, longer than before\n' };
const CLEANUP = { 'usr/share/doc/.wh.README': '', 'var/log/build.log': 'built\n' };

interface ImportJson {
  driver: string;
  images: Array<{ id: string; tags: string[]; topLayer: string; layers: Array<{ id: string; parent?: string; diffId: string; reused: boolean; size: number; entries: number; compression: string }> }>;
}

for (const driver of DRIVERS) {
  test(`${driver}: import, create, mount, changes, diff, apply, export, ls, info, status, rm, rmi`, () =>
    withScratch(`cmd-${driver}`, async (dir) => {
      const root = join(dir, 'root');
      const g = store(root, driver);
      const image = await ourImage(dir, [BASE, APP, CLEANUP], 'demo:latest');
      const chains = chainIds(image.diffIds).map((c) => c.slice(7));

      // import: chain ids as layer ids, diff ids and blobs as written, the top layer printed
      const imported = await json<ImportJson>([...g, 'import', join(dir, 'layout')]);
      assert.is(imported.driver, driver);
      assert.is(imported.images.length, 1);
      const img = imported.images[0]!;
      assert.is(img.id, image.configDigest);
      assert.equal(img.tags, ['demo:latest']);
      assert.is(img.topLayer, chains[2]);
      assert.equal(img.layers.map((l) => l.id), chains);
      assert.equal(img.layers.map((l) => l.parent ?? null), [null, chains[0], chains[1]]);
      assert.equal(img.layers.map((l) => l.diffId), image.diffIds);
      assert.equal(img.layers.map((l) => l.reused), [false, false, false]);
      assert.equal(img.layers.map((l) => l.compression), ['gzip', 'gzip', 'gzip']);
      assert.is(img.layers[0]!.size, 'ID=test\n'.length + 'base motd\n'.length + '#!/bin/sh\necho tool\n'.length + 'docs\n'.length);
      // the human form prints the tag and the top layer
      const again = await ok([...g, 'import', join(dir, 'layout')]);
      assert.match(again, /imported demo:latest .*3 layers \(0 new, 3 already stored\)/);
      assert.ok(again.includes(`top layer: ${chains[2]}`), again);

      // images
      const images = await json<{ images: Array<{ id: string; tags: string[]; layers: string[]; topLayer: string }> }>([...g, 'images']);
      assert.equal(images.images.map((i) => [i.id, i.tags, i.topLayer]), [[image.configDigest, ['demo:latest'], chains[2]]]);
      assert.match(await ok([...g, 'images']), new RegExp(`^demo:latest +${image.configDigest.slice(7, 19)} +3 +${chains[2]!.slice(0, 12)}`, 'm'));

      // create: a container layer on the image, by tag; the same id twice is refused
      assert.equal(await json([...g, 'create', '--rw', '--parent', 'demo', 'ctr']), { id: 'ctr', parent: chains[2], readWrite: true });
      const dup = await cli([...g, 'create', 'ctr']);
      assert.is(dup.code, 1);
      assert.match(dup.stderr, /^graphdriver create: ERR_GRAPHDRIVER_LAYER_EXISTS: layer "ctr" already exists\n$/);

      // mount: the image's files are there; write, modify, delete (a lower file: a whiteout), mkdir
      const mounted = await json<{ id: string; path: string }>([...g, 'mount', 'ctr']);
      assert.is(mounted.id, 'ctr');
      const p = mounted.path;
      assert.is(await readFile(join(p, 'etc/motd'), 'utf8'), 'app motd, longer than before\n');
      assert.not.ok(existsSync(join(p, 'usr/share/doc/README')), 'the top layer whiteout hides README');
      assert.is(await readFile(join(p, 'var/log/build.log'), 'utf8'), 'built\n');
      await writeFile(join(p, 'app/data.txt'), 'container data\n');
      await writeFile(join(p, 'etc/motd'), 'changed in the container, of another length\n');
      await unlink(join(p, 'bin/tool'));
      await mkdir(join(p, 'srv/cache'), { recursive: true });
      if (driver === 'overlay') assert.match(await readFile('/proc/self/mountinfo', 'utf8'), new RegExp(` ${p} `), 'overlay mounts it');
      assert.equal(await json([...g, 'umount', 'ctr']), { id: 'ctr' });
      if (driver === 'overlay') assert.not.match(await readFile('/proc/self/mountinfo', 'utf8'), new RegExp(` ${p} `), 'umount unmounts it');

      // changes, as docker diff prints them
      const changes = await json<{ id: string; parent: string; changes: Array<{ path: string; kind: string }> }>([...g, 'changes', 'ctr']);
      assert.is(changes.parent, chains[2]);
      const byPath = new Map(changes.changes.map((c) => [c.path, c.kind]));
      assert.is(byPath.get('/app/data.txt'), 'add');
      assert.is(byPath.get('/etc/motd'), 'modify');
      assert.is(byPath.get('/bin/tool'), 'delete');
      assert.is(byPath.get('/srv/cache'), 'add');
      assert.not.ok(byPath.has('/etc/os-release'), 'unchanged files are not changes');
      const human = await ok([...g, 'changes', 'ctr']);
      assert.ok(human.split('\n').includes('A /app/data.txt') && human.split('\n').includes('D /bin/tool') && human.split('\n').includes('C /etc/motd'), human);

      // diff to a file: a layer tar with a whiteout for the deleted file
      const diffFile = join(dir, 'ctr.tar');
      const diff = await json<{ file: string; bytes: number; entries: number; digest: string; parent: string }>([...g, 'diff', 'ctr', '-o', diffFile]);
      assert.is(diff.file, diffFile);
      assert.is(diff.parent, chains[2]);
      const listing = (await run('tar', ['-tf', diffFile])).stdout.trim().split('\n');
      assert.ok(listing.includes('bin/.wh.tool'), listing.join(' '));
      assert.ok(listing.includes('app/data.txt') && listing.includes('etc/motd'), listing.join(' '));
      assert.is(diff.entries, listing.length);
      assert.is(diff.bytes, (await readFile(diffFile)).length);
      // the same tar on standard output
      const piped = await cli([...g, 'diff', 'ctr']);
      assert.is(piped.code, 0);
      assert.ok(Buffer.from(piped.stdout, 'latin1').equals(await readFile(diffFile)), 'the tar on stdout is the tar in the file');

      // apply it to a fresh layer on the image: the same tree as the container's
      const applied = await json<{ id: string; created: boolean; diffId: string; entries: number; parent: string }>([...g, 'apply', '--parent', 'demo:latest', 'copy', diffFile]);
      assert.equal([applied.id, applied.created, applied.diffId, applied.entries, applied.parent], ['copy', true, diff.digest, diff.entries, chains[2]]);
      const a = (await json<{ path: string }>([...g, 'mount', 'ctr'])).path;
      const b = (await json<{ path: string }>([...g, 'mount', 'copy'])).path;
      assert.equal(await describeTree(b), await describeTree(a));
      assert.ok((await describeTree(a)).some((l) => l.startsWith('app/data.txt f 644')), 'the tree has the new file');
      // and its own diff is the same tar, byte for byte
      const copyDiff = await json<{ digest: string }>([...g, 'diff', 'copy', '-o', join(dir, 'copy.tar')]);
      assert.is(copyDiff.digest, diff.digest);

      // export: the whole root filesystem, as GNU tar extracts it
      const exported = await json<{ file: string; entries: number }>([...g, 'export', 'ctr', '-o', join(dir, 'ctr-export.tar')]);
      const extracted = join(dir, 'extracted');
      await mkdir(extracted);
      await run('tar', ['-xpf', exported.file, '-C', extracted, '--numeric-owner']);
      assert.equal(await describeTree(extracted), await describeTree(a));
      await ok([...g, 'umount', 'copy']);
      await ok([...g, 'umount', 'ctr']);

      // ls: parents before children, kinds, sizes, the image on its top layer
      const ls = await json<{ layers: Array<{ id: string; parent?: string; readWrite: boolean; images: string[]; state: string; size: number }> }>([...g, 'ls']);
      assert.equal(ls.layers.map((l) => [l.id, l.parent ?? null, l.readWrite, l.state]), [
        [chains[0], null, false, 'ok'],
        [chains[1], chains[0], false, 'ok'],
        [chains[2], chains[1], false, 'ok'],
        ['ctr', chains[2], true, 'ok'],
        ['copy', chains[2], false, 'ok'],
      ]);
      assert.equal(ls.layers[2]!.images, ['demo:latest']);
      assert.ok(ls.layers[3]!.size > 0, 'a container layer has a measured size');
      const lsText = await ok([...g, 'ls']);
      assert.match(lsText, /^LAYER +PARENT +KIND +SIZE +IMAGE/);
      assert.match(lsText, new RegExp(`^ctr +${chains[2]!.slice(0, 12)} +rw `, 'm'));

      // info and status
      const info = await json<{ id: string; record: { parent: string; readWrite: boolean }; children: string[]; images: string[]; metadata: Record<string, string> }>([...g, 'info', chains[2]!.slice(0, 10)]);
      assert.is(info.id, chains[2], 'a unique prefix names the layer');
      assert.equal(info.children.sort(), ['copy', 'ctr']);
      assert.equal(info.images, ['demo:latest']);
      assert.ok(Object.keys(info.metadata).length > 0, 'the driver has metadata for it');
      const status = await json<{ driver: string; root: string; layers: number; images: number; status: Array<[string, string]> }>([...g, 'status']);
      assert.equal([status.driver, status.root, status.layers, status.images], [driver, root, 5, 1]);
      assert.match(await ok([...g, 'status']), new RegExp(`^Storage Driver: ${driver}$`, 'm'));

      // rm: a layer others stand on is refused; leaves go
      const busy = await cli([...g, 'rm', chains[2]!]);
      assert.is(busy.code, 1);
      assert.match(busy.stderr, /ERR_GRAPHDRIVER_LAYER_BUSY: .*is the parent of/);
      assert.equal(await json([...g, 'rm', 'copy', 'ctr']), { removed: ['copy', 'ctr'] });
      const inImage = await cli([...g, 'rm', chains[2]!]);
      assert.match(inImage.stderr, /ERR_GRAPHDRIVER_LAYER_BUSY: .*image demo:latest uses it/);

      // rmi: the image and its layers
      assert.equal(await json([...g, 'rmi', 'demo']), { untagged: ['demo:latest'], deletedImages: [image.configDigest], deletedLayers: [...chains].reverse() });
      assert.equal((await json<{ layers: unknown[] }>([...g, 'ls'])).layers, []);
      assert.equal(layersOnDisk(root, driver), [], 'no layer left on disk');
      await assertClean(root, driver);
    }));
}

test('apply from standard input, to an existing layer, and mount --ro', () =>
  withScratch('cmd-apply', async (dir) => {
    const root = join(dir, 'root');
    const g = store(root, 'overlay');
    await ok([...g, 'create', 'base']);
    const src = join(dir, 'src');
    await mkdir(join(src, 'etc'), { recursive: true });
    await writeFile(join(src, 'etc/a'), 'a\n');
    await run('tar', ['-cf', join(dir, 'a.tar'), '-C', src, 'etc']);
    const tar = await readFile(join(dir, 'a.tar'));
    const r = await json<{ created: boolean; entries: number }>([...g, 'apply', 'base', '-'], { stdin: tar });
    assert.equal([r.created, r.entries], [false, 2]);
    // gzip-compressed input is read too
    await writeFile(join(src, 'etc/b'), 'b\n');
    await run('tar', ['-czf', join(dir, 'b.tgz'), '-C', src, 'etc/b']);
    const r2 = await json<{ compression: string; created: boolean }>([...g, 'apply', 'base', join(dir, 'b.tgz')]);
    assert.equal([r2.compression, r2.created], ['gzip', false]);
    const path = (await json<{ path: string }>([...g, 'mount', '--ro', 'base'])).path;
    assert.equal((await describeTree(path)).map((l) => l.split(' ')[0]), ['etc', 'etc/a', 'etc/b']);
    await ok([...g, 'umount', 'base']);
    // a layer with children takes no tar any more
    await ok([...g, 'create', '--parent', 'base', 'child']);
    const refused = await cli([...g, 'apply', 'base', join(dir, 'a.tar')]);
    assert.match(refused.stderr, /ERR_GRAPHDRIVER_LAYER_BUSY: layer "base" is busy: it is the parent of child/);
    await ok([...g, 'rm', 'child', 'base']);
    await assertClean(root, 'overlay');
  }));

test('import from standard input; the remains of a killed import are made again; layers made elsewhere are listed as untracked', () =>
  withScratch('cmd-leftovers', async (dir) => {
    const root = join(dir, 'root');
    const g = store(root, 'overlay');
    const image = await ourImage(dir, [BASE, APP], 'two:1');
    await run('skopeo', ['--insecure-policy', 'copy', '-q', `oci:${join(dir, 'layout')}:two:1`, `docker-archive:${join(dir, 'two.tar')}:two:1`]);
    const chains = chainIds(image.diffIds).map((c) => c.slice(7));
    // a killed import left layer 2 half made: there on disk, not recorded
    const { getDriver } = await import('@graphdriver/core');
    const { PACKAGE_DIR } = await import('../src/context.js');
    const d = await getDriver('overlay', { root, resolveFrom: PACKAGE_DIR });
    await d.create(chains[0]!);
    await d.create(chains[1]!, chains[0]);
    await d.create('elsewhere');
    const ls = await json<{ layers: Array<{ id: string; state: string }> }>([...g, 'ls']);
    assert.equal(ls.layers.map((l) => [l.id, l.state]).sort(), [[chains[0], 'untracked'], [chains[1], 'untracked'], ['elsewhere', 'untracked']].sort());
    const r = await json<ImportJson>([...g, 'import', '-'], { stdin: await readFile(join(dir, 'two.tar')) });
    assert.equal(r.images[0]!.layers.map((l) => [l.id, l.reused]), [[chains[0], false], [chains[1], false]]);
    assert.equal(r.images[0]!.tags, ['docker.io/library/two:1']);
    const p = (await json<{ path: string }>([...g, 'mount', chains[1]!])).path;
    assert.is(await readFile(join(p, 'app/server.js'), 'utf8'), 'serve()\n', 'the layer was made again, whole');
    await ok([...g, 'umount', chains[1]!]);
    assert.equal((await json<{ layers: Array<{ id: string; state: string }> }>([...g, 'ls'])).layers.map((l) => [l.id, l.state]), [
      [chains[0], 'ok'],
      [chains[1], 'ok'],
      ['elsewhere', 'untracked'],
    ]);
    await assertClean(root, 'overlay');
  }));

test('the store root: --root, else $GRAPHDRIVER_ROOT, else /var/lib/graphdriver for root', async () => {
  const { defaultRoot } = await import('../src/context.js');
  assert.is(defaultRoot({ GRAPHDRIVER_ROOT: '/srv/gd' }), '/srv/gd');
  assert.is(defaultRoot({}), process.getuid?.() === 0 ? '/var/lib/graphdriver' : defaultRoot({}));
  const r = await json<{ root: string }>(['--driver', 'vfs', 'status'], { env: { GRAPHDRIVER_ROOT: '/tmp/cli-envroot' } });
  assert.is(r.root, '/tmp/cli-envroot');
  await rm('/tmp/cli-envroot', { recursive: true, force: true });
});

test('help, version and usage errors', async () => {
  const help = await cli(['--help']);
  assert.is(help.code, 0);
  for (const c of ['import', 'create', 'mount', 'umount', 'ls', 'changes', 'diff', 'apply', 'export', 'rm', 'status', 'info', 'demo']) {
    assert.match(help.stdout, new RegExp(`^  ${c} `, 'm'));
  }
  const createHelp = await cli(['create', '--help']);
  assert.match(createHelp.stdout, /^Usage: graphdriver \[OPTIONS\] create \[--rw\] \[--parent ID\|IMAGE\]/);
  assert.match((await cli(['--version'])).stdout, /^graphdriver \d+\.\d+\.\d+\n$/);
  const none = await cli([]);
  assert.is(none.code, 2);
  const bad = await cli(['frobnicate']);
  assert.equal([bad.code, bad.stderr.split('\n')[0]], [2, 'graphdriver frobnicate: ERR_GRAPHDRIVER_USAGE: unknown command "frobnicate"']);
  const badOpt = await cli(['ls', '--frob']);
  assert.equal([badOpt.code, badOpt.stderr.split('\n')[0]], [2, 'graphdriver ls: ERR_GRAPHDRIVER_USAGE: unknown option --frob for ls']);
  const missing = await cli(['create']);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /create takes 1 argument, got 0/);
  const jsonErr = await cli(['diff', 'x', '--json']);
  assert.equal(JSON.parse(jsonErr.stderr), { error: { code: 'ERR_GRAPHDRIVER_USAGE', message: 'with --json the tar needs a file: -o FILE', causes: [] } });
});

test.run();
