/**
 * Cases about a driver's life rather than a layer's content: the shapes of metadata() and status(),
 * remove() of a layer that is still mounted, 50 concurrent get/put on shared and distinct layers
 * (exact reference counts, no EBUSY, one mount per layer), cleanup() leaving no mount, and a new
 * driver on the same root (a restart) seeing the same layers with the same content.
 */
import { strict as assert } from 'node:assert';
import { readFile, realpath } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { hasListLayers, isAtOrUnder, listLoops } from '@graphdriver/core';
import type { Case } from '../runner.js';
import type { CaseContext } from '../context.js';
import { assertSameTree, treeDigest, type TreeDigest } from '../digest.js';
import { addFile, createBase, withLayer } from '../fixtures.js';
import { expectCode, mountPointsUnder, mountsAt, removeLayers } from './helpers.js';

type C = Case<CaseContext>;

const metadataAndStatus: C = {
  name: 'MetadataAndStatus',
  async run({ driver, root }) {
    assert.equal(typeof driver.name, 'string');
    assert.ok(driver.name.length > 0, 'driver.name is not empty');
    assert.ok(isAbsolute(driver.home), `driver.home ${JSON.stringify(driver.home)} is absolute`);
    assert.ok(isAtOrUnder(driver.home, root), `driver.home ${driver.home} lies under the root ${root}`);

    const status = await driver.status();
    assert.ok(Array.isArray(status), 'status() is an array of rows');
    for (const row of status) {
      assert.ok(Array.isArray(row) && row.length === 2, `status() row ${JSON.stringify(row)} is a [key, value] pair`);
      assert.equal(typeof row[0], 'string', `status() key ${JSON.stringify(row[0])}`);
      assert.equal(typeof row[1], 'string', `status() value of ${row[0]}`);
    }

    await driver.create('meta');
    const md = await driver.metadata('meta');
    assert.ok(typeof md === 'object' && md !== null && !Array.isArray(md), 'metadata() is a plain record');
    for (const [k, v] of Object.entries(md)) assert.equal(typeof v, 'string', `metadata() value of ${k} is a string`);
    await expectCode(driver.metadata('no-such-layer'), ['ERR_GRAPHDRIVER_LAYER_UNKNOWN'], 'metadata() of an unknown layer');
    assert.equal(await driver.exists('no-such-layer'), false, 'exists() of an unknown layer');
    await removeLayers(driver, ['meta']);
  },
};

/** The contract: remove() of a mounted layer unmounts it first, or refuses with LayerBusyError. */
const removeMounted: C = {
  name: 'RemoveMounted',
  async run({ driver, root }) {
    await driver.create('busy');
    await addFile(driver, 'busy', 'content', Buffer.from('still here'));
    const path = await driver.get('busy');
    let removed: boolean;
    try {
      await driver.remove('busy');
      removed = true;
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'ERR_GRAPHDRIVER_LAYER_BUSY', `remove() of a mounted layer failed with something else than LayerBusyError: ${String(err)}`);
      removed = false;
    }
    if (removed) {
      assert.equal(await driver.exists('busy'), false, 'a removed layer does not exist');
      assert.equal(await mountsAt(path), 0, 'remove() of a mounted layer leaves no mount at its path');
    } else {
      assert.equal(await driver.exists('busy'), true, 'a layer whose remove() was refused still exists');
      assert.equal(await readFile(join(path, 'content'), 'utf8'), 'still here', 'a refused remove() leaves the content');
      await driver.put('busy');
      await removeLayers(driver, ['busy']);
    }
    assert.deepEqual(await mountPointsUnder(root), [], 'no mount is left under the root');
  },
};

const SHARED_GETS = 25;
const DISTINCT = 25;

/**
 * 50 gets at once (25 of one layer, one each of 25 others), then the puts in two waves, then a storm
 * of get-read-put. A driver that mounts must show exactly one mount per layer while it is held and
 * none after its last put; every layer's path must keep its content while held; nothing may fail.
 */
