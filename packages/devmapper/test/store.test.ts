/**
 * What the DeviceSet keeps on disk and checks on start, on this host's reflink pool: moby's
 * metadata files byte for byte in shape, ids that clash with moby's file names, the base device's
 * UUID verified (a mismatch is an error and nothing is reformatted), dm.basesize grown and never
 * shrunk, the default filesystem, a store left running by a process that died (pool and mounts
 * adopted), the backend recorded and required, "not supported" where neither backend can work, and
 * the reflink pool on an existing xfs or btrfs directory (dm.reflink_pooldir).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir, readFile, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isMountPoint, isNotSupported, mounts } from '@graphdriver/core';
import { withScratchFs } from '@graphdriver/testkit';
import { DevmapperDriver } from '../src/index.js';
import { scrub } from './helpers/scrub.js';
import { leftovers, SMALL_OPTIONS, start, withRoot } from './helpers/stores.js';

const MiB = 1024 * 1024;

/** A reflink store on a fresh root; cleanup must leave nothing, and a failure is scrubbed. */
async function withReflinkStore(options: string[], fn: (root: string, d: { current: DevmapperDriver }) => Promise<void>): Promise<void> {
  await withRoot(async (root) => {
    const d = { current: await start(root, 'reflink', options) };
    const prefix = d.current.deviceSet.devicePrefix;
    try {
      await fn(root, d);
      await d.current.cleanup();
      assert.equal(await leftovers(root, prefix), [], 'cleanup() leaves nothing');
    } catch (err) {
      await d.current.cleanup().catch(() => undefined);
      await scrub(root, prefix);
      throw err;
    }
  });
}

const metaDir = (root: string): string => join(root, 'devmapper', 'metadata');
const readJson = async (path: string): Promise<Record<string, unknown>> => JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;

