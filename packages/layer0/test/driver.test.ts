/**
 * What is layer0's own (graphtest covers the shared behaviour, conformance.ts runs it): container
 * layers on volumes - where they live, their files back after remove + re-create and after a
 * restart (also after a crash), separate volumes per container, volumes provisioned for an image,
 * explicit volumes, a full volume, cleanup, applies into a layer on a volume - on the real kernel
 * with loopback ext4 images.
 */
import { execFile } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildTar } from '@graphdriver/graphtest';
import { CONTAINER_LABEL, IMAGE_LABEL } from '../src/index.js';
import {
  codeOf,
  errorOf,
  loopsUnder,
  makeContainer,
  makeImage,
  mountsUnderRoot,
  readIn,
  removeContainer,
  removeIn,
  start,
  withDriver,
  withRoot,
  writeIn,
} from './helpers.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

test('a container layer (<X> on <X>-init) lives inside its volume; its files are back after remove + re-create', async () => {
  await withDriver(['layer0.volume_size=64M'], async (d, root) => {
    await makeImage(d);
    await makeContainer(d, 'c1');
    const v = d.volumeOf('c1');
    assert.ok(v !== undefined, 'c1 is a container layer');
    assert.is(v.volume, 'img', 'its volume is named after the image, as layer0 named them');
    assert.is(v.phase, 'live');
    assert.is(d.volumeOf('c1-init'), undefined, 'the init layer is a plain overlay layer');
    assert.is(d.volumeOf('img'), undefined);

    // the volume: a loop-mounted ext4 at <home>/c1-vol, the overlay layer inside it
    const mounts = await mountsUnderRoot(root);
    const vol = mounts.find((m) => m.mountPoint === join(root, 'layer0', 'c1-vol'));
    assert.ok(vol !== undefined, 'the volume is mounted at <home>/c1-vol');
    assert.is(vol.fsType, 'ext4');
    assert.match(vol.source, /^\/dev\/loop\d+$/);
    const md = await d.metadata('c1');
    assert.is(md.VolumeName, 'img');
    assert.is(md.VolumeDriver, 'loopback');

    await writeIn(d, 'c1', 'data.txt', 'written in c1');
    await removeIn(d, 'c1', 'gone.txt');
    assert.is(await readFile(join(root, 'layer0', 'c1-vol', 'c1', 'diff', 'data.txt'), 'utf8'), 'written in c1', 'the upper is in the volume');
    assert.is(await readIn(d, 'c1', 'base.txt'), 'base');

    await removeContainer(d, 'c1');
    assert.is(await d.exists('c1'), false);
    assert.is(d.volumeOf('c1')?.phase, 'saved');
    assert.equal(await mountsUnderRoot(root), [], 'remove unmounts the volume');
    assert.equal(await loopsUnder(root), [], 'and detaches its loop device');
    assert.ok((await stat(join(root, 'layer0', 'volumes', 'loopback', 'img.img'))).isFile(), 'the volume stays');

    await makeContainer(d, 'c1');
    assert.is(d.volumeOf('c1')?.volume, 'img', 'made again, it gets its volume back');
    assert.is(await readIn(d, 'c1', 'data.txt'), 'written in c1', 'a file written before is back');
    assert.is(await readIn(d, 'c1', 'gone.txt'), undefined, 'a file deleted before stays deleted (its whiteout was saved too)');
    assert.is(await readIn(d, 'c1', 'base.txt'), 'base', "the image's files are there");
    // the layer is a working overlay layer: its diff against its parent is what was written
    const changes = (await d.changes('c1', 'c1-init')).map((c) => `${c.kind} ${c.path}`).sort();
    assert.equal(changes, ['add /data.txt', 'delete /gone.txt']);
  });
});

test('after a restart the state is reloaded: live layers are served from their volumes, saved ones restored when made again', async () => {
  await withRoot(async (root) => {
    let d = await start(root, ['layer0.volume_size=64M']);
    try {
      await makeImage(d);
      await makeContainer(d, 'live');
      await writeIn(d, 'live', 'f', 'live data');
      await makeContainer(d, 'saved');
      await writeIn(d, 'saved', 'f', 'saved data');
      await removeContainer(d, 'saved');
      await d.get('live'); // held across the restart
      await d.cleanup();
      assert.equal(await mountsUnderRoot(root), [], 'cleanup leaves no mount');
      const state = JSON.parse(await readFile(join(root, 'layer0', 'layer0.json'), 'utf8')) as { containers: Record<string, { phase: string; volume: string }> };
      assert.is(state.containers.live?.phase, 'live', 'the state is on disk');
      assert.is(state.containers.saved?.phase, 'saved');

      d = await start(root, ['layer0.volume_size=64M']);
      assert.is(await d.exists('live'), true);
      assert.is(await readIn(d, 'live', 'f'), 'live data', 'a live container layer is served after the restart');
      assert.ok((await mountsUnderRoot(root)).some((m) => m.mountPoint.endsWith('/live-vol')), 'its volume is mounted on start');
      assert.is(await d.exists('saved'), false);
      await makeContainer(d, 'saved');
      assert.is(d.volumeOf('saved')?.volume, state.containers.saved?.volume, 'the saved layer gets the volume the state remembered');
      assert.is(await readIn(d, 'saved', 'f'), 'saved data', 'and its files');
      assert.equal((await d.listLayers()).sort(), ['img', 'live', 'live-init', 'saved', 'saved-init']);
    } finally {
      await d.cleanup();
    }
  });
});