const concurrentGetPut: C = {
  name: 'ConcurrentGetPut',
  async run({ driver }) {
    await driver.create('shared');
    await addFile(driver, 'shared', 'id', Buffer.from('shared'));
    const distinct = Array.from({ length: DISTINCT }, (_, i) => `distinct-${i}`);
    for (const id of distinct) {
      await driver.create(id, 'shared');
      await addFile(driver, id, 'id', Buffer.from(id));
    }
    // Interleaved, so that shared and distinct gets race each other.
    const ids: string[] = [];
    for (let i = 0; i < Math.max(SHARED_GETS, DISTINCT); i++) {
      if (i < SHARED_GETS) ids.push('shared');
      if (i < DISTINCT) ids.push(distinct[i]!);
    }

    const paths = await Promise.all(ids.map(async (id) => [id, await driver.get(id)] as const));
    const pathOf = new Map<string, string>();
    for (const [id, p] of paths) {
      const seen = pathOf.get(id);
      if (seen !== undefined) assert.equal(p, seen, `every get() of ${id} returns the same path`);
      pathOf.set(id, p);
    }
    const mounted = (await mountsAt(pathOf.get('shared')!)) > 0;
    for (const [id, p] of pathOf) {
      const n = await mountsAt(p);
      assert.ok(n <= 1, `${id} is mounted ${n} times at ${p}; one mount per layer`);
      assert.equal(n > 0, mounted, `${id}: ${n > 0 ? 'mounted' : 'not mounted'} while the shared layer is ${mounted ? '' : 'not '}mounted`);
      assert.equal(await readFile(join(p, 'id'), 'utf8'), id, `content of ${id} while held`);
    }

    // All but one reference of the shared layer: it must stay.
    await Promise.all(Array.from({ length: SHARED_GETS - 1 }, () => driver.put('shared')));
    const sharedPath = pathOf.get('shared')!;
    if (mounted) assert.equal(await mountsAt(sharedPath), 1, 'shared is still mounted with one reference left');
    assert.equal(await readFile(join(sharedPath, 'id'), 'utf8'), 'shared', 'shared is readable with one reference left');

    // The last references: everything goes.
    await Promise.all(['shared', ...distinct].map((id) => driver.put(id)));
    for (const [id, p] of pathOf) assert.equal(await mountsAt(p), 0, `${id} is unmounted after its last put()`);

    // A storm of get-read-put on all of them at once.
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const id = i % 2 === 0 ? 'shared' : distinct[i % DISTINCT]!;
        const p = await driver.get(id);
        assert.equal(await readFile(join(p, 'id'), 'utf8'), id, `content of ${id} during the storm`);
        await driver.put(id);
      }),
    );
    for (const [id, p] of pathOf) assert.equal(await mountsAt(p), 0, `${id} is unmounted after the storm`);

    // Counting starts from zero again.
    const again = await driver.get('shared');
    if (mounted) assert.equal(await mountsAt(again), 1, 'a get() after the storm mounts again');
    await driver.put('shared');
    assert.equal(await mountsAt(again), 0, 'and its put() unmounts');
    await removeLayers(driver, ['shared', ...distinct]);
  },
};

const cleanupUnmounts: C = {
  name: 'CleanupLeavesNoMount',
  async run(ctx) {
    const { driver, root } = ctx;
    await driver.create('base');
    await addFile(driver, 'base', 'f', Buffer.from('f'));
    await driver.createReadWrite('container', 'base');
    // Held layers: cleanup() must take their mounts down all the same.
    await driver.get('base');
    await driver.get('container');
    await driver.get('container');
    await ctx.cleanupDriver();
    assert.deepEqual(await mountPointsUnder(root), [], 'cleanup() leaves no mount under the root (/proc/self/mountinfo)');
    // Drivers that keep layers or pools in image files (aufs limits, devmapper, layer0 volumes)
    // must let go of their loop devices too; a mount of one elsewhere would hold it.
    const realRoot = await realpath(root);
    const loops = (await listLoops()).filter((l) => isAtOrUnder(l.backingFile, realRoot)).map((l) => `${l.path} (${l.backingFile})`);
    assert.deepEqual(loops, [], 'cleanup() leaves no loop device backed by a file under the root');
  },
};

const restart: C = {
  name: 'Restart',
  async run(ctx) {
    let driver = ctx.driver;
    await createBase(driver, 'base');
    await driver.create('child', 'base');
    await addFile(driver, 'child', 'child.txt', Buffer.from('child'));
    await driver.createReadWrite('rw', 'child');
    await addFile(driver, 'rw', 'rw.txt', Buffer.from('rw'));
    const ids = ['base', 'child', 'rw'];
    const before = new Map<string, TreeDigest>();
    for (const id of ids) before.set(id, await withLayer(driver, id, (r) => treeDigest(r, { mtime: true })));
    const listed = hasListLayers(driver) ? (await driver.listLayers()).sort() : undefined;
    // Held across the restart: cleanup() must release it and the new driver must still serve it.
    await driver.get('rw');

    driver = await ctx.restart();
    for (const id of ids) {
      assert.equal(await driver.exists(id), true, `${id} exists after the restart`);
      assertSameTree(await withLayer(driver, id, (r) => treeDigest(r, { mtime: true })), before.get(id)!, `${id} after the restart`);
    }
    assert.equal(await driver.exists('never-made'), false, 'an unknown layer does not exist after the restart');
    if (listed !== undefined && hasListLayers(driver)) {
      assert.deepEqual((await driver.listLayers()).sort(), listed, 'listLayers() after the restart');
    }
    // The reloaded store is usable: a new child of a reloaded layer.
    await driver.create('after', 'child');
    await withLayer(driver, 'after', async (r) => {
      assert.equal(await readFile(join(r, 'child.txt'), 'utf8'), 'child');
    });
    await removeLayers(driver, [...ids, 'after']);
  },
};

export function lifecycleCases(): C[] {
  return [metadataAndStatus, removeMounted, concurrentGetPut, cleanupUnmounts, restart];
}
