/**
 * Cases the Go suites never had: what a layer holds besides plain files and directories - xattrs
 * (user.*, trusted.* where the driver keeps them, a binary security.capability), symlinks, hard
 * links, char/block devices, FIFOs, and deletions (whiteouts, opaque directories) - must survive
 * each way a layer is made:
 *   snapshot     create(child, parent): the child's tree equals the parent's;
 *   full diff    diff(layer) applied to an empty layer gives the same tree;
 *   diff         diff(upper, parent) applied to a new child of parent gives upper's tree.
 * Each is checked with a tree digest (names, types, modes, owners, sizes, contents, xattrs, link
 * targets, device numbers, hard-link groups, whole-second mtimes), and the diff tar's shape is
 * checked where the contract fixes it (AUFS whiteouts, never overlay 0/0 devices).
 */
import { strict as assert } from 'node:assert';
import { chmod, lchown, link, lutimes, mkdir, readdir, rm, symlink, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { lremovexattrSync, lsetxattrSync, mknodSync, S } from '@graphdriver/native';
import type { Driver } from '@graphdriver/core';
import type { Case } from '../runner.js';
import type { CaseContext } from '../context.js';
import { assertSameTree, treeDigest, type TreeDigest } from '../digest.js';
import { randomContent, withLayer, writeFileMode } from '../fixtures.js';
import { buildTar, listTar, readAll, type ListedEntry } from '../tar.js';
import { removeLayers } from './helpers.js';

type C = Case<CaseContext>;

/** Whole seconds, mtimes on: what a container (and a tar) keeps of a layer. */
const digestOf = (root: string): Promise<TreeDigest> => treeDigest(root, { mtime: true });

async function layerDigest(driver: Driver, id: string): Promise<TreeDigest> {
  return withLayer(driver, id, digestOf);
}

interface RoundTrip {
  /** Fills the parent layer. */
  build(root: string, ctx: CaseContext): Promise<void>;
  /** Changes a child of it; the diff of that child is applied onto another child. */
  modify?(root: string, ctx: CaseContext): Promise<void>;
  /** Checks on the tar of the modified child's diff. */
  checkDiffTar?(entries: ListedEntry[]): void;
}

/** Runs the three ways of making a layer (see the top of the file) and compares digests. */
async function roundTrip(ctx: CaseContext, spec: RoundTrip): Promise<void> {
  const { driver } = ctx;
  const made: string[] = [];
  const create = async (id: string, parent?: string): Promise<void> => {
    await driver.create(id, parent);
    made.push(id);
  };

  await create('parent');
  await withLayer(driver, 'parent', (root) => spec.build(root, ctx));
  const parentDigest = await layerDigest(driver, 'parent');

  await create('snapshot', 'parent');
  assertSameTree(await layerDigest(driver, 'snapshot'), parentDigest, 'create(snapshot, parent)');

  const full = await readAll(await driver.diff('parent'));
  await create('full-copy');
  await driver.applyDiff('full-copy', undefined, Readable.from([full]));
  assertSameTree(await layerDigest(driver, 'full-copy'), parentDigest, 'diff(parent) applied to an empty layer');

  if (spec.modify !== undefined) {
    await create('upper', 'parent');
    await withLayer(driver, 'upper', (root) => spec.modify!(root, ctx));
    const upperDigest = await layerDigest(driver, 'upper');
    const tar = await readAll(await driver.diff('upper', 'parent'));
    const entries = listTar(tar);
    assertAufsFormat(entries);
    spec.checkDiffTar?.(entries);
    await create('applied', 'parent');
    await driver.applyDiff('applied', 'parent', Readable.from([tar]));
    assertSameTree(await layerDigest(driver, 'applied'), upperDigest, 'diff(upper, parent) applied to a new child of parent');
    // Applying into a child leaves its parent alone.
    assertSameTree(await layerDigest(driver, 'parent'), parentDigest, 'the parent after applyDiff into its child');
  }
  await removeLayers(driver, made);
}

/** Layer tars carry AUFS whiteouts whatever the driver stores: never a 0/0 char device. */
function assertAufsFormat(entries: readonly ListedEntry[]): void {
  for (const e of entries) {
    assert.ok(
      !(e.typeflag === '3' && e.devmajor === 0 && e.devminor === 0),
      `the diff holds an overlay whiteout (0/0 char device) ${JSON.stringify(e.name)}; layer tars must use .wh. files`,
    );
  }
}

function names(entries: readonly ListedEntry[]): string[] {
  return entries.map((e) => e.name.replace(/^\.\//, '').replace(/\/$/, ''));
}

/** A fixed mtime (whole seconds) so that a lost mtime shows. */
const T0 = 1_500_000_000;

/** vfs_cap_data revision 2 granting CAP_NET_BIND_SERVICE (10), effective: 20 binary bytes. */
export function fileCapability(): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000000 | 0x1, 0); // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
  b.writeUInt32LE(1 << 10, 4); // permitted[0]
  b.writeUInt32LE(0, 8); // inheritable[0]
  return b;
}

const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const xattrs: C = {
  name: 'Xattrs',
  async run(ctx) {
    const trusted = ctx.capabilities.trustedXattrs;
    await roundTrip(ctx, {
      async build(root) {
        const file = join(root, 'xattr-file');
        await writeFileMode(file, 'with xattrs', 0o755);
        lsetxattrSync(file, 'user.comment', Buffer.from('hello'));
        lsetxattrSync(file, 'user.binary', BINARY);
        if (trusted) lsetxattrSync(file, 'trusted.graphtest', Buffer.from('t'));
        // Last: chown and writes clear security.capability, so a copier must set it after them.
        await lchown(file, 1000, 1000);
        lsetxattrSync(file, 'security.capability', fileCapability());
        await utimes(file, T0, T0);

        const dir = join(root, 'xattr-dir');
        await mkdir(dir, { mode: 0o750 });
        lsetxattrSync(dir, 'user.dir', Buffer.from('d'));
        if (trusted) lsetxattrSync(dir, 'trusted.dir', BINARY.subarray(200));
        await writeFileMode(join(dir, 'plain'), 'plain', 0o644);
        await utimes(dir, T0, T0);

        await symlink('xattr-file', join(root, 'xattr-link'));
        // user.* cannot be set on a symlink; trusted.* can.
        if (trusted) lsetxattrSync(join(root, 'xattr-link'), 'trusted.link', Buffer.from('l'));
        await lutimes(join(root, 'xattr-link'), T0, T0);
      },
      async modify(root) {
        const file = join(root, 'xattr-file');
        lsetxattrSync(file, 'user.comment', Buffer.from('changed'));
        lremovexattrSync(file, 'user.binary');
        lsetxattrSync(file, 'user.new', BINARY.subarray(0, 16));
        await writeFileMode(join(root, 'cap-file'), 'capable', 0o755);
        lsetxattrSync(join(root, 'cap-file'), 'security.capability', fileCapability());
        lsetxattrSync(join(root, 'xattr-dir'), 'user.dir', Buffer.from('d2'));
      },
      checkDiffTar(entries) {
        const n = names(entries);
        assert.ok(n.includes('xattr-file'), `the diff carries xattr-file, whose xattrs changed (entries: ${n.join(', ')})`);
        assert.ok(n.includes('cap-file'), 'the diff carries the added cap-file');
      },
    });
  },
};

const symlinks: C = {
  name: 'Symlinks',
  async run(ctx) {
    await roundTrip(ctx, {
      async build(root) {
        await writeFileMode(join(root, 'target-file'), 'target', 0o644);
        await mkdir(join(root, 'sub'));
        await symlink('target-file', join(root, 'rel-link'));
        await symlink('/etc/passwd', join(root, 'abs-link'));
        await symlink('does/not/exist', join(root, 'dangling'));
        await symlink('sub', join(root, 'dir-link'));
        await symlink('../target-file', join(root, 'sub', 'up-link'));
        await symlink('loop-b', join(root, 'loop-a'));
        await symlink('loop-a', join(root, 'loop-b'));
        await symlink(`${'long-component/'.repeat(12)}end`, join(root, 'long-link'));
        await lchown(join(root, 'rel-link'), 7, 8);
        for (const l of ['rel-link', 'abs-link', 'dangling', 'dir-link', 'sub/up-link', 'loop-a', 'loop-b', 'long-link']) {
          await lutimes(join(root, l), T0, T0);
        }
        await utimes(join(root, 'sub'), T0, T0);
      },
      async modify(root) {
        await unlink(join(root, 'rel-link'));
        await symlink('sub', join(root, 'rel-link'));
        await unlink(join(root, 'dangling'));
        await writeFileMode(join(root, 'dangling'), 'now a file', 0o600);
        await symlink('/proc/self/root', join(root, 'sub', 'new-link'));
        await lutimes(join(root, 'sub', 'new-link'), T0 + 1, T0 + 1);
      },
    });
  },
};

const hardLinks: C = {
  name: 'HardLinks',
  async run(ctx) {
    await roundTrip(ctx, {
      async build(root) {
        await mkdir(join(root, 'd'));
        await writeFileMode(join(root, 'h1'), randomContent(4096, 1), 0o644);
        await link(join(root, 'h1'), join(root, 'h2'));
        await link(join(root, 'h1'), join(root, 'd', 'h3'));
        await writeFileMode(join(root, 'g1'), randomContent(100, 2), 0o640);
        await lchown(join(root, 'g1'), 3, 4);
        await link(join(root, 'g1'), join(root, 'd', 'g2'));
        await writeFileMode(join(root, 'single'), 'alone', 0o644);
        await utimes(join(root, 'h1'), T0, T0);
      },
      async modify(root) {
        await writeFileMode(join(root, 'n1'), randomContent(300, 3), 0o600);
        await link(join(root, 'n1'), join(root, 'd', 'n2'));
        await link(join(root, 'n1'), join(root, 'n3'));
      },
      checkDiffTar(entries) {
        const links = entries.filter((e) => e.typeflag === '1');
        assert.equal(links.length, 2, `the diff carries the two later names of n1 as hard-link entries (got ${links.map((e) => e.name).join(', ')})`);
      },
    });
  },
};

const devicesAndFifos: C = {
  name: 'DevicesAndFifos',
  async run(ctx) {
    const devices = ctx.capabilities.devices;
    await roundTrip(ctx, {
      async build(root) {
        await mkdir(join(root, 'dev', 'sub'), { recursive: true });
        if (devices) {
          mknodSync(join(root, 'dev', 'null'), S.IFCHR | 0o666, 1, 3);
          mknodSync(join(root, 'dev', 'sub', 'zero'), S.IFCHR | 0o640, 1, 5);
          mknodSync(join(root, 'dev', 'loop9'), S.IFBLK | 0o660, 7, 9);
          await lchown(join(root, 'dev', 'loop9'), 0, 6);
          // A device number that needs the large encoding (major > 255, minor > 255).
          mknodSync(join(root, 'dev', 'big'), S.IFCHR | 0o600, 259, 70000);
          // mknod's mode goes through the umask; the fixture wants these exact modes.
          await chmod(join(root, 'dev', 'null'), 0o666);
          await chmod(join(root, 'dev', 'loop9'), 0o660);
        }
        mknodSync(join(root, 'fifo'), S.IFIFO | 0o640, 0, 0);
        await lchown(join(root, 'fifo'), 5, 6);
        await chmod(join(root, 'fifo'), 0o640);
        await utimes(join(root, 'fifo'), T0, T0);
      },
      async modify(root) {
        if (devices) {
          await unlink(join(root, 'dev', 'null'));
          await unlink(join(root, 'dev', 'sub', 'zero'));
          mknodSync(join(root, 'dev', 'sub', 'zero'), S.IFCHR | 0o640, 1, 7);
        }
        mknodSync(join(root, 'fifo2'), S.IFIFO | 0o600, 0, 0);
      },
    });
  },
};

const whiteoutsAndOpaque: C = {
  name: 'WhiteoutsAndOpaque',
  async run(ctx) {
    await roundTrip(ctx, {
      async build(root) {
        const files: Array<[string, string]> = [
          ['keep/a', 'a'],
          ['keep/b', 'b'],
          ['gone', 'gone'],
          ['gonedir/x', 'x'],
          ['gonedir/sub/y', 'y'],
          ['opaque/x', 'x'],
          ['opaque/y', 'y'],
          ['opaque/sub/z', 'z'],
          ['nested/a/b/c/file', 'file'],
          ['nested/a/b/other', 'other'],
          ['filetodir', 'f'],
          ['dirtofile/inner', 'i'],
        ];
        for (const [p, content] of files) {
          await mkdir(join(root, p, '..'), { recursive: true });
          await writeFileMode(join(root, p), content, 0o644);
        }
      },
      async modify(root) {
        await rm(join(root, 'gone'));
        await rm(join(root, 'gonedir'), { recursive: true });
        await rm(join(root, 'opaque'), { recursive: true });
        await mkdir(join(root, 'opaque'));
        await writeFileMode(join(root, 'opaque', 'new'), 'new', 0o644);
        await rm(join(root, 'nested/a/b/c/file'));
        await rm(join(root, 'filetodir'));
        await mkdir(join(root, 'filetodir'));
        await writeFileMode(join(root, 'filetodir', 'inside'), 'inside', 0o644);
        await rm(join(root, 'dirtofile'), { recursive: true });
        await writeFileMode(join(root, 'dirtofile'), 'was a dir', 0o644);
      },
      checkDiffTar(entries) {
        const n = names(entries);
        for (const wh of ['.wh.gone', '.wh.gonedir', 'nested/a/b/c/.wh.file']) {
          assert.ok(n.includes(wh), `the diff has the whiteout ${wh} (entries: ${n.join(', ')})`);
        }
        assert.ok(!n.some((x) => x.startsWith('gonedir/')), 'the diff does not list what a deleted directory held');
        assert.ok(!n.includes('keep') && !n.includes('keep/a'), 'the diff leaves unchanged entries out');
      },
    });

    // Hand-made AUFS whiteouts and nested opaque markers applied onto a child of a fresh base.
    const { driver } = ctx;
    await driver.create('base');
    await withLayer(driver, 'base', async (root) => {
      for (const p of ['keep/a', 'keep/b', 'opaque/x', 'opaque/sub/z', 'nested/a/file']) {
        await mkdir(join(root, p, '..'), { recursive: true });
        await writeFileMode(join(root, p), p, 0o644);
      }
    });
    const baseDigest = await layerDigest(driver, 'base');
    await driver.create('whiteouts', 'base');
    const tar = buildTar([
      { name: 'keep/', type: 'dir' },
      { name: 'keep/.wh.a', type: 'file' },
      { name: 'nested/', type: 'dir' },
      { name: 'nested/.wh.a', type: 'file' },
      { name: 'opaque/', type: 'dir' },
      { name: 'opaque/.wh..wh..opq', type: 'file' },
      { name: 'opaque/fresh', type: 'file', data: 'fresh' },
      { name: 'opaque/sub/', type: 'dir' },
      { name: 'opaque/sub/.wh..wh..opq', type: 'file' },
      { name: 'opaque/sub/new', type: 'file', data: 'new' },
    ]);
    const size = await driver.applyDiff('whiteouts', 'base', Readable.from([tar]));
    assert.equal(size, 8, 'applyDiff returns the sum of the entry sizes (5 + 3)');
    await withLayer(driver, 'whiteouts', async (root) => {
      const list = async (p: string): Promise<string[]> => (await readdir(join(root, p))).sort();
      assert.deepEqual(await list('keep'), ['b'], 'keep/.wh.a deletes keep/a only');
      assert.deepEqual(await list('nested'), [], 'nested/.wh.a deletes the directory nested/a');
      assert.deepEqual(await list('opaque'), ['fresh', 'sub'], 'an opaque opaque/ keeps only what the tar put there');
      assert.deepEqual(await list('opaque/sub'), ['new'], 'a nested opaque opaque/sub/ keeps only what the tar put there');
      const d = await treeDigest(root);
      const leftovers = d.entries.filter((e) => /\/\.wh\./.test(e.path));
      assert.deepEqual(leftovers.map((e) => e.path), [], 'whiteout files are applied, never stored as visible files');
    });
    assertSameTree(await layerDigest(driver, 'base'), baseDigest, 'the parent after whiteouts were applied to its child');
    await removeLayers(driver, ['base', 'whiteouts']);
  },
};

export function fidelityCases(): C[] {
  return [xattrs, symlinks, hardLinks, devicesAndFifos, whiteoutsAndOpaque];
}
