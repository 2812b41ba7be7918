/**
 * Loop devices on the real kernel: attach with flags and see them in sysfs, detach, autoclear
 * lifetime, concurrent attaches racing for free devices, and nothing left behind.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attachLoop, createSparseFile, detachLoop, findLoopsByBackingFile, listLoops } from '../src/blockdev/index.js';
import { errorCode } from '../src/errors.js';

const MiB = 1024 * 1024;

/** Loop devices are released asynchronously at the last close: wait until `file` has none. */
async function waitDetached(file: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if ((await findLoopsByBackingFile(file)).length === 0) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp('/tmp/changes-loop-');
  try {
    await fn(dir);
  } finally {
    // never leave a device behind, even when an assertion failed midway
    for (const l of await listLoops()) if (l.backingFile.startsWith(`${dir}/`)) await detachLoop(l.path);
    await rm(dir, { recursive: true, force: true });
  }
}

test('read-only + autoclear: sysfs shows the backing file and flags, writes are refused, detach removes it', () =>
  withDir(async (dir) => {
    const img = `${dir}/ro.img`;
    await createSparseFile(img, 8 * MiB);
    const dev = await attachLoop(img, { readOnly: true, autoclear: true });
    assert.match(dev.path, /^\/dev\/loop\d+$/);
    assert.is(dev.path, `/dev/loop${dev.number}`);
    const found = await findLoopsByBackingFile(img);
    assert.is(found.length, 1);
    assert.is(found[0]?.path, dev.path);
    assert.is(found[0]?.readOnly, true);
    assert.is(found[0]?.autoclear, true);
    assert.is(Number(readFileSync(`/sys/block/loop${dev.number}/size`, 'utf8')) * 512, 8 * MiB);
    let writeErr: unknown;
    const wfd = openSync(dev.path, 'w');
    try {
      writeSync(wfd, Buffer.alloc(512));
    } catch (err) {
      writeErr = err;
    } finally {
      closeSync(wfd);
    }
    assert.is(errorCode(writeErr), 'EPERM', 'the kernel refuses writes to a read-only loop device');
    await dev.detach();
    assert.ok(await waitDetached(img), 'the device is gone after detach');
    await dev.detach(); // twice is harmless
  }));

test('autoclear lives while our fd is open; without autoclear the device outlives the handle', () =>
  withDir(async (dir) => {
    const a = `${dir}/a.img`;
    const b = `${dir}/b.img`;
    await createSparseFile(a, 4 * MiB);
    await createSparseFile(b, 4 * MiB);
    const auto = await attachLoop(a, { autoclear: true });
    await new Promise((r) => setTimeout(r, 50));
    assert.is((await findLoopsByBackingFile(a)).length, 1, 'still attached while the handle holds it');
    auto.close();
    assert.ok(await waitDetached(a), 'autoclear: gone with its last user');

    const kept = await attachLoop(b);
    kept.close();
    const found = await findLoopsByBackingFile(b);
    assert.is(found.length, 1, 'a plain device stays attached after close()');
    assert.is(found[0]?.autoclear, false);
    assert.is(found[0]?.readOnly, false);
    await detachLoop(kept.path);
    assert.ok(await waitDetached(b));
    await detachLoop(kept.path); // detaching a free device is a no-op
  }));

test('8 concurrent attaches get 8 distinct devices, each on its own file', () =>
  withDir(async (dir) => {
    const files = Array.from({ length: 8 }, (_, i) => `${dir}/c${i}.img`);
    await Promise.all(files.map((f) => createSparseFile(f, 2 * MiB)));
    const devs = await Promise.all(files.map((f) => attachLoop(f)));
    try {
      assert.is(new Set(devs.map((d) => d.path)).size, 8);
      for (const [i, f] of files.entries()) {
        const found = await findLoopsByBackingFile(f);
        assert.equal(found.map((l) => l.path), [devs[i]?.path]);
      }
    } finally {
      await Promise.all(devs.map((d) => d.detach()));
    }
    for (const f of files) assert.ok(await waitDetached(f));
  }));

test('errors: a missing file, an aborted signal', () =>
  withDir(async (dir) => {
    const missing = await attachLoop(`${dir}/missing.img`).catch((e: unknown) => e);
    assert.is(errorCode(missing), 'ENOENT');
    const img = `${dir}/x.img`;
    await createSparseFile(img, MiB);
    const aborted = await attachLoop(img, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    assert.is((aborted as Error).name, 'AbortError');
    assert.is((await findLoopsByBackingFile(img)).length, 0);
  }));

test.run();
