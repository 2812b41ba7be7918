/**
 * What is vfs's own (graphtest covers the shared behaviour): options and their errors, the size
 * limit refused with QuotaNotSupportedError where the filesystem has no project quota, reflinked
 * layers on xfs with reflink=1 (shared extents seen by filefrag), plain copies on ext4, read-only
 * additional image stores, and a restart clearing what a crash left in staging.
 */
import { execFile } from 'node:child_process';
import { link, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { errorCode } from '@graphdriver/core';
import { withScratchFs } from '@graphdriver/testkit';
import { init, VfsDriver } from '../src/index.js';

const run = promisify(execFile);

async function withRoot<T>(fn: (root: string) => Promise<T>, parent = tmpdir()): Promise<T> {
  const root = await mkdtemp(join(parent, 'graphtest-vfs-'));
  try {
    return await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const start = (root: string, options: string[] | Record<string, string> = []): Promise<VfsDriver> =>
  init({ home: join(root, 'vfs'), root, options }) as Promise<VfsDriver>;

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (err: unknown) => errorCode(err),
  );
}

test('options: containers/storage keys parse; unknown keys, mountopt and storage-opts of read-only layers are errors', async () => {
  await withRoot(async (root) => {
    const d = await start(root, ['vfs.ignore_chown_errors=true', '.imagestore=/nonexistent/store']);
    assert.is(d.options.ignore_chown_errors, true);
    assert.equal(d.additionalImageStores(), ['/nonexistent/store']);

    const unknown = await start(root, ['vfs.bogus=1']).catch((e: Error & { key?: string }) => e);
    assert.is(errorCode(unknown), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is((unknown as { key?: string }).key, 'vfs.bogus');
    assert.match((unknown as Error).message, /vfs\.bogus/);
    assert.is(await codeOf(start(root, ['overlay.mountopt=nodev'])), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    const mountopt = await start(root, ['vfs.mountopt=nodev']).catch((e: Error) => e);
    assert.match((mountopt as Error).message, /does not support mount options/);

    assert.is(await codeOf(d.create('ro', undefined, { storageOpt: { size: '1G' } })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is(await codeOf(d.createReadWrite('rw', undefined, { storageOpt: { bogus: '1' } })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is(await d.exists('ro'), false);
    assert.is(await d.exists('rw'), false);
    await d.create('layer');
    assert.is(await codeOf(d.get('layer', { options: ['nodev'] })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is(await d.get('layer', { options: ['ro'] }), join(root, 'vfs', 'dir', 'layer'));
  });
});

test('a size limit where the filesystem has no project quota: QuotaNotSupportedError with the reason, nothing created', async () => {
  await withScratchFs('ext4', { size: '64M' }, async (fs) => {
    const d = await start(fs.path);
    const err = await d.createReadWrite('limited', undefined, { storageOpt: { size: '50M' } }).catch((e: Error) => e);
    assert.is(errorCode(err), 'ERR_GRAPHDRIVER_QUOTA_NOT_SUPPORTED');
    assert.match((err as Error).message, /prjquota|CONFIG_/);
    assert.is(await d.exists('limited'), false);
    assert.equal(await readdir(join(fs.path, 'vfs', 'staging')), [], 'nothing left in staging');
    // moby: a default size that cannot be enforced fails at start.
    assert.is(await codeOf(start(fs.path, ['vfs.size=10G'])), 'ERR_GRAPHDRIVER_QUOTA_NOT_SUPPORTED');
    // Without a limit the same layer is fine.
    await d.createReadWrite('limited');
    assert.is(await d.exists('limited'), true);
  });
});

/** The extents of `file` as filefrag -v prints them. */
async function extents(file: string): Promise<string> {
  return (await run('filefrag', ['-v', file])).stdout;
}

test('on xfs with reflink=1 a child layer shares its files\' extents with the parent (FICLONE)', async () => {
  await withScratchFs('xfs', { size: '512M', mkfsArgs: ['-m', 'reflink=1'] }, async (fs) => {
    const d = await start(fs.path);
    await d.create('parent');
    const data = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    await writeFile(join(await d.get('parent'), 'big'), data);
    await d.create('child', 'parent');
    const child = join(await d.get('child'), 'big');
    assert.equal(await readFile(child), data);
    assert.match(await extents(child), /shared/, 'the copy shares extents (reflink)');
    // Writing the child leaves the parent as it was (copy-on-write).
    await writeFile(child, 'changed');
    assert.equal(await readFile(join(await d.get('parent'), 'big')), data);
  });
});

test('on ext4 (no reflink) the child is a real copy with the same content and no shared extents', async () => {
  await withScratchFs('ext4', { size: '64M' }, async (fs) => {
    const d = await start(fs.path);
    await d.create('parent');
    const data = Buffer.alloc(1024 * 1024, 3);
    await writeFile(join(await d.get('parent'), 'big'), data);
    await d.create('child', 'parent');
    const child = join(await d.get('child'), 'big');
    assert.equal(await readFile(child), data);
    assert.not.match(await extents(child), /shared/);
  });
});

test('read-only additional image stores: layers are found and used as parents, never removed or written', async () => {
  await withRoot(async (base) => {
    const store = join(base, 'store');
    const other = await start(store);
    await other.create('shared');
    await writeFile(join(await other.get('shared'), 'f'), 'from the store');

    const root = join(base, 'root');
    await mkdir(root);
    const d = await start(root, [`vfs.imagestore=${store}`]);
    assert.is(await d.exists('shared'), true);
    assert.is(await d.get('shared'), join(store, 'vfs', 'dir', 'shared'));
    assert.equal(await d.listLayers(), [], 'listLayers() lists this store only');
    await d.create('child', 'shared');
    assert.is(await readFile(join(await d.get('child'), 'f'), 'utf8'), 'from the store');
    assert.is(await codeOf(d.remove('shared')), 'ERR_GRAPHDRIVER_OPERATION_FAILED');
    assert.is(await codeOf(d.applyDiff('shared', undefined, Readable.from([Buffer.alloc(1024)]))), 'ERR_GRAPHDRIVER_OPERATION_FAILED');
    assert.is(await other.exists('shared'), true, 'the store still has its layer');
    assert.equal(await d.listLayers(), ['child']);
  });
});

test('a restart clears what a crash left in staging and keeps the layers', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    await d.create('kept');
    const leftover = join(root, 'vfs', 'staging', 'half-made-x1');
    await mkdir(join(leftover, 'sub'), { recursive: true });
    await writeFile(join(leftover, 'sub', 'f'), 'partial');
    const again = await start(root);
    assert.equal(await readdir(join(root, 'vfs', 'staging')), []);
    assert.equal(await again.listLayers(), ['kept']);
  });
});

test('status, metadata and disk usage', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    assert.equal(await d.status(), [['Backing Filesystem', 'extfs']]);
    await d.create('l');
    const dir = await d.get('l');
    assert.equal(await d.metadata('l'), { SourceDir: dir });
    await writeFile(join(dir, 'a'), Buffer.alloc(1000));
    await writeFile(join(dir, 'b'), Buffer.alloc(24));
    await link(join(dir, 'a'), join(dir, 'a2'));
    const usage = await d.readWriteDiskUsage('l');
    assert.is(usage.inodeCount, 3, 'root, a (once for both names), b');
    assert.is(usage.size, (await lstat(dir)).size + 1024, 'apparent sizes, the linked file once');
    const getter = await d.diffGetter('l');
    try {
      const chunks: Buffer[] = [];
      for await (const c of await getter.get('/b')) chunks.push(c as Buffer);
      assert.is(Buffer.concat(chunks).length, 24);
      await symlink('/etc/hostname', join(dir, 'out'));
      // RESOLVE_IN_ROOT: the absolute target is taken inside the layer, where it does not exist.
      assert.is(await codeOf(getter.get('out')), 'ENOENT');
    } finally {
      await getter.close();
    }
  });
});

test.run();
