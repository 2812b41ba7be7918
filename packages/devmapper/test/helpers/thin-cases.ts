/**
 * Cases only dm-thin has (run in the qemu lane by thin-lane.ts): a pool the user made and names
 * with dm.thinpooldev (used, never removed; a pool that is not empty is refused), and a pool the
 * driver makes on block devices given with dm.datadev and dm.metadatadev (no loop files, no discard
 * by default, removed at cleanup).
 */
import { strict as assert } from 'node:assert';
import { closeSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachLoop, createSparseFile, type LoopDevice } from '@graphdriver/core';
import { dm, dmOpenControl } from '@graphdriver/native';
import type { DriverCase } from './driver-cases.js';
import { leftovers, start, withRoot } from './stores.js';

const MiB = 1024 * 1024;
const BASE = ['dm.fs=ext4', 'dm.basesize=32M'];

/** Two loop devices on sparse files outside any store, detached (autoclear) when closed. */
async function withLoops<T>(fn: (meta: LoopDevice, data: LoopDevice) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'devmapper-loops-'));
  const loops: LoopDevice[] = [];
  try {
    await createSparseFile(join(dir, 'meta'), 16 * MiB);
    await createSparseFile(join(dir, 'data'), 512 * MiB);
    loops.push(await attachLoop(join(dir, 'meta'), { autoclear: true }));
    loops.push(await attachLoop(join(dir, 'data'), { autoclear: true }));
    return await fn(loops[0]!, loops[1]!);
  } finally {
    for (const l of loops) l.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function devNum(path: string): Promise<string> {
  const rdev = (await stat(path)).rdev;
  return `${(rdev >> 8) & 0xfff}:${(rdev & 0xff) | ((rdev >> 12) & 0xfff00)}`;
}

const thinPoolDev: DriverCase = {
  name: 'ThinPoolDevGivenByTheUser',
  async run() {
    await withLoops(async (meta, data) => {
      const fd = await dmOpenControl();
      const pool = `gd-devmapper-test-${process.pid}-pool`;
      try {
        await dm.create(fd, pool);
        await dm.load(fd, pool, [{ start: 0, length: (512 * MiB) / 512, type: 'thin-pool', params: `${await devNum(meta.path)} ${await devNum(data.path)} 128 32768 1 skip_block_zeroing` }]);
        await dm.resume(fd, pool);
        await withRoot(async (root) => {
          let d = await start(root, 'thin', [...BASE, `dm.thinpooldev=/dev/mapper/${pool}`]);
          const prefix = d.deviceSet.devicePrefix;
          try {
            const rows = await d.status();
            assert.deepEqual(rows.find(([k]) => k === 'Pool Name'), ['Pool Name', pool]);
            assert.equal(rows.some(([k]) => k.startsWith('Data file') || k.includes('loop file')), false, 'a user pool has no data files of ours');
            assert.equal(d.settings.blkDiscard, false, 'no discards on a user pool unless asked for');
            await d.create('on-user-pool');
            await writeFile(join(await d.get('on-user-pool'), 'f'), 'x');
            await d.put('on-user-pool');
            await d.cleanup();
            assert.equal((await dm.info(fd, pool)).exists, true, 'cleanup() leaves a pool it did not make');
            assert.deepEqual(await leftovers(root, prefix), [], 'and none of its own devices');
            d = await start(root, 'thin', [...BASE, `dm.thinpooldev=${pool}`]);
            assert.equal(await d.exists('on-user-pool'), true, 'the layers are there after a restart');
            await d.remove('on-user-pool');
          } finally {
            await d.cleanup();
          }
        });
        // a pool that holds another store's devices is not taken over
        await withRoot(async (root) => {
          await assert.rejects(start(root, 'thin', [...BASE, `dm.thinpooldev=${pool}`]), /unable to take ownership of thin-pool .* (used data blocks|non-zero transaction ID)/);
          assert.equal((await dm.info(fd, pool)).exists, true);
        });
      } finally {
        if ((await dm.info(fd, pool)).exists) await dm.remove(fd, pool);
        closeSync(fd);
      }
    });
  },
};

const dataAndMetadataDevices: DriverCase = {
  name: 'PoolOnDataAndMetadataDevices',
  async run() {
    await withLoops(async (meta, data) => {
      await withRoot(async (root) => {
        const d = await start(root, 'thin', [...BASE, `dm.datadev=${data.path}`, `dm.metadatadev=${meta.path}`]);
        const prefix = d.deviceSet.devicePrefix;
        let cleaned = false;
        try {
          const rows = new Map(await d.status());
          assert.equal(rows.get('Pool Name'), `${prefix}-pool`);
          assert.equal(rows.get('Data file'), data.path);
          assert.equal(rows.get('Metadata file'), meta.path);
          assert.equal(rows.has('Data loop file'), false);
          assert.equal(rows.get('Data Space Total'), '536.9MB');
          assert.equal(d.settings.blkDiscard, false, 'no discards on block devices unless asked for');
          await d.create('a');
          await d.get('a');
          await d.put('a');
          await d.remove('a');
          cleaned = true;
          await d.cleanup();
          assert.deepEqual(await leftovers(root, prefix), [], 'cleanup() removed the pool it made on the devices');
        } finally {
          if (!cleaned) await d.cleanup();
        }
      });
    });
  },
};

export const thinCases: DriverCase[] = [thinPoolDev, dataAndMetadataDevices];