test('a process killed with its container layers mounted: the next start adopts the volumes and serves the data', async () => {
  await withRoot(async (root) => {
    // a child that makes a container, writes, holds it mounted and dies without cleanup
    const script = `
      import { init } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).pathname)};
      import { writeFile } from 'node:fs/promises';
      import { join } from 'node:path';
      const d = await init({ home: ${JSON.stringify(join(root, 'layer0'))}, root: ${JSON.stringify(root)}, options: ['layer0.volume_size=64M'] });
      await d.create('img');
      await d.createReadWrite('k-init', 'img');
      await d.createReadWrite('k', 'k-init');
      const p = await d.get('k');
      await writeFile(join(p, 'f'), 'before the kill');
      process.kill(process.pid, 'SIGKILL');
    `;
    const child = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]).then(
      () => 'exited',
      (err: { signal?: string }) => err.signal,
    );
    assert.is(child, 'SIGKILL');
    const left = await mountsUnderRoot(root);
    assert.ok(left.some((m) => m.mountPoint.endsWith('/k-vol')) && left.some((m) => m.mountPoint.endsWith('/k/merged')), 'the dead process left the volume and the layer mounted');

    const d = await start(root, ['layer0.volume_size=64M']);
    try {
      const before = (await mountsUnderRoot(root)).length;
      assert.is(await readIn(d, 'k', 'f'), 'before the kill');
      assert.is((await mountsUnderRoot(root)).filter((m) => m.mountPoint.endsWith('/k-vol')).length, 1, 'the volume was adopted, not mounted twice');
      assert.is((await mountsUnderRoot(root)).length, before, "the dead process's mount of the layer is its reference (moby's adoption rule): our get/put pair leaves it");
      await removeContainer(d, 'k');
      await makeContainer(d, 'k');
      assert.is(await readIn(d, 'k', 'f'), 'before the kill');
    } finally {
      await d.cleanup();
    }
    assert.equal(await mountsUnderRoot(root), []);
    assert.equal(await loopsUnder(root), []);
  });
});

test('a removal or creation cut short is finished or undone on the next start', async () => {
  await withRoot(async (root) => {
    let d = await start(root, ['layer0.volume_size=64M']);
    try {
      await makeImage(d);
      await makeContainer(d, 'r');
      await writeIn(d, 'r', 'f', 'r data');
      await makeContainer(d, 'c');
      await writeIn(d, 'c', 'f', 'c data');
      await d.cleanup();
      // as if the process died inside remove('r') and inside create('c') (after the move)
      const path = join(root, 'layer0', 'layer0.json');
      const state = JSON.parse(await readFile(path, 'utf8')) as { containers: Record<string, { phase: string }> };
      state.containers.r!.phase = 'removing';
      state.containers.c!.phase = 'creating';
      await writeFile(path, JSON.stringify(state));

      d = await start(root, ['layer0.volume_size=64M']);
      assert.is(await d.exists('r'), false, 'the removal was finished');
      assert.is(d.volumeOf('r')?.phase, 'saved');
      assert.is(d.volumeOf('c')?.phase, 'live', 'the creation had moved the layer in: it is live');
      assert.is(await readIn(d, 'c', 'f'), 'c data');
      await d.remove('r-init');
      await makeContainer(d, 'r');
      assert.is(await readIn(d, 'r', 'f'), 'r data', 'the upper saved by the finished removal is restored');
    } finally {
      await d.cleanup();
    }
  });
});

