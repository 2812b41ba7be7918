/**
 * The sparse files behind a loop-file pool (`<home>/devicemapper/data` and `metadata`), as moby's
 * ensureImage keeps them: made at the size asked for, grown when a later start asks for more, never
 * shrunk (a smaller size is logged and ignored). Also the size of a block device from sysfs, which
 * needs no ioctl.
 */
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { errorCode, OperationFailedError } from '@graphdriver/core';

const debug = debuglog('graphdriver:devmapper');

export interface EnsuredImage {
  path: string;
  /** The file did not exist before. */
  created: boolean;
  /** The file was grown to the size asked for. */
  grown: boolean;
}

/** `<dir>/<name>` as a sparse file of at least `size` bytes. */
export async function ensureImage(dir: string, name: string, size: number): Promise<EnsuredImage> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, name);
  let created = false;
  let fh;
  try {
    fh = await open(path, 'r+');
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw new OperationFailedError(`opening the loop file ${path}`, undefined, err);
    fh = await open(path, 'wx+', 0o600);
    created = true;
  }
  try {
    const { size: current } = await fh.stat();
    if (current < size) {
      debug('%s loop file %s: %d -> %d bytes', created ? 'creating' : 'growing', path, current, size);
      try {
        await fh.truncate(size);
      } catch (err) {
        throw new OperationFailedError(`growing the loop file ${path}`, undefined, err);
      }
      return { path, created, grown: !created };
    }
    if (current > size) debug("can't shrink loop file %s (%d bytes, %d asked for)", path, current, size);
    return { path, created, grown: false };
  } finally {
    await fh.close();
  }
}

/** Size in bytes of the block device major:minor (sysfs counts 512-byte sectors). */
export async function blockDeviceSize(major: number, minor: number): Promise<number> {
  const text = await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8');
  return Number(text.trim()) * 512;
}

/**
 * Waits (up to `ms`) until none of `loops` is bound to its file any more. An autoclear loop device
 * is cleared by a kernel worker after its last user (a pool, a mount) lets go, a moment later: a
 * cleanup() that returned before would leave the loop file busy for whoever removes it next.
 */
export async function waitLoopsReleased(loops: ReadonlyArray<{ device: string; file: string }>, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    let bound = 0;
    for (const { device, file } of loops) {
      const name = device.replace(/^\/dev\//, '');
      const backing = await readFile(`/sys/block/${name}/loop/backing_file`, 'utf8').catch(() => '');
      if (backing.trim() === file) bound++;
    }
    if (bound === 0) return true;
    if (Date.now() > until) {
      debug('%d loop devices still bound after %d ms', bound, ms);
      return false;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
