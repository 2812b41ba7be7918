/**
 * Cases about refusing: invalid layer ids and missing parents give typed errors and create nothing
 * (the store's tree is the same before and after), a duplicate id is LayerExistsError and leaves the
 * existing layer alone, and malicious tars given to applyDiff are refused with a typed error and
 * touch nothing outside the layer - not a directory outside the store, not the parent layer.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { listLoops } from '@graphdriver/core';
import type { Case } from '../runner.js';
import type { CaseContext } from '../context.js';
import { assertSameTree, treeDigest, type TreeDigest } from '../digest.js';
import { addFile, withLayer, writeFileMode } from '../fixtures.js';
import { buildTar, type TarEntry } from '../tar.js';
import { expectCode, removeLayers } from './helpers.js';

type C = Case<CaseContext>;

const INVALID_ID = 'ERR_GRAPHDRIVER_INVALID_LAYER_ID';
const UNKNOWN = 'ERR_GRAPHDRIVER_LAYER_UNKNOWN';
const EXISTS = 'ERR_GRAPHDRIVER_LAYER_EXISTS';
const BREAKOUT = 'ERR_GRAPHDRIVER_ARCHIVE_BREAKOUT';
const INVALID_ARCHIVE = 'ERR_GRAPHDRIVER_INVALID_ARCHIVE';

/**
 * Everything under the store root, driver internals included, without mtimes (reads are not changes).
 * Files that back attached loop devices (a devmapper pool's data and metadata, size-limited layer
 * images) are compared by name, mode, owner and size: their bytes belong to a live block device.
 */
const storeDigest = async (root: string): Promise<TreeDigest> =>
  treeDigest(root, { exclude: [], liveFiles: new Set((await listLoops()).map((l) => l.backingFile)) });

const emptyTar = (): Readable => Readable.from([buildTar([])]);

function invalidIds(scratch: string): string[] {
  return [
    '',
    '.',
    '..',
    '../evil',
    `${'../'.repeat(24)}${scratch.slice(1)}/evil`,
    'a/b',
    '/abs',
    '-dash',
    '_under',
    '.dot',
    'sp ace',
    'nul\0byte',
    'new\nline',
    'colon:id',
    'ünïcode',
    'x'.repeat(129),
  ];
}

/** Every method that takes an id refuses each invalid one before touching anything. */
const invalidIdsCase: C = {
  name: 'InvalidIds',
  async run({ driver, root, scratch }) {
    await driver.create('valid-parent');
    const storeBefore = await storeDigest(root);
    const scratchBefore = await storeDigest(scratch);
    for (const id of invalidIds(scratch)) {
      const what = (m: string): string => `${m}(${JSON.stringify(id)})`;
      await expectCode(driver.create(id), [INVALID_ID], what('create'));
      await expectCode(driver.createReadWrite(id), [INVALID_ID], what('createReadWrite'));
      // As a parent, '' means "none" (moby's convention); every other invalid id is refused.
      if (id !== '') {
        await expectCode(driver.create('child-of-invalid', id), [INVALID_ID], what('create(child, parent=)'));
        await expectCode(driver.createReadWrite('child-of-invalid', id), [INVALID_ID], what('createReadWrite(child, parent=)'));
        await expectCode(driver.diff('valid-parent', id), [INVALID_ID], what('diff(valid, parent=)'));
      }
      await expectCode(driver.get(id), [INVALID_ID], what('get'));
      await expectCode(driver.remove(id), [INVALID_ID], what('remove'));
      await expectCode(driver.metadata(id), [INVALID_ID], what('metadata'));
      await expectCode(driver.changes(id), [INVALID_ID], what('changes'));
      await expectCode(driver.diffSize(id), [INVALID_ID], what('diffSize'));
      await expectCode(driver.diff(id), [INVALID_ID], what('diff'));
      await expectCode(driver.applyDiff(id, undefined, emptyTar()), [INVALID_ID], what('applyDiff'));
      // exists() may answer false or refuse; it must not say yes.
      const exists = await driver.exists(id).catch((err: { code?: string }) => {
        assert.equal(err.code, INVALID_ID, what('exists'));
        return false;
      });
      assert.equal(exists, false, what('exists'));
    }
    assert.equal(await driver.exists('child-of-invalid'), false, 'no child was made under an invalid parent');
    assertSameTree(await storeDigest(root), storeBefore, 'the store after invalid ids');
    assertSameTree(await storeDigest(scratch), scratchBefore, 'a directory outside the store after invalid ids');

    // The limit is exact: 128 characters is a valid id.
    const longest = 'x'.repeat(128);
    await driver.create(longest);
    assert.equal(await driver.exists(longest), true, 'a 128-character id is valid');
    await removeLayers(driver, [longest, 'valid-parent']);
  },
};

