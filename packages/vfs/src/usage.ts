/**
 * Disk usage of a layer directory as containers/storage's directory.Usage counts it: the apparent
 * size of every inode once (hard links are not counted twice) and the number of inodes.
 */
import { readdir } from 'node:fs/promises';
import { AT, S, fstatatSync } from '@graphdriver/native';
import type { DiskUsage } from '@graphdriver/core';

export async function diskUsage(dir: string, signal?: AbortSignal): Promise<DiskUsage> {
  const seen = new Set<string>();
  let size = 0;
  let inodeCount = 0;
  const stack = [dir];
  while (stack.length > 0) {
    signal?.throwIfAborted();
    const d = stack.pop()!;
    const count = (path: string): number => {
      const st = fstatatSync(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
      const key = `${st.dev}:${st.ino}`;
      if (!seen.has(key)) {
        seen.add(key);
        size += st.size;
        inodeCount++;
      }
      return st.mode & S.IFMT;
    };
    if (d === dir) count(d);
    for (const name of await readdir(d)) {
      const p = `${d}/${name}`;
      if (count(p) === S.IFDIR) stack.push(p);
    }
  }
  return { size, inodeCount };
}
