/**
 * RefMounts on real tmpfs mounts: exact counts and one mount per path under 50 concurrent
 * get/put, parallelism across paths, adoption of mounts made by another process, staleness after
 * an unmount behind its back, and failures of the mount and unmount functions.
 */
import { execFile } from 'node:child_process';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { mount } from '@graphdriver/native';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isMountPoint, mountsUnder } from '../src/fs/mountinfo.js';
import { RefMounts } from '../src/fs/refmounts.js';
import { unmount } from '../src/fs/unmount.js';
import { withMountTmp } from './helpers/mount-tmp.js';

const run = promisify(execFile);

const withTmp = (fn: (dir: string) => Promise<void>): Promise<void> => withMountTmp('fs-refmounts', fn);

/** Mount and unmount functions for tmpfs at a path, counting their calls; the mount takes a few ms so that races have room. */
function tmpfsAt(path: string, calls: { mounts: number; unmounts: number }) {
  return {
    mount: async (): Promise<void> => {
      calls.mounts++;
      await mkdir(path, { recursive: true });
      await sleep(3);
      await mount('refmounts', path, 'tmpfs', 0, 'size=1m');
    },
    unmount: async (): Promise<void> => {
      calls.unmounts++;
      if (!(await unmount(path, { retries: 0 }))) throw new Error(`nothing was mounted at ${path}`);
    },
  };
}

async function mountCount(path: string): Promise<number> {
  return (await mountsUnder(path)).filter((m) => m.mountPoint === path).length;
}

test('50 concurrent gets then 50 concurrent puts on 5 shared paths: one mount each, exact counts, no EBUSY', async () => {
  await withTmp(async (dir) => {
    const refs = new RefMounts();
    const paths = Array.from({ length: 5 }, (_, i) => join(dir, `layer${i}`, 'merged'));
    const calls = paths.map(() => ({ mounts: 0, unmounts: 0 }));
    const fns = paths.map((p, i) => tmpfsAt(p, calls[i]!));
    const gets = Array.from({ length: 50 }, (_, k) => refs.get(paths[k % 5]!, fns[k % 5]!.mount));
    const after = await Promise.all(gets);
    assert.equal([...after].sort((a, b) => a - b), Array.from({ length: 50 }, (_, k) => Math.floor(k / 5) + 1));
    for (let i = 0; i < 5; i++) {
      assert.is(refs.count(paths[i]!), 10);
      assert.is(calls[i]!.mounts, 1, 'mounted once');
      assert.is(await mountCount(paths[i]!), 1, 'one mount in the table, nothing stacked');
    }
    const puts = Array.from({ length: 50 }, (_, k) => refs.put(paths[k % 5]!, fns[k % 5]!.unmount));
    await Promise.all(puts);
    for (let i = 0; i < 5; i++) {
      assert.is(refs.count(paths[i]!), 0);
      assert.is(calls[i]!.unmounts, 1, 'unmounted once, by the last put');
      assert.not.ok(await isMountPoint(paths[i]!));
    }
    assert.equal(refs.counts(), new Map());
  });
});

test('50 interleaved gets and puts: the mount is there exactly while references are held', async () => {
  await withTmp(async (dir) => {
    const refs = new RefMounts();
    const p = join(dir, 'merged');
    const calls = { mounts: 0, unmounts: 0 };
    const fn = tmpfsAt(p, calls);
    // g g p g p p g g g p ... : a fixed pseudo-random sequence that never puts below zero.
    const ops: Array<'get' | 'put'> = [];
    let held = 0;
    let seed = 7;
    for (let i = 0; i < 50; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const op = held === 0 || seed % 3 !== 0 ? 'get' : 'put';
      held += op === 'get' ? 1 : -1;
      ops.push(op);
    }
    const results = await Promise.all(ops.map((op) => (op === 'get' ? refs.get(p, fn.mount) : refs.put(p, fn.unmount))));
    // Serialised in arrival order, each result is the running count.
    let expect = 0;
    assert.equal(results, ops.map((op) => (expect += op === 'get' ? 1 : -1)));
    assert.is(refs.count(p), held);
    assert.is(await mountCount(p), held > 0 ? 1 : 0);
    assert.is(calls.mounts - calls.unmounts, held > 0 ? 1 : 0);
    while (refs.count(p) > 0) await refs.put(p, fn.unmount);
    assert.not.ok(await isMountPoint(p));
  });
});

test('distinct paths mount in parallel', async () => {
  await withTmp(async (dir) => {
    const refs = new RefMounts();
    const paths = Array.from({ length: 5 }, (_, i) => join(dir, `p${i}`));
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      paths.map((p) =>
        refs.get(p, async () => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await mkdir(p);
          await sleep(40);
          await mount('par', p, 'tmpfs', 0, 'size=1m');
          inside--;
        }),
      ),
    );
    assert.is(maxInside, 5);
    await Promise.all(paths.map((p) => refs.put(p, async () => void (await unmount(p)))));
    assert.equal(await mountsUnder(dir), []);
  });
});