const typedErrors: C = {
  name: 'TypedErrors',
  async run({ driver, root }) {
    const before = await storeDigest(root);
    await expectCode(driver.create('orphan', 'missing-parent'), [UNKNOWN], 'create() on a missing parent');
    await expectCode(driver.createReadWrite('orphan', 'missing-parent'), [UNKNOWN], 'createReadWrite() on a missing parent');
    assert.equal(await driver.exists('orphan'), false, 'no layer is made on a missing parent');
    assertSameTree(await storeDigest(root), before, 'the store after create() on a missing parent');

    await expectCode(driver.get('missing'), [UNKNOWN], 'get() of an unknown layer');
    await expectCode(driver.metadata('missing'), [UNKNOWN], 'metadata() of an unknown layer');
    await expectCode(driver.diff('missing'), [UNKNOWN], 'diff() of an unknown layer');
    await expectCode(driver.changes('missing'), [UNKNOWN], 'changes() of an unknown layer');
    await expectCode(driver.applyDiff('missing', undefined, emptyTar()), [UNKNOWN], 'applyDiff() into an unknown layer');
    assertSameTree(await storeDigest(root), before, 'the store after operations on unknown layers');

    await driver.create('dup');
    await addFile(driver, 'dup', 'keep.txt', Buffer.from('keep'));
    await expectCode(driver.create('dup'), [EXISTS], 'create() of an existing id');
    await expectCode(driver.createReadWrite('dup'), [EXISTS], 'createReadWrite() of an existing id');
    await withLayer(driver, 'dup', async (r) => {
      assert.equal(await readFile(join(r, 'keep.txt'), 'utf8'), 'keep', 'a refused duplicate create() leaves the existing layer alone');
    });
    await removeLayers(driver, ['dup']);
  },
};

interface EvilTar {
  name: string;
  entries?: TarEntry[];
  raw?: Buffer;
  /** Error codes that count as refusing it; `typed`: any of graphdriver's own (ERR_GRAPHDRIVER_*). */
  codes: readonly string[] | 'typed';
  /** Not malicious in moby's reading (an absolute name is taken inside the root): accepted or refused, it must stay inside. */
  mayBeAccepted?: boolean;
}

