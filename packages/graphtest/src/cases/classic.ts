/**
 * The cases of moby's (daemon/graphdriver/graphtest) and containers/storage's (drivers/graphtest)
 * suites, with their fixtures and assertions: CreateEmpty, CreateBase, CreateSnap and the root-mode
 * inheritance of containers/storage's CreateSnap, DeepLayerRead(n), DiffApply(n), Changes, SetQuota,
 * CreateFromTemplate, Echo and ListLayers. Where the two suites differ, the stricter assertion is
 * kept (and the difference is said in a comment).
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { errorCode, hasCreateFromTemplate, hasListLayers, isNotSupported, type Change } from '@graphdriver/core';
import type { Case } from '../runner.js';
import type { CaseContext } from '../context.js';
import {
  addDirectory,
  addFile,
  addManyFiles,
  addManyLayers,
  assertSameChanges,
  changeManyFiles,
  checkFile,
  checkFileRemoved,
  checkManyFiles,
  checkManyLayers,
  createBase,
  DEFAULT_FILE_PERMS,
  DEFAULT_SUBDIR_GROUP,
  DEFAULT_SUBDIR_OWNER,
  MODIFIED_ROOT_PERMS,
  randomContent,
  randomId,
  readDirNames,
  removeAll,
  S_IFDIR,
  S_IFREG,
  verifyBase,
  verifyFile,
  withLayer,
  writeFileMode,
} from '../fixtures.js';
import { readAll } from '../tar.js';
import { removeLayers, requireCapability } from './helpers.js';

type C = Case<CaseContext>;

const createEmpty: C = {
  name: 'CreateEmpty',
  async run({ driver, capabilities }) {
    await driver.create('empty');
    assert.equal(await driver.exists('empty'), true, "Newly created image doesn't exist");
    await withLayer(driver, 'empty', async (dir) => {
      await verifyFile(dir, S_IFDIR | capabilities.rootMode, 0, 0);
      assert.deepEqual(await readDirNames(dir), [], 'a new layer without parent is empty');
    });
    await removeLayers(driver, ['empty']);
  },
};

const createBaseCase: C = {
  name: 'CreateBase',
  async run({ driver, capabilities }) {
    await createBase(driver, 'Base');
    await verifyBase(driver, 'Base', capabilities.rootMode);
    await removeLayers(driver, ['Base']);
  },
};

const createSnap: C = {
  name: 'CreateSnap',
  async run({ driver, capabilities }) {
    await createBase(driver, 'Base2');
    await driver.create('Snap2', 'Base2');
    await verifyBase(driver, 'Snap2', capabilities.rootMode);
    // The parent is untouched by its child's creation.
    await verifyBase(driver, 'Base2', capabilities.rootMode);
    await removeLayers(driver, ['Base2', 'Snap2']);
  },
};

/**
 * containers/storage's CreateSnap, second half: a child's root directory takes its parent's root
 * mode (and, as its drivers do, owner), so a chmod of a snapshot's root shows in the next one.
 */
const rootModeInheritance: C = {
  name: 'RootModeInheritance',
  async run({ driver, capabilities }) {
    await createBase(driver, 'Base2');
    await driver.create('Snap2', 'Base2');
    await verifyBase(driver, 'Snap2', capabilities.rootMode);
    await withLayer(driver, 'Snap2', async (root) => {
      await chmod(root, MODIFIED_ROOT_PERMS);
      await chown(root, DEFAULT_SUBDIR_OWNER, DEFAULT_SUBDIR_GROUP);
    });
    await driver.create('SecondSnap', 'Snap2');
    await withLayer(driver, 'SecondSnap', async (root) => {
      await verifyFile(root, S_IFDIR | MODIFIED_ROOT_PERMS, DEFAULT_SUBDIR_OWNER, DEFAULT_SUBDIR_GROUP);
    });
    // verifyBase without the root's owner, which we changed on purpose.
    await withLayer(driver, 'SecondSnap', async (root) => {
      await verifyFile(join(root, 'a file'), S_IFREG | DEFAULT_FILE_PERMS | 0o4000, 0, 0);
      assert.deepEqual((await readDirNames(root)).sort(), ['a file', 'a subdir']);
    });
    await removeLayers(driver, ['Base2', 'Snap2', 'SecondSnap']);
  },
};