test("moby's metadata files, mount layout and names; ids that are moby's file names", async () => {
  await withReflinkStore(SMALL_OPTIONS, async (root, d) => {
    const driver = d.current;
    await driver.create('a');
    const rootfs = await driver.get('a');
    assert.is(rootfs, join(root, 'devmapper', 'mnt', 'a', 'rootfs'));
    assert.is(await readFile(join(dirname(rootfs), 'id'), 'utf8'), 'a');
    assert.is((await stat(rootfs)).mode & 0o7777, 0o755);
    await driver.put('a');
    for (const clash of ['base', 'deviceset-metadata', 'x.migrated']) {
      await driver.create(clash, 'a');
      await writeFile(join(await driver.get(clash), 'who'), clash);
      await driver.put(clash);
    }
    const files = (await readdir(metaDir(root))).sort();
    assert.equal(files, ['_base', '_deviceset-metadata', '_x.migrated', 'a', 'base', 'deviceset-metadata', 'transaction-metadata']);
    const base = await readJson(join(metaDir(root), 'base'));
    assert.equal(Object.keys(base), ['device_id', 'size', 'transaction_id', 'initialized', 'deleted']);
    assert.equal(base, { device_id: 1, size: 32 * MiB, transaction_id: 1, initialized: true, deleted: false });
    assert.equal(await readJson(join(metaDir(root), 'a')), { device_id: 2, size: 32 * MiB, transaction_id: 2, initialized: false, deleted: false });
    const set = await readJson(join(metaDir(root), 'deviceset-metadata'));
    assert.equal(Object.keys(set), ['next_device_id', 'BaseDeviceUUID', 'BaseDeviceFilesystem', 'pool_backend']);
    assert.match(String(set.BaseDeviceUUID), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal([set.BaseDeviceFilesystem, set.pool_backend], ['ext4', 'reflink']);
    assert.equal(await readJson(join(metaDir(root), 'transaction-metadata')), { open_transaction_id: 5, device_hash: 'x.migrated', device_id: 5 });

    await driver.cleanup();
    const again = (d.current = await start(root, 'reflink', SMALL_OPTIONS));
    assert.equal((await again.listLayers()).sort(), ['a', 'base', 'deviceset-metadata', 'x.migrated']);
    for (const clash of ['base', 'deviceset-metadata', 'x.migrated']) {
      assert.is(await readFile(join(await again.get(clash), 'who'), 'utf8'), clash, `${clash} is its own layer after a restart`);
      await again.put(clash);
      await again.remove(clash);
    }
    assert.is((await again.deviceSet.lookupDevice(''))?.initialized, true, 'the base device is untouched');
    await again.remove('a');
  });
});

test('the base device: a UUID that is not the recorded one is an error, never a reformat', async () => {
  await withRoot(async (root) => {
    let d = await start(root, 'reflink', SMALL_OPTIONS);
    const prefix = d.deviceSet.devicePrefix;
    try {
      await d.create('keep');
      await writeFile(join(await d.get('keep'), 'f'), 'kept');
      await d.put('keep');
      await d.cleanup();
      const file = join(metaDir(root), 'deviceset-metadata');
      const original = await readFile(file, 'utf8');
      const set = JSON.parse(original) as { BaseDeviceUUID: string };
      await writeFile(file, JSON.stringify({ ...set, BaseDeviceUUID: '00000000-1111-2222-3333-444444444444' }));
      try {
        await start(root, 'reflink', SMALL_OPTIONS);
        assert.unreachable('a store with another base device UUID started');
      } catch (err) {
        assert.is((err as { code?: string }).code, 'ERR_GRAPHDRIVER_OPERATION_FAILED');
        assert.match((err as Error).message, /current base device UUID [0-9a-f-]{36} does not match the stored UUID 00000000-1111-2222-3333-444444444444/);
      }
      assert.equal(await leftovers(root, prefix), [], 'a failed start lets go of the pool');
      await writeFile(file, original);
      d = await start(root, 'reflink', SMALL_OPTIONS);
      assert.is(await readFile(join(await d.get('keep'), 'f'), 'utf8'), 'kept', 'nothing was reformatted');
      await d.put('keep');
      await d.remove('keep');
      await d.cleanup();
    } catch (err) {
      await d.cleanup().catch(() => undefined);
      await scrub(root, prefix);
      throw err;
    }
  });
});

test('dm.basesize: a larger one grows the base device on restart, a smaller one is refused', async () => {
  const opts = (size?: string): string[] => ['dm.fs=ext4', 'dm.loopdatasize=1G', ...(size === undefined ? [] : [`dm.basesize=${size}`])];
  await withReflinkStore(opts('32M'), async (root, d) => {
    await d.current.create('old');
    const oldFs = (await statfs(await d.current.get('old'))).blocks * (await statfs(await d.current.get('old'))).bsize;
    await d.current.put('old');
    await d.current.put('old');
    await d.current.cleanup();
    d.current = await start(root, 'reflink', opts('64M'));
    assert.equal((await d.current.status()).find(([k]) => k === 'Base Device Size'), ['Base Device Size', '67.11MB']);
    await d.current.create('new');
    const st = await statfs(await d.current.get('new'));
    assert.ok(st.blocks * st.bsize > oldFs + 25 * MiB, `a layer of the grown base has the larger filesystem (${oldFs} -> ${st.blocks * st.bsize})`);
    await d.current.put('new');
    assert.is((await d.current.metadata('old')).DeviceSize, String(32 * MiB), 'layers made before keep their size');
    await d.current.cleanup();
    try {
      d.current = await start(root, 'reflink', opts('48M'));
      assert.unreachable('a smaller dm.basesize was taken');
    } catch (err) {
      assert.is((err as { code?: string; key?: string }).key, 'dm.basesize');
      assert.match((err as Error).message, /base device size cannot be smaller than 67.11MB/);
    }
    d.current = await start(root, 'reflink', opts());
    assert.equal((await d.current.status()).find(([k]) => k === 'Base Device Size'), ['Base Device Size', '67.11MB'], 'without dm.basesize the base stays as it is');
    await d.current.remove('new');
    await d.current.remove('old');
  });
});

test('without dm.fs the base device is xfs where the kernel has it (mounted nouuid)', async () => {
  await withReflinkStore(['dm.basesize=320M', 'dm.loopdatasize=2G'], async (_root, d) => {
    assert.equal((await d.current.status()).find(([k]) => k === 'Backing Filesystem'), ['Backing Filesystem', 'xfs']);
    await d.current.create('x');
    const path = await d.current.get('x');
    const m = (await mounts()).find((mi) => mi.mountPoint === dirname(path));
    assert.is(m?.fsType, 'xfs');
    await d.current.put('x');
    await d.current.remove('x');
  });
});

test('a store whose process died: its pool and mounts are adopted by the next one', async () => {
  await withReflinkStore(SMALL_OPTIONS, async (root, d) => {
    await d.current.create('m');
    const path = await d.current.get('m');
    await writeFile(join(path, 'f'), 'still mounted');
    // the first driver is abandoned without cleanup(), as a killed process leaves it
    d.current = await start(root, 'reflink', SMALL_OPTIONS);
    assert.is(await d.current.get('m'), path);
    assert.is(await readFile(join(path, 'f'), 'utf8'), 'still mounted');
    await d.current.put('m');
    assert.ok(await isMountPoint(dirname(path)), "the earlier process's reference is still counted");
    await d.current.put('m');
    assert.not.ok(await isMountPoint(dirname(path)), 'its put() is the last');
    await d.current.remove('m');
  });
});

test('a read-only get mounts the layer read-only', async () => {
  await withReflinkStore(SMALL_OPTIONS, async (_root, d) => {
    await d.current.create('r');
    await d.current.get('r');
    await d.current.put('r');
    const path = await d.current.get('r', { readOnly: true });
    try {
      await writeFile(join(path, 'x'), 'x');
      assert.unreachable('wrote into a read-only layer');
    } catch (err) {
      assert.is((err as { code?: string }).code, 'EROFS');
    } finally {
      await d.current.put('r');
    }
    await d.current.remove('r');
  });
});

test('the backend is recorded: a dm-thin store needs device-mapper, and "not supported" says why', async () => {
  await withRoot(async (root) => {
    try {
      await start(root, 'thin');
      assert.unreachable('dm.backend=thin started without device-mapper');
    } catch (err) {
      assert.ok(isNotSupported(err), String(err));
      assert.is((err as { code?: string }).code, 'ERR_GRAPHDRIVER_PREREQUISITES');
      assert.match((err as Error).message, /needs device-mapper, which this kernel does not offer \(\/dev\/mapper\/control: (ENOENT|ENODEV)\)/);
    }
    try {
      await DevmapperDriver.start({ home: join(root, 'devmapper'), root, options: ['dm.thinpooldev=pool'] });
      assert.unreachable('dm.thinpooldev started without device-mapper');
    } catch (err) {
      assert.ok(isNotSupported(err), String(err));
    }
    // a store made on dm-thin (moby's records no backend: devices without a record are dm-thin)
    await writeFile(join(metaDir(root), 'deviceset-metadata'), JSON.stringify({ next_device_id: 1, BaseDeviceUUID: 'x', BaseDeviceFilesystem: 'xfs', pool_backend: 'dm-thin' }));
    try {
      await DevmapperDriver.start({ home: join(root, 'devmapper'), root, options: SMALL_OPTIONS });
      assert.unreachable('a dm-thin store started on the reflink pool');
    } catch (err) {
      assert.ok(isNotSupported(err), String(err));
      assert.match((err as Error).message, /made on dm-thin\) needs device-mapper/);
    }
    assert.equal(await leftovers(root), []);
  });
  await withReflinkStore(SMALL_OPTIONS, async (root, d) => {
    await d.current.cleanup();
    try {
      d.current = await start(root, 'thin');
      assert.unreachable('a reflink store was opened as dm-thin');
    } catch (err) {
      assert.is((err as { key?: string }).key, 'dm.backend');
    }
    d.current = await DevmapperDriver.start({ home: join(root, 'devmapper'), root, options: SMALL_OPTIONS });
    assert.is(d.current.deviceSet.backend.kind, 'reflink', 'auto opens the backend the store was made on');
  });
});