function evilTars(outside: string): EvilTar[] {
  const up = '../'.repeat(24) + outside.slice(1);
  // Any of our typed errors, where more than one reading is defensible (an absolute hard-link target
  // is taken inside the layer, as moby does, and is then simply missing).
  const refused = 'typed' as const;
  const valid = buildTar([
    { name: 'ok/', type: 'dir' },
    { name: 'ok/file', type: 'file', data: randomBytes(4000) },
  ]);
  return [
    { name: '../ name', entries: [{ name: `${up}/dotdot`, type: 'file', data: 'x' }], codes: [BREAKOUT] },
    {
      name: '../ inside a name',
      entries: [
        { name: 'sub/', type: 'dir' },
        { name: `sub/${up}/mid`, type: 'file', data: 'x' },
      ],
      codes: [BREAKOUT],
    },
    {
      name: 'absolute symlink written through',
      entries: [
        { name: 'esc', type: 'symlink', linkname: outside },
        { name: 'esc/through', type: 'file', data: 'x' },
      ],
      codes: [BREAKOUT],
    },
    {
      name: 'relative symlink out, written through',
      entries: [
        { name: 'up', type: 'symlink', linkname: up },
        { name: 'up/through', type: 'file', data: 'x' },
      ],
      codes: [BREAKOUT],
    },
    {
      name: 'directory made through a symlink',
      entries: [
        { name: 'e', type: 'symlink', linkname: outside },
        { name: 'e/newdir/', type: 'dir' },
      ],
      codes: [BREAKOUT],
    },
    { name: 'hard link to ../ outside', entries: [{ name: 'hl', type: 'link', linkname: `${up}/secret` }], codes: [BREAKOUT] },
    { name: 'hard link to an absolute path', entries: [{ name: 'hla', type: 'link', linkname: `${outside}/secret` }], codes: refused },
    {
      name: 'symlink replacing a directory mid-archive',
      entries: [
        { name: 'd/', type: 'dir' },
        { name: 'd/first', type: 'file', data: 'x' },
        { name: 'd', type: 'symlink', linkname: outside },
        { name: 'd/second', type: 'file', data: 'x' },
      ],
      codes: [BREAKOUT],
    },
    { name: 'whiteout of a path outside', entries: [{ name: `${up}/.wh.secret`, type: 'file' }], codes: [BREAKOUT] },
    { name: 'whiteout of ..', entries: [{ name: 'sub/', type: 'dir' }, { name: 'sub/.wh...', type: 'file' }], codes: [INVALID_ARCHIVE] },
    { name: 'truncated tar', raw: valid.subarray(0, 512 + 1000), codes: [INVALID_ARCHIVE] },
    { name: 'not a tar', raw: Buffer.concat([Buffer.from('this is not a tar archive\n'), randomBytes(2000)]), codes: [INVALID_ARCHIVE] },
    { name: 'absolute name', entries: [{ name: `${outside}/absname`, type: 'file', data: 'x' }], codes: refused, mayBeAccepted: true },
  ];
}

/** applyDiff of each malicious tar into its own child of a base layer. */
const maliciousTar: C = {
  name: 'MaliciousTar',
  async run({ driver, scratch }) {
    const outside = join(scratch, 'outside');
    await mkdir(outside);
    await writeFileMode(join(outside, 'secret'), 'secret', 0o600);
    const outsideBefore = await treeDigest(outside);

    await driver.create('base');
    await addFile(driver, 'base', 'base.txt', Buffer.from('base'));
    const baseBefore = await withLayer(driver, 'base', (r) => treeDigest(r, { mtime: true }));

    const made = ['base'];
    const problems: string[] = [];
    for (const [i, evil] of evilTars(outside).entries()) {
      const id = `evil-${i}`;
      await driver.create(id, 'base');
      made.push(id);
      const tar = evil.raw ?? buildTar(evil.entries ?? []);
      try {
        await driver.applyDiff(id, 'base', Readable.from([tar]));
        if (!evil.mayBeAccepted) problems.push(`${evil.name}: applyDiff accepted it`);
      } catch (err) {
        const code = (err as { code?: string }).code;
        const ok = evil.codes === 'typed' ? code?.startsWith('ERR_GRAPHDRIVER_') === true : code !== undefined && evil.codes.includes(code);
        if (!ok) {
          const expected = evil.codes === 'typed' ? 'a graphdriver error (ERR_GRAPHDRIVER_*)' : evil.codes.join(' or ');
          problems.push(`${evil.name}: refused with ${(err as Error).name} [${code ?? 'no code'}] (${(err as Error).message}), expected ${expected}`);
        }
      }
      try {
        assertSameTree(await treeDigest(outside), outsideBefore, `outside the store after "${evil.name}"`);
        assertSameTree(await withLayer(driver, 'base', (r) => treeDigest(r, { mtime: true })), baseBefore, `the parent layer after "${evil.name}"`);
        assert.equal((await stat(join(outside, 'secret'))).nlink, 1, `"${evil.name}" linked to a file outside`);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    assert.deepEqual(problems, [], `malicious tars:\n${problems.join('\n')}`);
    await removeLayers(driver, made);
  },
};

export function safetyCases(): C[] {
  return [invalidIdsCase, typedErrors, maliciousTar];
}

