/**
 * The DeviceSet (moby's daemon/graphdriver/devmapper/deviceset.go, in TypeScript): a thin pool, a
 * base device with a filesystem, and one snapshot device per layer, with moby's metadata files and
 * transactions. It owns:
 *  - start: choosing and opening the pool backend, loading the device files, rolling back a
 *    transaction a crash left open, making or verifying the base device (its filesystem UUID and
 *    type must be the ones recorded: a mismatch is an error, never a reformat), growing it to a
 *    larger dm.basesize (a smaller one is refused);
 *  - transactions around every pool change: the open transaction (next transaction id, device hash
 *    and id) is written before the pool changes and the pool's transaction id is set after, so a
 *    start that finds them different deletes the device the transaction made and its metadata;
 *  - addDevice (a snapshot of the parent, checked against dm.min_free_space, the filesystem grown
 *    for a larger `size`), mountDevice / unmountDevice (lazy unmount, then deactivation, deferred
 *    when busy), deleteDevice (discard first where useful, deferred deletion when busy, retried by a
 *    background sweep), resizePool, getDeviceStatus, status, metadata, shutdown.
 *
 * Locking follows moby: per-device locks are taken before the pool lock, a parent's before a
 * child's; the pool lock serialises pool changes and (de)activations, never a mount or a mkfs.
 */
