/**
 * The contract between the DeviceSet and a pool backend: what a thin pool does for it (device ids
 * made empty or as snapshots, deleted, a transaction id, usage figures) and how its devices are
 * activated as block devices. Two backends implement it: dm-thin (thin.ts, the kernel's thin-pool
 * target through the native dm ioctls) and the reflink pool (reflink.ts, sparse image files cloned
 * with FICLONE, activated as loop devices). Errors that the DeviceSet acts on carry errno codes as
 * the kernel gives them: EEXIST (the device id is taken), EBUSY (the device is in use), ENXIO (no
 * such active device).
 */

export type BackendKind = 'dm-thin' | 'reflink';

/** The pool's usage as dm-thin's status line gives it, in blocks of the stated sizes. */
export interface PoolUsage {
  transactionId: number;
  dataUsed: number;
  dataTotal: number;
  /** Bytes per data block. */
  dataBlockSize: number;
  metadataUsed: number;
  metadataTotal: number;
  /** Bytes per metadata block (4096 in dm-thin). */
  metadataBlockSize: number;
}

/** The files and devices behind the pool, for status(). */
export interface PoolFiles {
  dataFile?: string;
  dataLoopFile?: string;
  metadataFile?: string;
  metadataLoopFile?: string;
}

/** An activated device, held until release(): it cannot disappear between activation and its use. */
export interface ActiveDevice {
  /** The block device node (`/dev/dm-N`, `/dev/loopN`). */
  readonly path: string;
  /** The kernel's name for it, as in /sys/block and /sys/fs/xfs (`dm-N`, `loopN`). */
  readonly kernelName: string;
  release(): Promise<void>;
}

export interface DeviceState {
  /** The device is active (a dm device / a loop device bound to its image). */
  exists: boolean;
  /** Something holds it open or mounted. */
  busy: boolean;
  /** Deactivation was asked for and waits for its last user. */
  deferredRemove: boolean;
}

export interface DeviceStatus {
  sizeInSectors: number;
  mappedSectors: number;
  highestMappedSector: number;
}

/** A device of the pool by both of its names: the device-mapper name and the pool's device id. */
export interface DeviceRef {
  name: string;
  id: number;
}

export interface PoolBackend {
  readonly kind: BackendKind;
  /** The pool's name in status(): the dm device, or `<prefix>-pool` for the reflink pool. */
  readonly poolName: string;
  /** This start made the pool's data anew: there is no pool metadata to load. */
  readonly created: boolean;
  /** Discarding a device's blocks before deleting it frees pool space (dm-thin); the reflink pool frees them by deleting the image. */
  readonly discardBeforeDelete: boolean;
  files(): PoolFiles;
  usage(): Promise<PoolUsage>;
  /** Free bytes of the filesystems under loop files, which cap what the pool can really take. */
  underlyingFree(): Promise<{ data?: number; metadata?: number }>;
  /** dm-thin `set_transaction_id from to`: fails unless the pool's id is `from`. */
  setTransactionId(from: number, to: number): Promise<void>;
  /** An empty thin device (`create_thin`); EEXIST when the id is taken. */
  createThin(id: number): Promise<void>;
  /** A snapshot of `origin` (`create_snap`), flushing an active origin first; EEXIST when the id is taken. */
  createSnap(id: number, origin: DeviceRef): Promise<void>;
  /** Deletes the device from the pool (`delete`); EBUSY while it is active. */
  deleteThin(id: number): Promise<void>;
  /** Makes the device available as a block device of `size` bytes. */
  activate(dev: DeviceRef, size: number): Promise<ActiveDevice>;
  /** Deactivates it; `deferred`: when it is busy, as soon as its last user lets go (else EBUSY). ENXIO-free. */
  deactivate(dev: DeviceRef, deferred: boolean): Promise<void>;
  state(dev: DeviceRef): Promise<DeviceState>;
  /** Takes back a pending deferred removal (dm's `@cancel_deferred_remove`). */
  cancelDeferredRemoval(dev: DeviceRef): Promise<void>;
  deviceStatus(dev: DeviceRef, size: number): Promise<DeviceStatus>;
  /** Discards every block of an active, unused device. */
  discard(active: ActiveDevice): Promise<void>;
  /** Deactivates every device of this pool that is still active (deferred where busy). Returns how many were left busy. */
  deactivateAll(): Promise<number>;
  /** Grows the pool's data to `bytes` (loop-file pools only). */
  resize(bytes: number): Promise<void>;
  /** Lets go of the pool: deactivates it if this driver made it. */
  close(): Promise<void>;
}

/** An error with an errno code, for conditions a backend finds itself (the kernel's own come as native errors). */
export function errnoError(code: 'EBUSY' | 'EEXIST' | 'ENXIO' | 'ENOENT', message: string): Error & { code: string } {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}
