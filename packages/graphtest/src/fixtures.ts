/**
 * The fixtures of moby's and containers/storage's graphtest (testutil.go, testutil_unix.go), with
 * the same names, sizes, modes, owners, seeds and layouts: the "Base" layer, addFiles,
 * addManyFiles, changeManyFiles (and the changes it makes), addManyLayers / checkManyLayers, and the
 * file checks. Every helper takes the layer with get() and gives it back with put(), also on error,
 * as the Go helpers do with defer.
 *
 * randomContent is deterministic per seed like Go's, but from our own generator (mulberry32): the
 * bytes differ from Go's math/rand, which no assertion depends on - every check compares with
 * randomContent of the same seed.
 */
import { strict as assert } from 'node:assert';
import { chmod, lchown, mkdir, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Change, ProtoDriver } from '@graphdriver/core';
import { randomBytes } from 'node:crypto';

/** Mode bits of the Base fixture, as containers/storage names them. */
export const DEFAULT_SUBDIR_PERMS = 0o705;
export const DEFAULT_SUBDIR_OWNER = 1;
export const DEFAULT_SUBDIR_GROUP = 2;
export const DEFAULT_FILE_PERMS = 0o222;
/** containers/storage's root mode of a layer without parent; moby's drivers use 0o755. */
export const DEFAULT_ROOT_PERMS = 0o555;
/** The root mode containers/storage's CreateSnap sets on a snapshot before making the second one. */
export const MODIFIED_ROOT_PERMS = 0o711;

/** `size` bytes, the same for the same seed. */
export function randomContent(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let a = (seed * 0x9e3779b1) | 0;
  for (let i = 0; i < size; i += 4) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    const v = (t ^ (t >>> 14)) >>> 0;
    for (let j = 0; j < 4 && i + j < size; j++) out[i + j] = (v >>> (8 * j)) & 0xff;
  }
  return out;
}

/** A random (hex) layer id of 64 characters, as stringid.GenerateRandomID. */
export function randomId(): string {
  return randomBytes(32).toString('hex');
}

/** Runs `fn` on the layer's mounted root, with one get() and one put() around it. */
export async function withLayer<T>(driver: ProtoDriver, id: string, fn: (root: string) => Promise<T>): Promise<T> {
  const root = await driver.get(id);
  try {
    return await fn(root);
  } finally {
    await driver.put(id);
  }
}

/** Writes a file with exactly `mode` (the umask does not apply, as under Go's Umask(0)). */
export async function writeFileMode(path: string, data: Uint8Array | string, mode: number): Promise<void> {
  await writeFile(path, data, { mode: mode & 0o777 });
  await chmod(path, mode);
}

/** moby's addFiles: file-a (64 bytes), dir-b/file-b (128), file-c (16 KiB), all 0755. */
export async function addFiles(driver: ProtoDriver, layer: string, seed: number): Promise<void> {
  await withLayer(driver, layer, async (root) => {
    await writeFileMode(join(root, 'file-a'), randomContent(64, seed), 0o755);
    await mkdir(join(root, 'dir-b'), { recursive: true, mode: 0o755 });
    await writeFileMode(join(root, 'dir-b', 'file-b'), randomContent(128, seed + 1), 0o755);
    await writeFileMode(join(root, 'file-c'), randomContent(128 * 128, seed + 2), 0o755);
  });
}

export async function addFile(driver: ProtoDriver, layer: string, filename: string, content: Uint8Array): Promise<void> {
  await withLayer(driver, layer, (root) => writeFileMode(join(root, filename), content, 0o755));
}

export async function addDirectory(driver: ProtoDriver, layer: string, dir: string): Promise<void> {
  await withLayer(driver, layer, async (root) => {
    await mkdir(join(root, dir), { recursive: true, mode: 0o755 });
  });
}

export async function removeAll(driver: ProtoDriver, layer: string, ...names: string[]): Promise<void> {
  await withLayer(driver, layer, async (root) => {
    for (const name of names) await rm(join(root, name), { recursive: true, force: true });
  });
}

export async function checkFile(driver: ProtoDriver, layer: string, filename: string, content: Uint8Array): Promise<void> {
  await withLayer(driver, layer, async (root) => {
    const actual = await readFile(join(root, filename));
    assert.ok(actual.equals(content), `${filename} in layer ${layer}: content differs (${actual.length} bytes, expected ${content.length})`);
  });
}

