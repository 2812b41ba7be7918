/**
 * Disk usage of a layer's diff directory as containers/storage's directory.Usage counts it (its
 * readWriteDiskUsage): the apparent size of every inode once (hard links are not counted twice)
 * and the number of inodes, the directory itself included. Also the byte count of a native
 * diffSize: what the tar of the directory carries.
 */
import { readdir } from 'node:fs/promises';
import { AT, S, fstatatSync } from '@graphdriver/native';
import type { DiskUsage } from '@graphdriver/core';

interface Walked {
  size: number;
  inodeCount: number;
  /** Bytes of regular files, each inode once: the data a tar of the tree carries. */
  fileBytes: number;
}

async function walk(dir: string, signal?: AbortSignal): Promise<Walked> {
  const seen = new Set<string>();
  const out: Walked = { size: 0, inodeCount: 0, fileBytes: 0 };
  const count = (path: string): number => {
    const st = fstatatSync(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
    const type = st.mode & S.IFMT;
    if (st.nlink > 1 && type !== S.IFDIR) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return type;
      seen.add(key);
    }
    out.size += st.size;
    out.inodeCount++;
    if (type === S.IFREG) out.fileBytes += st.size;
    return type;
  };
  count(dir);
  const stack = [dir];
  while (stack.length > 0) {
    signal?.throwIfAborted();
    const d = stack.pop()!;
    for (const name of await readdir(d)) {
      const p = `${d}/${name}`;
      if (count(p) === S.IFDIR) stack.push(p);
    }
  }
  return out;
}

export async function diskUsage(dir: string, signal?: AbortSignal): Promise<DiskUsage> {
  const w = await walk(dir, signal);
  return { size: w.size, inodeCount: w.inodeCount };
}

/** The bytes of regular files under `dir`, each inode once (a native diffSize). */
export async function regularFileBytes(dir: string, signal?: AbortSignal): Promise<number> {
  return (await walk(dir, signal)).fileBytes;
}
