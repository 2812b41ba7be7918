/** Public surface of changes/: re-exports only. */
export { changesDirs, type ChangesDirsOptions } from './changes-dirs.js';
export { changesFromLayerDir, type LayerChangesOptions } from './layer-changes.js';
export { exportChanges, type ExportChangesOptions } from './export.js';
export { changesSize, type ChangesSizeOptions } from './size.js';
export { compareBytewise, sortChanges } from './paths.js';
