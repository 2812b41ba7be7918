/**
 * The dm-thin backend: the kernel's thin-pool target driven through the native device-mapper ioctls,
 * as moby's pkg/devicemapper drives it through libdevmapper. The pool is `dm.thinpooldev` (never
 * made or removed by us), or one we make - `<prefix>-pool` on `dm.datadev`/`dm.metadatadev`, or on
 * the sparse loop files `<home>/devicemapper/{data,metadata}` - with moby's table
 * (`<meta> <data> <block sectors> 32768 1 skip_block_zeroing`). Pool changes are target messages
 * (`create_thin`, `create_snap`, `delete`, `set_transaction_id`); a device is a `thin` table on the
 * pool, activated as `<prefix>-<id>` and used through the `/dev/dm-N` node the kernel's devtmpfs
 * makes (no udev, so no /dev/mapper links). A snapshot suspends its active origin (which flushes and
 * freezes its filesystem) as moby does.
 */
import { closeSync, existsSync, constants as fsConstants } from 'node:fs';
import { open, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import { attachLoop, errorCode, findLoopsByBackingFile, OperationFailedError, refreshLoopCapacity, type LoopDevice } from '@graphdriver/core';
import { blkDiscard, blkGetSize64, dm, type DmTarget } from '@graphdriver/native';
import type { DmSettings } from '../options.js';
import {
  type ActiveDevice,
  type DeviceRef,
  type DeviceState,
  type DeviceStatus,
  type PoolBackend,
  type PoolFiles,
  type PoolUsage,
} from './backend.js';
import { blockDeviceSize, ensureImage, waitLoopsReleased } from './loop-files.js';

const debug = debuglog('graphdriver:devmapper');

/** moby's low water mark of the pool table (in blocks). */
const LOW_WATER_MARK = 32768;
const SECTOR = 512;

export interface ThinPoolConfig {
  /** The driver's home: loop files live in `<home>/devicemapper`. */
  home: string;
  prefix: string;
  settings: DmSettings;
  /** An open /dev/mapper/control; the pool closes it. */
  control: number;
  /** Tries of a synchronous remove while the device is busy (moby: 200, 100 ms apart). */
  removeRetries?: number;
}

interface DevNum {
  major: number;
  minor: number;
}

async function devNumOf(path: string): Promise<DevNum> {
  const st = await stat(path, { bigint: true });
  if (!st.isBlockDevice()) throw new OperationFailedError(`using ${path} for the thin pool`, undefined, new Error(`${path} is not a block device`));
  const rdev = st.rdev;
  return {
    major: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)),
    minor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)),
  };
}

const majMin = (d: DevNum): string => `${d.major}:${d.minor}`;

function parseMajMin(s: string | undefined): DevNum | undefined {
  const m = /^(\d+):(\d+)$/.exec(s ?? '');
  return m === null ? undefined : { major: Number(m[1]), minor: Number(m[2]) };
}

/** The pool's status line: `<transaction id> <used>/<total> metadata blocks <used>/<total> data blocks ...`. */
export function parsePoolStatus(params: string): { transactionId: number; metadataUsed: number; metadataTotal: number; dataUsed: number; dataTotal: number } {
  const m = /^(\d+) (\d+)\/(\d+) (\d+)\/(\d+)/.exec(params.trim());
  if (m === null) throw new Error(`devmapper: cannot read the thin-pool status ${JSON.stringify(params)}`);
  return {
    transactionId: Number(m[1]),
    metadataUsed: Number(m[2]),
    metadataTotal: Number(m[3]),
    dataUsed: Number(m[4]),
    dataTotal: Number(m[5]),
  };
}

export class ThinPool implements PoolBackend {
  readonly kind = 'dm-thin' as const;
  readonly discardBeforeDelete = true;
  readonly poolName: string;
  created = false;
  readonly #fd: number;
  readonly #cfg: ThinPoolConfig;
  /** We made the pool (not dm.thinpooldev): we remove it at close. */
  readonly #ownsPool: boolean;
  #pool: DevNum = { major: 0, minor: 0 };
  #dataDevice: string | undefined;
  #dataLoopFile: string | undefined;
  #metadataDevice: string | undefined;
  #metadataLoopFile: string | undefined;
  #closed = false;

  private constructor(cfg: ThinPoolConfig) {
    this.#cfg = cfg;
    this.#fd = cfg.control;
    this.#ownsPool = cfg.settings.thinPoolDevice === undefined;
    this.poolName = cfg.settings.thinPoolDevice ?? `${cfg.prefix}-pool`;
    this.#dataDevice = cfg.settings.dataDevice;
    this.#metadataDevice = cfg.settings.metadataDevice;
  }

