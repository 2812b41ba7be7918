/**
 * @graphdriver/cli public surface: the `graphdriver` command as a function (main), and the pieces a
 * program may want without the command line: reading images (docker save, OCI) and importing them
 * into a driver, applying a layer tar with verification, the record store, the OCI layout writer.
 */
export { main, mainHelp, version, EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED } from './main.js';
export { defaultRoot, openDriver, type CliIo } from './context.js';
export { UsageError, InvalidImageError, DigestMismatchError, StoreError } from './errors.js';
export { openImages, readImages, type OpenedImages, type OpenImagesOptions } from './image/open.js';
export { importImages, type ImportedImage, type ImportedLayer, type ImportOptions } from './image/import.js';
export type { ImagePlan, LayerPlan } from './image/plan.js';
export { hostPlatform, type Platform } from './image/oci.js';
export { writeOciLayout, type LayerToWrite, type WrittenImage } from './image/oci-writer.js';
export { applyLayer, type AppliedLayer, type ApplyOptions, type LayerInput } from './layer-apply.js';
export { Store, storeDir, type ImageRecord, type LayerRecord } from './store.js';
export { chainIds, layerIdOf, parseDigest, DigestStream } from './digest.js';
export { detectCompression, type Compression } from './decompress.js';
export { runDemo, type DemoOptions } from './demo.js';