test('two containers on one image get separate volumes; a volume provisioned for an image is taken', async () => {
  await withDriver(['layer0.volume_size=64M'], async (d) => {
    await makeImage(d);
    await makeContainer(d, 'a');
    await makeContainer(d, 'b');
    assert.is(d.volumeOf('a')?.volume, 'img');
    assert.is(d.volumeOf('b')?.volume, 'img.1', 'the second container of the image gets a volume of its own');
    await writeIn(d, 'a', 'who', 'a');
    await writeIn(d, 'b', 'who', 'b');
    assert.is(await readIn(d, 'a', 'who'), 'a');
    assert.is(await readIn(d, 'b', 'who'), 'b');
    const vd = await d.volumeDriver();
    const [va] = await vd.enumerate({ name: 'img' });
    assert.equal(va?.locator.labels, { [CONTAINER_LABEL]: 'a', [IMAGE_LABEL]: 'img' }, 'a volume says which container and image it serves');
    assert.is(va?.attachPath.length, 1);

    // a saved volume is not given to another container
    await removeContainer(d, 'a');
    await makeContainer(d, 'c');
    assert.is(d.volumeOf('c')?.volume, 'img.2');
    assert.is(await readIn(d, 'c', 'who'), undefined);

    // openstorage's way: a volume made ahead for the image (no container label) is taken, with what it holds
    await d.create('img2');
    await vd.create({ name: 'img2' }, { size: 32 * MiB });
    await makeContainer(d, 'p', 'img2');
    assert.is(d.volumeOf('p')?.volume, 'img2');
    assert.is((await vd.inspect(['img2']))[0]?.spec.size, 32 * MiB);
  });
});

test('storageOpt volume: any writable layer on a named volume, which carries its upper to the next layer made on it', async () => {
  await withDriver(['layer0.volume_size=64M'], async (d) => {
    await makeImage(d);
    await d.createReadWrite('x', 'img', { storageOpt: { volume: 'data', size: '48M' } });
    assert.is(d.volumeOf('x')?.volume, 'data');
    assert.is(d.volumeOf('x')?.explicit, true);
    const vd = await d.volumeDriver();
    assert.is((await vd.inspect(['data']))[0]?.spec.size, 48 * MiB, 'storageOpt size is the size of the volume made');
    await writeIn(d, 'x', 'f', 'x data');
    assert.is(await codeOf(d.createReadWrite('y', 'img', { storageOpt: { volume: 'data' } })), 'ERR_GRAPHDRIVER_LAYER_BUSY', 'a volume a live layer is on');
    assert.is(await d.exists('y'), false);
    await d.remove('x');
    await d.createReadWrite('y', 'img', { storageOpt: { volume: 'data' } });
    assert.is(await readIn(d, 'y', 'f'), 'x data', "the volume's saved upper comes with it");
    assert.is(d.volumeOf('x'), undefined, 'x no longer claims the volume');
    // a layer without parent on a volume too
    await d.createReadWrite('solo', undefined, { storageOpt: { volume: 'solo-vol' } });
    await writeIn(d, 'solo', 'f', 'solo');
    assert.is(await readIn(d, 'solo', 'f'), 'solo');
    assert.is(await codeOf(d.deleteVolume('data')), 'ERR_GRAPHDRIVER_LAYER_BUSY', 'deleting the volume of a live layer');
    await d.remove('y');
    await d.deleteVolume('data');
    assert.equal(await vd.enumerate({ name: 'data' }), []);
    assert.is(d.volumeOf('y'), undefined, 'a deleted volume is forgotten by the layers it held');
  });
});

test('a full volume gives ENOSPC to the writer, and nothing else breaks', async () => {
  await withDriver(['layer0.volume_size=32M'], async (d, root) => {
    await makeImage(d);
    await makeContainer(d, 'full');
    await makeContainer(d, 'other');
    await d.create('plain', 'img');
    const p = await d.get('full');
    try {
      const err = await errorOf(writeFile(join(p, 'big'), Buffer.alloc(64 * MiB, 1)));
      assert.is(err.code, 'ENOSPC', 'the writer gets ENOSPC');
      // the rest of the machine is untouched
      await writeIn(d, 'other', 'f', 'other is fine');
      assert.is(await readIn(d, 'other', 'f'), 'other is fine', 'another container layer still takes writes');
      await writeIn(d, 'plain', 'f', Buffer.alloc(40 * MiB, 2));
      assert.is((await stat(join(root, 'layer0', 'overlay', 'plain', 'diff', 'f'))).size, 40 * MiB, 'a plain layer has no limit');
      await writeFile(join(root, 'host-file'), Buffer.alloc(MiB, 3));
      // the full layer recovers once space is freed
      const { rm } = await import('node:fs/promises');
      await rm(join(p, 'big'));
      await writeFile(join(p, 'small'), 'fits again');
    } finally {
      await d.put('full');
    }
    assert.is(await readIn(d, 'full', 'small'), 'fits again');
    assert.ok((await d.diffSize('full', 'full-init')) >= 'fits again'.length, 'its diff is readable');
    await removeContainer(d, 'full');
    await makeContainer(d, 'full');
    assert.is(await readIn(d, 'full', 'small'), 'fits again');
  });
});

