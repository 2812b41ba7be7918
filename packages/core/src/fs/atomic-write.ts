/**
 * Writing a small file (a driver's state, a layer's link and lower files, device metadata, image
 * records) so that a reader - or a power cut - sees the old content or the new one, never a part:
 * a temporary file beside the target, flushed, given its exact mode, renamed over the target, and
 * (unless asked not to) the directory flushed so that the rename itself lasts.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Temporary files start with this, so listings of ids or names can skip them. */
export const ATOMIC_TEMP_PREFIX = '.tmp-';

export interface AtomicWriteOptions {
  /** The file's mode, exactly (the umask does not apply). Default 0600. */
  mode?: number;
  /** fsync the directory after the rename. Default true; moby's atomic writer (overlay2's state files) does not. */
  syncDirectory?: boolean;
}

export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): Promise<void> {
  const mode = opts.mode ?? 0o600;
  const dir = dirname(path);
  const tmp = join(dir, `${ATOMIC_TEMP_PREFIX}${basename(path)}-${randomBytes(6).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  if (opts.syncDirectory !== false) {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }
}

/** Removes, among `names` of directory `dir`, the temporary files an interrupted writeFileAtomic left. */
export async function removeAtomicTemporaries(dir: string, names: readonly string[]): Promise<void> {
  await Promise.all(names.filter((n) => n.startsWith(ATOMIC_TEMP_PREFIX)).map((n) => rm(join(dir, n), { force: true })));
}
