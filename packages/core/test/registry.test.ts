/**
 * The registry: lazy import of driver packages (tiny driver packages written into a temp
 * node_modules as fixtures; the real built-in packages, none of which is installed here, for the
 * "not installed" path), and moby's selection rules in newDriver.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Driver, DriverInitContext } from '../src/driver.js';
import {
  DriverConflictError,
  GraphDriverError,
  InvalidOptionError,
  isNotSupported,
  NotSupportedError,
  OperationFailedError,
} from '../src/errors.js';
import {
  BUILTIN_DRIVER_PACKAGES,
  driverPriority,
  getDriver,
  knownDrivers,
  newDriver,
  register,
  registerPackage,
  scanPriorDrivers,
  unregister,
} from '../src/registry.js';

const errorsUrl = pathToFileURL(new URL('../src/errors.ts', import.meta.url).pathname).href;

type Behaviour = 'works' | 'unsupported' | 'fails' | 'no-init';

/** The index.js of a fixture driver package: a driver on plain directories, or one that misbehaves as told. */
function driverSource(name: string, behaviour: Behaviour): string {
  if (behaviour === 'no-init') return 'export const notInit = 1;\n';
  return `
import { access, cp, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NotSupportedError } from ${JSON.stringify(errorsUrl)};
export const init = async (ctx) => {
  ${behaviour === 'unsupported' ? `throw new NotSupportedError('${name}: not on this host (fixture)');` : ''}
  ${behaviour === 'fails' ? `throw new Error('${name}: broken configuration (fixture)');` : ''}
  await mkdir(join(ctx.home, 'dir'), { recursive: true });
  const dir = (id) => join(ctx.home, 'dir', id);
  const noDiff = async () => { throw new Error('the fixture driver has no diff'); };
  return {
    name: ${JSON.stringify(name)}, home: ctx.home, initContext: ctx,
    async create(id, parent) { if (parent) await cp(dir(parent), dir(id), { recursive: true }); else await mkdir(dir(id)); },
    async createReadWrite(id, parent) { return this.create(id, parent); },
    async remove(id) { await rm(dir(id), { recursive: true, force: true }); },
    async get(id) { await access(dir(id)); return dir(id); },
    async put() {},
    async exists(id) { return access(dir(id)).then(() => true, () => false); },
    async status() { return [['Driver', ${JSON.stringify(name)}]]; },
    async metadata(id) { return { dir: dir(id) }; },
    async cleanup() {},
    diff: noDiff, changes: noDiff, applyDiff: noDiff, diffSize: noDiff,
  };
};
`;
}

