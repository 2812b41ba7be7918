/**
 * Interop with real producers and consumers (Debian's umoci and skopeo, GNU tar), no network:
 * images umoci builds from directory trees, copied by skopeo into an OCI archive, a docker-save
 * archive (plain and gzip-compressed) and an OCI layout with zstd layers, all imported to the same
 * layers (chain ids: shared layers stored once) whose mounted tree is the one umoci unpacks; and a
 * diff of ours added to an image by umoci, whose unpacked tree is our container's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chainIds } from '../src/digest.js';
import { DRIVERS, assertClean, describeTree, json, layersOnDisk, layoutBlobs, ok, run, skopeo, store, umociImage, withScratch, type Tree } from './helpers.js';

const STEPS: Array<{ write?: Tree; remove?: string[] }> = [
  { write: { 'etc/os-release': 'ID=umoci\n', 'etc/motd': 'first\n', 'bin/tool': { mode: 0o755, data: '#!/bin/sh\n' }, 'usr/lib/libx.so.1': 'elf\n', 'usr/lib/libx.so': { link: 'libx.so.1' } } },
  { write: { 'app/main': { mode: 0o750, data: 'main\n' }, 'etc/motd': 'second, longer\n' }, remove: ['bin/tool'] },
  { write: { 'var/lib/data/db': 'rows\n' }, remove: ['usr/lib'] },
];

interface Imported {
  images: Array<{ id: string; tags: string[]; topLayer: string; layers: Array<{ id: string; reused: boolean; compression: string }> }>;
}

/** The tree umoci itself unpacks for `layout:tag`. */
async function umociTree(layout: string, tag: string, into: string): Promise<string[]> {
  await run('umoci', ['unpack', '--image', `${layout}:${tag}`, into]);
  try {
    return await describeTree(join(into, 'rootfs'));
  } finally {
    await rm(into, { recursive: true, force: true });
  }
}

for (const driver of DRIVERS) {
  test(`${driver}: umoci's image as an OCI layout, an OCI archive, a docker archive (plain and gzip) and with zstd layers: one set of layers, umoci's tree`, () =>
    withScratch(`interop-${driver}`, async (dir) => {
      const root = join(dir, 'root');
      const g = store(root, driver);
      const layout = join(dir, 'oci');
      await umociImage(layout, 'img', STEPS);
      const blobs = await layoutBlobs(layout);
      assert.equal(blobs.layerTypes, Array(3).fill('application/vnd.oci.image.layer.v1.tar+gzip'));
      const config = JSON.parse(await readFile(join(layout, 'blobs/sha256', blobs.config.slice(7)), 'utf8')) as { rootfs: { diff_ids: string[] } };
      const chains = chainIds(config.rootfs.diff_ids).map((c) => c.slice(7));

      // the OCI layout directory, as umoci wrote it
      const fromLayout = await json<Imported>([...g, 'import', layout]);
      assert.equal(fromLayout.images[0]!.tags, ['img']);
      assert.equal(fromLayout.images[0]!.layers.map((l) => [l.id, l.reused, l.compression]), chains.map((c) => [c, false, 'gzip']));
      const path = (await json<{ path: string }>([...g, 'mount', chains[2]!])).path;
      const ours = await describeTree(path);
      await ok([...g, 'umount', chains[2]!]);
      assert.equal(ours, await umociTree(layout, 'img', join(dir, 'bundle')), "the mounted top layer is the tree umoci unpacks");
      assert.ok(ours.some((l) => l.startsWith('app/main f 750')), 'a file of layer 2 with its mode');
      assert.not.ok(ours.some((l) => l.startsWith('bin/tool') || l.startsWith('usr/lib')), "layer 2's and 3's deletions");

      // skopeo's copies: the same diff ids, so the same layers, stored once
      await skopeo(`oci:${layout}:img`, `oci-archive:${join(dir, 'img.oci.tar')}:archived`);
      await skopeo(`oci:${layout}:img`, `docker-archive:${join(dir, 'img.docker.tar')}:example.com/img:v1`);
      await skopeo(`oci:${layout}:img`, `oci:${join(dir, 'zstd')}:zst`, ['--dest-compress-format', 'zstd']);
      assert.equal((await layoutBlobs(join(dir, 'zstd'))).layerTypes, Array(3).fill('application/vnd.oci.image.layer.v1.tar+zstd'));
      await writeFile(join(dir, 'img.docker.tar.gz'), gzipSync(await readFile(join(dir, 'img.docker.tar'))));

      const cases: Array<[string, string]> = [
        [join(dir, 'img.oci.tar'), 'archived'],
        [join(dir, 'img.docker.tar'), 'example.com/img:v1'],
        [join(dir, 'img.docker.tar.gz'), 'example.com/img:v1'],
        [join(dir, 'zstd'), 'zst'],
      ];
      for (const [file, tag] of cases) {
        const r = await json<Imported>([...g, 'import', file]);
        assert.is(r.images[0]!.topLayer, chains[2], file);
        assert.ok(r.images[0]!.tags.includes(tag), `${file} is tagged ${tag}: ${r.images[0]!.tags.join(',')}`);
        assert.equal(r.images[0]!.layers.map((l) => l.reused), [true, true, true], `${file}: every layer already stored`);
      }
      assert.equal(layersOnDisk(root, driver), [...chains].sort(), 'three layers on disk for five imports');

      // zstd layers into a fresh store: decompressed and verified, the same tree
      const zroot = join(dir, 'zroot');
      const z = await json<Imported>([...store(zroot, driver), 'import', join(dir, 'zstd')]);
      assert.equal(z.images[0]!.layers.map((l) => [l.id, l.reused, l.compression]), chains.map((c) => [c, false, 'zstd']));
      const zpath = (await json<{ path: string }>([...store(zroot, driver), 'mount', chains[2]!])).path;
      assert.equal(await describeTree(zpath), ours);
      await ok([...store(zroot, driver), 'umount', chains[2]!]);

      // one image, several names: rmi by one name keeps the layers
      assert.equal((await json<{ images: Array<{ tags: string[] }> }>([...g, 'images'])).images.length, 1);
      await ok([...g, 'rmi', 'archived']);
      assert.equal(layersOnDisk(root, driver).length, 3);
      await assertClean(root, driver);
      await assertClean(zroot, driver);
    }));
}

