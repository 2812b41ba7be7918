/** @graphdriver/devmapper public surface: re-exports only. `init` and `name` follow core's driver package convention. */
export { init, name, DevmapperDriver, ROOTFS_MODE, type DevmapperStartExtras } from './driver.js';
export {
  DeviceSet,
  type DeviceSetHooks,
  type DeviceSetOptions,
  type DeviceSetStatus,
  type DeviceMetadata,
  type DevStatus,
  type DiskUsage,
  type MountDeviceOptions,
  type TransactionStep,
} from './deviceset.js';
export { dmOptions, resolveDmOptions, parseMinFreeSpace, type DmSettings, type ParsedDmOptions, type BackendChoice, type FsType } from './options.js';
export { MetadataStore, MAX_DEVICE_ID, type DevInfo, type DeviceSetMeta, type OpenTransaction } from './metadata.js';
export { deviceName, devicePrefix, poolName, deviceKey } from './naming.js';
export { statusRows } from './status.js';
export type { BackendKind, PoolBackend, PoolUsage, PoolFiles, ActiveDevice, DeviceState, DeviceStatus, DeviceRef } from './pool/backend.js';
export { ThinPool, parsePoolStatus, type ThinPoolConfig } from './pool/thin.js';
export { ReflinkPool, type ReflinkPoolConfig } from './pool/reflink.js';
