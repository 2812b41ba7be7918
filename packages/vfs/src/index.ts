/** @graphdriver/vfs public surface: re-exports only. `init` and `name` follow core's driver package convention. */
export { init, name, VfsDriver, ROOT_MODE } from './driver.js';
export { copyTree, type CopyTreeOptions, type CopyTreeStats } from './copy.js';
export { vfsOptions, type VfsOptions } from './options.js';
