/**
 * The driver's own tests that hold for both pool backends (issue 7's list), written once and run
 * twice: by uvu on this host for the reflink pool (driver.test.ts) and in the qemu lane for dm-thin
 * (thin-lane.ts). Each case makes its stores on fresh directories, and checks that cleanup() left no
 * mount, loop device or device-mapper device behind; a case that fails is scrubbed so that the next
 * one (and the machine) starts clean.
 *
 *  - loop files grow and never shrink on restart;
 *  - a transaction interrupted at each step (the process killed) rolls back on restart, no device id leaked;
 *  - a layer mounted in another mount namespace still puts cleanly (deferred removal);
 *  - a busy device is deferred-deleted and later removed by the sweep;
 *  - the size storage option grows the filesystem;
 *  - min free space refuses a create with a clear error;
 *  - cleanup leaves no dm device, loop device or mount;
 *  - discards give freed blocks back to the loop file under the pool (dm.blkdiscard);
 *  - status rows, metadata, device status; an xfs base device (nouuid, xfs_nospace_max_retries); resizePool.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync } from 'node:fs';
import { open, readFile, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { errorCode, humanSize, isMountPoint, mounts } from '@graphdriver/core';
import { dm, dmOpenControl, syncfs } from '@graphdriver/native';
import { ReflinkPool, type DevmapperDriver, type DevmapperStartExtras, type TransactionStep } from '../../src/index.js';
import { scrub } from './scrub.js';
import { leftovers, SMALL_OPTIONS, start, withRoot, type Backend } from './stores.js';

const MiB = 1024 * 1024;
const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface DriverCase {
  name: string;
  run(): Promise<void>;
}

/**
 * A store for one case: `fn` gets the driver (and a way to restart it); afterwards cleanup() must
 * leave nothing. On failure everything of the store is taken down all the same.
 */
async function withStore(
  backend: Backend,
  options: string[],
  extras: DevmapperStartExtras,
  fn: (s: { driver: DevmapperDriver; root: string; restart(options?: string[]): Promise<DevmapperDriver> }) => Promise<void>,
): Promise<void> {
  await withRoot(async (root) => {
    let driver: DevmapperDriver | undefined = await start(root, backend, options, extras);
    const prefix = driver.deviceSet.devicePrefix;
    let ok = false;
    try {
      await fn({
        get driver() {
          return driver!;
        },
        root,
        async restart(next = options) {
          const old = driver;
          driver = undefined;
          await old?.cleanup();
          driver = await start(root, backend, next, extras);
          return driver;
        },
      });
      const last = driver;
      driver = undefined;
      await last?.cleanup();
      assert.deepEqual(await leftovers(root, prefix), [], 'cleanup() leaves no mount, loop device or device-mapper device');
      ok = true;
    } finally {
      if (!ok) {
        await driver?.cleanup().catch(() => undefined);
        await scrub(root, prefix);
      }
    }
  });
}

async function writeMiB(path: string, mib: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    const chunk = randomBytes(MiB);
    for (let i = 0; i < mib; i++) await fh.write(chunk);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function fsBytes(path: string): Promise<number> {
  const st = await statfs(path);
  return st.blocks * st.bsize;
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) assert.fail(`timed out after ${ms} ms waiting until ${what}`);
    await sleep(50);
  }
}

/** Whether the pool holds no device `id` (dm-thin: create_thin of it succeeds, and is undone; reflink: no image). */
async function poolIdFree(driver: DevmapperDriver, id: number): Promise<boolean> {
  const backend = driver.deviceSet.backend;
  if (backend instanceof ReflinkPool) return (await stat(backend.imagePath(id)).catch(() => undefined)) === undefined;
  const fd = await dmOpenControl();
  try {
    await dm.message(fd, backend.poolName, 0, `create_thin ${id}`);
    await dm.message(fd, backend.poolName, 0, `delete ${id}`);
    return true;
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return false;
    throw err;
  } finally {
    closeSync(fd);
  }
}

