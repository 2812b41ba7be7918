/**
 * layer0's options and per-layer storage options: its own keys validated (unknown ones, bad sizes,
 * unknown volume drivers, bad volume_opt entries are InvalidOptionErrors naming the key), overlay's
 * keys passed through to the wrapped overlay driver (which validates them itself), and storageOpt
 * mistakes refused before anything is made: no layer, no volume, no mount left behind.
 */
import { mkdir, mkdtemp, readdir, stat, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { getDriver, isNotSupported } from '@graphdriver/core';
import { codeOf, errorOf, loopsUnder, makeImage, mountsUnderRoot, start, withDriver, withRoot } from './helpers.js';

const INVALID = 'ERR_GRAPHDRIVER_INVALID_OPTION';

test('options: layer0 keys are validated and name the key; nothing is made for a refused start', async () => {
  await withRoot(async (root) => {
    const cases: Array<[string[] | Record<string, string>, string, RegExp]> = [
      [['layer0.bogus=1'], 'layer0.bogus', /unknown option "layer0\.bogus"/],
      [['layer0.volume_size=lots'], 'layer0.volume_size', /expected a size/],
      [['layer0.volume_size=0'], 'layer0.volume_size', /at least 1/],
      [['layer0.volume_driver=nope'], 'layer0.volume_driver', /unknown volume driver "nope" \(known: dir, loopback/],
      [['layer0.volume_driver=../x'], 'layer0.volume_driver', /invalid volume driver name/],
      [['layer0.volume_opt=novalue'], 'layer0.volume_opt', /key=value/],
      [['layer0.volume_opt=fs=btrfs'], 'layer0.volume_opt', /ext4 or xfs/],
      [['layer0.volume_opt=bogus=1'], 'layer0.volume_opt', /unknown option "bogus" of the loopback volume driver/],
      [['layer0.volume_driver=dir', 'layer0.volume_opt=fs=ext4'], 'layer0.volume_opt', /dir volume driver takes no options/],
      [['mountopt=nodev'], 'mountopt', /unknown option "mountopt"/],
      [['overlay.bogus=1'], 'overlay.bogus', /overlay: unknown option "overlay\.bogus"/],
      [['overlay.mount_api=sideways'], 'overlay.mount_api', /expected one of/],
      [{ 'layer0.volume_size': '-1' }, 'layer0.volume_size', /expected a size/],
    ];
    for (const [options, key, message] of cases) {
      const err = await errorOf(start(root, options));
      assert.is(err.code, INVALID, `${JSON.stringify(options)}: ${err.message}`);
      assert.is(err.key, key, `${JSON.stringify(options)} names ${key}`);
      assert.match(err.message, message);
    }
    assert.equal(await mountsUnderRoot(root), []);
  });
});

test('options: overlay.* and overlay2.* keys reach the wrapped overlay driver; the prefix of layer0 keys is optional', async () => {
  await withRoot(async (root) => {
    const d = await start(root, ['overlay.mountopt=nodev', 'overlay2.mount_api=classic', 'volume_driver=dir']);
    try {
      assert.is(d.overlay.options.mountopt, 'nodev');
      assert.is(d.overlay.options.mount_api, 'classic');
      assert.is(d.options.volume_driver, 'dir');
      assert.is(d.overlay.home, join(root, 'layer0', 'overlay'));
      const rows = new Map(await d.status());
      assert.is(rows.get('Volume driver'), 'dir (file)');
      assert.ok(rows.get('Mount method')?.startsWith('mount(2)'), 'overlay rows are part of status()');
    } finally {
      await d.cleanup();
    }
    const o = await start(root, { 'layer0.volume_driver': 'loopback', 'layer0.volume_opt': 'fs=ext4', 'layer0.volume_size': '1G', 'overlay.mountopt': 'noatime' });
    try {
      assert.is(o.options.volume_size, 1024 ** 3);
      assert.is(new Map(await o.status()).get('Volume size'), '1GiB');
      assert.is(o.options.volume_driver, 'loopback');
      assert.is(o.overlay.options.mountopt, 'noatime');
    } finally {
      await o.cleanup();
    }
  });
});

test('storageOpt: bad volume names, inode limits on volumes, volumes of read-only layers and unknown keys are typed errors; nothing is left', async () => {
  await withDriver(['layer0.volume_size=64M'], async (d, root) => {
    await makeImage(d);
    const volumes = join(root, 'layer0', 'volumes', 'loopback');
    const before = await readdir(volumes);
    for (const [what, p, key] of [
      ['a volume name with a slash', d.createReadWrite('x', 'img', { storageOpt: { volume: '../escape' } }), 'volume'],
      ['an empty volume name', d.createReadWrite('x', 'img', { storageOpt: { volume: '' } }), 'volume'],
      ['an inode limit on a volume', d.createReadWrite('x', 'img', { storageOpt: { volume: 'v', inodes: '100' } }), 'inodes'],
      ['an inode limit on a container layer', d.createReadWrite('x', 'x-init', { storageOpt: { inodes: '100' } }), 'inodes'],
      ['a volume for a read-only layer', d.create('x', 'img', { storageOpt: { volume: 'v' } }), 'volume'],
      ['an unknown key', d.createReadWrite('x', 'img', { storageOpt: { bogus: '1' } }), 'bogus'],
      ['a bad size', d.createReadWrite('x', 'img', { storageOpt: { volume: 'v', size: 'big' } }), 'size'],
      ['a loopback volume below 16 MiB', d.createReadWrite('x', 'img', { storageOpt: { volume: 'v', size: '1M' } }), 'size'],
    ] as const) {
      const err = await errorOf(p);
      assert.is(err.code, INVALID, `${what}: ${err.message}`);
      assert.is(err.key, key, `${what} names ${key}`);
    }
    assert.is(await d.exists('x'), false);
    assert.equal(await readdir(volumes), before, 'no volume was made');
    assert.equal((await mountsUnderRoot(root)).length, 0);
    assert.equal(await loopsUnder(root), []);
    assert.is(await codeOf(d.createReadWrite('x', 'missing', { storageOpt: { volume: 'v' } })), 'ERR_GRAPHDRIVER_LAYER_UNKNOWN', 'a missing parent');
    assert.equal(await readdir(volumes), before, 'no volume for a layer that cannot be made');
    await d.createReadWrite('x', 'img', { storageOpt: { volume: 'v' } });
    assert.is(await codeOf(d.createReadWrite('x', 'img', { storageOpt: { volume: 'w' } })), 'ERR_GRAPHDRIVER_LAYER_EXISTS');
    assert.is(await codeOf(d.createReadWrite('x', 'img')), 'ERR_GRAPHDRIVER_LAYER_EXISTS', 'not as a plain layer either');
  });
});

test('the dir volume driver has no size limit: asking for one is "quota not supported"', async () => {
  await withDriver(['layer0.volume_driver=dir'], async (d, root) => {
    await makeImage(d);
    const err = await errorOf(d.createReadWrite('x', 'img', { storageOpt: { volume: 'v', size: '10M' } }));
    assert.is(err.code, 'ERR_GRAPHDRIVER_QUOTA_NOT_SUPPORTED', err.message);
    assert.ok(isNotSupported(err));
    assert.is(await d.exists('x'), false);
    const sized = await errorOf(start(root, ['layer0.volume_driver=dir', 'layer0.volume_size=1G']));
    assert.is(sized.code, 'ERR_GRAPHDRIVER_QUOTA_NOT_SUPPORTED', 'volume_size with the dir driver is refused at start');
    await stat(join(root, 'layer0', 'volumes', 'dir', 'data'));
    assert.equal(await readdir(join(root, 'layer0', 'volumes', 'dir', 'data')), []);
  });
});

test("core's registry starts layer0 by name from its package (the driver package convention), options and all", async () => {
  await withRoot(async (root) => {
    // a project that installed @graphdriver/layer0: node_modules/@graphdriver/layer0 -> this package (its built dist)
    const project = await mkdtemp(join(root, 'project-'));
    await mkdir(join(project, 'node_modules', '@graphdriver'), { recursive: true });
    await symlink(join(dirname(fileURLToPath(import.meta.url)), '..'), join(project, 'node_modules', '@graphdriver', 'layer0'));
    const d = await getDriver('layer0', { root: join(root, 'store'), options: ['layer0.volume_driver=dir', 'overlay.mountopt=nodev'], resolveFrom: project });
    try {
      assert.is(d.name, 'layer0');
      assert.is(d.home, join(root, 'store', 'layer0'));
      assert.equal(new Map(await d.status()).get('Volume driver'), 'dir (file)');
    } finally {
      await d.cleanup();
    }
    assert.is(await codeOf(getDriver('layer0', { root: join(root, 'store'), options: ['layer0.nope=1'], resolveFrom: project })), INVALID);
  });
});

test.run();