function deepLayerRead(layerCount: number): C {
  return {
    name: `DeepLayerRead(${layerCount})`,
    async run({ driver }) {
      const base = randomId();
      await driver.create(base);
      const made = [base];
      const content = Buffer.from('test content');
      await addFile(driver, base, 'testfile.txt', content);
      const top = await addManyLayers(driver, base, layerCount, made);
      await checkManyLayers(driver, top, layerCount);
      await checkFile(driver, top, 'testfile.txt', content);
      await removeLayers(driver, made);
    },
  };
}

/**
 * For a DiffApply failure: which of the files the upper rewrote its changes against the base leave
 * out, with both copies' mtimes and sizes (change detection compares those, as moby's does).
 */
async function unchangedFiles(driver: CaseContext['driver'], upper: string, base: string, fileCount: number): Promise<string> {
  const changed = new Set((await driver.changes(upper, base)).map((c) => c.path));
  const missing: string[] = [];
  for (let i = 0; i < fileCount; i++) {
    const path = `/directory-${i - (i % 100)}/file-${i}`;
    if (!changed.has(path)) missing.push(path);
  }
  if (missing.length === 0) return 'every rewritten file is among the changes';
  const statOf = (layer: string, path: string): Promise<string> =>
    withLayer(driver, layer, async (root) => {
      const st = await lstat(join(root, path), { bigint: true });
      return `mtime ${st.mtimeNs} ns, size ${st.size}, ino ${st.ino}`;
    });
  const first = missing[0]!;
  return `${missing.length} rewritten file(s) missing from the changes, e.g. ${first}: upper ${await statOf(upper, first)}; base ${await statOf(base, first)}`;
}

function diffApply(fileCount: number): C {
  return {
    name: `DiffApply(${fileCount})`,
    async run({ driver }) {
      const base = randomId();
      const upper = randomId();
      const diff = randomId();
      const deleteFile = 'file-remove.txt';
      const deleteFileContent = Buffer.from('This file should get removed in upper!');
      const deleteDir = 'var/lib';

      await driver.create(base);
      await addManyFiles(driver, base, fileCount, 3);
      await addFile(driver, base, deleteFile, deleteFileContent);
      await addDirectory(driver, base, deleteDir);

      await driver.create(upper, base);
      await addManyFiles(driver, upper, fileCount, 6);
      await removeAll(driver, upper, deleteFile, deleteDir);

      // As in both Go suites: the size of the whole upper layer (no parent) ...
      const diffSize = await driver.diffSize(upper);

      await driver.create(diff, base);
      await checkManyFiles(driver, diff, fileCount, 3);
      await checkFile(driver, diff, deleteFile, deleteFileContent);

      const tar = await readAll(await driver.diff(upper, base));
      const applied = await driver.applyDiff(diff, base, Readable.from([tar]));
      // ... equals what applying its diff against the parent counts.
      if (applied !== diffSize) assert.fail(`Apply diff size different, got ${applied}, expected ${diffSize}; ${await unchangedFiles(driver, upper, base, fileCount)}`);

      await checkManyFiles(driver, diff, fileCount, 6);
      await checkFileRemoved(driver, diff, deleteFile);
      await checkFileRemoved(driver, diff, deleteDir);
      await removeLayers(driver, [base, upper, diff]);
    },
  };
}

const changes: C = {
  name: 'Changes',
  async run({ driver }) {
    const base = randomId();
    const upper = randomId();
    await driver.create(base);
    await addManyFiles(driver, base, 20, 3);
    await driver.create(upper, base);
    const expected = await changeManyFiles(driver, upper, 20, 6);
    assert.equal(expected.length, 21, 'changeManyFiles(20) makes 21 changes');
    const actual = await driver.changes(upper, base);
    assertSameChanges(actual, expected, `changes(${upper}, ${base})`);
    await removeLayers(driver, [base, upper]);
  },
};

