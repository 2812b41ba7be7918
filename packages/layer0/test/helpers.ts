/**
 * Helpers of layer0's own tests: a scratch root under /tmp that is always taken down (mounts, loop
 * devices, files) however the test ends, a driver started on it, the engine's container pattern
 * (`<X>-init`, then `<X>`), and reading and writing files through get()/put().
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { detachLoop, errorCode, listLoops, mountsUnder, unmountRecursive, type LoopInfo, type MountInfo } from '@graphdriver/core';
import { init, type Layer0Driver } from '../src/index.js';

export async function withRoot<T>(fn: (root: string) => Promise<T>): Promise<T> {
  const root = await mkdtemp('/tmp/layer0-test-');
  try {
    return await fn(root);
  } finally {
    // whatever the test left: mounts first (they hold loop devices), then devices, then files
    await unmountRecursive(root, { lazyFallback: true, retries: 10, retryDelayMs: 20 }).catch(() => undefined);
    for (const l of await loopsUnder(root)) await detachLoop(l.path).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

export const start = async (root: string, options: string[] | Record<string, string> = []): Promise<Layer0Driver> =>
  (await init({ home: join(root, 'layer0'), root, options })) as Layer0Driver;

/** A driver started on a fresh root for one test, and its cleanup() run however the test ends. */
export async function withDriver(options: string[], fn: (d: Layer0Driver, root: string) => Promise<void>): Promise<void> {
  await withRoot(async (root) => {
    const d = await start(root, options);
    try {
      await fn(d, root);
    } finally {
      await d.cleanup();
    }
  });
}

export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (err: unknown) => errorCode(err),
  );
}

export async function errorOf(p: Promise<unknown>): Promise<Error & { code?: string; key?: string }> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err as Error & { code?: string; key?: string },
  );
}

export const mountsUnderRoot = (root: string): Promise<MountInfo[]> => mountsUnder(root);

/** Loop devices whose backing file is under `root`. */
export async function loopsUnder(root: string): Promise<LoopInfo[]> {
  return (await listLoops()).filter((l) => l.backingFile.startsWith(`${root}/`));
}

/** An image layer `id` holding `base.txt` ("base") and `gone.txt` (for deleting in containers). */
export async function makeImage(d: Layer0Driver, id = 'img'): Promise<void> {
  await d.create(id);
  const p = await d.get(id);
  try {
    await writeFile(join(p, 'base.txt'), 'base');
    await writeFile(join(p, 'gone.txt'), 'to be deleted');
  } finally {
    await d.put(id);
  }
}

/** What the engine does for a container: `<id>-init` on the image, then `<id>` on it. */
export async function makeContainer(d: Layer0Driver, id: string, image = 'img'): Promise<void> {
  await d.createReadWrite(`${id}-init`, image);
  await d.createReadWrite(id, `${id}-init`);
}

/** And what it does to remove one. */
export async function removeContainer(d: Layer0Driver, id: string): Promise<void> {
  await d.remove(id);
  await d.remove(`${id}-init`);
}

export async function writeIn(d: Layer0Driver, id: string, name: string, data: string | Uint8Array): Promise<void> {
  const p = await d.get(id);
  try {
    await writeFile(join(p, name), data);
  } finally {
    await d.put(id);
  }
}

/** The content of `name` in layer `id`, or undefined when it does not exist. */
export async function readIn(d: Layer0Driver, id: string, name: string): Promise<string | undefined> {
  const p = await d.get(id);
  try {
    return await readFile(join(p, name), 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw err;
  } finally {
    await d.put(id);
  }
}

export async function removeIn(d: Layer0Driver, id: string, name: string): Promise<void> {
  const p = await d.get(id);
  try {
    await rm(join(p, name));
  } finally {
    await d.put(id);
  }
}
