/**
 * Is a layer mounted at its mount point? Asked on every get and put (core's RefMounts checks for
 * mounts that vanished behind its back), so it must be cheap: three stats, no exceptions, no read of
 * /proc/self/mountinfo. An overlay or FUSE mount has a device number of its own; a bind mount of
 * the layer's diff (how read-only layers without lowers are served) shows the diff's inode where
 * the empty mount point directory was.
 */
import { statSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';

function stat(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

export function isLayerMounted(mountPoint: string, diff: string): boolean {
  const m = stat(mountPoint);
  if (m === undefined) return false;
  const parent = stat(dirname(mountPoint));
  if (parent !== undefined && parent.dev !== m.dev) return true;
  const d = stat(diff);
  return d !== undefined && d.dev === m.dev && d.ino === m.ino;
}
