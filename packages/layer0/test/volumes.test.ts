/**
 * The volume drivers through the VolumeDriver interface: the built-in `loopback` (sparse ext4 or
 * xfs images on loop devices; the size is a hard limit) and `dir` (bind-mounted directories), the
 * life of a volume (create, inspect, enumerate, attach, mount, unmount, detach, delete) with its
 * refusals, and a third-party driver registered by name - a directory "exported" to two stores
 * standing for two hosts, over which a container layer moves with its files.
 */
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  errorCode,
  InvalidOptionError,
  LayerBusyError,
  LayerUnknownError,
  mounts,
  unmount,
} from '@graphdriver/core';
import { MS, mount } from '@graphdriver/native';
import {
  DirVolumeDriver,
  knownVolumeDrivers,
  LoopbackVolumeDriver,
  registerVolumeDriver,
  unregisterVolumeDriver,
  type Volume,
  type VolumeDriver,
  type VolumeDriverContext,
  type VolumeQuery,
  type VolumeSpec,
} from '../src/index.js';
import { codeOf, errorOf, loopsUnder, makeContainer, makeImage, mountsUnderRoot, readIn, removeContainer, start, withDriver, withRoot, writeIn } from './helpers.js';

const MiB = 1024 * 1024;

async function loopback(root: string, options: Record<string, string> = {}): Promise<LoopbackVolumeDriver> {
  const home = join(root, 'loopback');
  await mkdir(home, { recursive: true });
  return LoopbackVolumeDriver.create({ name: 'loopback', home, options });
}

test('loopback: a volume is a sparse ext4 image; attach, mount, unmount, detach, delete, and the refusals between', async () => {
  await withRoot(async (root) => {
    const vd = await loopback(root);
    assert.is(vd.type, 'block');
    const id = await vd.create({ name: 'v1', labels: { team: 'a' } }, { size: 64 * MiB });
    assert.is(id, 'v1');
    const image = join(root, 'loopback', 'v1.img');
    const st = await stat(image);
    assert.is(st.size, 64 * MiB);
    assert.ok(st.blocks * 512 < 8 * MiB, `the image is sparse (${st.blocks * 512} bytes allocated)`);
    assert.is(errorCode((await errorOf(vd.create({ name: 'v1' }, {}))).cause), 'EEXIST', 'a name that exists');
    assert.ok((await errorOf(vd.create({ name: 'bad/name' }, {}))) instanceof InvalidOptionError);

    let [v] = await vd.inspect(['v1', 'missing']);
    assert.equal(v?.locator, { name: 'v1', labels: { team: 'a' } });
    assert.equal(v?.spec, { size: 64 * MiB, format: 'ext4' });
    assert.is(v?.devicePath, undefined);
    assert.equal(v?.attachPath, []);
    assert.equal((await vd.enumerate({ labels: { team: 'a' } })).map((x) => x.id), ['v1']);
    assert.equal(await vd.enumerate({ labels: { team: 'b' } }), []);

    const mnt = join(root, 'mnt');
    await mkdir(mnt);
    assert.is(errorCode((await errorOf(vd.mount('v1', mnt))).cause), 'ENXIO', 'mounting a detached volume');
    const dev = await vd.attach('v1');
    assert.match(dev, /^\/dev\/loop\d+$/);
    assert.is(await vd.attach('v1'), dev, 'attach is idempotent');
    await vd.mount('v1', mnt);
    await vd.mount('v1', mnt); // and so is mount at the same place
    [v] = await vd.inspect(['v1']);
    assert.is(v?.devicePath, dev);
    assert.equal(v?.attachPath, [mnt]);
    assert.is((await mounts()).filter((m) => m.mountPoint === mnt && m.fsType === 'ext4').length, 1);
    assert.ok((await errorOf(vd.detach('v1'))) instanceof LayerBusyError, 'detaching a mounted volume');
    assert.ok((await errorOf(vd.delete('v1'))) instanceof LayerBusyError, 'deleting a mounted volume');

    // the size is a hard limit: the writer gets ENOSPC
    const full = await errorOf(writeFile(join(mnt, 'big'), Buffer.alloc(80 * MiB, 1)));
    assert.is(full.code, 'ENOSPC');
    await rm(join(mnt, 'big'));
    await writeFile(join(mnt, 'kept'), 'kept');

    await vd.unmount('v1', mnt);
    await vd.unmount('v1', mnt); // not mounted: nothing to do
    assert.equal(await mountsUnderRoot(root), []);
    assert.is((await loopsUnder(root)).length, 0, 'the last unmount let go of the autoclear device');
    await vd.detach('v1');

    await vd.attach('v1');
    await vd.mount('v1', mnt);
    assert.is(await readFile(join(mnt, 'kept'), 'utf8'), 'kept', 'the data outlives the mount');
    await vd.unmount('v1', mnt);
    await vd.attach('v1');
    assert.ok((await errorOf(vd.delete('v1'))) instanceof LayerBusyError, 'deleting an attached volume');
    await vd.detach('v1');
    assert.equal(await loopsUnder(root), []);
    await vd.delete('v1');
    assert.equal(await vd.inspect(['v1']), []);
    assert.is(errorCode(await errorOf(stat(image))), 'ENOENT');
    assert.ok((await errorOf(vd.delete('v1'))) instanceof LayerUnknownError);
    assert.ok((await errorOf(vd.attach('v1'))) instanceof LayerUnknownError);
  });
});

