/**
 * What containers/storage's overlay offers beyond the basics, and init's refusals: options and
 * their errors; typed "not supported" errors for a home on overlay and on a filesystem without
 * d_type; size limits refused where there are no project quotas (they run for real in
 * test/quota-lane.ts); fuse-overlayfs mode (AUFS whiteouts stored, the store's marker, a later
 * start without mount_program keeping the mount program); idmapped mounts and updateLayerIdMap;
 * additional read-only image stores; readWriteDiskUsage and diffGetter.
 */
import { chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { S } from '@graphdriver/native';
import { withScratchFs } from '@graphdriver/testkit';
import { init, type OverlayDriver } from '../src/index.js';
import { codeOf, errorOf, mountAt, readStream, start, tarOf, withRoot } from './helpers.js';

const rows = (s: Array<[string, string]>): Record<string, string> => Object.fromEntries(s);

test('options: containers/storage keys and moby\'s overlay2 prefix parse; unknown keys and bad values are errors naming them', async () => {
  await withRoot(async (root) => {
    const d = await start(root, ['overlay.mountopt=nodev', 'overlay2.ignore_chown_errors=true', '.mount_api=classic']);
    assert.is(d.options.mountopt, 'nodev');
    assert.is(d.options.ignore_chown_errors, true);
    assert.is(d.options.mount_api, 'classic');
    await d.cleanup();
    const unknown = await errorOf(start(root, ['overlay.bogus=1']));
    assert.is(unknown.code, 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.match(unknown.message, /overlay\.bogus/);
    assert.is(await codeOf(start(root, ['overlay.mount_api=sometimes'])), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is(await codeOf(start(root, ['vfs.imagestore=/x'])), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is(await codeOf(start(root, ['overlay.imagestore=relative/path'])), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    const d2 = await start(root);
    assert.is(await codeOf(d2.create('ro', undefined, { storageOpt: { size: '1G' } })), 'ERR_GRAPHDRIVER_INVALID_OPTION', 'no size on read-only layers (moby)');
    assert.is(await codeOf(d2.createReadWrite('rw', undefined, { storageOpt: { bogus: '1' } })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is(await d2.exists('ro'), false);
    await d2.cleanup();
  });
});

test('init refuses a home on overlay (IncompatibleFsError) and a filesystem without d_type (with the reformat hint)', async () => {
  await withRoot(async (root) => {
    // a home inside a mounted layer: overlay on overlay
    const outer = await start(root);
    await outer.create('base');
    await outer.create('layer', 'base');
    const merged = await outer.get('layer');
    try {
      const err = await errorOf(start(merged));
      assert.is(err.code, 'ERR_GRAPHDRIVER_INCOMPATIBLE_FS');
      assert.match(err.message, /not supported over overlayfs/);
      assert.is((err as unknown as { backingFs: string }).backingFs, 'overlayfs');
      assert.not.ok(readdirSync(merged).includes('overlay'), 'a refused home is not created');
      // a mount program can stack on overlay
      const fuse = await start(merged, ['overlay.mount_program=/usr/bin/fuse-overlayfs']);
      await fuse.cleanup();
    } finally {
      await outer.put('layer');
      await outer.cleanup();
    }
  });
  await withScratchFs('ext4', { size: '64M', mkfsArgs: ['-O', '^filetype'] }, async (fs) => {
    const err = await errorOf(start(fs.path));
    assert.is(err.code, 'ERR_GRAPHDRIVER_INCOMPATIBLE_FS');
    assert.match(err.message, /without d_type support/);
    assert.match(err.message, /-O filetype/);
  });
});

test("the refusals' wording: no overlay in /proc/filesystems is seen as such; xfs without d_type gets moby's ftype=1 hint", async () => {
  const { listsOverlay, dtypeRefusal } = await import('../src/support.js');
  assert.ok(listsOverlay('nodev\tsysfs\n\text4\nnodev\toverlay\n'));
  assert.not.ok(listsOverlay('nodev\tsysfs\n\text4\nnodev\toverlayfs-something\n'));
  const xfs = dtypeRefusal('xfs');
  assert.is(xfs.code, 'ERR_GRAPHDRIVER_INCOMPATIBLE_FS');
  assert.match(xfs.message, /Reformat the filesystem with ftype=1/);
  // (an xfs made with ftype=0 is a V4 filesystem, which this kernel no longer mounts: ext4 without
  // the filetype feature is the real refusal, tested with init above)
});

test('size limits where the filesystem has no project quota: QuotaNotSupportedError, nothing created; overlay.size fails at start', async () => {
  await withScratchFs('ext4', { size: '64M' }, async (fs) => {
    const d = await start(fs.path);
    const err = await errorOf(d.createReadWrite('limited', undefined, { storageOpt: { size: '50M' } }));
    assert.is(err.code, 'ERR_GRAPHDRIVER_QUOTA_NOT_SUPPORTED');
    assert.is(await d.exists('limited'), false);
    assert.equal(readdirSync(join(fs.path, 'overlay', 'staging')), []);
    assert.is(await codeOf(start(fs.path, ['overlay.size=10G'])), 'ERR_GRAPHDRIVER_QUOTA_NOT_SUPPORTED');
    await d.createReadWrite('limited');
    await d.cleanup();
  });
});

test('a home that is a filesystem of its own stays mounted through cleanup(); what is under it goes', async () => {
  await withScratchFs('ext4', { size: '64M' }, async (fs) => {
    const d = (await init({ home: fs.path, root: join(fs.path, '..'), options: [] })) as OverlayDriver;
    await d.create('base');
    await d.create('layer', 'base');
    const merged = await d.get('layer');
    await d.cleanup();
    assert.is(mountAt(merged), undefined, 'the layer mount is gone');
    assert.ok(mountAt(fs.path) !== undefined, 'the home is still mounted');
  });
});

test('fuse-overlayfs mode: mounts through it, stores AUFS whiteouts, marks the store; a later start without mount_program keeps using it', async () => {
  await withRoot(async (root) => {
    const d = await start(root, ['overlay.mount_program=/usr/bin/fuse-overlayfs']);
    assert.is(readFileSync(join(root, 'overlay', '.has-mount-program'), 'utf8'), 'true');
    assert.match(rows(await d.status())['Mount method']!, /fuse-overlayfs/);
    await d.create('base');
    const b = await d.get('base');
    writeFileSync(join(b, 'gone'), 'x');
    mkdirSync(join(b, 'd'));
    writeFileSync(join(b, 'd', 'old'), 'x');
    await d.put('base');
    await d.create('layer', 'base');
    await d.applyDiff('layer', 'base', tarOf([
      { name: '.wh.gone', type: 'file' },
      { name: 'd/', type: 'dir', mode: 0o755 },
      { name: 'd/.wh..wh..opq', type: 'file' },
      { name: 'd/new', type: 'file', data: 'n' },
    ]));
    const diff = join(root, 'overlay', 'layer', 'diff');
    assert.is(lstatSync(join(diff, '.wh.gone')).mode & S.IFMT, S.IFREG, 'the whiteout is an AUFS file');
    assert.ok(readdirSync(join(diff, 'd')).includes('.wh..wh..opq'), 'the opaque marker is an AUFS file');
    const m = await d.get('layer');
    try {
      assert.is(mountAt(m)!.fsType, 'fuse.fuse-overlayfs');
      assert.equal(readdirSync(m).sort(), ['d'], 'fuse-overlayfs honours the AUFS whiteout');
      assert.equal(readdirSync(join(m, 'd')), ['new'], 'and the opaque marker');
    } finally {
      await d.put('layer');
    }
    assert.is(mountAt(m), undefined, 'unmounted through fusermount');
    await d.cleanup();

    // without mount_program: the marker says the layers hold AUFS whiteouts, so the program stays
    const again = await start(root);
    assert.match(rows(await again.status())['Mount method']!, /fuse-overlayfs/);
    const m2 = await again.get('layer');
    assert.equal(readdirSync(m2).sort(), ['d']);
    await again.put('layer');
    await again.cleanup();
  });
});

test('idmapped mounts: a layer shown with host ids through a mapping; updateLayerIdMap re-owns its files', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    assert.is(d.supportsShifting(), true);
    const map = { uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 100000, size: 65536 }] };
    await d.create('base');
    const b = await d.get('base');
    writeFileSync(join(b, 'root-file'), 'r');
    writeFileSync(join(b, 'user-file'), 'u');
    chownSync(join(b, 'user-file'), 1000, 1000);
    await d.put('base');
    await d.createReadWrite('ctr', 'base');
    const m = await d.get('ctr', { idMappings: map });
    try {
      assert.is(statSync(join(m, 'root-file')).uid, 100000, 'container root is host 100000');
      assert.is(statSync(join(m, 'user-file')).gid, 101000);
    } finally {
      await d.put('ctr');
    }
    assert.is(statSync(join(root, 'overlay', 'base', 'diff', 'root-file')).uid, 0, 'on disk the ids stay unshifted');
    writeFileSync(join(root, 'overlay', 'ctr', 'diff', 'own'), 'o');
    const ro = await d.get('ctr', { idMappings: map, readOnly: true });
    try {
      assert.is(statSync(join(ro, 'root-file')).uid, 100000, 'read-only, the lowers are shifted');
      assert.is(statSync(join(ro, 'own')).uid, 100000, "and so is the layer's own diff, the top lower");
    } finally {
      await d.put('ctr');
    }
    const solo = await d.get('base', { idMappings: map });
    assert.is(statSync(join(solo, 'user-file')).uid, 101000, 'a layer without lowers: an idmapped bind of its diff');
    await d.put('base');

    // moving a layer from one mapping to another (not under a mount of it)
    await d.get('ctr');
    assert.is(await codeOf(d.updateLayerIdMap('ctr', { uidMap: [], gidMap: [] }, map)), 'ERR_GRAPHDRIVER_LAYER_BUSY');
    await d.put('ctr');
    await d.updateLayerIdMap('ctr', { uidMap: [], gidMap: [] }, map);
    const shifted = await d.get('ctr');
    try {
      assert.is(statSync(join(shifted, 'root-file')).uid, 100000);
      assert.is(statSync(join(shifted, 'user-file')).uid, 101000);
    } finally {
      await d.put('ctr');
    }
    assert.is(statSync(join(root, 'overlay', 'base', 'diff', 'user-file')).uid, 1000, 'the lower layer is not changed: files were copied up');
    await d.cleanup();
  });
});

test('additional image stores: their layers are found, read, used as parents and diffed, never written or removed', async () => {
  await withRoot(async (root) => {
    const storeRoot = join(root, 'store');
    mkdirSync(storeRoot);
    const s = await start(storeRoot);
    await s.create('img');
    const p = await s.get('img');
    writeFileSync(join(p, 'from-store'), 'store');
    await s.put('img');
    await s.create('img2', 'img');
    await s.cleanup();

    const mine = join(root, 'mine');
    mkdirSync(mine);
    const d = await start(mine, [`overlay.imagestore=${storeRoot}`]);
    assert.equal(d.additionalImageStores(), [storeRoot]);
    assert.is(await d.exists('img2'), true);
    assert.equal(await d.listLayers(), [], 'listLayers is this store only');
    const ro = await d.get('img2');
    try {
      assert.ok(ro.startsWith(join(mine, 'overlay')), 'mounted under our home, not in the store');
      assert.is(readFileSync(join(ro, 'from-store'), 'utf8'), 'store');
      assert.throws(() => writeFileSync(join(ro, 'x'), 'x'), /EROFS/);
    } finally {
      await d.put('img2');
    }
    await d.createReadWrite('ctr', 'img2');
    const c = await d.get('ctr');
    assert.is(readFileSync(join(c, 'from-store'), 'utf8'), 'store');
    writeFileSync(join(c, 'mine'), 'mine');
    await d.put('ctr');
    assert.equal((await d.changes('ctr', 'img2')).map((x) => x.path), ['/mine']);
    assert.ok((await readStream(await d.diff('img', undefined))).includes(Buffer.from('store')));
    assert.is(await codeOf(d.remove('img')), 'ERR_GRAPHDRIVER_OPERATION_FAILED');
    assert.is(await codeOf(d.applyDiff('img', undefined, tarOf([]))), 'ERR_GRAPHDRIVER_OPERATION_FAILED');
    assert.not.ok(readdirSync(join(storeRoot, 'overlay', 'img2')).includes('committed'), 'the store was not written (ctr made no committed file in img2)');
    await d.cleanup();
  });
});

test('readWriteDiskUsage counts the layer\'s own diff; diffGetter reads files of the layer and of its lowers', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    await d.create('base');
    const b = await d.get('base');
    writeFileSync(join(b, 'below'), 'from below');
    await d.put('base');
    await d.createReadWrite('ctr', 'base');
    const c = await d.get('ctr');
    writeFileSync(join(c, 'mine'), Buffer.alloc(1000));
    await d.put('ctr');
    const usage = await d.readWriteDiskUsage('ctr');
    assert.is(usage.inodeCount, 2, 'diff/ and one file');
    assert.ok(usage.size >= 1000);
    const g = await d.diffGetter('ctr');
    try {
      assert.is((await readStream(await g.get('mine'))).length, 1000);
      assert.is((await readStream(await g.get('below'))).toString(), 'from below');
      assert.is(await codeOf(g.get('../../../etc/passwd')), 'ENOENT', 'a path cannot leave the layers');
    } finally {
      await g.close();
    }
    await d.cleanup();
  });
});

test.run();
