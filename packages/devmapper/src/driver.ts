/**
 * The devmapper storage driver (moby's daemon/graphdriver/devmapper/driver.go): layers are devices
 * of a DeviceSet (deviceset.ts) - a layer without parent a snapshot of the base device, every other
 * one a snapshot of its parent - each with its own filesystem. get() mounts the device at
 * `<home>/mnt/<id>` and returns `<home>/mnt/<id>/rootfs` (made 0755, owned by the store's root, on
 * the first mount; `<home>/mnt/<id>/id` holds the layer id, as in moby); the mounts are
 * reference-counted and one left by an earlier process is adopted. Diffs come from core's
 * NaiveDiffDriver, comparing a layer's tree with its parent's, as in moby.
 *
 * Layout under the home (moby's): `metadata/` (DeviceSet metadata), `devicemapper/` (loop files,
 * and the reflink pool's mount point), `mnt/` (layer mounts).
 */
import { chown, mkdir, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import {
  errorCode,
  hostRoot,
  isMountPoint,
  KeyedMutex,
  LayerUnknownError,
  NaiveDiffDriver,
  normalizeParent,
  parseStorageOpt,
  RefMounts,
  unmountRecursive,
  validateLayerId,
  type ApplyDiffOpts,
  type Change,
  type CreateFromTemplateOpts,
  type CreateOpts,
  type DiffOpts,
  type Driver,
  type DriverInit,
  type DriverInitContext,
  type IdMappings,
  type ListLayersDriver,
  type MountOpts,
  type TemplateDriver,
} from '@graphdriver/core';
import { DeviceSet, type DeviceSetHooks, type DevStatus } from './deviceset.js';
import { resolveDmOptions, type DmSettings } from './options.js';
import { statusRows } from './status.js';

const debug = debuglog('graphdriver:devmapper');

export const DRIVER_NAME = 'devmapper';

/** Mode of `mnt/`, `mnt/<id>` and a layer's `rootfs` (moby's MkdirAllAndChown(..., 0755, root)). */
export const ROOTFS_MODE = 0o755;

/** What tests and tools may add to a driver's start; not options a user sets. */
export interface DevmapperStartExtras {
  hooks?: DeviceSetHooks;
  /** Period of the deferred-deletion sweep (default 30 s). */
  deletionSweepMs?: number;
  /** Tries of a synchronous deactivation of a busy device, 100 ms apart (default 200). */
  removeRetries?: number;
}

async function mkdirOwned(path: string, owner: { uid: number; gid: number }): Promise<void> {
  try {
    await mkdir(path, { mode: ROOTFS_MODE });
  } catch (err) {
    if (errorCode(err) === 'EEXIST') return;
    throw err;
  }
  await chown(path, owner.uid, owner.gid);
}

export class DevmapperDriver implements Driver, ListLayersDriver, TemplateDriver {
  readonly name = DRIVER_NAME;
  readonly home: string;
  readonly settings: DmSettings;
  readonly deviceSet: DeviceSet;
  readonly #mnt: string;
  readonly #owner: { uid: number; gid: number };
  readonly #refs = new RefMounts();
  readonly #locks = new KeyedMutex<string>();
  readonly #naive: NaiveDiffDriver;

  private constructor(home: string, settings: DmSettings, deviceSet: DeviceSet, owner: { uid: number; gid: number }, idMappings: IdMappings | undefined) {
    this.home = home;
    this.settings = settings;
    this.deviceSet = deviceSet;
    this.#mnt = join(home, 'mnt');
    this.#owner = owner;
    this.#naive = new NaiveDiffDriver(this, idMappings === undefined ? {} : { idMappings });
  }

  /** Parses the options and starts the DeviceSet (pool, metadata, base device). */
  static async start(ctx: DriverInitContext, extras: DevmapperStartExtras = {}): Promise<DevmapperDriver> {
    const settings = resolveDmOptions(ctx.options);
    const owner = hostRoot(ctx.idMappings);
    const deviceSet = await DeviceSet.create({ home: ctx.home, settings, rootOwner: owner, ...extras });
    debug('devmapper at %s on the %s pool %s', ctx.home, deviceSet.backend.kind, deviceSet.backend.poolName);
    return new DevmapperDriver(ctx.home, settings, deviceSet, owner, ctx.idMappings);
  }

  #mountPoint(id: string): string {
    return join(this.#mnt, id);
  }

  // ---- ProtoDriver ------------------------------------------------------------------------------

  create(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts);
  }

  /** moby: the same as create(); a writable layer is a device like any other. */
  createReadWrite(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts);
  }

  async #create(id: string, parent: string | undefined, opts: CreateOpts | undefined): Promise<void> {
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    const { size } = parseStorageOpt(opts?.storageOpt, ['size'], 'devmapper');
    await this.#locks.withLock(id, async () => {
      if (parentId !== undefined && !(await this.exists(parentId))) throw new LayerUnknownError(parentId, 'parent layer');
      await this.deviceSet.addDevice(id, parentId ?? '', size);
    });
  }

  async remove(id: string): Promise<void> {
    validateLayerId(id);
    await this.#locks.withLock(id, async () => {
      // moby: removing what is not there is not an error (a container whose device went away)
      if ((await this.deviceSet.lookupDevice(id)) === undefined) return;
      const mp = this.#mountPoint(id);
      // the contract: a layer still mounted is unmounted first
      if (await isMountPoint(mp)) await this.deviceSet.unmountDevice(id, mp);
      await this.deviceSet.deleteDevice(id, false);
      await rmdir(mp).catch((err: unknown) => {
        if (errorCode(err) !== 'ENOENT') debug('removing the mount point %s: %s', mp, err);
      });
    });
  }

  async get(id: string, opts: MountOpts = {}): Promise<string> {
    validateLayerId(id);
    const mp = this.#mountPoint(id);
    const rootfs = join(mp, 'rootfs');
    await this.#locks.withLock(id, async () => {
      const info = await this.deviceSet.lookupDevice(id);
      if (info === undefined || info.deleted) throw new LayerUnknownError(id);
      await this.#refs.get(mp, async () => {
        await mkdirOwned(this.#mnt, this.#owner);
        await mkdirOwned(mp, this.#owner);
        await this.deviceSet.mountDevice(id, mp, { mountLabel: opts.mountLabel, options: opts.options, readOnly: opts.readOnly });
        try {
          // a layer made from the base device gets its rootfs on its first mount; children inherit theirs
          if (!(await stat(rootfs).catch(() => undefined))?.isDirectory() && opts.readOnly !== true) await mkdirOwned(rootfs, this.#owner);
          if (opts.readOnly !== true) {
            await writeFile(join(mp, 'id'), id, { mode: 0o600, flag: 'wx' }).catch((err: unknown) => {
              if (errorCode(err) !== 'EEXIST') throw err;
            });
          }
        } catch (err) {
          await this.deviceSet.unmountDevice(id, mp).catch(() => undefined);
          throw err;
        }
      });
    });
    return rootfs;
  }

  async put(id: string): Promise<void> {
    validateLayerId(id);
    const mp = this.#mountPoint(id);
    await this.#locks.withLock(id, async () => {
      await this.#refs.put(mp, () => this.deviceSet.unmountDevice(id, mp));
    });
  }

  async exists(id: string): Promise<boolean> {
    validateLayerId(id);
    const info = await this.deviceSet.lookupDevice(id);
    return info !== undefined && !info.deleted;
  }

  async status(): Promise<Array<[string, string]>> {
    return statusRows(await this.deviceSet.status());
  }

  /** moby's GetMetadata: DeviceId, DeviceSize, DeviceName. */
  async metadata(id: string): Promise<Record<string, string>> {
    validateLayerId(id);
    const m = await this.deviceSet.deviceMetadata(id);
    return { DeviceId: String(m.deviceId), DeviceSize: String(m.deviceSize), DeviceName: m.deviceName };
  }

  /** Unmounts and deactivates everything, then the pool if the driver made it; the driver is done after. */
  async cleanup(): Promise<void> {
    let first: unknown;
    try {
      await this.deviceSet.shutdown(this.#mnt);
    } catch (err) {
      first = err;
    }
    try {
      await unmountRecursive(this.home, { lazyFallback: true });
    } catch (err) {
      first ??= err;
    }
    if (first !== undefined) throw first;
  }

  // ---- DiffDriver, through the naive (tree-compare) differ ------------------------------------

  diff(id: string, parent?: string, opts?: DiffOpts): Promise<Readable> {
    return this.#naive.diff(id, parent, opts);
  }

  changes(id: string, parent?: string, opts?: DiffOpts): Promise<Change[]> {
    return this.#naive.changes(id, parent, opts);
  }

  applyDiff(id: string, parent: string | undefined, tar: Readable, opts?: ApplyDiffOpts): Promise<number> {
    return this.#naive.applyDiff(id, parent, tar, opts);
  }

  diffSize(id: string, parent?: string, opts?: DiffOpts): Promise<number> {
    return this.#naive.diffSize(id, parent, opts);
  }

  // ---- optional capabilities and devmapper's own ---------------------------------------------

  async listLayers(): Promise<string[]> {
    return this.deviceSet.listLayers();
  }

  /** A snapshot of the template: its content without changes (the parent is the caller's bookkeeping). */
  async createFromTemplate(id: string, template: string, opts: CreateFromTemplateOpts = {}): Promise<void> {
    if (opts.parent !== undefined) normalizeParent(opts.parent);
    validateLayerId(template);
    return this.#create(id, template, opts.create);
  }

  /** moby's GetDeviceStatus: device id, size, transaction id and the pool's mapping of it. */
  async getDeviceStatus(id: string): Promise<DevStatus> {
    validateLayerId(id);
    return this.deviceSet.getDeviceStatus(id);
  }

  /** moby's ResizePool: grows the loop-file pool's data to `bytes`. */
  resizePool(bytes: number): Promise<void> {
    return this.deviceSet.resizePool(bytes);
  }

  /** Runs the deferred-deletion sweep now; returns how many devices still wait. */
  cleanupDeletedDevices(): Promise<number> {
    return this.deviceSet.cleanupDeletedDevices();
  }
}

export const name = DRIVER_NAME;

/** The registry's entry point (core's driver package convention). */
export const init: DriverInit = (ctx) => DevmapperDriver.start(ctx);
