/**
 * Loop devices: attaching an image file (LOOP_CTL_GET_FREE, open, LOOP_CONFIGURE, retried when
 * another process takes the free device first), detaching, finding the devices of a file (sysfs),
 * and re-reading capacity after the file grew. The ioctls come from the native addon; the policy
 * (retries, which fds stay open, autoclear lifetime) is here. Node's fs opens with O_CLOEXEC itself.
 */
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { open, readdir, readFile, realpath } from 'node:fs/promises';
import { debuglog } from 'node:util';
import { LO_FLAGS, loopClear, loopConfigure, loopGetFree, loopSetCapacity } from '@graphdriver/native';
import { OperationFailedError, errorCode } from '../errors.js';

const debug = debuglog('graphdriver:core');

/** How often a device taken by someone else between GET_FREE and CONFIGURE is tolerated. */
const MAX_ATTEMPTS = 64;

export interface AttachLoopOptions {
  /** Read-only device (and the backing file opened read-only). */
  readOnly?: boolean;
  /**
   * Clear the device when its last user closes it (LO_FLAGS_AUTOCLEAR). The handle keeps the
   * device open until detach() or close(), so mount it (which holds it) before closing the handle.
   */
  autoclear?: boolean;
  /** Bypass the page cache of the backing file (LO_FLAGS_DIRECT_IO). */
  directIo?: boolean;
  signal?: AbortSignal;
}

export interface LoopDevice {
  /** `/dev/loopN`. */
  readonly path: string;
  readonly number: number;
  /** Our open fd of the device (kept so that an autoclear device lives until we let go). */
  readonly fd: number;
  /** Detach the device now (or, if something still holds it, as soon as it is released) and close our fd. */
  detach(): Promise<void>;
  /** Close our fd without detaching: a non-autoclear device stays; an autoclear one goes with its last user. */
  close(): void;
}

export const isLoopDevicePath = (path: string): boolean => /^\/dev\/loop\d+$/.test(path);

class LoopHandle implements LoopDevice {
  private isOpen = true;
  constructor(
    readonly path: string,
    readonly number: number,
    readonly fd: number,
  ) {}

  async detach(): Promise<void> {
    if (!this.isOpen) {
      await detachLoop(this.path);
      return;
    }
    try {
      await loopClear(this.fd);
    } catch (err) {
      // ENXIO: not bound any more (an autoclear device already went)
      if (errorCode(err) !== 'ENXIO') throw new OperationFailedError(`detaching ${this.path}`, undefined, err);
    } finally {
      this.close();
    }
  }

  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    closeSync(this.fd);
  }
}

/** Attach `file` to a free loop device. */
export async function attachLoop(file: string, opts: AttachLoopOptions = {}): Promise<LoopDevice> {
  const readOnly = opts.readOnly === true;
  let flags = 0;
  if (readOnly) flags |= LO_FLAGS.READ_ONLY;
  if (opts.autoclear === true) flags |= LO_FLAGS.AUTOCLEAR;
  if (opts.directIo === true) flags |= LO_FLAGS.DIRECT_IO;
  const backing = await open(file, readOnly ? 'r' : 'r+');
  try {
    for (let attempt = 1; ; attempt++) {
      opts.signal?.throwIfAborted();
      const number = await loopGetFree();
      const path = `/dev/loop${number}`;
      let fd: number;
      try {
        fd = openSync(path, readOnly ? fsConstants.O_RDONLY : fsConstants.O_RDWR);
      } catch (err) {
        // the node may not exist yet right after LOOP_CTL_GET_FREE created the device
        if (errorCode(err) === 'ENOENT' && attempt < MAX_ATTEMPTS) {
          await new Promise((resolve) => setTimeout(resolve, 5));
          continue;
        }
        throw new OperationFailedError(`opening ${path} to attach ${file}`, undefined, err);
      }
      try {
        await loopConfigure(fd, backing.fd, { flags });
      } catch (err) {
        closeSync(fd);
        if (errorCode(err) === 'EBUSY' && attempt < MAX_ATTEMPTS) {
          debug('attachLoop %s: %s was taken meanwhile, attempt %d', file, path, attempt);
          continue;
        }
        throw new OperationFailedError(`attaching ${file} to ${path}`, undefined, err);
      }
      debug('attachLoop %s -> %s (flags %d)', file, path, flags);
      return new LoopHandle(path, number, fd);
    }
  } finally {
    await backing.close();
  }
}