test("a diff of ours added to umoci's image by umoci raw add-layer unpacks to our container's tree", () =>
  withScratch('interop-diff', async (dir) => {
    const root = join(dir, 'root');
    const g = store(root, 'overlay');
    const layout = join(dir, 'oci');
    await umociImage(layout, 'img', STEPS.slice(0, 2));
    const imported = await json<Imported>([...g, 'import', layout]);
    const top = imported.images[0]!.topLayer;
    await ok([...g, 'create', '--rw', '--parent', top, 'ctr']);
    const p = (await json<{ path: string }>([...g, 'mount', 'ctr'])).path;
    await writeFile(join(p, 'etc/motd'), 'changed by the container\n');
    await rm(join(p, 'usr/lib/libx.so.1'));
    await rm(join(p, 'app'), { recursive: true });
    await mkdir(join(p, 'app'));
    await writeFile(join(p, 'app/fresh'), 'an opaque directory now\n');
    await mkdir(join(p, 'new/dir'), { recursive: true });
    await writeFile(join(p, 'new/dir/file'), 'new\n');
    const ours = await describeTree(p);
    await ok([...g, 'umount', 'ctr']);

    await ok([...g, 'diff', 'ctr', '-o', join(dir, 'ctr.tar')]);
    await run('umoci', ['raw', 'add-layer', '--image', `${layout}:img`, '--tag', 'changed', join(dir, 'ctr.tar')]);
    assert.equal(await umociTree(layout, 'changed', join(dir, 'bundle')), ours);

    // and that image imported back: four layers, the top one our diff, the same tree again
    const back = await json<Imported>([...store(join(dir, 'root2'), 'vfs'), 'import', `${layout}`]);
    const changed = back.images.find((i) => i.tags.includes('changed'))!;
    assert.is(changed.layers.length, 3);
    const again = (await json<{ path: string }>([...store(join(dir, 'root2'), 'vfs'), 'mount', changed.topLayer])).path;
    assert.equal(await describeTree(again), ours);
    await assertClean(root, 'overlay');
  }));

test('a multi-platform index: the manifest of this machine is imported', () =>
  withScratch('interop-index', async (dir) => {
    const layout = join(dir, 'oci');
    await umociImage(layout, 'img', STEPS.slice(0, 1));
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<Record<string, unknown>> };
    const real = index.manifests[0]!;
    // a nested index naming a manifest for another platform first (its blob is absent: never read)
    const nested = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 10, platform: { os: 'linux', architecture: 's390x' } },
        { ...real, annotations: undefined, platform: { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch } },
      ],
    }));
    const { createHash } = await import('node:crypto');
    const digest = createHash('sha256').update(nested).digest('hex');
    await writeFile(join(layout, 'blobs/sha256', digest), nested);
    await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${digest}`, size: nested.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }] }));
    const r = await json<Imported>([...store(join(dir, 'root'), 'vfs'), 'import', layout]);
    assert.equal(r.images.map((i) => i.tags), [['multi']]);
    assert.is(r.images[0]!.layers.length, 1);
  }));

test.run();
