/**
 * Sizes of a branch: `branchDiffSize`, the bytes its diff tar carries (what applying that tar
 * counts: regular files, each inode once, AUFS metadata at the top left out as the diff leaves it
 * out), and `diskUsage`, containers/storage's directory.Usage (every inode once, apparent size, and
 * the inode count) for readWriteDiskUsage.
 */
import { readdirSync } from 'node:fs';
import { AT, S, fstatatSync } from '@graphdriver/native';
import type { DiskUsage } from '@graphdriver/core';
import { META_PREFIX, OPAQUE_MARKER } from './branch.js';

interface Walked {
  size: number;
  inodes: number;
}

async function walk(dir: string, regularOnly: boolean, signal: AbortSignal | undefined): Promise<Walked> {
  const seen = new Set<string>();
  const out: Walked = { size: 0, inodes: 0 };
  const count = (path: string): number => {
    const st = fstatatSync(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
    const type = st.mode & S.IFMT;
    if (regularOnly && type !== S.IFREG) return type;
    const key = `${st.dev}:${st.ino}`;
    if (st.nlink > 1 || type === S.IFDIR) {
      if (seen.has(key)) return type;
      seen.add(key);
    }
    out.size += st.size;
    out.inodes++;
    return type;
  };
  if (!regularOnly) count(dir);
  const stack = [''];
  let sinceYield = 0;
  while (stack.length > 0) {
    signal?.throwIfAborted();
    const rel = stack.pop()!;
    for (const name of readdirSync(rel === '' ? dir : `${dir}${rel}`)) {
      if (rel === '' && name.startsWith(META_PREFIX) && name !== OPAQUE_MARKER && regularOnly) continue;
      const p = `${dir}${rel}/${name}`;
      if (count(p) === S.IFDIR) stack.push(`${rel}/${name}`);
      if (++sinceYield >= 4096) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
  }
  return out;
}

/** The bytes the branch's diff tar carries: regular files once per inode, AUFS metadata at the top left out. */
export async function branchDiffSize(branch: string, signal?: AbortSignal): Promise<number> {
  return (await walk(branch, true, signal)).size;
}

/** Apparent size and inode count of everything under `dir` (each inode once). */
export async function diskUsage(dir: string, signal?: AbortSignal): Promise<DiskUsage> {
  const w = await walk(dir, false, signal);
  return { size: w.size, inodeCount: w.inodes };
}
