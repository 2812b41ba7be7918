/**
 * Writing the small state files of a layer (`link`, `lower`, `committed`) the way moby's
 * atomicwriter does: into a temporary file beside the target, flushed to disk, given its mode,
 * then renamed over the target, so that a reader (or a power cut) sees the old file or the new one,
 * never a part of it.
 */
import { randomBytes } from 'node:crypto';
import { chmod, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.tmp-${basename(path)}${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    // open() applied the umask; the file's mode is part of the format
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}