  /** Finds or makes the pool (moby's initDevmapper, the pool part). Closes `control` when it fails. */
  static async open(cfg: ThinPoolConfig): Promise<ThinPool> {
    const pool = new ThinPool(cfg);
    try {
      await pool.#open();
      return pool;
    } catch (err) {
      closeSync(cfg.control);
      throw err;
    }
  }

  get #loopDir(): string {
    return join(this.#cfg.home, 'devicemapper');
  }

  async #open(): Promise<void> {
    const exists = await this.#poolExists();
    if (!exists && !this.#ownsPool) {
      throw new OperationFailedError('starting devmapper', undefined, new Error(`the thin pool ${this.poolName} given with dm.thinpooldev does not exist`));
    }
    if (!exists) await this.#createPool();
    else if (this.#ownsPool) await this.#loadLoopbackInfo();
    const info = await dm.info(this.#fd, this.poolName);
    this.#pool = { major: info.major, minor: info.minor };
    debug('thin pool %s (%s) %s', this.poolName, majMin(this.#pool), this.created ? 'created' : 'found');
  }

  /** moby's thinPoolExists: absent, or present and a thin-pool (anything else is an error). */
  async #poolExists(): Promise<boolean> {
    const info = await dm.info(this.#fd, this.poolName);
    if (!info.exists) return false;
    const { targets } = await dm.status(this.#fd, this.poolName);
    if (targets[0]?.type !== 'thin-pool') {
      throw new OperationFailedError('starting devmapper', undefined, new Error(`device ${this.poolName} is not a thin pool`));
    }
    return true;
  }

  async #createPool(): Promise<void> {
    const s = this.#cfg.settings;
    const loops: LoopDevice[] = [];
    try {
      let data: DevNum;
      let meta: DevNum;
      if (s.dataDevice !== undefined && s.metadataDevice !== undefined) {
        data = await devNumOf(s.dataDevice);
        meta = await devNumOf(s.metadataDevice);
      } else {
        const dataImage = await ensureImage(this.#loopDir, 'data', s.loopDataSize);
        const metaImage = await ensureImage(this.#loopDir, 'metadata', s.loopMetadataSize);
        this.created = dataImage.created || metaImage.created;
        const dataLoop = await attachLoop(dataImage.path, { autoclear: true });
        loops.push(dataLoop);
        const metaLoop = await attachLoop(metaImage.path, { autoclear: true });
        loops.push(metaLoop);
        this.#dataDevice = dataLoop.path;
        this.#dataLoopFile = dataImage.path;
        this.#metadataDevice = metaLoop.path;
        this.#metadataLoopFile = metaImage.path;
        data = await devNumOf(dataLoop.path);
        meta = await devNumOf(metaLoop.path);
      }
      const dataSize = await blockDeviceSize(data.major, data.minor);
      await dm.create(this.#fd, this.poolName);
      try {
        await dm.load(this.#fd, this.poolName, [this.#poolTable(meta, data, dataSize)]);
        await dm.resume(this.#fd, this.poolName);
      } catch (err) {
        await dm.remove(this.#fd, this.poolName).catch(() => undefined);
        throw new OperationFailedError(`creating the thin pool ${this.poolName}`, undefined, err);
      }
    } finally {
      // AUTOCLEAR: the pool holds the loop devices now; they go when it goes
      for (const l of loops) l.close();
    }
  }

  #poolTable(meta: DevNum, data: DevNum, dataSize: number): DmTarget {
    const blockSectors = this.#cfg.settings.blockSize / SECTOR;
    return {
      start: 0,
      length: Math.floor(dataSize / SECTOR),
      type: 'thin-pool',
      params: `${majMin(meta)} ${majMin(data)} ${blockSectors} ${LOW_WATER_MARK} 1 skip_block_zeroing`,
    };
  }

  /** A pool of ours found active (left by an earlier run): which loop files are behind it. */
  async #loadLoopbackInfo(): Promise<void> {
    const { targets } = await dm.table(this.#fd, this.poolName);
    const [metaText, dataText] = (targets[0]?.params ?? '').trim().split(/\s+/);
    const meta = parseMajMin(metaText);
    const data = parseMajMin(dataText);
    for (const [file, want, set] of [
      ['data', data, (dev: string, f: string) => ((this.#dataDevice = dev), (this.#dataLoopFile = f))],
      ['metadata', meta, (dev: string, f: string) => ((this.#metadataDevice = dev), (this.#metadataLoopFile = f))],
    ] as const) {
      if (want === undefined) continue;
      const path = join(this.#loopDir, file);
      for (const loop of await findLoopsByBackingFile(path)) {
        const n = await devNumOf(loop.path);
        if (n.major === want.major && n.minor === want.minor) set(loop.path, path);
      }
    }
  }

  files(): PoolFiles {
    const out: PoolFiles = {};
    if (this.#dataDevice !== undefined) out.dataFile = this.#dataDevice;
    if (this.#metadataDevice !== undefined) out.metadataFile = this.#metadataDevice;
    if (this.#dataLoopFile !== undefined) out.dataLoopFile = this.#dataLoopFile;
    if (this.#metadataLoopFile !== undefined) out.metadataLoopFile = this.#metadataLoopFile;
    return out;
  }

  async usage(): Promise<PoolUsage> {
    const [target] = (await dm.status(this.#fd, this.poolName)).targets;
    if (target === undefined) throw new Error(`devmapper: the pool ${this.poolName} has no table`);
    const s = parsePoolStatus(target.params);
    return {
      transactionId: s.transactionId,
      dataUsed: s.dataUsed,
      dataTotal: s.dataTotal,
      dataBlockSize: s.dataTotal === 0 ? this.#cfg.settings.blockSize : Math.floor(target.length / s.dataTotal) * SECTOR,
      metadataUsed: s.metadataUsed,
      metadataTotal: s.metadataTotal,
      metadataBlockSize: 4096,
    };
  }

  async underlyingFree(): Promise<{ data?: number; metadata?: number }> {
    const free = async (file: string | undefined): Promise<number | undefined> => {
      if (file === undefined) return undefined;
      const st = await statfs(file).catch(() => undefined);
      return st === undefined ? undefined : st.bfree * st.bsize;
    };
    const out: { data?: number; metadata?: number } = {};
    const data = await free(this.#dataLoopFile);
    const metadata = await free(this.#metadataLoopFile);
    if (data !== undefined) out.data = data;
    if (metadata !== undefined) out.metadata = metadata;
    return out;
  }

  async #message(text: string): Promise<void> {
    await dm.message(this.#fd, this.poolName, 0, text);
  }

  setTransactionId(from: number, to: number): Promise<void> {
    return this.#message(`set_transaction_id ${from} ${to}`);
  }

  createThin(id: number): Promise<void> {
    return this.#message(`create_thin ${id}`);
  }

  async createSnap(id: number, origin: DeviceRef): Promise<void> {
    let info = await dm.info(this.#fd, origin.name);
    let redefer = false;
    if (info.exists && info.deferredRemove) {
      // a snapshot of a device that waits to go: keep it while we copy, let it go after (moby's takeSnapshot)
      try {
        await this.cancelDeferredRemoval(origin);
        redefer = true;
      } catch (err) {
        if (errorCode(err) !== 'ENXIO') throw err;
      }
      info = await dm.info(this.#fd, origin.name);
    }
    try {
      if (!info.exists) {
        await this.#message(`create_snap ${id} ${origin.id}`);
        return;
      }
      // an active origin must be suspended (flushed, its filesystem frozen) while the pool shares its blocks
      await dm.suspend(this.#fd, origin.name);
      try {
        await this.#message(`create_snap ${id} ${origin.id}`);
      } finally {
        await dm.resume(this.#fd, origin.name);
      }
    } finally {
      if (redefer) await this.deactivate(origin, true).catch((err: unknown) => debug('deferring the removal of %s again: %s', origin.name, err));
    }
  }

  deleteThin(id: number): Promise<void> {
    return this.#message(`delete ${id}`);
  }

  async activate(dev: DeviceRef, size: number): Promise<ActiveDevice> {
    let info = await dm.info(this.#fd, dev.name);
    if (info.exists && info.deferredRemove) {
      await this.cancelDeferredRemoval(dev).catch((err: unknown) => {
        if (errorCode(err) !== 'ENXIO') throw err;
      });
      info = await dm.info(this.#fd, dev.name);
    }
    if (!info.exists) {
      info = await dm.create(this.#fd, dev.name);
      try {
        await dm.load(this.#fd, dev.name, [{ start: 0, length: Math.floor(size / SECTOR), type: 'thin', params: `${majMin(this.#pool)} ${dev.id}` }]);
        await dm.resume(this.#fd, dev.name);
      } catch (err) {
        await dm.remove(this.#fd, dev.name).catch(() => undefined);
        throw err;
      }
      info = await dm.info(this.#fd, dev.name);
    }
    const path = `/dev/dm-${info.minor}`;
    // devtmpfs makes the node as the device is added; give a slow guest a moment all the same
    for (let i = 0; i < 100 && !existsSync(path); i++) await sleep(10);
    if (!existsSync(path)) {
      throw new OperationFailedError(`activating ${dev.name}`, undefined, new Error(`${path} did not appear (is /dev a devtmpfs?)`));
    }
    return { path, kernelName: `dm-${info.minor}`, release: async () => undefined };
  }

  async deactivate(dev: DeviceRef, deferred: boolean): Promise<void> {
    const info = await dm.info(this.#fd, dev.name);
    if (!info.exists) return;
    try {
      if (deferred) {
        await dm.remove(this.#fd, dev.name, { deferred: true });
        return;
      }
      const retries = this.#cfg.removeRetries ?? 200;
      for (let attempt = 0; ; attempt++) {
        try {
          await dm.remove(this.#fd, dev.name);
          return;
        } catch (err) {
          // EBUSY may be transient (a closing opener, udev elsewhere probing): moby waits 100 ms and tries again
          if (errorCode(err) !== 'EBUSY' || attempt >= retries) throw err;
          await sleep(100);
        }
      }
    } catch (err) {
      if (errorCode(err) === 'ENXIO') return;
      throw err;
    }
  }

  async state(dev: DeviceRef): Promise<DeviceState> {
    const info = await dm.info(this.#fd, dev.name);
    return { exists: info.exists, busy: info.open > 0, deferredRemove: info.deferredRemove };
  }

  async cancelDeferredRemoval(dev: DeviceRef): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await dm.message(this.#fd, dev.name, 0, '@cancel_deferred_remove');
        return;
      } catch (err) {
        if (errorCode(err) !== 'EBUSY' || attempt >= 100) throw err;
        await sleep(100);
      }
    }
  }

  async deviceStatus(dev: DeviceRef): Promise<DeviceStatus> {
    const [target] = (await dm.status(this.#fd, dev.name)).targets;
    const m = /^(\d+) (\d+)/.exec(target?.params ?? '');
    return {
      sizeInSectors: target?.length ?? 0,
      mappedSectors: m === null ? 0 : Number(m[1]),
      highestMappedSector: m === null ? 0 : Number(m[2]),
    };
  }

  async discard(active: ActiveDevice): Promise<void> {
    // moby's BlockDeviceDiscard: the whole device, then a flush (without it the removal that
    // follows could meet EBUSY). Opened exclusively, as blkdiscard(8) does: a device that anything
    // has mounted or claimed (EBUSY) is never discarded.
    const device = await open(active.path, fsConstants.O_WRONLY | fsConstants.O_EXCL);
    try {
      await blkDiscard(device.fd, 0, await blkGetSize64(device.fd));
      await device.sync();
    } catch (err) {
      throw new OperationFailedError(`discarding the blocks of ${active.path}`, undefined, err);
    } finally {
      await device.close();
    }
  }

  async deactivateAll(): Promise<number> {
    let busy = 0;
    for (const d of await dm.listDevices(this.#fd)) {
      if (d.name === this.poolName || !d.name.startsWith(`${this.#cfg.prefix}-`)) continue;
      try {
        await this.deactivate({ name: d.name, id: -1 }, true);
        if ((await dm.info(this.#fd, d.name)).exists) busy++;
      } catch (err) {
        debug('deactivating %s: %s', d.name, err);
        busy++;
      }
    }
    return busy;
  }

  async resize(bytes: number): Promise<void> {
    if (this.#dataLoopFile === undefined || this.#dataDevice === undefined || this.#metadataDevice === undefined) {
      throw new OperationFailedError('resizing the thin pool', undefined, new Error('only a pool on loop files can be resized by the driver'));
    }
    const { size } = await stat(this.#dataLoopFile);
    if (size > bytes) throw new OperationFailedError('resizing the thin pool', undefined, new Error(`can't shrink the data file ${this.#dataLoopFile} (${size} bytes) to ${bytes}`));
    await ensureImage(this.#loopDir, 'data', bytes);
    await refreshLoopCapacity(this.#dataDevice);
    const data = await devNumOf(this.#dataDevice);
    const meta = await devNumOf(this.#metadataDevice);
    await dm.suspend(this.#fd, this.poolName);
    try {
      await dm.load(this.#fd, this.poolName, [this.#poolTable(meta, data, await blockDeviceSize(data.major, data.minor))]);
    } finally {
      await dm.resume(this.#fd, this.poolName);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (this.#ownsPool && (await dm.info(this.#fd, this.poolName)).exists) {
        let removed = true;
        await dm.remove(this.#fd, this.poolName).catch((err: unknown) => {
          // thin devices still busy elsewhere: moby leaves the pool too
          debug('leaving the pool %s: %s', this.poolName, err);
          removed = false;
        });
        const loops = [
          { device: this.#dataDevice, file: this.#dataLoopFile },
          { device: this.#metadataDevice, file: this.#metadataLoopFile },
        ].filter((l): l is { device: string; file: string } => l.device !== undefined && l.file !== undefined);
        if (removed) await waitLoopsReleased(loops);
      }
    } finally {
      closeSync(this.#fd);
    }
  }
}

