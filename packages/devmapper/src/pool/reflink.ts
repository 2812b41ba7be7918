/**
 * The reflink pool: dm-thin's model for kernels without device-mapper. The pool is a directory on a
 * filesystem that shares blocks between files - by default an xfs (`-m reflink=1`) made on the
 * sparse loop file `<home>/devicemapper/data` and mounted at `/run/graphdriver/devmapper/<pool name>`
 * (like a dm pool, a host-wide object named after the store's device prefix, and kept out of the
 * store's tree, which holds no mounts of its own but layers'), or `dm.reflink_pooldir` on an
 * existing xfs/btrfs. Each thin device is a sparse image file
 * `devices/<device id>`; create_thin makes an empty one, create_snap clones its origin's with
 * FICLONE (blocks shared until written, as a thin snapshot), delete unlinks it. The pool's
 * transaction id is `pool-metadata` beside them, written atomically. A device is activated as a
 * loop device on its image (not autoclear: like a dm device it stays active until deactivated, also
 * across restarts of the process, and is found again by its backing file).
 *
 * dm semantics kept: deleting an active device is EBUSY; a synchronous deactivation of a busy
 * device (one mounted, in any mount namespace: an exclusive open fails) is EBUSY; a deferred one is
 * LOOP_CLR_FD, which the kernel carries out when the last user closes the device (autoclear). Such
 * a pending removal is taken back by clearing the device's autoclear flag (LOOP_SET_STATUS64), as
 * dm's cancel_deferred_remove does, when the device is activated again. Deleted images free their blocks at once, so there is no
 * discard before delete; on a loop-file pool the xfs is mounted with `discard` (unless
 * dm.blkdiscard=false), which hands freed blocks back to the filesystem under the loop file.
 */
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, rmdir, stat, statfs, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import {
  attachLoop,
  detachLoop,
  errorCode,
  findLoopsByBackingFile,
  FsMagic,
  getFsName,
  IncompatibleFsError,
  isMountPoint,
  listLoops,
  mkfs,
  mounts,
  OperationFailedError,
  PrerequisitesError,
  refreshLoopCapacity,
  type LoopDevice,
} from '@graphdriver/core';
import { ficlone, LO_FLAGS, loopSetCapacity, loopSetFlags, loopStatus, MNT, mount, syncfs, umount2 } from '@graphdriver/native';
import type { DmSettings } from '../options.js';
import { runTool } from '../tools.js';
import {
  errnoError,
  type ActiveDevice,
  type DeviceRef,
  type DeviceState,
  type DeviceStatus,
  type PoolBackend,
  type PoolFiles,
  type PoolUsage,
} from './backend.js';
import { ensureImage, waitLoopsReleased } from './loop-files.js';

const debug = debuglog('graphdriver:devmapper');

const POOL_METADATA = 'pool-metadata';
const DEVICES = 'devices';
const LOOP_MAJOR = 7;

export interface ReflinkPoolConfig {
  home: string;
  prefix: string;
  settings: DmSettings;
  /** Tries of a synchronous deactivation while the device is busy, 100 ms apart (moby: 200). */
  removeRetries?: number;
  /** Where loop-file pools are mounted, each at `<mountRoot>/<pool name>`. Default /run/graphdriver/devmapper. */
  mountRoot?: string;
}

export const DEFAULT_POOL_MOUNT_ROOT = '/run/graphdriver/devmapper';

function isBusy(devicePath: string): boolean {
  // A mounted block device is claimed exclusively by its filesystem, in whatever mount namespace.
  let fd: number;
  try {
    fd = openSync(devicePath, fsConstants.O_RDONLY | fsConstants.O_EXCL);
  } catch (err) {
    if (errorCode(err) === 'EBUSY') return true;
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENXIO') return false;
    throw err;
  }
  closeSync(fd);
  return false;
}

/**
 * core's loop listing reads sysfs, where a device torn down meanwhile (autoclear) answers ENODEV;
 * such a device is gone, so asking again gives the answer without it.
 */
async function retryTornDown<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (errorCode(err) !== 'ENODEV' || attempt >= 20) throw err;
      await sleep(5);
    }
  }
}

