/** @graphdriver/aufs public surface: re-exports only. `init` and `name` follow core's driver package convention. */
export { init, name, AufsDriver } from './driver.js';
export { aufsOptions, LIMIT_METHODS, MOUNT_BACKENDS, type AufsOptions, type LimitMethod, type MountBackendChoice } from './options.js';
export { DRIVER_NAME, FUSE_WORKDIR, Layout, ROOT_MODE, formatLayersFile, parseLayersFile } from './layout.js';
export { aufsMountData, aufsReadOnlyData, formatMountLabel, AUFS_XINO, type AufsDataOptions, type AufsMountData } from './kernel-aufs.js';
export { fuseOptions, DISABLE_OVL_WHITEOUT } from './fuse-backend.js';
export type { BranchMount, MountBackend } from './backend.js';
export { normalizeBranch, isUnionPrivateXattr, type NormalizeOptions, type NormalizeReport } from './branch.js';
export { MIN_LOOP_LIMIT, type AppliedLimit } from './limits.js';
