/** @graphdriver/overlay public surface: re-exports only. `init` and `name` follow core's driver package convention. */
export { init, name, OverlayDriver, ROOT_MODE, type OverlayFeatures } from './driver.js';
export { overlayOptions, MOUNT_APIS, type MountApi, type OverlayOptions } from './options.js';
export { generateLinkId, isLinkName, LINK_ID_LENGTH } from './link-id.js';
export { repairLinks, type LinkRepairReport } from './links.js';
export { MAX_LOWERS, DRIVER_NAME, Layout, type LayerLocation } from './layout.js';
export { parseMountOptions, type ParsedMountOptions } from './mount-options.js';
export { classicData, classicFormFor, MOUNT_DATA_MAX } from './mount-classic.js';
export type { MountMethod, OverlayMount } from './mount-request.js';