test('a mount made by a child process is adopted with a count of 1 (eagerly or on first touch)', async () => {
  await withTmp(async (dir) => {
    const p = join(dir, 'merged');
    const q = join(dir, 'other');
    await mkdir(p);
    await mkdir(q);
    // util-linux mount(8): another process made these, as an earlier daemon would have.
    await run('mount', ['-t', 'tmpfs', 'earlier', p]);
    await run('mount', ['-t', 'tmpfs', 'earlier', q]);
    const calls = { mounts: 0, unmounts: 0 };
    const fn = tmpfsAt(p, calls);

    const refs = await RefMounts.create({ adopt: [p, join(dir, 'not-mounted')] });
    assert.is(refs.count(p), 1, 'adopted at construction');
    assert.equal([...refs.counts().keys()], [p]);
    assert.is(await refs.get(p, fn.mount), 2);
    assert.is(calls.mounts, 0, 'already mounted: no second mount');
    assert.is(await refs.put(p, fn.unmount), 1);
    assert.ok(await isMountPoint(p));
    assert.is(await refs.put(p, fn.unmount), 0, 'the inherited reference is released by the matching put');
    assert.is(calls.unmounts, 1);
    assert.not.ok(await isMountPoint(p));

    // Lazily: a never-seen path that is mounted counts 1 on first touch.
    const qcalls = { mounts: 0, unmounts: 0 };
    const qfn = tmpfsAt(q, qcalls);
    assert.is(await refs.put(q, qfn.unmount), 0);
    assert.is(qcalls.unmounts, 1);
    assert.not.ok(await isMountPoint(q));
    assert.is(await refs.put(q, qfn.unmount), 0, 'a put with nothing held and nothing mounted does nothing');
    assert.is(qcalls.unmounts, 1);
  });
});

test('adoptUnder adopts only the mount points a driver selects, not mounts inside them', async () => {
  await withTmp(async (dir) => {
    for (const id of ['l1', 'l2']) {
      await mkdir(join(dir, id, 'merged'), { recursive: true });
      await run('mount', ['-t', 'tmpfs', id, join(dir, id, 'merged')]);
    }
    await mkdir(join(dir, 'l1', 'merged', 'proc'));
    await run('mount', ['-t', 'tmpfs', 'inner', join(dir, 'l1', 'merged', 'proc')]);
    const refs = new RefMounts();
    const adopted = await refs.adoptUnder(dir, (mp) => mp.endsWith('/merged'));
    assert.equal(adopted, [join(dir, 'l1', 'merged'), join(dir, 'l2', 'merged')]);
    assert.is(refs.count(join(dir, 'l1', 'merged', 'proc')), 0);
    assert.equal(await refs.adoptUnder(dir, (mp) => mp.endsWith('/merged')), [], 'adopting twice adds nothing');
    assert.is(refs.count(join(dir, 'l1', 'merged')), 1);
  });
});

test('a mount removed behind our back drops its references: the next get mounts again', async () => {
  await withTmp(async (dir) => {
    const refs = new RefMounts();
    const p = join(dir, 'merged');
    const calls = { mounts: 0, unmounts: 0 };
    const fn = tmpfsAt(p, calls);
    await refs.get(p, fn.mount);
    await refs.get(p, fn.mount);
    assert.is(refs.count(p), 2);
    await run('umount', [p]); // conmon, an admin...
    assert.is(await refs.get(p, fn.mount), 1, 'fresh mount, fresh count');
    assert.is(calls.mounts, 2);
    assert.ok(await isMountPoint(p));
    await run('umount', [p]);
    assert.is(await refs.put(p, fn.unmount), 0);
    assert.is(calls.unmounts, 0, 'nothing to unmount');
  });
});

test('a failing mount leaves no reference; a failing unmount keeps one so that put can be retried', async () => {
  await withTmp(async (dir) => {
    const refs = new RefMounts();
    const p = join(dir, 'merged');
    let failures = 0;
    try {
      await refs.get(p, async () => {
        failures++;
        throw new Error('mount failed');
      });
      assert.unreachable();
    } catch (err) {
      assert.match((err as Error).message, 'mount failed');
    }
    assert.is(refs.count(p), 0);
    const calls = { mounts: 0, unmounts: 0 };
    const fn = tmpfsAt(p, calls);
    assert.is(await refs.get(p, fn.mount), 1);
    const fh = await open(p, 'r');
    try {
      await refs.put(p, fn.unmount);
      assert.unreachable();
    } catch (err) {
      assert.is((err as NodeJS.ErrnoException).code, 'EBUSY');
    } finally {
      await fh.close();
    }
    assert.is(refs.count(p), 1);
    assert.ok(await isMountPoint(p));
    assert.is(await refs.put(p, fn.unmount), 0);
    assert.not.ok(await isMountPoint(p));
    assert.is(failures, 1);
  });
});

test('a checker can be given (overlay checks the filesystem magic, as moby does)', async () => {
  const seen: string[] = [];
  const refs = new RefMounts({ isMounted: async (path) => (seen.push(path), false) });
  assert.is(await refs.get('/tmp/fs-refmounts-x/../fs-refmounts-y', async () => undefined), 1);
  assert.equal(seen, ['/tmp/fs-refmounts-y'], 'paths are normalised');
});

test.run();
