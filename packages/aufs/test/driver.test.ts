/**
 * What is the aufs driver's own (graphtest covers the shared behaviour): its options and their
 * errors, the backend choice (no kernel aufs here: `mount_backend=aufs` is a typed "not supported"),
 * status rows, reserved ids, what an interrupted create or remove left, mounts of an earlier process
 * adopted and branches a crash left as fuse-overlayfs wrote them brought back to AUFS format, and a
 * 200-layer stack with whiteouts at many depths read through one union.
 */
import { mkdir, readdir, readFile, stat, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isNotSupported, mountAt, mountsUnder, unmount } from '@graphdriver/core';
import { buildTar, type TarEntry } from '@graphdriver/graphtest';
import { FUSE_WORKDIR } from '../src/index.js';
import { codeOf, readBranch, start, withRoot } from './helpers.js';

test('options: unknown keys, branch options in mountopt and impossible backends are typed errors; mountopt reaches the mount', async () => {
  await withRoot(async (root) => {
    const unknown = await start(root, ['aufs.bogus=1']).catch((e: Error & { key?: string }) => e);
    assert.is((unknown as { code?: string }).code, 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is((unknown as { key?: string }).key, 'aufs.bogus');
    assert.is(await codeOf(start(root, ['aufs.mountopt=br:/etc'])), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is(await codeOf(start(root, ['aufs.mount_backend=aufs', 'aufs.mount_program=/usr/bin/fuse-overlayfs'])), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    const kernel = await start(root, ['aufs.mount_backend=aufs']).catch((e: unknown) => e);
    assert.ok(isNotSupported(kernel), `no kernel aufs here: ${String(kernel)}`);
    assert.match((kernel as Error).message, /AUFS was not found in \/proc\/filesystems/);
    const program = await start(root, ['aufs.mount_program=/nonexistent/fuse-overlayfs']).catch((e: unknown) => e);
    assert.ok(isNotSupported(program), `a missing mount program: ${String(program)}`);

    const d = await start(root, ['aufs.mountopt=noexec', 'aufs.mount_backend=fuse-overlayfs']);
    try {
      assert.equal(
        (await d.status()).map(([k]) => k),
        ['Root Dir', 'Backing Filesystem', 'Dirs', 'Dirperm1 Supported', 'Mount backend', 'Size limits'],
      );
      assert.ok((await d.status()).some(([k, v]) => k === 'Mount backend' && v.startsWith('fuse-overlayfs (')));
      await d.create('base');
      await d.createReadWrite('ctr', 'base');
      const p = await d.get('ctr', { options: ['nodev'] });
      const m = await mountAt(p);
      assert.ok(m !== undefined && m.fsType === 'fuse.fuse-overlayfs', JSON.stringify(m));
      assert.ok(m.options.split(',').includes('noexec') && m.options.split(',').includes('nodev'), m.options);
      await d.put('ctr');
      assert.is(await codeOf(d.get('ctr', { idMappings: { uidMap: [{ containerId: 0, hostId: 1000, size: 1 }], gidMap: [] } })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
      assert.is(await codeOf(d.create('x-removing')), 'ERR_GRAPHDRIVER_INVALID_LAYER_ID');
      assert.is(await codeOf(d.put('missing')), 'ERR_GRAPHDRIVER_LAYER_UNKNOWN');
    } finally {
      await d.cleanup();
    }
  });
});

test('leftovers: an interrupted create is cleared by the next create of the id, an interrupted remove by the next start', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    const home = d.home;
    try {
      // a create that made the directories and died before the layers file
      await mkdir(join(home, 'diff', 'half'), { recursive: true });
      await writeFile(join(home, 'diff', 'half', 'junk'), 'junk');
      assert.is(await d.exists('half'), false);
      await d.create('half');
      assert.equal(await readdir(join(home, 'diff', 'half')), []);
      assert.equal(await readFile(join(home, 'layers', 'half'), 'utf8'), '');
    } finally {
      await d.cleanup();
    }
    // a remove that renamed the branch and died
    await mkdir(join(home, 'diff', 'old-removing', 'deep'), { recursive: true });
    await mkdir(join(home, 'mnt', 'old-removing'), { recursive: true });
    const again = await start(root);
    try {
      assert.equal((await readdir(join(home, 'diff'))).sort(), ['half']);
      assert.equal((await readdir(join(home, 'mnt'))).sort(), ['half']);
      assert.equal(await again.listLayers(), ['half']);
    } finally {
      await again.cleanup();
    }
  });
});

test('restart: a union left mounted is adopted (one reference) and normalized when it goes; one a crash took down is normalized at start', async () => {
  await withRoot(async (root) => {
    const first = await start(root);
    await first.create('base');
    await first.applyDiff('base', undefined, Readable.from([buildTar([{ name: 'f', type: 'file', data: 'f' }, { name: 'g', type: 'file', data: 'g' }])]));
    await first.createReadWrite('held', 'base');
    await first.createReadWrite('crashed', 'base');
    const held = await first.get('held');
    await appendFile(join(held, 'f'), '+held'); // a copy-up: fuse-overlayfs's origin xattr
    const crashed = await first.get('crashed');
    await appendFile(join(crashed, 'g'), '+crashed');
    // the process dies: its held union stays, the other one is taken down behind its back
    await unmount(crashed);

    const second = await start(root);
    try {
      const crashedBranch = join(second.home, 'diff', 'crashed');
      assert.is(await codeOf(stat(join(crashedBranch, FUSE_WORKDIR))), 'ENOENT', 'normalized at start');
      assert.equal((await readBranch(crashedBranch)).map((e) => `${e.path} [${e.xattrs.join(',')}]`), ['g []']);
      // the adopted union: the same path, one reference of the earlier process plus ours
      assert.is(await second.get('held'), held);
      assert.equal(await readFile(join(held, 'f'), 'utf8'), 'f+held');
      await second.put('held');
      assert.ok((await mountAt(held)) !== undefined, 'the earlier process\'s reference keeps it');
      await second.put('held');
      assert.is(await mountAt(held), undefined);
      const heldBranch = join(second.home, 'diff', 'held');
      assert.equal((await readBranch(heldBranch)).map((e) => `${e.path} [${e.xattrs.join(',')}]`), ['f []']);
    } finally {
      await second.cleanup();
    }
    assert.equal((await mountsUnder(root)).map((m) => m.mountPoint), []);
  });
});

test('200 layers, whiteouts and opaque directories at many depths: one union shows exactly what the stack says', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    try {
      const expected = new Set<string>();
      let parent: string | undefined;
      for (let i = 0; i < 200; i++) {
        const id = `l${i}`;
        const entries: TarEntry[] = [
          { name: `f${i}`, type: 'file', data: `${i}` },
          { name: 'd', type: 'dir', mode: 0o755 },
          { name: `d/g${i}`, type: 'file', data: `${i}` },
        ];
        expected.add(`f${i}`).add(`d/g${i}`);
        if (i % 10 === 9) {
          entries.push({ name: `.wh.f${i - 5}`, type: 'file' });
          expected.delete(`f${i - 5}`);
        }
        if (i === 150) {
          // everything of d below is hidden from here on
          entries.push({ name: 'd/.wh..wh..opq', type: 'file' });
          for (const e of [...expected]) if (e.startsWith('d/') && e !== 'd/g150') expected.delete(e);
        }
        await d.create(id, parent);
        await d.applyDiff(id, parent, Readable.from([buildTar(entries)]));
        parent = id;
      }
      await d.createReadWrite('top', parent);
      const p = await d.get('top');
      try {
        const seen = new Set<string>();
        for (const n of await readdir(p)) if (n !== 'd') seen.add(n);
        for (const n of await readdir(join(p, 'd'))) seen.add(`d/${n}`);
        assert.equal([...seen].sort(), [...expected].sort());
        for (const n of [...expected].slice(0, 400)) {
          const i = n.replace(/^d\/g|^f/, '');
          assert.is(await readFile(join(p, n), 'utf8'), i);
        }
      } finally {
        await d.put('top');
      }
      assert.is((await d.metadata('top')).LowerDirs?.split(':').length, 200);
    } finally {
      await d.cleanup();
    }
  });
});

test.run();
