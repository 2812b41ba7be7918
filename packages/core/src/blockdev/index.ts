/** Public surface of blockdev/: re-exports only. */
export {
  attachLoop,
  detachLoop,
  findLoopsByBackingFile,
  isLoopDevicePath,
  listLoops,
  refreshLoopCapacity,
  type AttachLoopOptions,
  type LoopDevice,
  type LoopInfo,
} from './loop.js';
export { mkfs, resizeFs, type MkfsOptions, type MkfsType, type ResizeFsOptions } from './mkfs.js';
export { createSparseFile, type SparseFileOptions } from './sparse.js';
export { fsUuid } from './uuid.js';
export { ToolError } from './tools.js';