export async function checkFileRemoved(driver: ProtoDriver, layer: string, filename: string): Promise<void> {
  await withLayer(driver, layer, async (root) => {
    const st = await stat(join(root, filename)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    assert.equal(st, undefined, `file still exists: ${filename} in layer ${layer}`);
  });
}

/** `directory-<i>/file-<i+j>`, 100 files of 64 bytes per directory. */
export async function addManyFiles(driver: ProtoDriver, layer: string, count: number, seed: number): Promise<void> {
  await withLayer(driver, layer, async (root) => {
    for (let i = 0; i < count; i += 100) {
      const dir = join(root, `directory-${i}`);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      const writes: Array<Promise<void>> = [];
      for (let j = 0; i + j < count && j < 100; j++) {
        writes.push(writeFileMode(join(dir, `file-${i + j}`), randomContent(64, seed + i + j), 0o755));
      }
      await Promise.all(writes);
    }
  });
}

export async function checkManyFiles(driver: ProtoDriver, layer: string, count: number, seed: number): Promise<void> {
  await withLayer(driver, layer, async (root) => {
    for (let i = 0; i < count; i += 100) {
      const dir = join(root, `directory-${i}`);
      for (let j = 0; i + j < count && j < 100; j++) {
        const name = join(`directory-${i}`, `file-${i + j}`);
        const actual = await readFile(join(dir, `file-${i + j}`));
        assert.ok(actual.equals(randomContent(64, seed + i + j)), `${name} in layer ${layer}: content differs from seed ${seed}`);
      }
    }
  });
}

/**
 * containers/storage's changeManyFiles: per directory, j % 3 == 0 rewrites file-<n> (a Modify; it
 * rewrites until the mtime differs, as c/s does), 1 adds file-<seed>-<n>, 2 removes file-<n>; the
 * directory itself is a Modify. Returns the changes it made (for 20 files: 21).
 */
export async function changeManyFiles(driver: ProtoDriver, layer: string, count: number, seed: number): Promise<Change[]> {
  return withLayer(driver, layer, async (root) => {
    const changes: Change[] = [];
    for (let i = 0; i < count; i += 100) {
      const archiveRoot = `/directory-${i}`;
      await mkdir(join(root, archiveRoot), { recursive: true, mode: 0o755 });
      for (let j = 0; i + j < count && j < 100; j++) {
        if (j === 0) changes.push({ path: archiveRoot, kind: 'modify' });
        const n = i + j;
        switch (j % 3) {
          case 0: {
            const path = `${archiveRoot}/file-${n}`;
            const before = await stat(join(root, path), { bigint: true });
            for (let tries = 0; ; tries++) {
              await writeFileMode(join(root, path), randomContent(64, seed + n), 0o755);
              const after = await stat(join(root, path), { bigint: true });
              if (after.mtimeNs !== before.mtimeNs) break;
              assert.ok(tries < 1000, `${path}: the mtime does not change when the file is rewritten`);
            }
            changes.push({ path, kind: 'modify' });
            break;
          }
          case 1: {
            const path = `${archiveRoot}/file-${seed}-${n}`;
            await writeFileMode(join(root, path), randomContent(64, seed + n), 0o755);
            changes.push({ path, kind: 'add' });
            break;
          }
          default: {
            const path = `${archiveRoot}/file-${n}`;
            await unlink(join(root, path));
            changes.push({ path, kind: 'delete' });
          }
        }
      }
    }
    return changes;
  });
}

/** top-id, layer-<i>/layer-id and layer-<i>/parent-id, as moby's addLayerFiles. */
export async function addLayerFiles(driver: ProtoDriver, layer: string, parent: string, i: number): Promise<void> {
  await withLayer(driver, layer, async (root) => {
    await writeFileMode(join(root, 'top-id'), layer, 0o755);
    const layerDir = join(root, `layer-${i}`);
    await mkdir(layerDir, { recursive: true, mode: 0o755 });
    await writeFileMode(join(layerDir, 'layer-id'), layer, 0o755);
    await writeFileMode(join(layerDir, 'parent-id'), parent, 0o755);
  });
}

/** Stacks `count` layers on `base`, each with its addLayerFiles; returns the top one. `made` collects the ids. */
export async function addManyLayers(driver: ProtoDriver, base: string, count: number, made: string[] = []): Promise<string> {
  let last = base;
  for (let i = 1; i <= count; i++) {
    const next = randomId();
    await driver.create(next, last);
    made.push(next);
    await addLayerFiles(driver, next, last, i);
    last = next;
  }
  return last;
}

/** Follows the chain of layer-<i>/parent-id down from the top, as moby's checkManyLayers. */
export async function checkManyLayers(driver: ProtoDriver, layer: string, count: number): Promise<void> {
  await withLayer(driver, layer, async (root) => {
    let expected = await readFile(join(root, 'top-id'), 'utf8');
    assert.equal(expected, layer, 'top-id');
    for (let i = count; i > 0; i--) {
      const layerDir = join(root, `layer-${i}`);
      assert.equal(await readFile(join(layerDir, 'layer-id'), 'utf8'), expected, `layer-${i}/layer-id`);
      expected = await readFile(join(layerDir, 'parent-id'), 'utf8');
    }
  });
}

/** Directory entries without ext4's lost+found, as the Go readDir. */
export async function readDirNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n !== 'lost+found');
}

