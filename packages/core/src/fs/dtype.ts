/**
 * The d_type check (moby's fsutils.SupportsDType): overlay needs the filesystem to report each
 * directory entry's type in getdents, or whiteouts and opaque directories misbehave. xfs made with
 * `-n ftype=0` is the classic case of a filesystem that reports DT_UNKNOWN for every entry.
 */
import { constants } from 'node:fs';
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DT, getdents } from '@graphdriver/native';

/**
 * True when the filesystem holding directory `path` fills in d_type. Reads the directory's entries
 * with getdents64 as the kernel returns them; an empty directory gets a dummy file for the duration
 * of the check (so `path` must be writable then, as in moby).
 */
export async function supportsDType(path: string): Promise<boolean> {
  let entries = await readDirents(path);
  let dummy: string | undefined;
  try {
    if (entries.length === 0) {
      dummy = join(path, `.graphdriver-dtype-${process.pid}-${Date.now()}`);
      await writeFile(dummy, '', { flag: 'wx' });
      entries = await readDirents(path);
      if (entries.length === 0) throw new Error(`no directory entry seen in ${path} even after creating one`);
    }
    return entries.every(([, type]) => type !== DT.UNKNOWN);
  } finally {
    if (dummy !== undefined) await rm(dummy, { force: true });
  }
}

async function readDirents(path: string): Promise<Array<[string, number]>> {
  // libuv opens every fd with O_CLOEXEC already.
  const dir = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    return await getdents(dir.fd);
  } finally {
    await dir.close();
  }
}
