/**
 * The on-disk format, as moby's overlay2 writes it (graphtest checks behaviour; this checks bytes):
 * the home and `l/` modes, a layer's directory, `diff`, `link` (26 base32 characters, no newline,
 * 0644), `lower` (`l/<parent link>:<parent's lower>`, 0644), `work` (0700), `committed` (empty, 0600)
 * in a parent, `l/<name>` -> `../<id>/diff`; no temporary file left beside them; reserved names;
 * staging cleared on start; links repaired on start and on demand.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateLinkId, isLinkName } from '../src/index.js';
import { codeOf, start, withRoot } from './helpers.js';

const mode = (p: string): number => lstatSync(p).mode & 0o7777;

test('link names are 26 characters of RFC 4648 base32, random', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = generateLinkId();
    assert.match(id, /^[A-Z2-7]{26}$/);
    seen.add(id);
  }
  assert.is(seen.size, 1000);
  assert.ok(isLinkName('ABCDEFGHIJKLMNOPQRSTUVWXYZ'));
  assert.not.ok(isLinkName('../x'));
  assert.not.ok(isLinkName('a:b'));
  assert.not.ok(isLinkName(''));
});

test('a stack of three layers is laid out byte for byte as overlay2 lays it out', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    const home = join(root, 'overlay');
    await d.create('base');
    await d.create('mid', 'base');
    await d.createReadWrite('top', 'mid');

    assert.is(mode(home), 0o710, 'home 0710');
    assert.is(mode(join(home, 'l')), 0o700, 'l/ 0700');
    const links = new Map<string, string>();
    for (const id of ['base', 'mid', 'top']) {
      const dir = join(home, id);
      assert.is(mode(dir), 0o710, `${id}/ 0710`);
      const link = readFileSync(join(dir, 'link'), 'utf8');
      assert.match(link, /^[A-Z2-7]{26}$/, `${id}/link holds the name alone, no newline`);
      assert.is(mode(join(dir, 'link')), 0o644, `${id}/link 0644`);
      assert.is(readlinkSync(join(home, 'l', link)), `../${id}/diff`, `l/${link} -> ../${id}/diff`);
      assert.ok(statSync(join(dir, 'diff')).isDirectory());
      links.set(id, link);
    }
    assert.is(mode(join(home, 'base', 'diff')), 0o555, 'a layer without parent has a 0555 root (containers/storage)');
    assert.is(readFileSync(join(home, 'mid', 'lower'), 'utf8'), `l/${links.get('base')}`);
    assert.is(readFileSync(join(home, 'top', 'lower'), 'utf8'), `l/${links.get('mid')}:l/${links.get('base')}`);
    assert.is(mode(join(home, 'top', 'lower')), 0o644);
    assert.is(mode(join(home, 'top', 'work')), 0o700);
    assert.not.ok(readdirSync(join(home, 'base')).includes('lower'), 'no lower file without parent');
    assert.not.ok(readdirSync(join(home, 'base')).includes('work'), 'no work dir without parent (moby)');
    for (const id of ['base', 'mid']) {
      assert.is(readFileSync(join(home, id, 'committed'), 'utf8'), '', `${id}/committed is empty`);
      assert.is(mode(join(home, id, 'committed')), 0o600);
    }
    assert.not.ok(readdirSync(join(home, 'top')).includes('committed'), 'the top layer has no child');
    for (const id of ['base', 'mid', 'top']) {
      assert.equal(readdirSync(join(home, id)).filter((n) => n.startsWith('.tmp')), [], `no temporary file left in ${id}/`);
    }
    assert.equal(readdirSync(join(home, 'staging')), [], 'staging is empty after creates');

    // metadata as moby reports it
    const md = await d.metadata('top');
    assert.equal(md, {
      WorkDir: join(home, 'top', 'work'),
      MergedDir: join(home, 'top', 'merged'),
      UpperDir: join(home, 'top', 'diff'),
      LowerDir: `${join(home, 'mid', 'diff')}:${join(home, 'base', 'diff')}`,
    });
    assert.equal((await d.listLayers()).sort(), ['base', 'mid', 'top']);

    // remove takes the layer and its link away
    await d.remove('top');
    assert.not.ok(readdirSync(home).includes('top'));
    assert.not.ok(readdirSync(join(home, 'l')).includes(links.get('top')!));
    await d.cleanup();
  });
});

test('names the driver uses for itself are not layer ids; unknown files in the home are not layers', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    for (const id of ['l', 'staging']) {
      assert.is(await codeOf(d.create(id)), 'ERR_GRAPHDRIVER_INVALID_LAYER_ID', `create(${id})`);
      assert.is(await d.exists(id), false, `exists(${id})`);
      assert.is(await codeOf(d.get(id)), 'ERR_GRAPHDRIVER_LAYER_UNKNOWN', `get(${id})`);
    }
    await writeFile(join(root, 'overlay', 'stray-file'), 'x');
    await d.create('real');
    assert.equal(await d.listLayers(), ['real'], 'only layer directories are listed (probe caches and markers are files)');
    await d.cleanup();
  });
});

test('a crash mid-create or mid-remove leaves only staging garbage, cleared on the next start', async () => {
  await withRoot(async (root) => {
    let d = await start(root);
    await d.create('keep');
    const staging = join(root, 'overlay', 'staging');
    // what a killed create leaves: a half layer in staging, never under its id
    await mkdir(join(staging, 'half-XXXX', 'diff'), { recursive: true });
    await writeFile(join(staging, 'half-XXXX', 'link'), 'ABC');
    await mkdir(join(staging, 'gone-removing-YYYY', 'layer', 'diff'), { recursive: true });
    await d.cleanup();
    d = await start(root);
    assert.equal(readdirSync(staging), [], 'staging cleared on start');
    assert.is(await d.exists('half'), false);
    assert.equal(await d.listLayers(), ['keep']);
    await d.cleanup();
  });
});

test('lost links are repaired on start: a missing l/ symlink, a missing link file, a garbled symlink', async () => {
  await withRoot(async (root) => {
    let d = await start(root);
    const home = join(root, 'overlay');
    await d.create('a');
    await d.create('b', 'a');
    await d.create('c', 'b');
    await d.get('a').then(async (p) => {
      void p;
      await d.put('a');
    });
    const linkA = readFileSync(join(home, 'a', 'link'), 'utf8');
    const linkB = readFileSync(join(home, 'b', 'link'), 'utf8');
    await d.cleanup();

    await unlink(join(home, 'l', linkA)); // a power cut before the symlink reached the disk
    await unlink(join(home, 'b', 'link')); // b's link file lost, its symlink still there
    await symlink('../../etc', join(home, 'l', 'GARBAGEGARBAGEGARBAGEGARBA')); // not ../<id>/diff
    d = await start(root);
    assert.is(readlinkSync(join(home, 'l', linkA)), '../a/diff', 'l/<a> is back under the name a/link gives');
    assert.is(readFileSync(join(home, 'b', 'link'), 'utf8'), linkB, "b/link takes the name of the symlink that points at b (c's lower file uses it)");
    assert.not.ok(readdirSync(join(home, 'l')).includes('GARBAGEGARBAGEGARBAGEGARBA'), 'a symlink that is not ../<id>/diff is removed');
    // and the stack mounts again
    const top = await d.get('c');
    assert.ok(statSync(top).isDirectory());
    await d.put('c');
    await d.cleanup();
  });
});

test('a link lost while the driver runs is repaired on demand: by get() of a child and by create() on the parent', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    const home = join(root, 'overlay');
    await d.create('a');
    const pa = await d.get('a');
    writeFileSync(join(pa, 'from-a'), 'a');
    await d.put('a');
    await d.create('b', 'a');
    const linkA = readFileSync(join(home, 'a', 'link'), 'utf8');
    await unlink(join(home, 'l', linkA));
    const pb = await d.get('b');
    assert.is(readFileSync(join(pb, 'from-a'), 'utf8'), 'a', "a's file is seen through b after the link was made again");
    await d.put('b');
    assert.is(readlinkSync(join(home, 'l', linkA)), '../a/diff');

    await rm(join(home, 'b', 'link'));
    await unlink(join(home, 'l', readdirSync(join(home, 'l')).find((n) => readlinkSync(join(home, 'l', n)) === '../b/diff')!));
    await d.create('c', 'b'); // b has neither link file nor symlink: it gets a new name
    const linkB = readFileSync(join(home, 'b', 'link'), 'utf8');
    assert.is(readFileSync(join(home, 'c', 'lower'), 'utf8'), `l/${linkB}:l/${linkA}`);
    const report = await d.repairLinks();
    assert.equal(report, { restored: [], relinked: [], removed: [] }, 'nothing left to repair');

    // and by the diff side: changes, metadata and the whole-layer diff read the lowers' links
    await unlink(join(home, 'l', linkA));
    assert.equal(await d.changes('c', 'b'), []);
    assert.match((await d.metadata('c')).LowerDir!, /\/a\/diff$/);
    assert.is(readlinkSync(join(home, 'l', linkA)), '../a/diff', 'made again on demand');
    await d.cleanup();
  });
});

test.run();