/** A temp dir with node_modules/<pkg> fixtures and a store root beside them; removed afterwards. */
async function withFixtures(
  packages: Record<string, { name: string; behaviour: Behaviour; exportsField?: unknown }>,
  fn: (dirs: { base: string; root: string }) => Promise<void>,
): Promise<void> {
  const base = await mkdtemp('/tmp/fs-registry-');
  try {
    for (const [pkg, { name, behaviour, exportsField }] of Object.entries(packages)) {
      const dir = join(base, 'node_modules', pkg);
      await mkdir(join(dir, 'lib'), { recursive: true });
      const manifest = { name: pkg, version: '0.0.0', type: 'module', exports: exportsField ?? { '.': { import: './lib/index.js' } } };
      await writeFile(join(dir, 'package.json'), JSON.stringify(manifest));
      await writeFile(join(dir, 'lib', 'index.js'), driverSource(name, behaviour));
    }
    const root = join(base, 'store');
    await mkdir(root);
    await fn({ base, root });
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.unreachable('expected a rejection');
  return undefined;
}

test('built-in drivers that are not installed are "not supported", with the install command', async () => {
  for (const [name, pkg] of Object.entries(BUILTIN_DRIVER_PACKAGES)) {
    const err = await rejection(getDriver(name, { root: '/tmp/fs-registry-none' }));
    assert.instance(err, NotSupportedError, name);
    assert.ok(isNotSupported(err));
    assert.match((err as Error).message, `not installed: pnpm add ${pkg}`);
  }
  assert.equal(driverPriority(), ['overlay', 'aufs', 'devmapper', 'vfs']);
  assert.equal(knownDrivers().sort(), ['aufs', 'devmapper', 'layer0', 'overlay', 'vfs']);
});

test('with nothing installed, newDriver says so for each driver it tried', async () => {
  const err = await rejection(newDriver({ root: '/tmp/fs-registry-none' }));
  assert.instance(err, NotSupportedError);
  const msg = (err as Error).message;
  for (const name of ['overlay', 'aufs', 'devmapper', 'vfs']) assert.match(msg, `${name}: storage driver "${name}" is not installed`);
  assert.not.match(msg, 'layer0', 'layer0 is only ever chosen explicitly');
});

test('a driver package is imported lazily and gets its home, root and raw options', async () => {
  await withFixtures({ '@graphdriver/fake': { name: 'fake', behaviour: 'works' } }, async ({ base, root }) => {
    registerPackage('fake', '@graphdriver/fake');
    try {
      const options = ['fake.x=1'];
      const d = (await getDriver('fake', { root, options, resolveFrom: base })) as Driver & { initContext: DriverInitContext };
      assert.is(d.name, 'fake');
      assert.is(d.home, join(root, 'fake'));
      assert.equal(d.initContext.options, options);
      assert.is(d.initContext.root, root);
      // The driver works on real directories.
      await d.create('base');
      await writeFile(join(await d.get('base'), 'hello'), 'world');
      await d.create('child', 'base');
      assert.equal(await readdir(await d.get('child')), ['hello']);
      assert.ok(await d.exists('child'));
      // Its home now holds state: a later run without a name would pick it.
      assert.equal(await scanPriorDrivers(root), ['fake']);
    } finally {
      unregister('fake');
    }
  });
});

test('built-in names are found where they are installed; unsupported ones are skipped by priority', async () => {
  await withFixtures(
    {
      '@graphdriver/overlay': { name: 'overlay', behaviour: 'unsupported' },
      // `exports` as a plain string, to cover that form too
      '@graphdriver/vfs': { name: 'vfs', behaviour: 'works', exportsField: './lib/index.js' },
    },
    async ({ base, root }) => {
      const d = await newDriver({ root, resolveFrom: base });
      assert.is(d.name, 'vfs', 'overlay said "not supported", aufs and devmapper are not installed');
      assert.is(d.home, join(root, 'vfs'));
      const err = await rejection(getDriver('overlay', { root, resolveFrom: base }));
      assert.ok(isNotSupported(err));
      assert.match((err as Error).message, 'not on this host (fixture)');
    },
  );
});

test('an init failure that is not "not supported" stops selection', async () => {
  await withFixtures(
    {
      '@graphdriver/overlay': { name: 'overlay', behaviour: 'fails' },
      '@graphdriver/vfs': { name: 'vfs', behaviour: 'works' },
    },
    async ({ base, root }) => {
      const err = await rejection(newDriver({ root, resolveFrom: base }));
      assert.match((err as Error).message, 'broken configuration (fixture)');
      assert.not.ok(isNotSupported(err));
    },
  );
});

test('prior state selects its driver over the priority list; empty homes do not count', async () => {
  await withFixtures(
    {
      '@graphdriver/overlay': { name: 'overlay', behaviour: 'works' },
      '@graphdriver/vfs': { name: 'vfs', behaviour: 'works' },
    },
    async ({ base, root }) => {
      await mkdir(join(root, 'aufs')); // empty: no state
      await mkdir(join(root, 'vfs', 'dir', 'layer1'), { recursive: true });
      assert.equal(await scanPriorDrivers(root), ['vfs']);
      const d = await newDriver({ root, resolveFrom: base });
      assert.is(d.name, 'vfs');
      // An explicit name wins over prior state.
      assert.is((await newDriver({ root, name: 'overlay', resolveFrom: base })).name, 'overlay');
    },
  );
});

test('state of two drivers is a DriverConflictError naming both', async () => {
  await withFixtures({ '@graphdriver/overlay': { name: 'overlay', behaviour: 'works' } }, async ({ base, root }) => {
    await mkdir(join(root, 'overlay', 'l'), { recursive: true });
    await writeFile(join(root, 'devmapper'), 'not even a directory'); // something there counts as state
    const err = await rejection(newDriver({ root, resolveFrom: base }));
    assert.instance(err, DriverConflictError);
    assert.equal((err as DriverConflictError).drivers, ['overlay', 'devmapper']);
    assert.match((err as Error).message, /overlay, devmapper/);
  });
});

test('a prior driver that cannot start is an error, never a silent switch', async () => {
  await withFixtures({ '@graphdriver/vfs': { name: 'vfs', behaviour: 'works' } }, async ({ base, root }) => {
    await mkdir(join(root, 'overlay', 'abc', 'diff'), { recursive: true });
    const err = await rejection(newDriver({ root, resolveFrom: base }));
    assert.instance(err, OperationFailedError);
    assert.not.ok(isNotSupported(err), 'selection callers must not treat it as "try the next one"');
    assert.match((err as Error).message, join(root, 'overlay'));
    assert.ok(isNotSupported((err as Error).cause), 'the cause says why: overlay is not installed');
  });
});

test('in-process registration: priority, duplicates, unregister', async () => {
  const root = await mkdtemp('/tmp/fs-registry-');
  try {
    const made: string[] = [];
    const init = (name: string) => async (ctx: DriverInitContext): Promise<Driver> => {
      made.push(name);
      await mkdir(ctx.home, { recursive: true });
      return { name, home: ctx.home } as unknown as Driver;
    };
    register('memfs', init('memfs'), { priority: 50 });
    register('late', init('late'));
    try {
      assert.equal(driverPriority(), ['memfs', 'overlay', 'aufs', 'devmapper', 'vfs', 'late']);
      assert.is((await newDriver({ root })).name, 'memfs');
      const err = await rejection(Promise.resolve().then(() => register('memfs', init('again'))));
      assert.instance(err, InvalidOptionError);
      assert.match((err as Error).message, 'already registered');
      unregister('memfs');
      // memfs left state in its home, so it would be the prior driver; move it away first.
      await rm(join(root, 'memfs'), { recursive: true });
      // overlay..vfs are not installed here, so the driver without a priority is tried last and wins.
      assert.is((await newDriver({ root })).name, 'late');
      assert.equal(made, ['memfs', 'late']);
    } finally {
      unregister('memfs');
      unregister('late');
    }
    // A built-in name registered in-process replaces the package import and keeps its priority.
    register('vfs', init('vfs'));
    try {
      assert.equal(driverPriority(), ['overlay', 'aufs', 'devmapper', 'vfs']);
      assert.is((await getDriver('vfs', { root })).name, 'vfs');
    } finally {
      unregister('vfs');
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a package that does not export init is a clear error', async () => {
  await withFixtures({ '@graphdriver/vfs': { name: 'vfs', behaviour: 'no-init' } }, async ({ base, root }) => {
    const err = await rejection(getDriver('vfs', { root, resolveFrom: base }));
    assert.instance(err, GraphDriverError);
    assert.is((err as GraphDriverError).code, 'ERR_GRAPHDRIVER_INVALID_DRIVER_PACKAGE');
    assert.match((err as Error).message, 'does not export "init"');
  });
});

test('names and roots that could leave the store are refused', async () => {
  for (const name of ['../etc', 'a/b', '', 'Overlay', '.hidden']) {
    const err = await rejection(getDriver(name, { root: '/tmp/x' }));
    assert.instance(err, InvalidOptionError, name);
    assert.is((err as InvalidOptionError).key, 'driver');
  }
  const err = await rejection(getDriver('vfs', { root: 'relative/root' }));
  assert.instance(err, InvalidOptionError);
  assert.is((err as InvalidOptionError).key, 'root');
  const unknown = await rejection(getDriver('zfs', { root: '/tmp/x' }));
  assert.ok(isNotSupported(unknown));
  assert.match((unknown as Error).message, 'unknown storage driver "zfs"');
});

test.run();
