/**
 * What the aufs driver's own tests share: a scratch root under /tmp removed afterwards (with any
 * mount left under it taken down first, so a failing test leaves the machine clean), the driver
 * made on it, error codes of promises, and readers of a branch on disk (entries with their type,
 * device numbers and xattrs) and of a tar's entry names.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { errorCode, listTar, mountsUnder, unmountRecursive, type DriverOptionsInput, type TarEntry } from '@graphdriver/core';
import { AT, S, fstatatSync, llistxattrSync } from '@graphdriver/native';
import { init, type AufsDriver } from '../src/index.js';

export async function withRoot<T>(fn: (root: string) => Promise<T>, parent = tmpdir()): Promise<T> {
  const root = await mkdtemp(join(parent, 'aufs-test-'));
  try {
    return await fn(root);
  } finally {
    if ((await mountsUnder(root)).length > 0) await unmountRecursive(root, { lazyFallback: true }).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
}

export const start = (root: string, options: DriverOptionsInput = []): Promise<AufsDriver> =>
  init({ home: join(root, 'aufs'), root, options }) as Promise<AufsDriver>;

export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (err: unknown) => errorCode(err) ?? String(err),
  );
}

export interface BranchEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';
  rdev?: string;
  size: number;
  xattrs: string[];
}

const TYPES: Record<number, BranchEntry['type']> = {
  [S.IFREG]: 'file',
  [S.IFDIR]: 'dir',
  [S.IFLNK]: 'symlink',
  [S.IFCHR]: 'char',
  [S.IFBLK]: 'block',
  [S.IFIFO]: 'fifo',
  [S.IFSOCK]: 'socket',
};

/** Every entry under `dir` (not `dir` itself), sorted by path, as it is on disk. */
export async function readBranch(dir: string): Promise<BranchEntry[]> {
  const out: BranchEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = fstatatSync(AT.FDCWD, join(dir, path), AT.SYMLINK_NOFOLLOW);
      const type = TYPES[st.mode & S.IFMT]!;
      let xattrs: string[] = [];
      try {
        xattrs = llistxattrSync(join(dir, path)).sort();
      } catch {
        // none
      }
      out.push({ path, type, size: type === 'file' ? st.size : 0, xattrs, ...(type === 'char' || type === 'block' ? { rdev: `${st.rdevMajor}:${st.rdevMinor}` } : {}) });
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The xattr names of `dir` itself. */
export function xattrsOf(path: string): string[] {
  try {
    return llistxattrSync(path).sort();
  } catch {
    return [];
  }
}

export async function readStream(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

/** The entries of a tar, as core's lister reads them. */
export function tarEntries(s: Readable): Promise<TarEntry[]> {
  return listTar(s);
}