test('loopback: shutdown() detaches what no mount holds; fs=xfs makes xfs volumes', async () => {
  await withRoot(async (root) => {
    const vd = await loopback(root, { fs: 'xfs' });
    assert.ok((await errorOf(vd.create({ name: 'small' }, { size: 64 * MiB }))) instanceof InvalidOptionError, 'xfs needs 300 MB');
    await vd.create({ name: 'x' }, { size: 320 * MiB });
    await vd.create({ name: 'y' }, { size: 320 * MiB });
    const mnt = join(root, 'mnt');
    await mkdir(mnt);
    await vd.attach('x');
    await vd.mount('x', mnt);
    assert.ok((await mounts()).some((m) => m.mountPoint === mnt && m.fsType === 'xfs'));
    await vd.attach('y');
    assert.is((await loopsUnder(root)).length, 2);
    await vd.shutdown();
    assert.is((await loopsUnder(root)).length, 1, 'the mounted volume keeps its device, the other is detached');
    await vd.unmount('x', mnt);
    assert.equal(await loopsUnder(root), []);
  });
});

test('dir: a volume is a directory, bind-mounted; where it is mounted is read from the mount table', async () => {
  await withRoot(async (root) => {
    const home = join(root, 'dir');
    await mkdir(home);
    const vd = await DirVolumeDriver.create({ name: 'dir', home, options: {} });
    assert.is(vd.type, 'file');
    assert.is(vd.limitsSize, false);
    await vd.create({ name: 'd1' }, {});
    assert.is(errorCode((await errorOf(vd.create({ name: 'd1' }, {}))).cause), 'EEXIST');
    assert.is((await errorOf(vd.create({ name: 'd2' }, { size: MiB }))).code, 'ERR_GRAPHDRIVER_QUOTA_NOT_SUPPORTED');
    const a = join(root, 'a');
    const b = join(root, 'b');
    await mkdir(a);
    await mkdir(b);
    await vd.attach('d1');
    await vd.mount('d1', a);
    await vd.mount('d1', b);
    assert.equal((await vd.inspect(['d1']))[0]?.attachPath.slice().sort(), [a, b]);
    await writeFile(join(a, 'f'), 'seen through both');
    assert.is(await readFile(join(b, 'f'), 'utf8'), 'seen through both');
    assert.ok((await errorOf(vd.delete('d1'))) instanceof LayerBusyError);
    await vd.unmount('d1', a);
    await vd.unmount('d1', b);
    assert.equal((await vd.inspect(['d1']))[0]?.attachPath, []);
    assert.equal(await mountsUnderRoot(root), []);
    await vd.detach('d1');
    await vd.delete('d1');
    assert.equal(await vd.enumerate(), []);
  });
});

test('layer0 on the dir volume driver: a container layer in a bind-mounted directory, back after remove + re-create', async () => {
  await withDriver(['layer0.volume_driver=dir'], async (d, root) => {
    await makeImage(d);
    await makeContainer(d, 'c');
    assert.is(d.volumeOf('c')?.driver, 'dir');
    await writeIn(d, 'c', 'f', Buffer.alloc(40 * MiB, 1));
    await removeContainer(d, 'c');
    assert.equal(await mountsUnderRoot(root), []);
    assert.is((await stat(join(root, 'layer0', 'volumes', 'dir', 'data', 'img', 'upper', 'f'))).size, 40 * MiB, 'the upper waits in the volume directory');
    await makeContainer(d, 'c');
    assert.is((await readIn(d, 'c', 'f'))?.length, 40 * MiB);
  });
});

/**
 * A third-party volume driver, written against the public interface only: volumes are directories
 * under a "network" path given with `layer0.volume_opt=path=...` (an NFS export, say), each with
 * a JSON record of its labels; mounting is a bind mount. It reports its mounts from memory (one
 * instance per host), as a network driver would ask its server.
 */
class SharedDirDriver implements VolumeDriver {
  readonly type = 'file' as const;
  readonly #mounts = new Map<string, Set<string>>();
  constructor(
    readonly name: string,
    readonly path: string,
  ) {}

  static async create(ctx: VolumeDriverContext): Promise<SharedDirDriver> {
    const path = ctx.options.path;
    for (const k of Object.keys(ctx.options)) if (k !== 'path') throw new InvalidOptionError('layer0.volume_opt', `shared: unknown option ${k}`);
    if (path === undefined) throw new InvalidOptionError('layer0.volume_opt', 'shared: path= is required');
    await mkdir(path, { recursive: true });
    return new SharedDirDriver(ctx.name, path);
  }