const S_IFMT = 0o170000;

function typeName(mode: number): string {
  switch (mode & S_IFMT) {
    case 0o040000:
      return 'directory';
    case 0o100000:
      return 'regular file';
    case 0o120000:
      return 'symlink';
    case 0o020000:
      return 'char device';
    case 0o060000:
      return 'block device';
    case 0o010000:
      return 'fifo';
    default:
      return 'socket';
  }
}

/**
 * verifyFile: type, permission bits, sticky, setuid, setgid and owner of `path` (followed, like
 * os.Stat). `mode` is a full st_mode (`S_IFDIR | 0o1705`).
 */
export async function verifyFile(path: string, mode: number, uid: number, gid: number): Promise<void> {
  const st = await stat(path);
  assert.equal(typeName(st.mode), typeName(mode), `${path}: type`);
  assert.equal((st.mode & 0o7777).toString(8), (mode & 0o7777).toString(8), `${path}: mode (permission, setuid, setgid, sticky)`);
  assert.equal(st.uid, uid, `${path}: uid`);
  assert.equal(st.gid, gid, `${path}: gid`);
}

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

/**
 * The "Base" layer: a writable layer without parent holding `a subdir` (0705 + sticky, owned 1:2)
 * and `a file` ("Some data", 0222 + setuid, root's).
 */
export async function createBase(driver: ProtoDriver, name: string): Promise<void> {
  await driver.createReadWrite(name);
  await withLayer(driver, name, async (root) => {
    const subdir = join(root, 'a subdir');
    await mkdir(subdir);
    await chmod(subdir, DEFAULT_SUBDIR_PERMS | 0o1000);
    await lchown(subdir, DEFAULT_SUBDIR_OWNER, DEFAULT_SUBDIR_GROUP);
    await writeFileMode(join(root, 'a file'), 'Some data', DEFAULT_FILE_PERMS | 0o4000);
  });
}

/** Checks the Base fixture in `name`, whose root directory must have `rootPerms`. */
export async function verifyBase(driver: ProtoDriver, name: string, rootPerms: number): Promise<void> {
  await withLayer(driver, name, async (root) => {
    await verifyFile(root, S_IFDIR | rootPerms, 0, 0);
    await verifyFile(join(root, 'a subdir'), S_IFDIR | DEFAULT_SUBDIR_PERMS | 0o1000, DEFAULT_SUBDIR_OWNER, DEFAULT_SUBDIR_GROUP);
    await verifyFile(join(root, 'a file'), S_IFREG | DEFAULT_FILE_PERMS | 0o4000, 0, 0);
    assert.equal((await readFile(join(root, 'a file'), 'utf8')), 'Some data', 'a file: content');
    assert.deepEqual((await readDirNames(root)).sort(), ['a file', 'a subdir'], `entries of ${name}`);
  });
}

/** Sorts changes by path, then kind in Go's order (Modify, Add, Delete), as moby's checkChanges. */
export function sortedChanges(changes: readonly Change[]): Change[] {
  const rank = { modify: 0, add: 1, delete: 2 } as const;
  return [...changes]
    .map((c) => ({ path: c.path, kind: c.kind }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : rank[a.kind] - rank[b.kind]));
}

/** The same changes, in any order (testify's ElementsMatch, moby's sorted compare). */
export function assertSameChanges(actual: readonly Change[], expected: readonly Change[], what: string): void {
  assert.deepEqual(sortedChanges(actual), sortedChanges(expected), `${what}: changes differ`);
}