/** Detach the loop device at `path`. A device that is not attached is left as it is. */
export async function detachLoop(path: string): Promise<void> {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY);
  } catch (err) {
    // an autoclear device can vanish between listing and detaching
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENXIO') return;
    throw new OperationFailedError(`detaching ${path}`, undefined, err);
  }
  try {
    await loopClear(fd);
  } catch (err) {
    if (errorCode(err) !== 'ENXIO') throw new OperationFailedError(`detaching ${path}`, undefined, err);
  } finally {
    closeSync(fd);
  }
}

/** Make the loop device at `path` see the current size of its backing file (LOOP_SET_CAPACITY). */
export async function refreshLoopCapacity(path: string): Promise<void> {
  const fd = openSync(path, fsConstants.O_RDONLY);
  try {
    await loopSetCapacity(fd);
  } catch (err) {
    throw new OperationFailedError(`refreshing the capacity of ${path}`, undefined, err);
  } finally {
    closeSync(fd);
  }
}

export interface LoopInfo {
  path: string;
  number: number;
  /** As the kernel recorded it when attaching (sysfs loop/backing_file), without " (deleted)". */
  backingFile: string;
  /** The backing file was deleted after attaching. */
  backingDeleted: boolean;
  autoclear: boolean;
  readOnly: boolean;
  offset: number;
  sizeLimit: number;
}

const readSys = async (path: string): Promise<string | undefined> => {
  try {
    return (await readFile(path, 'utf8')).replace(/\n$/, '');
  } catch (err) {
    // ENODEV: the device is being torn down while we read it (an autoclear device let go by its
    // last unmount); its sysfs files go away mid-read
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENXIO' || errorCode(err) === 'ENODEV') return undefined;
    throw err;
  }
};

/** Every attached loop device, from /sys/block/loop* (devices that are not attached are left out). */
export async function listLoops(): Promise<LoopInfo[]> {
  const out: LoopInfo[] = [];
  for (const name of await readdir('/sys/block')) {
    const m = /^loop(\d+)$/.exec(name);
    if (m === null) continue;
    const sys = `/sys/block/${name}`;
    const backing = await readSys(`${sys}/loop/backing_file`);
    if (backing === undefined) continue;
    const deleted = backing.endsWith(' (deleted)');
    out.push({
      path: `/dev/${name}`,
      number: Number(m[1]),
      backingFile: deleted ? backing.slice(0, -' (deleted)'.length) : backing,
      backingDeleted: deleted,
      autoclear: (await readSys(`${sys}/loop/autoclear`)) === '1',
      readOnly: (await readSys(`${sys}/ro`)) === '1',
      offset: Number((await readSys(`${sys}/loop/offset`)) ?? 0),
      sizeLimit: Number((await readSys(`${sys}/loop/sizelimit`)) ?? 0),
    });
  }
  return out.sort((a, b) => a.number - b.number);
}

/** The loop devices attached to `file` (compared by its real path, as the kernel records it). */
export async function findLoopsByBackingFile(file: string): Promise<LoopInfo[]> {
  let target: string;
  try {
    target = await realpath(file);
  } catch (err) {
    // a deleted file can still back a device; the kernel kept the path it had
    if (errorCode(err) !== 'ENOENT') throw err;
    target = file;
  }
  return (await listLoops()).filter((l) => l.backingFile === target);
}