const MiB = 1024 * 1024;

/**
 * moby's SetQuota: a 50M layer takes a 25 MiB file and refuses a further 50 MiB one with EDQUOT or
 * ENOSPC. "Quota not supported" skips, unless the caller gave a quotaRoot (moby's `required`).
 */
const setQuota: C = {
  name: 'SetQuota',
  async run({ driver, capabilities, quotaRequired }) {
    await createBase(driver, 'Base');
    await verifyBase(driver, 'Base', capabilities.rootMode);
    const layer = `${driver.name}Test`;
    try {
      await driver.createReadWrite(layer, 'Base', { storageOpt: { size: '50M' } });
    } catch (err) {
      if (quotaRequired && isNotSupported(err)) {
        assert.fail(`quota must work under the quotaRoot given, but: ${(err as Error).message}`);
      }
      throw err;
    }
    const quota = 50 * MiB;
    await withLayer(driver, layer, async (mountPath) => {
      await writeFile(join(mountPath, 'smallfile'), randomBytes(quota / 2), { mode: 0o700 });
      let wrote = false;
      try {
        await writeFile(join(mountPath, 'bigfile'), randomBytes(quota), { mode: 0o700 });
        wrote = true;
      } catch (err) {
        const code = errorCode(err);
        assert.ok(code === 'EDQUOT' || code === 'ENOSPC', `expect write() to fail with EDQUOT or ENOSPC, got ${code ?? String(err)}`);
      }
      assert.equal(wrote, false, 'expected the 50 MiB write into a 50M layer holding 25 MiB to fail, instead it succeeded');
      await rm(join(mountPath, 'bigfile'), { force: true });
      await rm(join(mountPath, 'smallfile'), { force: true });
    });
    await removeLayers(driver, ['Base', layer]);
  },
};

const createFromTemplate: C = {
  name: 'CreateFromTemplate',
  async run(ctx) {
    const { driver, capabilities } = ctx;
    requireCapability(ctx, 'createFromTemplate', hasCreateFromTemplate(driver));
    if (!hasCreateFromTemplate(driver)) return;
    await createBase(driver, 'Base3');
    await verifyBase(driver, 'Base3', capabilities.rootMode);
    await driver.create('Snap3', 'Base3');
    const content = Buffer.from('test content');
    await addFile(driver, 'Snap3', 'testfile.txt', content);

    await driver.createFromTemplate('FromTemplate', 'Snap3', { parent: 'Base3', readWrite: true });
    await driver.createFromTemplate('ROFromTemplate', 'Snap3', { parent: 'Base3', readWrite: false });

    assertSameChanges(await driver.changes('FromTemplate', 'Snap3'), [], 'changes(FromTemplate, Snap3)');
    assertSameChanges(await driver.changes('ROFromTemplate', 'Snap3'), [], 'changes(ROFromTemplate, Snap3)');

    await checkFile(driver, 'FromTemplate', 'testfile.txt', content);
    await checkFile(driver, 'ROFromTemplate', 'testfile.txt', content);
    await checkFile(driver, 'Snap3', 'testfile.txt', content);

    const expected: Change[] = [{ path: '/testfile.txt', kind: 'add' }];
    assertSameChanges(await driver.changes('Snap3', 'Base3'), expected, 'changes(Snap3, Base3)');
    assertSameChanges(await driver.changes('FromTemplate', 'Base3'), expected, 'changes(FromTemplate, Base3)');
    assertSameChanges(await driver.changes('ROFromTemplate', 'Base3'), expected, 'changes(ROFromTemplate, Base3)');

    await verifyBase(driver, 'Base3', capabilities.rootMode);
    await removeLayers(driver, ['Base3', 'Snap3', 'FromTemplate', 'ROFromTemplate']);
  },
};

