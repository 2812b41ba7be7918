/**
 * Unmounting as drivers need it: `unmount` retries while the kernel says EBUSY (a process that
 * just closed its last file in the mount, a `cd` out of it, udev probing a loop device...) as
 * containers/storage's mount.Unmount does (50 tries, 50 ms apart), optionally ending with a lazy
 * detach; "not mounted" (EINVAL, ENOENT) is not an error. `unmountRecursive` takes down every
 * mount at or under a path, children before parents, as read from mountinfo.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import { MNT, umount2 } from '@graphdriver/native';
import { errorCode, OperationFailedError } from '../errors.js';
import { canonicalMountPath, isAtOrUnder, mounts, mountTreeDepths } from './mountinfo.js';

const debug = debuglog('graphdriver:core');

export interface UnmountOptions {
  /** How many more times to try after an EBUSY. Default 50. */
  retries?: number;
  /** Milliseconds between tries. Default 50. */
  retryDelayMs?: number;
  /** When still busy after the retries, detach lazily (MNT_DETACH) instead of failing. Default false. */
  lazyFallback?: boolean;
  /** umount2 flags for every try (MNT.*). Default 0. */
  flags?: number;
  /** Stops the retrying; rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Waits `ms`; an abort rejects with the signal's reason (timers/promises would give a generic AbortError). */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return sleep(ms);
  try {
    await sleep(ms, undefined, { signal });
  } catch (err) {
    throw signal.aborted ? signal.reason : err;
  }
}

/** "Nothing mounted there": EINVAL (not a mount point; our flags are valid) or ENOENT (the path is gone). */
function isNotMounted(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'EINVAL' || code === 'ENOENT';
}

/**
 * Unmounts the topmost mount at `target`. Resolves true when something was unmounted, false when
 * nothing was mounted there. Rejects with the native error (code EBUSY after the retries, EPERM...).
 */
export async function unmount(target: string, opts: UnmountOptions = {}): Promise<boolean> {
  const retries = opts.retries ?? 50;
  const delay = opts.retryDelayMs ?? 50;
  const flags = opts.flags ?? 0;
  for (let attempt = 0; ; attempt++) {
    opts.signal?.throwIfAborted();
    try {
      await umount2(target, flags);
      return true;
    } catch (err) {
      if (isNotMounted(err)) return false;
      if (errorCode(err) !== 'EBUSY') throw err;
      if (attempt < retries) {
        debug('unmount %s: busy, try %d of %d', target, attempt + 1, retries);
        await pause(delay, opts.signal);
        continue;
      }
      if (!opts.lazyFallback) throw err;
    }
    debug('unmount %s: still busy after %d retries, detaching lazily', target, retries);
    try {
      await umount2(target, flags | MNT.DETACH);
      return true;
    } catch (err) {
      if (isNotMounted(err)) return false;
      throw err;
    }
  }
}

/**
 * Unmounts every mount at or under `path`, deepest in the mount tree first (so stacked mounts go
 * top to bottom and a mount goes before the one it sits on). A mount whose children are still
 * there waits for the next pass instead of being tried (it would only be EBUSY for the whole retry
 * time); mounts hidden under a later mount of a parent become reachable once that one is gone. So
 * the table is read again after each pass, until nothing is left under `path` or a pass makes no
 * progress; then what is left is an error. Returns how many mounts were taken down.
 */
export async function unmountRecursive(path: string, opts: UnmountOptions = {}): Promise<number> {
  const dir = await canonicalMountPath(path);
  let unmounted = 0;
  for (;;) {
    const all = await mounts();
    const under = all.filter((m) => isAtOrUnder(m.mountPoint, dir));
    if (under.length === 0) return unmounted;
    const depth = mountTreeDepths(all);
    under.sort((a, b) => depth.get(b.id)! - depth.get(a.id)! || b.mountPoint.length - a.mountPoint.length);
    const live = new Set(under.map((m) => m.id));
    const hasLiveChild = (id: number): boolean => under.some((c) => c.parent === id && c.id !== id && live.has(c.id));
    let progress = 0;
    let lastError: unknown;
    for (const m of under) {
      opts.signal?.throwIfAborted();
      if (hasLiveChild(m.id)) continue;
      try {
        // Nothing sits on m and nothing is mounted inside it: if its path reaches a mount, it is m.
        if (await unmount(m.mountPoint, opts)) {
          live.delete(m.id);
          progress++;
        }
      } catch (err) {
        // Keep going: a mount that will not go can leave its siblings free to go.
        lastError = err;
        debug('unmountRecursive %s: %s: %s', dir, m.mountPoint, err instanceof Error ? err.message : String(err));
      }
    }
    unmounted += progress;
    if (progress > 0) continue;
    const left = (await mounts()).filter((m) => isAtOrUnder(m.mountPoint, dir));
    if (left.length === 0) return unmounted;
    if (lastError !== undefined) throw lastError;
    const names = left.map((m) => m.mountPoint).join(', ');
    throw new OperationFailedError(`unmounting everything under ${dir}`, undefined, new Error(`${left.length} mounts cannot be reached: ${names}`));
  }
}
