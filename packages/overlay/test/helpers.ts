/**
 * What the overlay driver's own tests share: a scratch root under /tmp removed afterwards (with any
 * mount left in it taken down first, so a failing test leaves nothing mounted), a driver on it, the
 * error code of a promise, the mountinfo line of a path, and tar building and reading.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { errorCode, unmountRecursive } from '@graphdriver/core';
import { buildTar, listTar, type ListedEntry, type TarEntry } from '@graphdriver/graphtest';
import { init, type OverlayDriver } from '../src/index.js';

export async function withRoot<T>(fn: (root: string) => Promise<T>, parent = '/tmp'): Promise<T> {
  const root = await mkdtemp(join(parent, 'overlay-test-'));
  try {
    return await fn(root);
  } finally {
    await unmountRecursive(root, { lazyFallback: true, retries: 2, retryDelayMs: 10 }).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

export function start(root: string, options: string[] | Record<string, string> = []): Promise<OverlayDriver> {
  return init({ home: join(root, 'overlay'), root, options }) as Promise<OverlayDriver>;
}

/** The error code a promise rejects with, or undefined when it resolves. */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (err: unknown) => errorCode(err) ?? `not a coded error: ${String(err)}`,
  );
}

/** The error a promise rejects with (fails the test when it resolves). */
export async function errorOf(p: Promise<unknown>): Promise<Error & { code?: string }> {
  return p.then(
    () => {
      throw new Error('expected a rejection, but it resolved');
    },
    (err: unknown) => err as Error & { code?: string },
  );
}

export interface MountLine {
  fsType: string;
  source: string;
  options: string;
  superOptions: string;
}

/** The topmost mount at `path` as /proc/self/mountinfo shows it, or undefined. */
export function mountAt(path: string): MountLine | undefined {
  let canonical = path;
  try {
    canonical = realpathSync(path);
  } catch {
    // gone: compare as given
  }
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === canonical);
  const line = lines.at(-1);
  if (line === undefined) return undefined;
  const f = line.split(' ');
  const sep = f.indexOf('-');
  return { fsType: f[sep + 1]!, source: f[sep + 2]!, options: f[5]!, superOptions: f.slice(sep + 3).join(' ') };
}

export function mountsUnderCount(dir: string): number {
  const canonical = realpathSync(dir);
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => {
      const p = l.split(' ')[4];
      return p !== undefined && (p === canonical || p.startsWith(`${canonical}/`));
    }).length;
}

export function tarOf(entries: TarEntry[]): Readable {
  return Readable.from([buildTar(entries)]);
}

export async function readStream(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function tarNames(s: Readable): Promise<string[]> {
  return listTar(await readStream(s)).map((e: ListedEntry) => e.name);
}

export { buildTar, listTar, type TarEntry, type ListedEntry };