/**
 * containers/storage's Echo: nested directories removed at every depth and recreated above, the
 * trouble spots of a diff that reads an upper directory (whiteouts, opaque directories).
 */
const echo: C = {
  name: 'Echo',
  async run({ driver, capabilities }) {
    const components = 10;
    const made: string[] = [];
    for (let depth = 0; depth < components; depth++) {
      const base = randomId();
      const second = randomId();
      const third = randomId();

      await createBase(driver, base);
      made.push(base);
      await verifyBase(driver, base, capabilities.rootMode);

      let root = await driver.get(base);
      let expected: Change[] = [
        { kind: 'add', path: '/a file' },
        { kind: 'add', path: '/a subdir' },
      ];
      const paths: string[] = [];
      let path = '';
      for (let i = 0; i < components - 1; i++) {
        path = `${path}/subdir${i + 1}`;
        paths.push(path);
        await mkdir(join(root, path), { mode: 0o700 });
        expected.push({ kind: 'add', path });
      }
      path = `${path}/file`;
      paths.push(path);
      await writeFileMode(join(root, path), randomContent(128, depth), 0o600);
      expected.push({ kind: 'add', path });
      assertSameChanges(await driver.changes(base), expected, `depth ${depth}: changes(base)`);

      await driver.create(second, base);
      made.push(second);
      root = await driver.get(second);
      await rm(join(root, paths[depth]!), { recursive: true });
      expected = [];
      for (let i = 0; i < depth; i++) expected.push({ kind: 'modify', path: paths[i]! });
      expected.push({ kind: 'delete', path: paths[depth]! });
      assertSameChanges(await driver.changes(second, base), expected, `depth ${depth}: changes(second, base)`);

      await driver.create(third, second);
      made.push(third);
      root = await driver.get(third);
      expected = [];
      for (let i = 0; i < depth; i++) expected.push({ kind: 'modify', path: paths[i]! });
      for (let i = depth; i < components - 1; i++) {
        await mkdir(join(root, paths[i]!), { mode: 0o700 });
        expected.push({ kind: 'add', path: paths[i]! });
      }
      await writeFileMode(join(root, paths[paths.length - 1]!), randomContent(128, depth), 0o600);
      expected.push({ kind: 'add', path: paths[paths.length - 1]! });
      assertSameChanges(await driver.changes(third, second), expected, `depth ${depth}: changes(third, second)`);

      await driver.put(third);
      await driver.put(second);
      await driver.put(base);
    }
    await removeLayers(driver, made);
  },
};

const listLayers: C = {
  name: 'ListLayers',
  async run(ctx) {
    const { driver, capabilities } = ctx;
    requireCapability(ctx, 'listLayers', hasListLayers(driver));
    if (!hasListLayers(driver)) return;
    const base = randomId();
    const mid = randomId();
    const upper = randomId();
    await createBase(driver, base);
    await verifyBase(driver, base, capabilities.rootMode);
    await addManyFiles(driver, base, 20, 3);
    await driver.create(mid, base);
    await addManyFiles(driver, mid, 20, 3);
    await driver.create(upper, mid);
    const list = (await driver.listLayers()).sort();
    assert.deepEqual(list, [base, mid, upper].sort(), 'listed layers were not exactly what we created');
    await removeLayers(driver, [base, mid, upper]);
    assert.deepEqual(await driver.listLayers(), [], 'listLayers() after removing every layer');
  },
};

export interface ClassicParams {
  deepLayerRead: readonly number[];
  diffApply: readonly number[];
}

export function classicCases(params: ClassicParams): C[] {
  return [
    createEmpty,
    createBaseCase,
    createSnap,
    rootModeInheritance,
    ...params.deepLayerRead.map(deepLayerRead),
    ...params.diffApply.map(diffApply),
    changes,
    setQuota,
    createFromTemplate,
    echo,
    listLayers,
  ];
}
