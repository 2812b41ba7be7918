/**
 * unmount and unmountRecursive on real tmpfs mounts: "not mounted" is no error, EBUSY is retried
 * (a file held open in the mount and closed a little later), the lazy fallback, abort, and the
 * recursive unmount of nested, stacked, hidden and bind mounts.
 */
import { execFile } from 'node:child_process';
import { mkdir, open, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mount } from '@graphdriver/native';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isMountPoint, mountAt, mountsUnder } from '../src/fs/mountinfo.js';
import { unmount, unmountRecursive } from '../src/fs/unmount.js';
import { withMountTmp } from './helpers/mount-tmp.js';

const run = promisify(execFile);

async function tmpfs(target: string, name = 'gd-test'): Promise<void> {
  await mkdir(target, { recursive: true });
  await mount(name, target, 'tmpfs', 0, 'size=4m');
}

const withTmp = (fn: (dir: string) => Promise<void>): Promise<void> => withMountTmp('fs-unmount', fn);

async function rejection(p: Promise<unknown>): Promise<NodeJS.ErrnoException> {
  try {
    await p;
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
  assert.unreachable('expected a rejection');
  throw new Error('unreachable');
}

test('not mounted is not an error: a plain directory, a missing path', async () => {
  await withTmp(async (dir) => {
    assert.is(await unmount(dir), false);
    assert.is(await unmount(join(dir, 'no-such')), false);
    assert.is(await unmountRecursive(dir), 0);
  });
});

test('unmount takes down the topmost mount only', async () => {
  await withTmp(async (dir) => {
    const p = join(dir, 'm');
    await tmpfs(p, 'bottom');
    await tmpfs(p, 'top');
    assert.is(await unmount(p), true);
    assert.is((await mountAt(p))?.source, 'bottom');
    assert.is(await unmount(p), true);
    assert.not.ok(await isMountPoint(p));
  });
});

test('EBUSY is retried until the file held open in the mount is closed', async () => {
  await withTmp(async (dir) => {
    const p = join(dir, 'busy');
    await tmpfs(p);
    await writeFile(join(p, 'f'), 'x');
    const fh = await open(join(p, 'f'), 'r');
    const t0 = Date.now();
    const closed = new Promise<void>((resolve) => setTimeout(() => void fh.close().then(resolve), 150));
    assert.is(await unmount(p, { retryDelayMs: 10 }), true);
    const waited = Date.now() - t0;
    await closed;
    assert.ok(waited >= 140, `waited ${waited} ms for the file to be closed`);
    assert.not.ok(await isMountPoint(p));
  });
});

test('without retries EBUSY is the native error; lazyFallback detaches a busy mount', async () => {
  await withTmp(async (dir) => {
    const p = join(dir, 'busy');
    await tmpfs(p);
    await writeFile(join(p, 'f'), 'x');
    const fh = await open(join(p, 'f'), 'r');
    try {
      const err = await rejection(unmount(p, { retries: 0 }));
      assert.is(err.code, 'EBUSY');
      assert.is(err.syscall, 'umount2');
      assert.is(err.path, p);
      assert.ok(await isMountPoint(p), 'still mounted');

      const t0 = Date.now();
      assert.is(await unmount(p, { retries: 2, retryDelayMs: 5, lazyFallback: true }), true);
      assert.ok(Date.now() - t0 < 1000);
      assert.not.ok(await isMountPoint(p), 'detached from the tree while the file is still open');
      assert.is((await fh.readFile('utf8')), 'x', 'the open file still reads');
    } finally {
      await fh.close();
    }
  });
});

test('an AbortSignal stops the retrying', async () => {
  await withTmp(async (dir) => {
    const p = join(dir, 'busy');
    await tmpfs(p);
    const fh = await open(p, 'r');
    try {
      const err = await rejection(unmount(p, { retryDelayMs: 10, signal: AbortSignal.timeout(50) }));
      assert.is(err.name, 'TimeoutError');
      assert.ok(await isMountPoint(p));
    } finally {
      await fh.close();
    }
    assert.is(await unmount(p), true);
  });
});

test('unmountRecursive: nested, stacked, bind and hidden mounts, deepest first, siblings untouched', async () => {
  await withTmp(async (dir) => {
    const root = join(dir, 'root');
    const sibling = join(dir, 'root-sibling');
    await tmpfs(root, 'root');
    await tmpfs(join(root, 'a'), 'a');
    await tmpfs(join(root, 'a', 'b'), 'b');
    await tmpfs(join(root, 'a', 'b', 'c'), 'c');
    await tmpfs(join(root, 'a', 'b', 'c'), 'c-stacked');
    await mkdir(join(root, 'src'));
    await mkdir(join(root, 'bind'));
    await run('mount', ['--bind', join(root, 'src'), join(root, 'bind')]);
    // Hide x/y under a second mount of x: it can only go once the top x is gone.
    await tmpfs(join(root, 'x'), 'x');
    await tmpfs(join(root, 'x', 'y'), 'y');
    await tmpfs(join(root, 'x'), 'x-over');
    await tmpfs(sibling, 'sibling');

    assert.is((await mountsUnder(root)).length, 9);
    // With the default retries one EBUSY on the way would cost 2.5 s: children must go first.
    const t0 = Date.now();
    assert.is(await unmountRecursive(root), 9);
    assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
    assert.equal(await mountsUnder(root), []);
    assert.ok(await isMountPoint(sibling), 'a sibling whose name starts the same is not under root');
    assert.equal(await readdir(root), [], 'the mount point itself is left, empty');
    assert.is(await unmountRecursive(sibling), 1);
  });
});

test('unmountRecursive reports what will not go', async () => {
  await withTmp(async (dir) => {
    const p = join(dir, 'r');
    await tmpfs(p);
    await tmpfs(join(p, 'held'));
    const fh = await open(join(p, 'held'), 'r');
    try {
      const err = await rejection(unmountRecursive(p, { retries: 1, retryDelayMs: 5 }));
      assert.is(err.code, 'EBUSY');
      assert.ok(await isMountPoint(join(p, 'held')));
      assert.ok(await isMountPoint(p));
    } finally {
      await fh.close();
    }
    assert.is(await unmountRecursive(p), 2);
  });
});

test.run();