  async create(locator: { name: string; labels?: Readonly<Record<string, string>> }, spec: VolumeSpec): Promise<string> {
    if (spec.size !== undefined) throw new InvalidOptionError('size', 'shared: no sizes');
    await mkdir(join(this.path, locator.name));
    await writeFile(join(this.path, `${locator.name}.json`), JSON.stringify({ labels: locator.labels ?? {}, ctime: Date.now() }));
    return locator.name;
  }

  async #volume(id: string): Promise<Volume | undefined> {
    let rec: { labels: Record<string, string>; ctime: number };
    try {
      rec = JSON.parse(await readFile(join(this.path, `${id}.json`), 'utf8')) as typeof rec;
    } catch {
      return undefined;
    }
    return { id, locator: { name: id, labels: rec.labels }, spec: {}, devicePath: undefined, attachPath: [...(this.#mounts.get(id) ?? [])], ctime: new Date(rec.ctime) };
  }

  async inspect(ids: readonly string[]): Promise<Volume[]> {
    const out: Volume[] = [];
    for (const id of ids) {
      const v = await this.#volume(id);
      if (v !== undefined) out.push(v);
    }
    return out;
  }

  async enumerate(query: VolumeQuery = {}): Promise<Volume[]> {
    const { readdir } = await import('node:fs/promises');
    const names = (await readdir(this.path)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
    const all = await this.inspect(names);
    return all.filter((v) => (query.name === undefined || v.locator.name === query.name) && Object.entries(query.labels ?? {}).every(([k, x]) => v.locator.labels[k] === x));
  }

  async attach(id: string): Promise<string> {
    return join(this.path, id);
  }

  async detach(): Promise<void> {}

  async mount(id: string, mountPath: string): Promise<void> {
    await mount(join(this.path, id), mountPath, null, MS.BIND, null);
    this.#mounts.set(id, new Set([...(this.#mounts.get(id) ?? []), mountPath]));
  }

  async unmount(id: string, mountPath: string): Promise<void> {
    if (!this.#mounts.get(id)?.has(mountPath)) return;
    await unmount(mountPath);
    this.#mounts.get(id)?.delete(mountPath);
  }

  async delete(id: string): Promise<void> {
    if ((this.#mounts.get(id)?.size ?? 0) > 0) throw new LayerBusyError(id, 'mounted');
    await rm(join(this.path, id), { recursive: true, force: true });
    await rm(join(this.path, `${id}.json`), { force: true });
  }
}

test('a third-party volume driver plugs in by name; a container layer moves with its files between two hosts sharing its volumes', async () => {
  await withRoot(async (root) => {
    assert.is(await codeOf(start(join(root, 'early'), ['layer0.volume_driver=shared'])), 'ERR_GRAPHDRIVER_INVALID_OPTION', 'unknown before it is registered');
    registerVolumeDriver('shared', (ctx) => SharedDirDriver.create(ctx));
    try {
      assert.ok(knownVolumeDrivers().includes('shared'));
      assert.ok((await errorOf(Promise.resolve().then(() => registerVolumeDriver('shared', (ctx) => SharedDirDriver.create(ctx))))) instanceof InvalidOptionError, 'a name registered twice');
      const network = join(root, 'export');
      const hostA = await mkdtemp(join(root, 'host-a-'));
      const hostB = await mkdtemp(join(root, 'host-b-'));
      const options = ['layer0.volume_driver=shared', `layer0.volume_opt=path=${network}`];
      assert.is(await codeOf(start(hostA, ['layer0.volume_driver=shared', 'layer0.volume_opt=bogus=1'])), 'ERR_GRAPHDRIVER_INVALID_OPTION', "the driver's own options are its to validate");

      const a = await start(hostA, options);
      try {
        await makeImage(a);
        await makeContainer(a, 'web');
        assert.is(a.volumeOf('web')?.driver, 'shared');
        await writeIn(a, 'web', 'session', 'from host a');
        await removeContainer(a, 'web');
      } finally {
        await a.cleanup();
      }

      // host B never saw this container: its state is empty, the volume's label finds it
      const b = await start(hostB, options);
      try {
        await makeImage(b);
        await makeContainer(b, 'web');
        assert.is(b.volumeOf('web')?.volume, 'img', 'the volume made on host a');
        assert.is(await readIn(b, 'web', 'session'), 'from host a', 'with its files');
        await makeContainer(b, 'other');
        assert.is(b.volumeOf('other')?.volume, 'img.1', 'another container of the image does not take it');
      } finally {
        await b.cleanup();
      }
      assert.equal(await mountsUnderRoot(root), []);
    } finally {
      unregisterVolumeDriver('shared');
    }
    assert.is(knownVolumeDrivers().includes('shared'), false);
  });
});

test.run();
