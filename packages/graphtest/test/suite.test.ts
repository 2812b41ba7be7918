/**
 * The suite itself can pass and can fail. A small real driver written here (layers are directories,
 * a child is `cp -a` of its parent, diffs through core's NaiveDiffDriver) passes the cases; the same
 * driver with a lossy copy (`cp -r`: owners, xattrs, links and times lost) fails exactly the cases
 * that look at those; a driver whose factory says "not supported" gets every case skipped with that
 * reason and no pass. graphtest imports no driver, so this one lives in the test.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  attachLoop,
  LayerExistsError,
  LayerUnknownError,
  NaiveDiffDriver,
  NotSupportedError,
  normalizeParent,
  validateLayerId,
  type LoopDevice,
  type Driver,
  type ProtoDriver,
} from '@graphdriver/core';
import { conformance } from '../src/conformance.js';

const run = promisify(execFile);

class DirDriver implements ProtoDriver {
  readonly name = 'dirtest';
  readonly home: string;
  constructor(
    root: string,
    private readonly copyArgs: string[],
  ) {
    this.home = join(root, 'dirtest');
  }
  private dir(id: string): string {
    validateLayerId(id);
    return join(this.home, 'dir', id);
  }
  private async has(id: string): Promise<boolean> {
    return stat(this.dir(id)).then(
      (s) => s.isDirectory(),
      () => false,
    );
  }
  async create(id: string, parent?: string): Promise<void> {
    const target = this.dir(id);
    const p = normalizeParent(parent);
    if (await this.has(id)) throw new LayerExistsError(id);
    if (p !== undefined && !(await this.has(p))) throw new LayerUnknownError(p, 'parent layer');
    const staging = await mkdtemp(join(this.home, 'staging-'));
    if (p === undefined) await chmod(staging, 0o555);
    else await run('cp', [...this.copyArgs, `${this.dir(p)}/.`, staging]);
    await rename(staging, target);
  }
  createReadWrite(id: string, parent?: string): Promise<void> {
    return this.create(id, parent);
  }
  async remove(id: string): Promise<void> {
    await rm(this.dir(id), { recursive: true, force: true });
  }
  async get(id: string): Promise<string> {
    if (!(await this.has(id))) throw new LayerUnknownError(id);
    return this.dir(id);
  }
  async put(id: string): Promise<void> {
    validateLayerId(id);
  }
  exists(id: string): Promise<boolean> {
    return this.has(id);
  }
  async status(): Promise<Array<[string, string]>> {
    return [['Layers', String((await readdir(join(this.home, 'dir'))).length)]];
  }
  async metadata(id: string): Promise<Record<string, string>> {
    return { Dir: await this.get(id) };
  }
  async cleanup(): Promise<void> {}
}

function factory(copyArgs: string[]) {
  return async (root: string): Promise<Driver> => {
    const proto = new DirDriver(root, copyArgs);
    await mkdir(join(proto.home, 'dir'), { recursive: true });
    return new NaiveDiffDriver(proto);
  };
}

const quick = { deepLayerRead: [3], diffApply: [10], output: null } as const;
const contentCases = ['CreateEmpty', 'CreateBase', 'CreateSnap', 'RootModeInheritance', 'DeepLayerRead', 'DiffApply', 'Changes', 'Xattrs', 'HardLinks', 'Symlinks', 'DevicesAndFifos', 'Restart'];

test('a faithful driver passes; optional methods it lacks are skips that say so', async () => {
  const report = await conformance(factory(['-a']), { ...quick, only: [...contentCases, 'CreateFromTemplate', 'ListLayers', 'InvalidIds', 'TypedErrors'] });
  const failed = report.cases.filter((c) => c.status === 'fail');
  assert.equal(failed.map((c) => `${c.name}: ${c.error}`), []);
  const skipped = Object.fromEntries(report.cases.filter((c) => c.status === 'skip').map((c) => [c.name, c.reason]));
  assert.equal(skipped, {
    CreateFromTemplate: 'the driver does not implement createFromTemplate()',
    ListLayers: 'the driver does not implement listLayers()',
  });
  assert.is(report.driver, 'dirtest');
});

test('a declared capability that is missing fails instead of skipping', async () => {
  const report = await conformance(factory(['-a']), { ...quick, only: ['ListLayers'], capabilities: { listLayers: true } });
  assert.is(report.cases[0]!.status, 'fail');
  assert.match(report.cases[0]!.error!, /declares listLayers\(\) but does not implement it/);
});

test('a lossy copy fails the cases that look at what it loses', async () => {
  const report = await conformance(factory(['-r']), { ...quick, only: contentCases });
  const status = Object.fromEntries(report.cases.map((c) => [c.name, c.status]));
  // cp -r keeps contents but not owners (a subdir is 1:2), xattrs, hard links or mtimes.
  for (const name of ['CreateSnap', 'RootModeInheritance', 'Xattrs', 'HardLinks', 'Symlinks', 'DevicesAndFifos']) {
    assert.is(status[name], 'fail', `${name} must fail on a lossy copy`);
  }
  for (const name of ['CreateEmpty', 'CreateBase', 'DeepLayerRead(3)', 'Restart']) assert.is(status[name], 'pass', name);
});

test('a driver whose cleanup leaves a loop device attached to a file under the root fails CleanupLeavesNoMount', async () => {
  const leaked: LoopDevice[] = [];
  try {
    const report = await conformance(
      async (root) => {
        const driver = await factory(['-a'])(root);
        // a "pool" image under the root whose loop device cleanup() forgets
        const image = join(root, 'pool.img');
        await writeFile(image, '');
        await truncate(image, 1 << 20);
        leaked.push(await attachLoop(image));
        return driver;
      },
      { ...quick, only: ['CleanupLeavesNoMount'] },
    );
    assert.is(report.cases[0]!.status, 'fail');
    assert.match(report.cases[0]!.error!, /no loop device backed by a file under the root/);
  } finally {
    for (const loop of leaked) await loop.detach();
  }
});

test('a driver that is not supported here: every case is a skip with its reason, none passes', async () => {
  const report = await conformance(
    async () => {
      throw new NotSupportedError('dirtest needs a filesystem this host does not have');
    },
    { ...quick, label: 'nope' },
  );
  assert.is(report.passed, 0);
  assert.is(report.failed, 0);
  assert.is(report.skipped, report.cases.length);
  assert.ok(report.cases.every((c) => c.reason === 'dirtest needs a filesystem this host does not have'));
});

test.run();
