/**
 * Writing layer0's small JSON files (the driver's state, the built-in volume drivers' records) so
 * that a reader or a power cut sees the old content or the new one, never a part: a temporary file
 * beside the target, flushed, renamed over it, and the directory flushed so the rename lasts.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  // a leading dot: never a valid volume or layer name, so no listing takes it for one
  const tmp = join(dir, `.tmp-${basename(path)}-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Removes the temporary files an interrupted writeFileAtomic left in `dir`. */
export async function removeStaleTemporaries(dir: string, names: readonly string[]): Promise<void> {
  await Promise.all(names.filter((n) => n.startsWith('.tmp-')).map((n) => rm(join(dir, n), { force: true })));
}
