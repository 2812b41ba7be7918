/** @graphdriver/layer0 public surface: re-exports only. `init` and `name` follow core's driver package convention. */
export { init, name, Layer0Driver, type ContainerVolume } from './driver.js';
export { layer0Options, type Layer0Options } from './options.js';
export { Layer0Layout, DRIVER_NAME, MOUNT_SUFFIX, SAVED_UPPER, OVERLAY_DIR, VOLUMES_DIR } from './layout.js';
export {
  CONTAINER_LABEL,
  IMAGE_LABEL,
  MAX_VOLUME_NAME_LENGTH,
  isValidVolumeName,
  validateVolumeName,
} from './naming.js';
export type {
  Volume,
  VolumeCallOptions,
  VolumeDriver,
  VolumeDriverContext,
  VolumeDriverFactory,
  VolumeDriverType,
  VolumeLocator,
  VolumeQuery,
  VolumeSpec,
} from './volume.js';
export { registerVolumeDriver, unregisterVolumeDriver, knownVolumeDrivers } from './volume-registry.js';
export { LoopbackVolumeDriver, DEFAULT_LOOPBACK_SIZE } from './loopback.js';
export { DirVolumeDriver } from './dir.js';
