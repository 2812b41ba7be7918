/**
 * aufslimit's size-limited layers the loop way (this host's kernel has no project quotas; the qemu
 * lane covers those): createWithQuota and storageOpt.size make the branch a loop-mounted ext4 image
 * of that size, a container's write beyond it fails with ENOSPC, remove() leaves no mount, loop
 * device or image, cleanup() leaves no mount or loop device, and a new driver mounts the images of
 * its layers again (and drops the image of a layer a crash removed half way). Plus the refusals and
 * `aufs.size` as the default of writable layers.
 */
import { readdir, readFile, stat, writeFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isMountPoint, listLoops, mountAt, mountsUnder } from '@graphdriver/core';
import { kernelHasProjectQuota, writeZerosWithoutSysResource } from '@graphdriver/testkit';
import type { AufsDriver } from '../src/index.js';
import { codeOf, start, withRoot } from './helpers.js';

const MiB = 1024 * 1024;

/** Loop devices backed by files under `root`; autoclear runs a moment after the unmount, so it is waited for. */
async function loopsUnder(root: string, settleMs = 2000): Promise<string[]> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const left = (await listLoops()).filter((l) => l.backingFile.startsWith(`${root}/`)).map((l) => `${l.path} ${l.backingFile}`);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(50);
  }
}

async function withDriver(root: string, options: string[], fn: (d: AufsDriver) => Promise<void>): Promise<void> {
  const d = await start(root, options);
  try {
    await fn(d);
  } finally {
    await d.cleanup();
  }
}

test('createWithQuota: the branch is an ext4 image of that size on a loop device; writes beyond it fail with ENOSPC; remove leaves nothing', async () => {
  await withRoot(async (root) => {
    await withDriver(root, [], async (d) => {
      await d.create('base');
      const b = await d.get('base');
      await writeFile(join(b, 'from-base'), 'base');
      await d.put('base');
      await d.createWithQuota('ctr', 'base', 20 * MiB);

      const image = join(d.home, 'limits', 'ctr.img');
      const branch = join(d.home, 'diff', 'ctr');
      assert.is((await stat(image)).size, 20 * MiB);
      const m = await mountAt(branch);
      assert.ok(m !== undefined && m.fsType === 'ext4' && /^\/dev\/loop\d+$/.test(m.source), `the image is mounted on the branch: ${JSON.stringify(m)}`);
      const loops = (await listLoops()).filter((l) => l.backingFile === image);
      assert.is(loops.length, 1);
      assert.ok(loops[0]!.autoclear, 'the loop device goes with its mount');
      assert.equal((await d.metadata('ctr')).SizeLimitImage, image);
      assert.ok((await d.status()).some(([k, v]) => k === 'Size limits' && v === 'loop-mounted ext4 image'));
      // the branch root looks like any child's: the parent's mode, no lost+found
      assert.is((await stat(branch)).mode & 0o7777, (await stat(join(d.home, 'diff', 'base'))).mode & 0o7777);

      const p = await d.get('ctr');
      try {
        assert.equal((await readdir(p)).sort(), ['from-base']);
        const first = await writeZerosWithoutSysResource(join(p, 'first'), 10);
        assert.is(first.error, undefined, `10 MiB fit in a 20M layer: ${first.error ?? ''}`);
        const second = await writeZerosWithoutSysResource(join(p, 'second'), 30);
        assert.is(second.error, 'No space left on device', `30 MiB more do not: ${JSON.stringify(second)}`);
      } finally {
        await d.put('ctr');
      }

      // the same through storageOpt, and on a layer without parent (served as the branch itself)
      await d.createReadWrite('opt', 'base', { storageOpt: { size: '8M' } });
      assert.is((await stat(join(d.home, 'limits', 'opt.img'))).size, 8 * MiB);
      await d.createWithQuota('solo', undefined, 8 * MiB);
      const s = await d.get('solo');
      try {
        assert.is(s, join(d.home, 'diff', 'solo'));
        const w = await writeZerosWithoutSysResource(join(s, 'fill'), 12);
        assert.is(w.error, 'No space left on device');
      } finally {
        await d.put('solo');
      }

      for (const id of ['ctr', 'opt', 'solo']) await d.remove(id);
      assert.is(await isMountPoint(branch), false);
      assert.equal(await readdir(join(d.home, 'limits')), []);
      assert.equal(await loopsUnder(root), []);
      assert.equal((await mountsUnder(root)).map((x) => x.mountPoint), []);
    });
  });
});