import { closeSync } from 'node:fs';
import { chown, mkdir, readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import {
  errorCode,
  fsUuid,
  GraphDriverError,
  humanSize,
  InvalidOptionError,
  KeyedMutex,
  LayerBusyError,
  LayerExistsError,
  LayerUnknownError,
  NotSupportedError,
  OperationFailedError,
  PrerequisitesError,
  isNotSupported,
} from '@graphdriver/core';
import { dm, dmOpenControl, MNT, umount2 } from '@graphdriver/native';
import { DeviceIdMap } from './device-ids.js';
import { createFilesystem, growFilesystem, kernelHasXfs, mountLayer, probeFsType, setXfsNospaceRetries } from './filesystem.js';
import { MetadataStore, type DevInfo, type OpenTransaction } from './metadata.js';
import { deviceName, devicePrefix } from './naming.js';
import type { DmSettings, FsType } from './options.js';
import type { ActiveDevice, BackendKind, DeviceRef, PoolBackend } from './pool/backend.js';
import { ReflinkPool } from './pool/reflink.js';
import { ThinPool } from './pool/thin.js';

const debug = debuglog('graphdriver:devmapper');

/** The steps of a transaction, in order, for tests that kill the process after one of them. */
export type TransactionStep = 'transaction-opened' | 'pool-changed' | 'metadata-written' | 'transaction-closed';

export interface DeviceSetHooks {
  /** Called after each step of a transaction (tests use it to die at that point). */
  afterStep?(step: TransactionStep, operation: 'create' | 'snapshot' | 'delete', hash: string): void | Promise<void>;
}

export interface DeviceSetOptions {
  home: string;
  settings: DmSettings;
  /** Owner of the home directory (the store's root mapping). */
  rootOwner?: { uid: number; gid: number };
  hooks?: DeviceSetHooks;
  /** Period of the deferred-deletion sweep. Default 30 s, as moby. */
  deletionSweepMs?: number;
  /** Tries of a synchronous deactivation of a busy device, 100 ms apart. Default 200, as moby. */
  removeRetries?: number;
}

export interface DiskUsage {
  used: number;
  total: number;
  available: number;
}

/** moby's devmapper Status. */
export interface DeviceSetStatus {
  backend: BackendKind;
  poolName: string;
  dataFile: string | undefined;
  dataLoopback: string | undefined;
  metadataFile: string | undefined;
  metadataLoopback: string | undefined;
  data: DiskUsage;
  metadata: DiskUsage;
  baseDeviceSize: number;
  baseDeviceFs: string;
  /** The pool's block size in bytes. */
  sectorSize: number;
  deferredRemoveEnabled: boolean;
  deferredDeleteEnabled: boolean;
  deferredDeletedDeviceCount: number;
  minFreeSpace: number;
}

/** moby's DevStatus. */
export interface DevStatus {
  deviceId: number;
  size: number;
  transactionId: number;
  sizeInSectors: number;
  mappedSectors: number;
  highestMappedSector: number;
}

export interface DeviceMetadata {
  deviceId: number;
  deviceSize: number;
  deviceName: string;
}

export interface MountDeviceOptions {
  mountLabel?: string | undefined;
  options?: readonly string[] | undefined;
  readOnly?: boolean | undefined;
}

/** An Error whose `code` is an errno name, for the message and cause of an OperationFailedError. */
function failure(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

export class DeviceSet {
  readonly home: string;
  readonly settings: DmSettings;
  readonly metadataStore: MetadataStore;
  #backend!: PoolBackend;
  #prefix = '';
  readonly #devices = new Map<string, DevInfo>();
  readonly #ids = new DeviceIdMap();
  #transactionId = 0;
  #open: OpenTransaction = { openTransactionId: 0, deviceHash: '', deviceId: 0 };
  #baseUuid = '';
  #baseFs = '';
  #filesystem: FsType | undefined;
  #nrDeleted = 0;
  readonly #pool = new KeyedMutex<string>();
  readonly #devLocks = new KeyedMutex<string>();
  readonly #hooks: DeviceSetHooks;
  readonly #opts: DeviceSetOptions;
  #sweep: NodeJS.Timeout | undefined;
  #sweeping: Promise<void> | undefined;
  #deferredRemove: boolean;
  #deferredDelete: boolean;
  #shutDown = false;

  private constructor(opts: DeviceSetOptions) {
    this.#opts = opts;
    this.home = opts.home;
    this.settings = opts.settings;
    this.metadataStore = new MetadataStore(join(opts.home, 'metadata'));
    this.#hooks = opts.hooks ?? {};
    this.#filesystem = opts.settings.fs;
    this.#deferredRemove = opts.settings.deferredRemoval;
    this.#deferredDelete = opts.settings.deferredDeletion;
  }

  /** moby's NewDeviceSet + initDevmapper. */
  static async create(opts: DeviceSetOptions): Promise<DeviceSet> {
    const ds = new DeviceSet(opts);
    await ds.#init();
    return ds;
  }

  get backend(): PoolBackend {
    return this.#backend;
  }

  get devicePrefix(): string {
    return this.#prefix;
  }

  get transactionId(): number {
    return this.#transactionId;
  }

  get baseDeviceUuid(): string {
    return this.#baseUuid;
  }

  get baseDeviceFilesystem(): string {
    return this.#baseFs;
  }

  // ---- start ------------------------------------------------------------------------------------

  async #init(): Promise<void> {
    const owner = this.#opts.rootOwner ?? { uid: 0, gid: 0 };
    await mkdir(this.home, { recursive: true, mode: 0o700 });
    await chown(this.home, owner.uid, owner.gid);
    await this.metadataStore.init();
    this.#prefix = await devicePrefix(this.home);
    const recorded = await this.metadataStore.loadDeviceSet();
    const hasDevices = (await this.metadataStore.listDevices()).length > 0;
    this.#backend = await this.#openBackend(recorded.poolBackend, hasDevices);
    if (recorded.poolBackend === undefined && !hasDevices) {
      // record the backend before any device exists, so that a crash now cannot leave a store whose backend is unknown
      await this.#saveDeviceSetMeta();
    }
    try {
      if (!this.#backend.created) await this.#initMetaData();
      // moby loads this after the devices: only next_device_id, the UUID and the filesystem are in it
      const meta = await this.metadataStore.loadDeviceSet();
      if (meta.nextDeviceId !== undefined) this.#ids.next = meta.nextDeviceId;
      this.#baseUuid = meta.baseDeviceUuid ?? '';
      this.#baseFs = meta.baseDeviceFilesystem ?? '';
      await this.#setupBaseImage();
      if (recorded.poolBackend !== this.#backend.kind) await this.#saveDeviceSetMeta();
    } catch (err) {
      await this.#backend.close().catch((e: unknown) => debug('closing the pool after a failed start: %s', e));
      throw err;
    }
    if (this.#deferredDelete) {
      const period = this.#opts.deletionSweepMs ?? 30_000;
      this.#sweep = setInterval(() => {
        if (this.#sweeping !== undefined) return;
        this.#sweeping = this.cleanupDeletedDevices()
          .then(() => undefined, (err: unknown) => debug('deferred deletion sweep: %s', err))
          .finally(() => (this.#sweeping = undefined));
      }, period);
      this.#sweep.unref();
    }
  }

  /**
   * The backend: dm-thin when asked for, or (auto) when /dev/mapper/control opens - unless the store
   * was made on the reflink pool; a store made on dm-thin (also moby's, which records no backend)
   * needs dm-thin. The reflink pool where there is no device-mapper. Neither: NotSupportedError.
   */
  async #openBackend(recorded: string | undefined, hasDevices: boolean): Promise<PoolBackend> {
    const s = this.settings;
    const wantsThin = s.backend === 'thin' || (s.backend === 'auto' && (recorded === 'dm-thin' || (recorded === undefined && hasDevices)));
    const wantsReflink = s.backend === 'reflink' || (s.backend === 'auto' && recorded === 'reflink');
    if (recorded !== undefined && ((recorded === 'reflink' && s.backend === 'thin') || (recorded === 'dm-thin' && s.backend === 'reflink'))) {
      throw new InvalidOptionError('dm.backend', `devmapper: the store at ${this.home} was made on the ${recorded} pool; dm.backend=${s.backend} cannot use it`);
    }
    let control: number | undefined;
    let controlError: unknown;
    if (!wantsReflink) {
      try {
        control = await dmOpenControl();
        const [major, minor] = await dm.version(control);
        // deferred removal came with dm 4.27 (moby's determineDriverCapabilities)
        if (major < 4 || (major === 4 && minor < 27)) {
          this.#deferredRemove = false;
          this.#deferredDelete = false;
        }
      } catch (err) {
        controlError = err;
        if (control !== undefined) {
          closeSync(control);
          control = undefined;
        }
      }
    }
    if (control !== undefined) {
      return ThinPool.open({ home: this.home, prefix: this.#prefix, settings: s, control, ...(this.#opts.removeRetries === undefined ? {} : { removeRetries: this.#opts.removeRetries }) });
    }
    if (wantsThin) {
      throw new PrerequisitesError(
        `devmapper: ${s.backend === 'thin' ? 'dm.backend=thin' : s.thinPoolDevice !== undefined || s.dataDevice !== undefined ? 'the dm-thin devices given' : `the store at ${this.home} (made on dm-thin)`} needs device-mapper, which this kernel does not offer (/dev/mapper/control: ${errorCode(controlError) ?? String(controlError)})`,
        { cause: controlError },
      );
    }
    if (s.thinPoolDevice !== undefined || s.dataDevice !== undefined) {
      throw new PrerequisitesError(`devmapper: dm.thinpooldev, dm.datadev and dm.metadatadev need device-mapper, which this kernel does not offer (/dev/mapper/control: ${errorCode(controlError) ?? String(controlError)})`, { cause: controlError });
    }
    try {
      return await ReflinkPool.open({ home: this.home, prefix: this.#prefix, settings: s, ...(this.#opts.removeRetries === undefined ? {} : { removeRetries: this.#opts.removeRetries }) });
    } catch (err) {
      if (isNotSupported(err) && controlError !== undefined) {
        throw new NotSupportedError(
          `devmapper: neither pool backend works here: no device-mapper (/dev/mapper/control: ${errorCode(controlError) ?? String(controlError)}), and no reflink pool (${(err as Error).message})`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** moby's initMetaData: the pool's transaction id, every device file, the id map, the open transaction. */
  async #initMetaData(): Promise<void> {
    this.#transactionId = (await this.#backend.usage()).transactionId;
    for (const hash of await this.metadataStore.listDevices()) {
      const info = await this.#lookup(hash);
      if (info === undefined) continue;
      this.#ids.markUsed(info.deviceId);
      if (info.deleted) this.#nrDeleted++;
    }
    await this.#processPendingTransaction();
  }

  async #processPendingTransaction(): Promise<void> {
    const t = await this.metadataStore.loadTransaction();
    if (t === undefined) {
      this.#open = { openTransactionId: this.#transactionId, deviceHash: '', deviceId: 0 };
      return;
    }
    this.#open = t;
    if (t.openTransactionId === this.#transactionId) return;
    if (t.openTransactionId < this.#transactionId) {
      debug('open transaction id %d is less than the pool transaction id %d', t.openTransactionId, this.#transactionId);
      return;
    }
    // A crash between opening the transaction and setting the pool's id: undo what it made.
    debug('rolling back open transaction %d (hash %o, device id %d)', t.openTransactionId, t.deviceHash, t.deviceId);
    const ref = { name: deviceName(this.#prefix, t.deviceHash), id: t.deviceId };
    try {
      // a delete that found its device busy may have been open: let the device go first
      await this.#backend.deactivate(ref, true);
      await this.#backend.deleteThin(t.deviceId);
    } catch (err) {
      const info = this.#devices.get(t.deviceHash);
      if (errorCode(err) === 'EBUSY' && info !== undefined && info.deviceId === t.deviceId) {
        // still in use: keep it for the deferred-deletion sweep rather than leak its id
        debug('rollback: device id %d is busy; marking %o for deferred deletion', t.deviceId, t.deviceHash);
        if (!info.deleted) {
          info.deleted = true;
          this.#nrDeleted++;
          await this.metadataStore.saveDevice(info);
        }
        await this.metadataStore.removeTransaction();
        this.#open = { openTransactionId: this.#transactionId, deviceHash: '', deviceId: 0 };
        return;
      }
      // the device may never have been made, or already be gone
      debug('rollback: deleting device id %d: %s', t.deviceId, err);
    }
    try {
      await this.metadataStore.removeDevice(t.deviceHash);
      this.#devices.delete(t.deviceHash);
      this.#ids.markFree(t.deviceId);
    } catch (err) {
      debug('rollback: removing the metadata of %o: %s', t.deviceHash, err);
    }
    await this.metadataStore.removeTransaction();
    this.#open = { openTransactionId: this.#transactionId, deviceHash: '', deviceId: 0 };
  }

  // ---- metadata -----------------------------------------------------------------------------------

  async #lookup(hash: string): Promise<DevInfo | undefined> {
    const known = this.#devices.get(hash);
    if (known !== undefined) return known;
    const loaded = await this.metadataStore.loadDevice(hash);
    if (loaded !== undefined) this.#devices.set(hash, loaded);
    return loaded;
  }

  #ref(info: DevInfo): DeviceRef {
    return { name: deviceName(this.#prefix, info.hash), id: info.deviceId };
  }

  async #saveDeviceSetMeta(): Promise<void> {
    await this.metadataStore.saveDeviceSet({
      nextDeviceId: this.#ids.next,
      baseDeviceUuid: this.#baseUuid,
      baseDeviceFilesystem: this.#baseFs,
      poolBackend: this.#backend.kind,
    });
  }

  async #registerDevice(id: number, hash: string, size: number, transactionId: number): Promise<DevInfo> {
    const info: DevInfo = { hash, deviceId: id, size, transactionId, initialized: false, deleted: false };
    this.#devices.set(hash, info);
    try {
      await this.metadataStore.saveDevice(info);
    } catch (err) {
      this.#devices.delete(hash);
      throw err;
    }
    return info;
  }

  async #unregisterDevice(hash: string): Promise<void> {
    this.#devices.delete(hash);
    await this.metadataStore.removeDevice(hash);
  }

  // ---- transactions -------------------------------------------------------------------------------

  async #step(step: TransactionStep, operation: 'create' | 'snapshot' | 'delete', hash: string): Promise<void> {
    await this.#hooks.afterStep?.(step, operation, hash);
  }

  async #openTransaction(hash: string, deviceId: number): Promise<void> {
    this.#open = { openTransactionId: this.#transactionId + 1, deviceHash: hash, deviceId };
    await this.metadataStore.saveTransaction(this.#open);
  }

  async #refreshTransaction(deviceId: number): Promise<void> {
    this.#open = { ...this.#open, deviceId };
    await this.metadataStore.saveTransaction(this.#open);
  }

  async #closeTransaction(): Promise<void> {
    await this.#backend.setTransactionId(this.#transactionId, this.#open.openTransactionId);
    this.#transactionId = this.#open.openTransactionId;
  }

  #withPool<T>(fn: () => Promise<T>): Promise<T> {
    return this.#pool.withLock('pool', fn);
  }

  /** A new device in the pool (empty, or a snapshot of `origin`), registered in one transaction. Pool lock held. */
  async #createRegister(hash: string, size: number, origin: DevInfo | undefined): Promise<DevInfo> {
    const operation = origin === undefined ? 'create' : 'snapshot';
    let id = this.#ids.allocate();
    try {
      await this.#openTransaction(hash, id);
    } catch (err) {
      this.#ids.markFree(id);
      throw err;
    }
    await this.#step('transaction-opened', operation, hash);
    for (;;) {
      try {
        if (origin === undefined) await this.#backend.createThin(id);
        else await this.#backend.createSnap(id, this.#ref(origin));
        break;
      } catch (err) {
        if (errorCode(err) === 'EEXIST') {
          // the pool holds an id our metadata does not know (moby warns and moves on)
          debug('device id %d exists in the pool but is supposed to be unused', id);
          id = this.#ids.allocate();
          await this.#refreshTransaction(id);
          continue;
        }
        this.#ids.markFree(id);
        throw err;
      }
    }
    await this.#step('pool-changed', operation, hash);
    let info: DevInfo;
    try {
      info = await this.#registerDevice(id, hash, size, this.#open.openTransactionId);
    } catch (err) {
      await this.#backend.deleteThin(id).catch(() => undefined);
      this.#ids.markFree(id);
      throw err;
    }
    await this.#step('metadata-written', operation, hash);
    try {
      await this.#closeTransaction();
    } catch (err) {
      await this.#unregisterDevice(hash).catch(() => undefined);
      await this.#backend.deleteThin(id).catch(() => undefined);
      this.#ids.markFree(id);
      throw err;
    }
    await this.#step('transaction-closed', operation, hash);
    return info;
  }

  // ---- activation -----------------------------------------------------------------------------------

  /** Pool lock held. */
  async #activate(info: DevInfo, ignoreDeleted = false): Promise<ActiveDevice> {
    if (info.deleted && !ignoreDeleted) {
      throw new LayerUnknownError(info.hash, 'layer', { cause: new Error(`devmapper: can't activate device ${info.hash} as it is marked for deletion`) });
    }
    return this.#backend.activate(this.#ref(info), info.size);
  }

  /** Pool lock held. */
  async #deactivate(info: DevInfo, deferred = this.#deferredRemove): Promise<void> {
    await this.#backend.deactivate(this.#ref(info), deferred);
  }

  // ---- base device ------------------------------------------------------------------------------------

  async #setupBaseImage(): Promise<void> {
    const old = await this.#lookup('');
    if (old !== undefined) {
      if (old.initialized && !old.deleted) {
        await this.#verifyBaseDevice(old);
        await this.#growBaseDevice(old);
        return;
      }
      debug('removing an uninitialized base device');
      await this.deleteDevice('', true);
    }
    if (this.settings.thinPoolDevice !== undefined && old === undefined) {
      const u = await this.#backend.usage();
      if (u.dataUsed !== 0) {
        throw new OperationFailedError('starting devmapper', undefined, new Error(`unable to take ownership of thin-pool (${this.settings.thinPoolDevice}) that already has used data blocks`));
      }
      if (u.transactionId !== 0) {
        throw new OperationFailedError('starting devmapper', undefined, new Error(`unable to take ownership of thin-pool (${this.settings.thinPoolDevice}) with non-zero transaction ID`));
      }
    }
    await this.#createBaseImage();
  }

  async #createBaseImage(): Promise<void> {
    debug('initializing the base device');
    const info = await this.#withPool(() => this.#createRegister('', this.settings.baseSize, undefined));
    const fs = this.#filesystem ?? ((await kernelHasXfs()) ? 'xfs' : 'ext4');
    this.#filesystem = fs;
    const active = await this.#withPool(() => this.#activate(info));
    try {
      this.#baseFs = fs;
      await this.#saveDeviceSetMeta();
      await createFilesystem(active.path, fs, this.settings.mkfsArgs);
      info.initialized = true;
      try {
        await this.metadataStore.saveDevice(info);
      } catch (err) {
        info.initialized = false;
        throw err;
      }
      this.#baseUuid = await fsUuid(active.path);
      await this.#saveDeviceSetMeta();
    } finally {
      await active.release();
      await this.#withPool(() => this.#deactivate(info));
    }
  }

  async #verifyBaseDevice(info: DevInfo): Promise<void> {
    const active = await this.#withPool(() => this.#activate(info));
    try {
      const uuid = await fsUuid(active.path);
      if (this.#baseUuid === '') {
        // a store from before UUIDs were recorded: record it now
        this.#baseUuid = uuid;
        await this.#saveDeviceSetMeta();
      } else if (uuid !== this.#baseUuid) {
        throw new OperationFailedError(
          'starting devmapper',
          undefined,
          new Error(`base device UUID and filesystem verification failed: current base device UUID ${uuid} does not match the stored UUID ${this.#baseUuid}; possibly a different thin pool than last time`),
        );
      }
      if (this.#baseFs === '') {
        this.#baseFs = await probeFsType(active.path);
        await this.#saveDeviceSetMeta();
      }
    } finally {
      await active.release();
      await this.#withPool(() => this.#deactivate(info));
    }
    if (this.#filesystem !== undefined && this.#filesystem !== this.#baseFs) {
      debug('the base device has %s; dm.fs=%s is ignored', this.#baseFs, this.#filesystem);
    }
    this.#filesystem = this.#baseFs === 'xfs' ? 'xfs' : 'ext4';
  }

  /** moby's checkGrowBaseDeviceFS: only a dm.basesize that was given counts. */
  async #growBaseDevice(info: DevInfo): Promise<void> {
    if (!this.settings.baseSizeGiven) return;
    if (this.settings.baseSize < info.size) {
      throw new InvalidOptionError('dm.basesize', `devmapper: base device size cannot be smaller than ${humanSize(info.size)} (dm.basesize=${humanSize(this.settings.baseSize)})`);
    }
    if (this.settings.baseSize === info.size) return;
    const old = info.size;
    info.size = this.settings.baseSize;
    try {
      await this.metadataStore.saveDevice(info);
    } catch (err) {
      info.size = old;
      throw err;
    }
    await this.#growFs(info);
  }

  async #growFs(info: DevInfo): Promise<void> {
    const active = await this.#withPool(() => this.#activate(info));
    try {
      await growFilesystem(active.path, this.#baseFs, this.settings.mountOptions);
    } finally {
      await active.release();
      await this.#withPool(() => this.#deactivate(info));
    }
  }

  // ---- devices ------------------------------------------------------------------------------------

  /** The device of `hash` ('' for the base), deleted ones included; undefined when unknown. */
  async lookupDevice(hash: string): Promise<DevInfo | undefined> {
    return this.#lookup(hash);
  }

  /** moby's HasDevice: metadata exists (deleted devices included). */
  async hasDevice(hash: string): Promise<boolean> {
    return (await this.#lookup(hash)) !== undefined;
  }

  /** Every device's hash (deleted ones and the base '' included), as moby's List. */
  list(): string[] {
    return [...this.#devices.keys()];
  }

  /** Known, not deleted devices other than the base. */
  async listLayers(): Promise<string[]> {
    for (const hash of await this.metadataStore.listDevices()) await this.#lookup(hash);
    return [...this.#devices.values()].filter((d) => d.hash !== '' && !d.deleted).map((d) => d.hash);
  }

  async #checkFreeSpace(hash: string): Promise<void> {
    const pct = this.settings.minFreeSpacePercent;
    if (pct === 0) return;
    const u = await this.#backend.usage();
    const minData = Math.max(1, Math.floor((u.dataTotal * pct) / 100));
    const freeData = u.dataTotal - u.dataUsed;
    if (freeData < minData) {
      throw new OperationFailedError(
        'create',
        hash,
        failure(`Thin Pool has ${freeData} free data blocks which is less than minimum required ${minData} free data blocks. Create more free space in thin pool or use dm.min_free_space option to change behavior`, 'ENOSPC'),
      );
    }
    if (u.metadataTotal === 0) return;
    const minMeta = Math.max(1, Math.floor((u.metadataTotal * pct) / 100));
    const freeMeta = u.metadataTotal - u.metadataUsed;
    if (freeMeta < minMeta) {
      throw new OperationFailedError(
        'create',
        hash,
        failure(`Thin Pool has ${freeMeta} free metadata blocks which is less than minimum required ${minMeta} free metadata blocks. Create more free metadata space in thin pool or use dm.min_free_space option to change behavior`, 'ENOSPC'),
      );
    }
  }

  /**
   * moby's AddDevice: `hash` as a snapshot of `baseHash` ('' = the base device), of the parent's size
   * or the larger `size` (its filesystem grown to it). A smaller size is refused.
   */
  async addDevice(hash: string, baseHash: string, size?: number): Promise<void> {
    const baseInfo = await this.#lookup(baseHash);
    if (baseInfo === undefined || baseInfo.deleted) throw new LayerUnknownError(baseHash, 'parent layer');
    const existing = await this.#lookup(hash);
    if (existing !== undefined) {
      if (!existing.deleted) throw new LayerExistsError(hash);
      // an earlier layer of this id waits for deferred deletion: it must go before the id is reused
      try {
        await this.deleteDevice(hash, true);
      } catch (err) {
        throw new LayerBusyError(hash, 'an earlier layer of this id is still in use and waits for deferred deletion', { cause: err });
      }
    }
    const wanted = size === undefined || size === 0 ? baseInfo.size : size;
    if (wanted < baseInfo.size) {
      throw new InvalidOptionError('size', `devmapper: container size cannot be smaller than ${humanSize(baseInfo.size)} (the parent's size; asked for ${humanSize(wanted)})`);
    }
    const info = await this.#devLocks.withLock(baseHash, () =>
      this.#withPool(async () => {
        if ((await this.#lookup(hash)) !== undefined) throw new LayerExistsError(hash);
        await this.#checkFreeSpace(hash);
        return this.#createRegister(hash, wanted, baseInfo);
      }),
    );
    if (wanted > baseInfo.size) {
      try {
        await this.#devLocks.withLock(hash, () => this.#growFs(info));
      } catch (err) {
        await this.deleteDevice(hash, true).catch((e: unknown) => debug('removing %s after its filesystem did not grow: %s', hash, e));
        throw err instanceof GraphDriverError ? err : new OperationFailedError(`growing the filesystem to ${humanSize(wanted)}`, hash, err);
      }
    }
  }

  /**
   * moby's DeleteDevice. Succeeds when the device was marked for deferred deletion (busy), unless
   * `syncDelete`, which wants it gone now or an error.
   */
  async deleteDevice(hash: string, syncDelete: boolean): Promise<void> {
    const info = await this.#lookup(hash);
    if (info === undefined) throw new LayerUnknownError(hash);
    await this.#devLocks.withLock(hash, () => this.#withPool(() => this.#deleteDeviceLocked(info, syncDelete)));
  }

  async #deleteDeviceLocked(info: DevInfo, syncDelete: boolean): Promise<void> {
    if (this.settings.blkDiscard && this.#backend.discardBeforeDelete) await this.#issueDiscard(info);
    // With deferred removal but not deferred deletion the device must go now (moby waits for it).
    const deferredRemove = this.#deferredRemove && this.#deferredDelete;
    await this.#deactivate(info, deferredRemove);
    await this.#deleteTransaction(info, syncDelete);
  }

  async #issueDiscard(info: DevInfo): Promise<void> {
    let active: ActiveDevice;
    try {
      active = await this.#activate(info, true);
    } catch (err) {
      debug('discard of %s: activation failed: %s', info.hash, err);
      return;
    }
    try {
      if ((await this.#backend.state(this.#ref(info))).busy) {
        debug('device %s is in use: no discard', info.hash);
        return;
      }
      await this.#backend.discard(active).catch((err: unknown) => debug('discard of %s (ignored): %s', info.hash, err));
    } finally {
      await active.release();
    }
  }

  async #deleteTransaction(info: DevInfo, syncDelete: boolean): Promise<void> {
    await this.#openTransaction(info.hash, info.deviceId);
    await this.#step('transaction-opened', 'delete', info.hash);
    let closed = false;
    try {
      let busy = false;
      try {
        await this.#backend.deleteThin(info.deviceId);
      } catch (err) {
        if (syncDelete || !this.#deferredDelete || errorCode(err) !== 'EBUSY') {
          if (errorCode(err) === 'EBUSY') throw new LayerBusyError(info.hash, 'its device is in use', { cause: err });
          throw new OperationFailedError('deleting the device', info.hash === '' ? undefined : info.hash, err);
        }
        busy = true;
      }
      await this.#step('pool-changed', 'delete', info.hash);
      if (!busy) {
        await this.#unregisterDevice(info.hash);
        if (info.deleted) this.#nrDeleted--;
        this.#ids.markFree(info.deviceId);
      } else if (!info.deleted) {
        debug('marking device %s for deferred deletion', info.hash);
        info.deleted = true;
        try {
          await this.metadataStore.saveDevice(info);
        } catch (err) {
          info.deleted = false;
          throw err;
        }
        this.#nrDeleted++;
      }
      await this.#step('metadata-written', 'delete', info.hash);
      closed = true;
      await this.#closeTransaction();
    } finally {
      // moby closes the transaction whatever happened (a failed delete leaves the pool as it was)
      if (!closed) await this.#closeTransaction().catch((err: unknown) => debug('closing the transaction: %s', err));
    }
    await this.#step('transaction-closed', 'delete', info.hash);
  }

  /** Tries again to delete the devices marked for deferred deletion (the sweep calls this). Returns how many are left. */
  async cleanupDeletedDevices(): Promise<number> {
    if (this.#nrDeleted === 0) return 0;
    const deleted = [...this.#devices.values()].filter((d) => d.deleted);
    for (const info of deleted) {
      if (this.#shutDown) break;
      try {
        await this.#devLocks.withLock(info.hash, () => this.#withPool(() => this.#deleteDeviceLocked(info, false)));
      } catch (err) {
        debug('deferred deletion of %s (device id %d) failed: %s', info.hash, info.deviceId, err);
      }
    }
    return this.#nrDeleted;
  }

  get deletedDeviceCount(): number {
    return this.#nrDeleted;
  }

  /** moby's MountDevice: activate, then mount on `path` (xfs with nouuid). */
  async mountDevice(hash: string, path: string, opts: MountDeviceOptions = {}): Promise<void> {
    const info = await this.#lookup(hash);
    if (info === undefined || info.deleted) throw new LayerUnknownError(hash);
    await this.#devLocks.withLock(hash, async () => {
      const active = await this.#withPool(() => this.#activate(info));
      try {
        const fstype = await probeFsType(active.path);
        await mountLayer({
          device: active.path,
          target: path,
          fstype,
          driverOptions: this.settings.mountOptions,
          mountLabel: opts.mountLabel,
          extra: opts.options,
          readOnly: opts.readOnly,
        });
        if (fstype === 'xfs' && this.settings.xfsNospaceMaxRetries !== undefined) {
          try {
            await setXfsNospaceRetries(active.kernelName, this.settings.xfsNospaceMaxRetries);
          } catch (err) {
            await umount2(path, MNT.DETACH).catch(() => undefined);
            throw err;
          }
        }
      } catch (err) {
        await active.release();
        await this.#withPool(() => this.#deactivate(info)).catch((e: unknown) => debug('deactivating %s after a failed mount: %s', hash, e));
        throw err instanceof GraphDriverError ? err : new OperationFailedError('mount', hash, err);
      }
      await active.release();
    });
  }

  /** moby's UnmountDevice: lazy unmount, remove the mount point (which also detaches copies in other mount namespaces), deactivate. */
  async unmountDevice(hash: string, path: string): Promise<void> {
    const info = await this.#lookup(hash);
    if (info === undefined) throw new LayerUnknownError(hash);
    await this.#devLocks.withLock(hash, async () => {
      try {
        await umount2(path, MNT.DETACH);
      } catch (err) {
        if (errorCode(err) !== 'EINVAL' && errorCode(err) !== 'ENOENT') throw new OperationFailedError('unmount', hash, err);
      }
      await rmdir(path).catch((err: unknown) => debug('removing the mount point %s: %s', path, err));
      await this.#withPool(() => this.#deactivate(info));
    });
  }

  /** moby's GetDeviceStatus. */
  async getDeviceStatus(hash: string): Promise<DevStatus> {
    const info = await this.#lookup(hash);
    if (info === undefined || info.deleted) throw new LayerUnknownError(hash);
    return this.#devLocks.withLock(hash, () =>
      this.#withPool(async () => {
        const ref = this.#ref(info);
        const wasActive = (await this.#backend.state(ref)).exists;
        const active = await this.#activate(info);
        try {
          const s = await this.#backend.deviceStatus(ref, info.size);
          return { deviceId: info.deviceId, size: info.size, transactionId: info.transactionId, ...s };
        } finally {
          await active.release();
          if (!wasActive) await this.#deactivate(info).catch(() => undefined);
        }
      }),
    );
  }

  /** The device of `hash` as active now: its state in the pool backend (for tests and tooling). */
  async deviceState(hash: string): Promise<{ exists: boolean; busy: boolean; deferredRemove: boolean }> {
    const info = await this.#lookup(hash);
    if (info === undefined) throw new LayerUnknownError(hash);
    return this.#backend.state(this.#ref(info));
  }

  /** moby's exportDeviceMetadata. */
  async deviceMetadata(hash: string): Promise<DeviceMetadata> {
    const info = await this.#lookup(hash);
    if (info === undefined || info.deleted) throw new LayerUnknownError(hash);
    return { deviceId: info.deviceId, deviceSize: info.size, deviceName: deviceName(this.#prefix, hash) };
  }

  /** moby's ResizePool: grows the pool's data to `bytes` (loop-file pools). */
  async resizePool(bytes: number): Promise<void> {
    await this.#withPool(() => this.#backend.resize(bytes));
  }

  async status(): Promise<DeviceSetStatus> {
    const files = this.#backend.files();
    const base = await this.#lookup('');
    const u = await this.#backend.usage();
    const under = await this.#backend.underlyingFree();
    const dataTotal = u.dataTotal * u.dataBlockSize;
    const dataUsed = u.dataUsed * u.dataBlockSize;
    const metaTotal = u.metadataTotal * u.metadataBlockSize;
    const metaUsed = u.metadataUsed * u.metadataBlockSize;
    return {
      backend: this.#backend.kind,
      poolName: this.#backend.poolName,
      dataFile: files.dataFile,
      dataLoopback: files.dataLoopFile,
      metadataFile: files.metadataFile,
      metadataLoopback: files.metadataLoopFile,
      data: { used: dataUsed, total: dataTotal, available: Math.min(dataTotal - dataUsed, under.data ?? Infinity) },
      metadata: { used: metaUsed, total: metaTotal, available: Math.min(metaTotal - metaUsed, under.metadata ?? Infinity) },
      baseDeviceSize: base?.size ?? 0,
      baseDeviceFs: this.#baseFs,
      sectorSize: u.dataBlockSize,
      deferredRemoveEnabled: this.#deferredRemove,
      deferredDeleteEnabled: this.#deferredDelete,
      deferredDeletedDeviceCount: this.#nrDeleted,
      minFreeSpace: Math.floor((u.dataTotal * this.settings.minFreeSpacePercent) / 100) * u.dataBlockSize,
    };
  }

  /**
   * moby's Shutdown: stops the sweep, saves the deviceset metadata first, unmounts (lazily) and
   * deactivates every device mounted under `mntDir`, then every other device of the pool still
   * active, then the pool if this driver made it.
   */
  async shutdown(mntDir: string): Promise<void> {
    if (this.#shutDown) return;
    this.#shutDown = true;
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    await this.#sweeping;
    await this.#saveDeviceSetMeta().catch((err: unknown) => debug('saving the deviceset metadata: %s', err));
    let entries: string[] = [];
    try {
      entries = (await readdir(mntDir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') debug('shutdown: reading %s: %s', mntDir, err);
    }
    for (const name of entries) {
      const path = join(mntDir, name);
      await umount2(path, MNT.DETACH).catch((err: unknown) => {
        if (errorCode(err) !== 'EINVAL') debug('shutdown: unmounting %s: %s', path, err);
      });
      const info = await this.#lookup(name);
      if (info !== undefined) await this.#withPool(() => this.#deactivate(info)).catch((err: unknown) => debug('shutdown: deactivating %s: %s', name, err));
    }
    const base = await this.#lookup('');
    if (base !== undefined) await this.#withPool(() => this.#deactivate(base)).catch((err: unknown) => debug('shutdown: deactivating the base: %s', err));
    await this.#withPool(async () => {
      try {
        const busy = await this.#backend.deactivateAll();
        if (busy > 0) debug('shutdown: %d devices are still in use and go when their users let go', busy);
      } finally {
        // whatever failed before, the pool is let go of (an unmounted reflink pool, a removed dm pool)
        await this.#backend.close();
      }
    });
  }
}