/** A process in its own mount namespace (a copy of ours) that keeps `file` open until killed. */
async function holdInOtherNamespace(file: string): Promise<{ kill(): Promise<void> }> {
  const child = spawn('unshare', ['--mount', 'sh', '-c', 'exec 3<"$0"; echo ready; exec sleep 600', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((ready, fail) => {
    child.stdout.once('data', () => ready());
    child.once('exit', (code) => fail(new Error(`unshare exited ${code} before holding ${file}`)));
  });
  return {
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

const loopFile = (root: string, name: string): string => join(root, 'devmapper', 'devicemapper', name);

function loopFilesGrow(backend: Backend): DriverCase {
  return {
    name: 'LoopFilesGrowNeverShrink',
    async run() {
      const opts = (data: string, meta: string): string[] => ['dm.fs=ext4', 'dm.basesize=32M', `dm.loopdatasize=${data}`, `dm.loopmetadatasize=${meta}`];
      await withStore(backend, opts('1G', '16M'), {}, async (s) => {
        const sizes = async (): Promise<[number, number | undefined]> => [
          (await stat(loopFile(s.root, 'data'))).size,
          backend === 'thin' ? (await stat(loopFile(s.root, 'metadata'))).size : undefined,
        ];
        assert.deepEqual(await sizes(), [1024 * MiB, backend === 'thin' ? 16 * MiB : undefined]);
        const total1 = (await s.driver.deviceSet.status()).data.total;
        await s.driver.create('keep');
        await writeFile(join(await s.driver.get('keep'), 'f'), 'kept');
        await s.driver.put('keep');

        let d = await s.restart(opts('2G', '32M'));
        assert.deepEqual(await sizes(), [2048 * MiB, backend === 'thin' ? 32 * MiB : undefined], 'a larger size grows the files');
        const total2 = (await d.deviceSet.status()).data.total;
        assert.ok(total2 > total1 + 900 * MiB, `the pool grew with its data file: ${total1} -> ${total2}`);
        if (backend === 'thin') assert.equal(total2, 2048 * MiB);

        d = await s.restart(opts('512M', '8M'));
        assert.deepEqual(await sizes(), [2048 * MiB, backend === 'thin' ? 32 * MiB : undefined], 'a smaller size never shrinks them');
        assert.equal((await d.deviceSet.status()).data.total, total2);
        assert.equal(await readFile(join(await d.get('keep'), 'f'), 'utf8'), 'kept');
        await d.put('keep');
        await d.remove('keep');
      });
    },
  };
}

const STEPS: TransactionStep[] = ['transaction-opened', 'pool-changed', 'metadata-written', 'transaction-closed'];

function crashRollback(backend: Backend): DriverCase {
  return {
    name: 'CrashAtEachTransactionStep',
    async run() {
      await withStore(backend, SMALL_OPTIONS, {}, async (s) => {
        await s.driver.create('parent');
        await writeFile(join(await s.driver.get('parent'), 'from-parent'), 'p');
        await s.driver.put('parent');
        for (const operation of ['create', 'delete'] as const) {
          for (const step of STEPS) {
            const at = `${operation} killed after ${step}`;
            if (operation === 'delete' && !(await s.driver.exists('victim'))) await s.driver.create('victim', 'parent');
            const tidBefore = s.driver.deviceSet.transactionId;
            await s.driver.cleanup();
            const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/crash-child.ts', s.root, backend, operation, step, ...SMALL_OPTIONS], {
              cwd: pkgDir,
              stdio: ['ignore', 'inherit', 'inherit'],
            });
            const signal = await new Promise<string | null>((r) => child.once('exit', (_code, sig) => r(sig)));
            assert.equal(signal, 'SIGKILL', `${at}: the child died by its own SIGKILL (the step came)`);
            const open = JSON.parse(await readFile(join(s.root, 'devmapper', 'metadata', 'transaction-metadata'), 'utf8')) as { open_transaction_id: number; device_id: number; device_hash: string };
            assert.equal(open.device_hash, 'victim', `${at}: the open transaction names the victim`);
            assert.equal(open.open_transaction_id, tidBefore + 1, `${at}: one transaction after the last`);

            const d = await s.restart();
            const pool = (await d.deviceSet.backend.usage()).transactionId;
            assert.equal(d.deviceSet.transactionId, pool, `${at}: the store's transaction id is the pool's after the restart`);
            const survived = operation === 'create' && step === 'transaction-closed';
            assert.equal(await d.exists('victim'), survived, `${at}: the victim ${survived ? 'exists (committed)' : 'is gone (rolled back, or the delete completed)'}`);
            assert.equal(await d.deviceSet.hasDevice('victim'), survived, `${at}: metadata of the victim`);
            assert.equal(await poolIdFree(d, open.device_id), !survived, `${at}: device id ${open.device_id} is ${survived ? 'used' : 'free'} in the pool`);
            if (survived) {
              assert.equal(await readFile(join(await d.get('victim'), 'from-parent'), 'utf8'), 'p', `${at}: the committed snapshot holds the parent's file`);
              await d.put('victim');
            }
          }
        }
        // the store is sound after eight crashes: a new layer, then everything removed
        await s.driver.create('after', 'parent');
        assert.equal(await readFile(join(await s.driver.get('after'), 'from-parent'), 'utf8'), 'p');
        await s.driver.put('after');
        for (const id of ['after', 'victim', 'parent']) await s.driver.remove(id);
        assert.deepEqual(await s.driver.listLayers(), []);
      });
    },
  };
}

/** The layer `id` made and mounted, with `file` in it held open by a process in another mount namespace. */
async function heldElsewhere(driver: DevmapperDriver, id: string): Promise<{ kill(): Promise<void>; mountPoint: string }> {
  await driver.create(id);
  const rootfs = await driver.get(id);
  await writeFile(join(rootfs, 'file'), 'held');
  const holder = await holdInOtherNamespace(join(rootfs, 'file'));
  return { ...holder, mountPoint: dirname(rootfs) };
}

function otherNamespacePut(backend: Backend): DriverCase {
  return {
    name: 'PutWhileMountedInAnotherNamespace',
    async run() {
      await withStore(backend, SMALL_OPTIONS, {}, async ({ driver }) => {
        const held = await heldElsewhere(driver, 'ns');
        try {
          await driver.put('ns');
          assert.equal(await isMountPoint(held.mountPoint), false, 'put() unmounted the layer here');
          assert.equal((await mounts()).some((m) => m.mountPoint.startsWith(held.mountPoint)), false, 'no mount of it is left in this namespace');
          const st = await driver.deviceSet.deviceState('ns');
          assert.deepEqual(st, { exists: true, busy: true, deferredRemove: true }, 'the device waits for its last user (deferred removal)');
          // a get while the removal waits takes it back (dm's cancel_deferred_remove); the next put defers it again
          assert.equal(await readFile(join(await driver.get('ns'), 'file'), 'utf8'), 'held');
          assert.deepEqual(await driver.deviceSet.deviceState('ns'), { exists: true, busy: true, deferredRemove: false }, 'the removal was taken back');
          await driver.put('ns');
          assert.deepEqual(await driver.deviceSet.deviceState('ns'), { exists: true, busy: true, deferredRemove: true }, 'deferred again by the put');
        } finally {
          await held.kill();
        }
        await waitFor('the deferred removal happened', async () => !(await driver.deviceSet.deviceState('ns')).exists);
        assert.equal(await readFile(join(await driver.get('ns'), 'file'), 'utf8'), 'held', 'the layer mounts again, content intact');
        await driver.put('ns');
        await driver.remove('ns');
        assert.equal(driver.deviceSet.deletedDeviceCount, 0, 'an unused device is deleted at once');
      });
    },
  };
}

function deferredDeletion(backend: Backend): DriverCase {
  return {
    name: 'BusyDeviceDeferredDeletion',
    async run() {
      await withStore(backend, SMALL_OPTIONS, { deletionSweepMs: 200 }, async ({ driver, root }) => {
        const held = await heldElsewhere(driver, 'busy');
        const { deviceId } = await driver.deviceSet.deviceMetadata('busy');
        const metaFile = join(root, 'devmapper', 'metadata', 'busy');
        try {
          await driver.put('busy');
          await driver.remove('busy');
          assert.equal(await driver.exists('busy'), false, 'a removed layer is gone for users at once');
          assert.deepEqual(await driver.listLayers(), []);
          assert.equal(driver.deviceSet.deletedDeviceCount, 1);
          assert.deepEqual((await driver.status()).find(([k]) => k === 'Deferred Deleted Device Count'), ['Deferred Deleted Device Count', '1']);
          assert.equal((JSON.parse(await readFile(metaFile, 'utf8')) as { deleted: boolean }).deleted, true, 'its metadata says deleted');
          assert.equal(await poolIdFree(driver, deviceId), false, 'the device is still in the pool');
          await assert.rejects(driver.create('busy'), (err: { code?: string }) => err.code === 'ERR_GRAPHDRIVER_LAYER_BUSY', 'the id is busy while its old device waits');
        } finally {
          await held.kill();
        }
        await waitFor('the sweep deleted the device', async () => driver.deviceSet.deletedDeviceCount === 0);
        assert.equal(await stat(metaFile).catch(() => undefined), undefined, 'its metadata file is gone');
        assert.equal(await poolIdFree(driver, deviceId), true, `device id ${deviceId} is free in the pool`);
        await driver.create('busy');
        await driver.remove('busy');
      });
    },
  };
}

function sizeGrows(backend: Backend): DriverCase {
  return {
    name: 'SizeOptionGrowsTheFilesystem',
    async run() {
      await withStore(backend, SMALL_OPTIONS, {}, async ({ driver }) => {
        await driver.create('small');
        const smallFs = await fsBytes(await driver.get('small'));
        await driver.put('small');
        assert.ok(smallFs < 33 * MiB, `a layer has the base's 32M filesystem (${smallFs})`);

        await driver.createReadWrite('big', 'small', { storageOpt: { size: '96M' } });
        assert.equal((await driver.metadata('big')).DeviceSize, String(96 * MiB));
        const big = await driver.get('big');
        const bigFs = await fsBytes(big);
        // statfs leaves out the journal and the inode tables: grown is what counts
        assert.ok(bigFs > smallFs + 50 * MiB && bigFs <= 96 * MiB, `size=96M grew the filesystem: ${smallFs} -> ${bigFs}`);
        await writeMiB(join(big, 'fill'), 60);
        await driver.put('big');

        await driver.create('child', 'big');
        assert.equal((await driver.metadata('child')).DeviceSize, String(96 * MiB), "a child has its parent's size");
        assert.ok((await fsBytes(await driver.get('child'))) > smallFs + 50 * MiB);
        await driver.put('child');
        await assert.rejects(driver.create('smaller', 'big', { storageOpt: { size: '64M' } }), (err: { code?: string; message: string }) => err.code === 'ERR_GRAPHDRIVER_INVALID_OPTION' && /cannot be smaller than 100.7MB/.test(err.message));
        await assert.rejects(driver.create('bad', 'big', { storageOpt: { inodes: '5' } }), (err: { code?: string }) => err.code === 'ERR_GRAPHDRIVER_INVALID_OPTION');
        assert.equal(await driver.exists('smaller'), false);
        for (const id of ['child', 'big', 'small']) await driver.remove(id);
      });
    },
  };
}

function minFreeSpace(backend: Backend): DriverCase {
  return {
    name: 'MinFreeSpaceRefusesCreate',
    async run() {
      const options = ['dm.fs=ext4', 'dm.basesize=160M', 'dm.loopdatasize=512M', 'dm.loopmetadatasize=16M', 'dm.min_free_space=85%'];
      await withStore(backend, options, {}, async ({ driver }) => {
        await driver.create('a');
        await writeMiB(join(await driver.get('a'), 'fill'), 120);
        await driver.put('a');
        const err = await driver.create('b', 'a').then(
          () => assert.fail('a create past dm.min_free_space succeeded'),
          (e: Error & { code?: string; cause?: { code?: string } }) => e,
        );
        assert.equal(err.code, 'ERR_GRAPHDRIVER_OPERATION_FAILED');
        assert.equal(err.cause?.code, 'ENOSPC');
        assert.match(err.message, /create of layer "b" failed: Thin Pool has \d+ free data blocks which is less than minimum required \d+ free data blocks\. Create more free space in thin pool or use dm\.min_free_space option to change behavior/);
        assert.equal(await driver.exists('b'), false, 'nothing was made');
        const st = await driver.deviceSet.status();
        assert.ok(Math.abs(st.minFreeSpace - 0.85 * st.data.total) <= st.sectorSize, `the minimum is 85% of the pool: ${st.minFreeSpace} of ${st.data.total}`);
        assert.deepEqual((await driver.status()).find(([k]) => k === 'Thin Pool Minimum Free Space'), ['Thin Pool Minimum Free Space', humanSize(st.minFreeSpace)]);
        await driver.remove('a');
        await driver.create('b');
        await driver.remove('b');
      });
    },
  };
}

function cleanupLeavesNothing(backend: Backend): DriverCase {
  return {
    name: 'CleanupLeavesNothing',
    async run() {
      await withStore(backend, SMALL_OPTIONS, {}, async ({ driver }) => {
        await driver.create('base');
        await driver.createReadWrite('ctr', 'base');
        await driver.create('idle', 'base');
        await driver.get('base');
        await driver.get('ctr');
        await driver.get('ctr');
        // active but not mounted (as a crashed process leaves devices)
        await driver.getDeviceStatus('idle');
        const active = await driver.deviceSet.backend.activate({ name: `${driver.deviceSet.devicePrefix}-idle`, id: (await driver.deviceSet.deviceMetadata('idle')).deviceId }, 32 * MiB);
        await active.release();
        // withStore's cleanup() must take all of it down (mounts, devices, pool, loop files)
      });
    },
  };
}

function discards(backend: Backend): DriverCase {
  return {
    name: 'DiscardGivesBlocksBackToTheLoopFile',
    async run() {
      for (const discard of [true, false]) {
        const options = [...SMALL_OPTIONS.filter((o) => !o.startsWith('dm.basesize')), 'dm.basesize=96M', `dm.blkdiscard=${discard}`];
        await withStore(backend, options, {}, async ({ driver, root }) => {
          const data = loopFile(root, 'data');
          await driver.create('d');
          await writeMiB(join(await driver.get('d'), 'fill'), 64);
          await driver.put('d');
          const pool = driver.deviceSet.backend;
          if (pool instanceof ReflinkPool) {
            // the layer's blocks sit in the pool filesystem's page cache until it writes them back
            const dh = await open(pool.root, 'r');
            await syncfs(dh.fd).finally(() => dh.close());
          }
          const before = (await stat(data)).blocks * 512;
          assert.ok(before > 64 * MiB, `the layer's 64 MiB reached the data file (${before} bytes allocated)`);
          await driver.remove('d');
          if (discard) {
            await waitFor('the data file lost the removed layer\'s blocks', async () => before - (await stat(data)).blocks * 512 > 48 * MiB);
          } else {
            await sleep(500);
            const after = (await stat(data)).blocks * 512;
            assert.ok(before - after < 16 * MiB, `without dm.blkdiscard the data file keeps its blocks (${before} -> ${after})`);
          }
        });
      }
    },
  };
}

function statusAndMetadata(backend: Backend): DriverCase {
  return {
    name: 'StatusMetadataDeviceStatus',
    async run() {
      await withStore(backend, SMALL_OPTIONS, {}, async ({ driver, root }) => {
        const rows = await driver.status();
        const keys = rows.map(([k]) => k);
        const expected = [
          'Pool Name', 'Pool Backend', 'Pool Blocksize', 'Base Device Size', 'Backing Filesystem', 'Data file', 'Metadata file', 'Data loop file',
          ...(backend === 'thin' ? ['Metadata loop file'] : []),
          'Data Space Used', 'Data Space Total', 'Data Space Available', 'Metadata Space Used', 'Metadata Space Total', 'Metadata Space Available',
          'Thin Pool Minimum Free Space', 'Deferred Removal Enabled', 'Deferred Deletion Enabled', 'Deferred Deleted Device Count',
        ];
        assert.deepEqual(keys, expected);
        const row = (k: string): string => rows.find(([key]) => key === k)![1];
        const prefix = driver.deviceSet.devicePrefix;
        assert.match(prefix, /^docker-\d+:\d+-\d+$/);
        assert.equal(row('Pool Name'), `${prefix}-pool`);
        assert.equal(row('Pool Backend'), backend === 'thin' ? 'dm-thin' : 'reflink');
        assert.equal(row('Pool Blocksize'), backend === 'thin' ? '65.54kB' : '4.096kB');
        assert.equal(row('Base Device Size'), '33.55MB');
        assert.equal(row('Backing Filesystem'), 'ext4');
        assert.equal(row('Data loop file'), loopFile(root, 'data'));
        assert.match(row('Data file'), /^\/dev\/loop\d+$/);
        if (backend === 'thin') assert.equal(row('Data Space Total'), '1.074GB');
        assert.equal(row('Deferred Removal Enabled'), 'true');
        assert.equal(row('Deferred Deleted Device Count'), '0');

        await driver.create('m');
        const md = await driver.metadata('m');
        assert.deepEqual(Object.keys(md), ['DeviceId', 'DeviceSize', 'DeviceName']);
        assert.equal(md.DeviceName, `${prefix}-m`);
        assert.equal(md.DeviceSize, String(32 * MiB));
        assert.match(md.DeviceId!, /^\d+$/);
        await writeMiB(join(await driver.get('m'), 'f'), 4);
        await driver.put('m');
        const ds = await driver.getDeviceStatus('m');
        assert.equal(ds.deviceId, Number(md.DeviceId));
        assert.equal(ds.sizeInSectors, (32 * MiB) / 512);
        assert.ok(ds.mappedSectors >= (4 * MiB) / 512, `the 4 MiB written are mapped (${ds.mappedSectors} sectors)`);
        assert.equal((await driver.deviceSet.deviceState('m')).exists, false, 'getDeviceStatus leaves an inactive device inactive');
        // a 128-character id fits the 127-byte device-mapper names as a digest
        const long = 'x'.repeat(128);
        await driver.create(long);
        assert.match((await driver.metadata(long)).DeviceName!, new RegExp(`^${prefix}-sha256-[0-9a-f]{64}$`));
        await driver.get(long);
        await driver.put(long);
        await driver.remove(long);
        await driver.remove('m');
      });
    },
  };
}

function xfsBase(backend: Backend): DriverCase {
  return {
    name: 'XfsBaseDevice',
    async run() {
      const options = ['dm.fs=xfs', 'dm.basesize=320M', 'dm.loopdatasize=2G', 'dm.loopmetadatasize=16M', 'dm.xfs_nospace_max_retries=0', 'dm.mountopt=noatime'];
      await withStore(backend, options, {}, async ({ driver }) => {
        await driver.create('x');
        const x = await driver.get('x');
        await writeFile(join(x, 'f'), 'x');
        await driver.create('y', 'x', { storageOpt: { size: '400M' } });
        // parent and snapshot mounted at once: two xfs with one UUID, which only nouuid allows
        const y = await driver.get('y');
        assert.equal(await readFile(join(y, 'f'), 'utf8'), 'x');
        const [fsX, fsY] = [await fsBytes(x), await fsBytes(y)];
        assert.ok(fsY > fsX + 70 * MiB, `size=400M grew the xfs: ${fsX} -> ${fsY}`);
        for (const path of [x, y]) {
          const m = (await mounts()).find((mi) => mi.mountPoint === dirname(path));
          assert.ok(m !== undefined && m.fsType === 'xfs', `${path} is an xfs mount`);
          assert.match(m.superOptions, /(^|,)nouuid(,|$)/, 'xfs is mounted nouuid');
          assert.match(m.options, /(^|,)noatime(,|$)/, 'dm.mountopt applies');
          const dev = m.source.replace('/dev/', '');
          assert.equal((await readFile(`/sys/fs/xfs/${dev}/error/metadata/ENOSPC/max_retries`, 'utf8')).trim(), '0', 'dm.xfs_nospace_max_retries is set');
        }
        await driver.put('y');
        await driver.put('x');
        await driver.remove('y');
        await driver.remove('x');
      });
    },
  };
}

function resizePool(backend: Backend): DriverCase {
  return {
    name: 'ResizePool',
    async run() {
      await withStore(backend, SMALL_OPTIONS, {}, async ({ driver, root }) => {
        const before = (await driver.deviceSet.status()).data.total;
        await driver.resizePool(1536 * MiB);
        assert.equal((await stat(loopFile(root, 'data'))).size, 1536 * MiB);
        const after = (await driver.deviceSet.status()).data.total;
        assert.ok(after > before + 400 * MiB, `the pool grew: ${before} -> ${after}`);
        await assert.rejects(driver.resizePool(1024 * MiB), /can't shrink/);
        await driver.create('after-resize');
        await driver.remove('after-resize');
      });
    },
  };
}

export function driverCases(backend: Backend): DriverCase[] {
  return [
    loopFilesGrow(backend),
    crashRollback(backend),
    otherNamespacePut(backend),
    deferredDeletion(backend),
    sizeGrows(backend),
    minFreeSpace(backend),
    cleanupLeavesNothing(backend),
    discards(backend),
    statusAndMetadata(backend),
    xfsBase(backend),
    resizePool(backend),
  ];
}
