/**
 * Sparse image files: the backing store of loop devices (scratch filesystems, layer0 volumes,
 * the reflink device pool). Created with no data blocks; the filesystem allocates on write.
 */
import { open } from 'node:fs/promises';

export interface SparseFileOptions {
  /** Grow (never shrink) a file that exists instead of failing with EEXIST. */
  allowExisting?: boolean;
}

/** Create `path` as a sparse file of `bytes` bytes (EEXIST when it exists, unless allowExisting). */
export async function createSparseFile(path: string, bytes: number, opts: SparseFileOptions = {}): Promise<void> {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`createSparseFile: bad size ${bytes}`);
  const fh = await open(path, opts.allowExisting === true ? 'a' : 'wx', 0o600);
  try {
    const { size } = await fh.stat();
    if (size < bytes) await fh.truncate(bytes);
  } finally {
    await fh.close();
  }
}