test('dm.reflink_pooldir: an existing xfs (reflink=1) or btrfs directory; ext4 or xfs without reflink is refused', async () => {
  for (const [fstype, mkfsArgs] of [['xfs', ['-m', 'reflink=1']], ['btrfs', []]] as const) {
    await withScratchFs(fstype, { size: '512M', mkfsArgs: [...mkfsArgs] }, async (fs) => {
      const pooldir = join(fs.path, 'pool');
      await withRoot(async (root) => {
        const options = ['dm.fs=ext4', 'dm.basesize=64M', `dm.reflink_pooldir=${pooldir}`];
        let d = await DevmapperDriver.start({ home: join(root, 'devmapper'), root, options });
        const prefix = d.deviceSet.devicePrefix;
        try {
          const rows = new Map(await d.status());
          assert.equal([rows.get('Pool Backend'), rows.get('Data file'), rows.has('Data loop file')], ['reflink', pooldir, false]);
          await d.create('a');
          const a = await d.get('a');
          const chunk = Buffer.alloc(MiB, 7);
          await writeFile(join(a, 'big'), Buffer.concat(Array.from({ length: 24 }, () => chunk)));
          await d.put('a');
          const used = async (): Promise<number> => {
            const st = await statfs(fs.path);
            return (st.blocks - st.bfree) * st.bsize;
          };
          const before = await used();
          for (const id of ['b', 'c', 'e']) await d.create(id, 'a');
          assert.ok((await used()) - before < 8 * MiB, `${fstype}: three snapshots of a 24 MiB layer share its blocks (${before} -> ${await used()})`);
          assert.is((await readFile(join(await d.get('e'), 'big'))).length, 24 * MiB);
          await d.put('e');
          await d.cleanup();
          assert.equal(await leftovers(root, prefix), []);
          assert.ok((await readdir(join(pooldir, 'devices'))).length >= 5, 'the pool directory keeps its images');
          d = await DevmapperDriver.start({ home: join(root, 'devmapper'), root, options });
          for (const id of ['e', 'c', 'b', 'a']) await d.remove(id);
          assert.equal((await readdir(join(pooldir, 'devices'))).length, 1, 'only the base image is left');
          await d.cleanup();
        } catch (err) {
          await d.cleanup().catch(() => undefined);
          await scrub(root, prefix);
          throw err;
        }
      });
    });
  }
  await withRoot(async (root) => {
    // /tmp on this host is ext4
    try {
      await DevmapperDriver.start({ home: join(root, 'devmapper'), root, options: [`dm.reflink_pooldir=${join(root, 'pool')}`] });
      assert.unreachable('a reflink pool on ext4 started');
    } catch (err) {
      assert.is((err as { code?: string }).code, 'ERR_GRAPHDRIVER_INCOMPATIBLE_FS');
      assert.is((err as { backingFs?: string }).backingFs, 'extfs');
      assert.match((err as Error).message, /cannot clone files \(FICLONE: EOPNOTSUPP\); it needs xfs made with reflink=1, or btrfs/);
    }
    assert.equal(await leftovers(root), []);
  });
  await withScratchFs('xfs', { size: '512M', mkfsArgs: ['-m', 'reflink=0'] }, async (fs) => {
    await withRoot(async (root) => {
      try {
        await DevmapperDriver.start({ home: join(root, 'devmapper'), root, options: [`dm.reflink_pooldir=${fs.path}`] });
        assert.unreachable('a reflink pool on xfs without reflink started');
      } catch (err) {
        assert.is((err as { code?: string }).code, 'ERR_GRAPHDRIVER_INCOMPATIBLE_FS');
      }
    });
  });
});

test.run();
