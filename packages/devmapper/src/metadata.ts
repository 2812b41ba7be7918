/**
 * The DeviceSet's metadata on disk, in moby's format (`<home>/metadata/`):
 *  - one JSON file per device, named after its id (`base` for the base device):
 *    `{"device_id":1,"size":10737418240,"transaction_id":1,"initialized":true,"deleted":false}`;
 *  - `deviceset-metadata`: `{"next_device_id":N,"BaseDeviceUUID":"...","BaseDeviceFilesystem":"ext4"}`
 *    (plus `pool_backend`, which moby ignores, so that a store made on the reflink pool is never
 *    taken for a dm-thin one);
 *  - `transaction-metadata`: the open transaction, `{"open_transaction_id":N,"device_hash":"...","device_id":N}`.
 * Every write is a temp file in the same directory (`.tmp*`, skipped when loading), fsync, rename,
 * and an fsync of the directory, so that a crash leaves either the old or the new file.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { errorCode, OperationFailedError, writeFileAtomic } from '@graphdriver/core';
import { DEVICE_SET_META_FILE, deviceKey, hashOfMetadataFile, TRANSACTION_META_FILE } from './naming.js';

const debug = debuglog('graphdriver:devmapper');

/** moby's 24-bit device id space (the thin pool's limit). */
export const MAX_DEVICE_ID = 0xffffff;

/** One device as moby's devInfo: `hash` is the layer id ('' for the base device), not stored in the file. */
export interface DevInfo {
  hash: string;
  deviceId: number;
  /** Size of the device (and its filesystem) in bytes. */
  size: number;
  /** The pool transaction that made it. */
  transactionId: number;
  /** The base device: its filesystem was made. Snapshots are registered initialized: false, as in moby. */
  initialized: boolean;
  /** Marked for deferred deletion: gone for users, still in the pool. */
  deleted: boolean;
}

export interface DeviceSetMeta {
  nextDeviceId: number;
  baseDeviceUuid: string;
  baseDeviceFilesystem: string;
  /** `dm-thin` or `reflink`; absent in stores made by moby (which are dm-thin). */
  poolBackend: string | undefined;
}

export interface OpenTransaction {
  openTransactionId: number;
  deviceHash: string;
  deviceId: number;
}

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export class MetadataStore {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  deviceFile(hash: string): string {
    return join(this.dir, deviceKey(hash));
  }

  get deviceSetFile(): string {
    return join(this.dir, DEVICE_SET_META_FILE);
  }

  get transactionFile(): string {
    return join(this.dir, TRANSACTION_META_FILE);
  }

  /** temp file + fsync + rename + directory fsync. */
  async writeAtomic(path: string, data: string): Promise<void> {
    try {
      await writeFileAtomic(path, data);
    } catch (err) {
      throw new OperationFailedError(`writing devmapper metadata ${path}`, undefined, err);
    }
  }

  async saveDevice(info: DevInfo): Promise<void> {
    const json = JSON.stringify({
      device_id: info.deviceId,
      size: info.size,
      transaction_id: info.transactionId,
      initialized: info.initialized,
      deleted: info.deleted,
    });
    await this.writeAtomic(this.deviceFile(info.hash), json);
  }

  /** The device's metadata, or undefined when there is no file or it is unreadable (moby's loadMetadata logs and skips). */
  async loadDevice(hash: string): Promise<DevInfo | undefined> {
    let text: string;
    try {
      text = await readFile(this.deviceFile(hash), 'utf8');
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') debug('reading metadata of %s: %s', hash, err);
      return undefined;
    }
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      debug('metadata of %s is not JSON: %s', hash, err);
      return undefined;
    }
    const id = raw.device_id;
    if (!isUint(id) || id > MAX_DEVICE_ID) {
      debug('ignoring metadata of %s: invalid device_id %o', hash, id);
      return undefined;
    }
    return {
      hash,
      deviceId: id,
      size: isUint(raw.size) ? raw.size : 0,
      transactionId: isUint(raw.transaction_id) ? raw.transaction_id : 0,
      initialized: raw.initialized === true,
      deleted: raw.deleted === true,
    };
  }

  async removeDevice(hash: string): Promise<void> {
    try {
      await rm(this.deviceFile(hash), { force: true });
    } catch (err) {
      throw new OperationFailedError(`removing the metadata file ${this.deviceFile(hash)}`, hash === '' ? undefined : hash, err);
    }
  }

  /** The hashes of every device file in the directory. */
  async listDevices(): Promise<string[]> {
    const out: string[] = [];
    for (const entry of await readdir(this.dir, { withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const hash = hashOfMetadataFile(entry.name);
      if (hash !== undefined) out.push(hash);
    }
    return out;
  }

  async loadDeviceSet(): Promise<Partial<DeviceSetMeta>> {
    let text: string;
    try {
      text = await readFile(this.deviceSetFile, 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return {};
      throw new OperationFailedError(`reading ${this.deviceSetFile}`, undefined, err);
    }
    const raw = JSON.parse(text) as Record<string, unknown>;
    const out: Partial<DeviceSetMeta> = {};
    if (isUint(raw.next_device_id)) out.nextDeviceId = raw.next_device_id;
    if (typeof raw.BaseDeviceUUID === 'string') out.baseDeviceUuid = raw.BaseDeviceUUID;
    if (typeof raw.BaseDeviceFilesystem === 'string') out.baseDeviceFilesystem = raw.BaseDeviceFilesystem;
    if (typeof raw.pool_backend === 'string') out.poolBackend = raw.pool_backend;
    return out;
  }

  async saveDeviceSet(meta: DeviceSetMeta): Promise<void> {
    const json: Record<string, unknown> = {
      next_device_id: meta.nextDeviceId,
      BaseDeviceUUID: meta.baseDeviceUuid,
      BaseDeviceFilesystem: meta.baseDeviceFilesystem,
    };
    if (meta.poolBackend !== undefined) json.pool_backend = meta.poolBackend;
    await this.writeAtomic(this.deviceSetFile, JSON.stringify(json));
  }

  async loadTransaction(): Promise<OpenTransaction | undefined> {
    let text: string;
    try {
      text = await readFile(this.transactionFile, 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw new OperationFailedError(`reading ${this.transactionFile}`, undefined, err);
    }
    const raw = JSON.parse(text) as Record<string, unknown>;
    return {
      openTransactionId: isUint(raw.open_transaction_id) ? raw.open_transaction_id : 0,
      deviceHash: typeof raw.device_hash === 'string' ? raw.device_hash : '',
      deviceId: isUint(raw.device_id) ? raw.device_id : 0,
    };
  }

  async saveTransaction(t: OpenTransaction): Promise<void> {
    await this.writeAtomic(
      this.transactionFile,
      JSON.stringify({ open_transaction_id: t.openTransactionId, device_hash: t.deviceHash, device_id: t.deviceId }),
    );
  }

  async removeTransaction(): Promise<void> {
    await rm(this.transactionFile, { force: true });
  }
}