test('cleanup leaves no mount and no loop device, even with layers held; the driver mounts again when used', async () => {
  await withRoot(async (root) => {
    const d = await start(root, ['layer0.volume_size=64M']);
    try {
      await makeImage(d);
      await makeContainer(d, 'a');
      await makeContainer(d, 'b');
      await d.get('a');
      await d.get('a');
      await d.get('b');
      await d.get('img');
      assert.is((await loopsUnder(root)).length, 2);
      await d.cleanup();
      assert.equal(await mountsUnderRoot(root), [], 'no mount under the root');
      assert.equal(await loopsUnder(root), [], 'no loop device of its volumes');
      assert.is(await readIn(d, 'a', 'base.txt'), 'base', 'used again, the driver mounts the volume again');
    } finally {
      await d.cleanup();
    }
    assert.equal(await mountsUnderRoot(root), []);
    assert.equal(await loopsUnder(root), []);
  });
});

test('applyDiff, staged apply and diff of container layers on volumes', async () => {
  await withDriver(['layer0.volume_size=64M'], async (d, root) => {
    await makeImage(d);
    await makeContainer(d, 'c');
    const tar = buildTar([
      { name: 'dir', type: 'dir', mode: 0o750 },
      { name: 'dir/file', type: 'file', data: 'applied', mode: 0o640, uid: 7, gid: 8 },
      { name: '.wh.gone.txt', type: 'file' },
    ]);
    // into an empty layer the overlay driver would stage on the host filesystem and rename across
    const size = await d.applyDiff('c', 'c-init', Readable.from([tar]));
    assert.ok(size > 0);
    assert.is(await readIn(d, 'c', 'dir/file'), 'applied');
    assert.is(await readIn(d, 'c', 'gone.txt'), undefined, 'the whiteout hides the image file');
    const st = await stat(join(root, 'layer0', 'c-vol', 'c', 'diff', 'dir', 'file'));
    assert.equal([st.mode & 0o7777, st.uid, st.gid], [0o640, 7, 8]);

    const staged = await d.applyDiffToStaging('c', 'c-init', Readable.from([buildTar([{ name: 'staged.txt', type: 'file', data: 'staged' }, { name: '.wh.base.txt', type: 'file' }])]));
    await d.commitStaged('c', staged);
    assert.is(await readIn(d, 'c', 'staged.txt'), 'staged', 'a staged diff is committed into the volume');
    assert.is(await readIn(d, 'c', 'dir/file'), undefined, "it replaces the layer's diff, as the overlay driver's commit does");
    assert.is(await readIn(d, 'c', 'base.txt'), undefined, 'its whiteout is kept across the copy');
    const listed = (await d.changes('c', 'c-init')).map((x) => `${x.kind} ${x.path}`).sort();
    assert.equal(listed, ['add /staged.txt', 'delete /base.txt']);
    const held = await d.get('c');
    try {
      const again = await d.applyDiffToStaging('c', 'c-init', Readable.from([buildTar([{ name: 'x', type: 'file', data: 'x' }])]));
      assert.is(await codeOf(d.commitStaged('c', again)), 'ERR_GRAPHDRIVER_OPERATION_FAILED', 'not under a mount');
      await d.cleanupStaging(again);
      assert.ok(held.length > 0);
    } finally {
      await d.put('c');
    }
  });
});

test('a creation that fails after its volume was set up takes it all back: no layer, no mount, no device, no new volume, the saved upper kept', async () => {
  await withDriver(['layer0.volume_size=64M'], async (d, root) => {
    await makeImage(d);
    // id mappings that do not map container root: the overlay driver refuses the layer, after the volume is mounted
    const bad = { uidMap: [{ containerId: 1, hostId: 100000, size: 10 }], gidMap: [{ containerId: 1, hostId: 100000, size: 10 }] };
    await d.createReadWrite('u-init', 'img');
    assert.is(await codeOf(d.createReadWrite('u', 'u-init', { idMappings: bad })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is(await d.exists('u'), false);
    assert.is(d.volumeOf('u'), undefined, 'no claim on a volume');
    assert.equal(await (await d.volumeDriver()).enumerate(), [], 'the volume made for it is deleted');
    assert.equal(await mountsUnderRoot(root), []);
    assert.equal(await loopsUnder(root), []);

    await d.createReadWrite('u', 'u-init');
    await writeIn(d, 'u', 'f', 'kept');
    await d.remove('u');
    assert.is(await codeOf(d.createReadWrite('u', 'u-init', { idMappings: bad })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is(d.volumeOf('u')?.phase, 'saved', 'the claim from before stays');
    assert.equal(await mountsUnderRoot(root), []);
    assert.equal(await loopsUnder(root), []);
    await d.createReadWrite('u', 'u-init');
    assert.is(await readIn(d, 'u', 'f'), 'kept', 'the saved upper survived the failed attempt');
  });
});

test.run();