test('restart: cleanup leaves no mount or loop device; a new driver mounts the images again and drops the image of a removed layer', async () => {
  await withRoot(async (root) => {
    await withDriver(root, [], async (d) => {
      await d.create('base');
      await d.createWithQuota('ctr', 'base', 8 * MiB);
      const p = await d.get('ctr');
      await writeFile(join(p, 'kept'), 'kept');
      await d.get('ctr'); // still held when the driver goes
    });
    assert.equal((await mountsUnder(root)).map((x) => x.mountPoint), [], 'cleanup() took the union and the image down');
    assert.equal(await loopsUnder(root), []);

    // a crash between removing a layer and its image
    const ghost = join(root, 'aufs', 'limits', 'ghost.img');
    await writeFile(ghost, '');
    await truncate(ghost, 4 * MiB);

    await withDriver(root, [], async (d) => {
      assert.is(await codeOf(stat(ghost)), 'ENOENT', 'the image of a layer that does not exist is dropped');
      assert.ok(await isMountPoint(join(d.home, 'diff', 'ctr')), 're-adopted: the image is mounted at start');
      const p = await d.get('ctr');
      try {
        assert.equal(await readFile(join(p, 'kept'), 'utf8'), 'kept');
        const w = await writeZerosWithoutSysResource(join(p, 'fill'), 12);
        assert.is(w.error, 'No space left on device', 'the limit holds after the restart');
      } finally {
        await d.put('ctr');
      }
      // after cleanup() the driver mounts the image again when the layer is used
      await d.cleanup();
      assert.is(await isMountPoint(join(d.home, 'diff', 'ctr')), false);
      assert.equal(await d.changes('ctr', 'base'), [
        { path: '/fill', kind: 'add' },
        { path: '/kept', kind: 'add' },
      ]);
      assert.ok(await isMountPoint(join(d.home, 'diff', 'ctr')));
      await d.remove('ctr');
      await d.remove('base');
    });
    assert.equal(await loopsUnder(root), []);
  });
});

test('refusals, and aufs.size as the default limit of writable layers', async () => {
  await withRoot(async (root) => {
    await withDriver(root, [], async (d) => {
      assert.is(await codeOf(d.create('ro', undefined, { storageOpt: { size: '10M' } })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
      assert.is(await codeOf(d.createReadWrite('rw', undefined, { storageOpt: { bogus: '1' } })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
      assert.is(await codeOf(d.createWithQuota('tiny', undefined, 1000)), 'ERR_GRAPHDRIVER_INVALID_OPTION');
      assert.is(await codeOf(d.createWithQuota('neg', undefined, -1)), 'ERR_GRAPHDRIVER_INVALID_OPTION');
      for (const id of ['ro', 'rw', 'tiny', 'neg']) assert.is(await d.exists(id), false);
      assert.equal(await readdir(join(d.home, 'limits')), []);
      assert.equal((await readdir(join(d.home, 'diff'))).sort(), [], 'a refused create leaves no branch');
    });
    if (!(await kernelHasProjectQuota())) {
      await withDriver(root, ['aufs.limit_method=quota'], async (d) => {
        assert.is(await codeOf(d.createWithQuota('q', undefined, 8 * MiB)), 'ERR_GRAPHDRIVER_QUOTA_NOT_SUPPORTED');
        assert.is(await d.exists('q'), false);
      });
      assert.is(await codeOf(start(root, ['aufs.limit_method=quota', 'aufs.size=8M'])), 'ERR_GRAPHDRIVER_QUOTA_NOT_SUPPORTED', 'moby: a default that cannot be enforced fails the start');
    }
    await withDriver(root, ['aufs.size=6M'], async (d) => {
      await d.create('base');
      await d.createReadWrite('dflt', 'base');
      await d.createReadWrite('bigger', 'base', { storageOpt: { size: '9M' } });
      await d.create('image', 'base');
      assert.is((await stat(join(d.home, 'limits', 'dflt.img'))).size, 6 * MiB);
      assert.is((await stat(join(d.home, 'limits', 'bigger.img'))).size, 9 * MiB);
      assert.is(await codeOf(stat(join(d.home, 'limits', 'image.img'))), 'ENOENT', 'read-only layers get no limit');
      for (const id of ['dflt', 'bigger', 'image', 'base']) await d.remove(id);
    });
    assert.equal(await loopsUnder(root), []);
  });
});

test.run();