async function readSys(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

export class ReflinkPool implements PoolBackend {
  readonly kind = 'reflink' as const;
  readonly discardBeforeDelete = false;
  readonly poolName: string;
  created = false;
  readonly #cfg: ReflinkPoolConfig;
  /** The pool directory: the mounted image, or dm.reflink_pooldir. */
  #root = '';
  /** The loop-file pool's image and mount point (undefined for a directory pool). */
  #image: { path: string; mountPoint: string; loop: string } | undefined;
  #transactionId = 0;
  /** Device id -> the loop device we last saw bound to its image (checked before use). */
  readonly #loopOf = new Map<number, string>();
  #closed = false;

  private constructor(cfg: ReflinkPoolConfig) {
    this.#cfg = cfg;
    this.poolName = `${cfg.prefix}-pool`;
  }

  static async open(cfg: ReflinkPoolConfig): Promise<ReflinkPool> {
    const pool = new ReflinkPool(cfg);
    await pool.#open();
    return pool;
  }

  get root(): string {
    return this.#root;
  }

  get #devicesDir(): string {
    return join(this.#root, DEVICES);
  }

  imagePath(id: number): string {
    return join(this.#devicesDir, String(id));
  }

  async #open(): Promise<void> {
    const dir = this.#cfg.settings.reflinkPoolDir;
    if (dir !== undefined) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      this.#root = dir;
      await this.#checkClone(dir);
    } else {
      await this.#mountImage();
    }
    await mkdir(this.#devicesDir, { recursive: true, mode: 0o700 });
    await this.#scanLoops();
    let meta: string | undefined;
    try {
      meta = await readFile(join(this.#root, POOL_METADATA), 'utf8');
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw new OperationFailedError('reading the reflink pool metadata', undefined, err);
    }
    if (meta === undefined) {
      if ((await readdir(this.#devicesDir)).length > 0) {
        throw new OperationFailedError('starting devmapper', undefined, new Error(`unable to take ownership of the reflink pool ${this.#root}: it holds device images but no ${POOL_METADATA}`));
      }
      this.created = true;
      await this.#writeMetadata(0);
    } else {
      const parsed = JSON.parse(meta) as { transaction_id?: unknown };
      this.#transactionId = typeof parsed.transaction_id === 'number' ? parsed.transaction_id : 0;
    }
    debug('reflink pool at %s (transaction %d)%s', this.#root, this.#transactionId, this.created ? ', new' : '');
  }

  /** FICLONE must work in the pool directory: xfs with reflink=1, btrfs. */
  async #checkClone(dir: string): Promise<void> {
    const a = join(dir, `.clone-probe-${process.pid}-a`);
    const b = join(dir, `.clone-probe-${process.pid}-b`);
    try {
      const src = await open(a, 'w+', 0o600);
      const dst = await open(b, 'w', 0o600);
      try {
        await src.write(Buffer.alloc(4096, 1));
        await ficlone(dst.fd, src.fd);
      } catch (err) {
        const fs = await getFsName(dir);
        throw new IncompatibleFsError(
          `devmapper: the reflink pool directory ${dir} is on ${fs}, which cannot clone files (FICLONE: ${errorCode(err) ?? String(err)}); it needs xfs made with reflink=1, or btrfs`,
          fs,
          { cause: err },
        );
      } finally {
        await src.close();
        await dst.close();
      }
    } finally {
      await rm(a, { force: true });
      await rm(b, { force: true });
    }
  }

  /** The loop-file pool: `<home>/devicemapper/data` as an xfs with reflink, mounted at `<mount root>/<pool name>`. */
  async #mountImage(): Promise<void> {
    const loopDir = join(this.#cfg.home, 'devicemapper');
    const image = await ensureImage(loopDir, 'data', this.#cfg.settings.loopDataSize);
    const mountPoint = join(this.#cfg.mountRoot ?? DEFAULT_POOL_MOUNT_ROOT, this.poolName);
    await mkdir(mountPoint, { recursive: true, mode: 0o700 });
    this.#root = mountPoint;
    const bound = await retryTornDown(() => findLoopsByBackingFile(image.path));
    if (await isMountPoint(mountPoint)) {
      // left mounted by an earlier process: ours if its loop device is bound to our image
      const loop = bound[0];
      if (loop === undefined) throw new OperationFailedError('starting devmapper', undefined, new Error(`${mountPoint} is mounted, but not from ${image.path}`));
      this.#image = { path: image.path, mountPoint, loop: loop.path };
    } else {
      let handle: LoopDevice | undefined;
      let device: string;
      let holdFd: number | undefined;
      if (bound[0] !== undefined) {
        // a pool lazily unmounted while its devices were busy lives on: mount that one again, never
        // a second loop device on the same image (two xfs instances on one image would corrupt it)
        device = bound[0].path;
        holdFd = openSync(device, fsConstants.O_RDWR);
      } else {
        handle = await attachLoop(image.path, { autoclear: true });
        device = handle.path;
      }
      try {
        if (image.created) {
          await mkfs(device, 'xfs', { args: ['-m', 'reflink=1', '-K'] });
        }
        const data = this.#cfg.settings.blkDiscard ? 'discard' : null;
        try {
          await mount(device, mountPoint, 'xfs', 0, data);
        } catch (err) {
          if (errorCode(err) === 'ENODEV') {
            throw new PrerequisitesError('devmapper: the reflink pool needs xfs, which this kernel does not have (and it has no device-mapper either)', { cause: err });
          }
          throw new OperationFailedError(`mounting the reflink pool ${image.path} on ${mountPoint}`, undefined, err);
        }
      } finally {
        // AUTOCLEAR: the mount holds the loop device now
        handle?.close();
        if (holdFd !== undefined) closeSync(holdFd);
      }
      this.#image = { path: image.path, mountPoint, loop: device };
    }
    if (image.grown) {
      await refreshLoopCapacity(this.#image.loop);
      await runTool('xfs_growfs', [mountPoint], `growing the reflink pool ${mountPoint}`);
    }
  }

  async #writeMetadata(transactionId: number): Promise<void> {
    const file = join(this.#root, POOL_METADATA);
    const tmp = `${file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify({ transaction_id: transactionId }));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    await this.#syncDir(this.#root);
    this.#transactionId = transactionId;
  }

  async #syncDir(dir: string): Promise<void> {
    const dh = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  }

  files(): PoolFiles {
    const out: PoolFiles = { metadataFile: join(this.#root, POOL_METADATA) };
    if (this.#image !== undefined) {
      out.dataFile = this.#image.loop;
      out.dataLoopFile = this.#image.path;
    } else {
      out.dataFile = this.#root;
    }
    return out;
  }

  async usage(): Promise<PoolUsage> {
    const st = await statfs(this.#root);
    // The pool filesystem's own metadata is its inodes (btrfs has no fixed number: 0 of 0).
    const inodeSize = st.type === FsMagic.Xfs ? 512 : 256;
    return {
      transactionId: this.#transactionId,
      dataUsed: st.blocks - st.bfree,
      dataTotal: st.blocks,
      dataBlockSize: st.bsize,
      metadataUsed: st.files - st.ffree,
      metadataTotal: st.files,
      metadataBlockSize: inodeSize,
    };
  }

  async underlyingFree(): Promise<{ data?: number; metadata?: number }> {
    if (this.#image === undefined) return {};
    const st = await statfs(this.#image.path).catch(() => undefined);
    return st === undefined ? {} : { data: st.bfree * st.bsize };
  }

  async setTransactionId(from: number, to: number): Promise<void> {
    if (from !== this.#transactionId) {
      throw Object.assign(new Error(`EINVAL: the pool's transaction id is ${this.#transactionId}, not ${from}`), { code: 'EINVAL' });
    }
    await this.#writeMetadata(to);
  }

  async createThin(id: number): Promise<void> {
    const fh = await open(this.imagePath(id), 'wx', 0o600);
    await fh.close();
    await this.#syncDir(this.#devicesDir);
  }

  async createSnap(id: number, origin: DeviceRef): Promise<void> {
    let src;
    try {
      src = await open(this.imagePath(origin.id), 'r');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') throw errnoError('ENOENT', `device id ${origin.id} is not in the pool`);
      throw err;
    }
    try {
      await this.#flushIfMounted(origin.id);
      const dest = this.imagePath(id);
      const dst = await open(dest, 'wx', 0o600);
      try {
        await ficlone(dst.fd, src.fd);
        await dst.sync();
      } catch (err) {
        await dst.close();
        await unlink(dest).catch(() => undefined);
        throw err;
      }
      await dst.close();
      await this.#syncDir(this.#devicesDir);
    } finally {
      await src.close();
    }
  }

  /** dm suspends an active origin (a flush and a frozen filesystem); here its filesystem is synced into the image. */
  async #flushIfMounted(id: number): Promise<void> {
    const loop = await this.#boundLoop(id);
    if (loop === undefined) return;
    const rdev = (await stat(loop)).rdev;
    const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    for (const m of await mounts()) {
      if (m.major !== LOOP_MAJOR || m.minor !== minor) continue;
      const dh = await open(m.mountPoint, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY).catch(() => undefined);
      if (dh === undefined) continue;
      try {
        await syncfs(dh.fd);
      } finally {
        await dh.close();
      }
      return;
    }
  }

  async deleteThin(id: number): Promise<void> {
    if ((await this.#boundLoop(id)) !== undefined) throw errnoError('EBUSY', `device id ${id} is active`);
    try {
      // Truncated first: xfs frees the blocks of an unlinked file later, in the background, but those
      // of a truncated one now - the pool's free space (dm.min_free_space, status) sees them at once,
      // as after a dm-thin delete. Blocks shared with clones only lose a reference.
      await truncate(this.imagePath(id), 0);
      await unlink(this.imagePath(id));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') throw errnoError('ENOENT', `device id ${id} is not in the pool`);
      throw err;
    }
    // syncfs, not only the directory: the log force commits the frees, and a pool mounted with
    // `discard` then hands the blocks back to the loop file under it.
    const dh = await open(this.#devicesDir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
    try {
      await syncfs(dh.fd);
    } finally {
      await dh.close();
    }
  }

  /**
   * The loop device bound to the image of `id`, if any. The pool's loop devices are learnt once at
   * open (a scan of sysfs: those an earlier process left) and kept as this process binds them; one
   * known is checked against sysfs before it is used (autoclear may have taken it meanwhile). A store
   * has one driver process, as with moby, so no scan per call is needed.
   */
  async #boundLoop(id: number): Promise<string | undefined> {
    const cached = this.#loopOf.get(id);
    if (cached === undefined) return undefined;
    const backing = await readSys(`/sys/block/${cached.slice('/dev/'.length)}/loop/backing_file`);
    if (backing === this.imagePath(id)) return cached;
    this.#loopOf.delete(id);
    return undefined;
  }

  /** Learns the loop devices bound to the pool's images (left active by an earlier process). */
  async #scanLoops(): Promise<void> {
    const prefix = `${this.#devicesDir}/`;
    for (const loop of await retryTornDown(listLoops)) {
      if (loop.backingDeleted || !loop.backingFile.startsWith(prefix)) continue;
      const id = Number(loop.backingFile.slice(prefix.length));
      if (Number.isSafeInteger(id)) this.#loopOf.set(id, loop.path);
    }
  }

  async activate(dev: DeviceRef, size: number): Promise<ActiveDevice> {
    const image = this.imagePath(dev.id);
    let st;
    try {
      st = await stat(image);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') throw errnoError('ENOENT', `device id ${dev.id} (${dev.name}) is not in the pool`);
      throw err;
    }
    // a thin device's size is its table's; an image grows to it and never shrinks
    const grow = st.size < size;
    if (grow) await truncate(image, size);
    const existing = await this.#boundLoop(dev.id);
    if (existing !== undefined) {
      let fd: number | undefined;
      try {
        fd = openSync(existing, fsConstants.O_RDWR);
        // held open now: it cannot be cleared and reused; make sure it is still ours
        const status = await loopStatus(fd);
        if (status.inode === st.ino) {
          // a deferred removal pending: take it back, the device is in use again
          if (status.flags & LO_FLAGS.AUTOCLEAR) await loopSetFlags(fd, status.flags & ~LO_FLAGS.AUTOCLEAR);
          if (grow) await loopSetCapacity(fd);
          const held = fd;
          fd = undefined;
          return { path: existing, kernelName: existing.slice('/dev/'.length), release: async () => closeSync(held) };
        }
      } catch (err) {
        if (errorCode(err) !== 'ENXIO' && errorCode(err) !== 'ENOENT') throw err;
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
      this.#loopOf.delete(dev.id);
    }
    const loop = await attachLoop(image);
    this.#loopOf.set(dev.id, loop.path);
    return { path: loop.path, kernelName: `loop${loop.number}`, release: async () => loop.close() };
  }

  async deactivate(dev: DeviceRef, deferred: boolean): Promise<void> {
    const loop = await this.#boundLoop(dev.id);
    if (loop === undefined) return;
    if (!deferred) {
      const retries = this.#cfg.removeRetries ?? 200;
      for (let attempt = 0; isBusy(loop); attempt++) {
        if (attempt >= retries) throw errnoError('EBUSY', `${loop} (${dev.name}) is in use`);
        await sleep(100);
      }
    }
    // LOOP_CLR_FD: at once when unused, else when its last user closes it (the kernel sets autoclear)
    await detachLoop(loop);
    // still bound: a deferred removal, which keeps the device (and its image) in use until it happens
    if ((await this.#boundLoop(dev.id)) === undefined) this.#loopOf.delete(dev.id);
  }

  async state(dev: DeviceRef): Promise<DeviceState> {
    const loop = await this.#boundLoop(dev.id);
    if (loop === undefined) return { exists: false, busy: false, deferredRemove: false };
    const autoclear = (await readSys(`/sys/block/${loop.slice('/dev/'.length)}/loop/autoclear`)) === '1';
    return { exists: true, busy: isBusy(loop), deferredRemove: autoclear };
  }

  async cancelDeferredRemoval(dev: DeviceRef): Promise<void> {
    const loop = await this.#boundLoop(dev.id);
    if (loop === undefined) throw errnoError('ENXIO', `${dev.name} is not active`);
    const fd = openSync(loop, fsConstants.O_RDWR);
    try {
      const status = await loopStatus(fd);
      if (status.flags & LO_FLAGS.AUTOCLEAR) await loopSetFlags(fd, status.flags & ~LO_FLAGS.AUTOCLEAR);
    } finally {
      closeSync(fd);
    }
  }

  async deviceStatus(dev: DeviceRef, size: number): Promise<DeviceStatus> {
    const st = await stat(this.imagePath(dev.id));
    const sizeInSectors = Math.floor(size / 512);
    // Allocated blocks are the mapped sectors; the highest one is bounded by the image's end (no SEEK_DATA in Node).
    return { sizeInSectors, mappedSectors: st.blocks, highestMappedSector: st.blocks > 0 ? Math.min(sizeInSectors, Math.ceil(st.size / 512)) - 1 : 0 };
  }

  async discard(): Promise<void> {
    // Deleting an image frees its blocks (see the top).
  }

  async deactivateAll(): Promise<number> {
    let busy = 0;
    await this.#scanLoops();
    for (const [id, loop] of [...this.#loopOf]) {
      await detachLoop(loop);
      if ((await this.#boundLoop(id)) !== undefined) busy++;
    }
    return busy;
  }

  async resize(bytes: number): Promise<void> {
    if (this.#image === undefined) {
      throw new OperationFailedError('resizing the reflink pool', undefined, new Error(`the pool is the directory ${this.#root} (dm.reflink_pooldir): its filesystem is not the driver's to grow`));
    }
    const { size } = await stat(this.#image.path);
    if (size > bytes) throw new OperationFailedError('resizing the reflink pool', undefined, new Error(`can't shrink the data file ${this.#image.path} (${size} bytes) to ${bytes}`));
    await ensureImage(join(this.#cfg.home, 'devicemapper'), 'data', bytes);
    await refreshLoopCapacity(this.#image.loop);
    await runTool('xfs_growfs', [this.#image.mountPoint], `growing the reflink pool ${this.#image.mountPoint}`);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let busy = 0;
    try {
      busy = await this.deactivateAll();
    } catch (err) {
      debug('closing the reflink pool: deactivating its devices: %s', err);
    }
    if (this.#image === undefined) return;
    let released = true;
    try {
      await umount2(this.#image.mountPoint, 0);
    } catch (err) {
      if (errorCode(err) !== 'EINVAL' && errorCode(err) !== 'ENOENT') {
        if (errorCode(err) !== 'EBUSY') throw new OperationFailedError(`unmounting the reflink pool ${this.#image.mountPoint}`, undefined, err);
        // devices still busy elsewhere hold images open: the pool lives on, detached, until they go
        debug('reflink pool %s busy (%d devices still in use): detaching it lazily', this.#image.mountPoint, busy);
        await umount2(this.#image.mountPoint, MNT.DETACH);
        released = false;
      }
    }
    // the pool's loop device is autoclear: gone a moment after the unmount, and then the data file is free
    if (released) await waitLoopsReleased([{ device: this.#image.loop, file: this.#image.path }]);
    await rmdir(this.#image.mountPoint).catch((err: unknown) => debug('removing %s: %s', this.#image?.mountPoint, err));
  }
}
