/** Public surface of archive/: layer tars (pack, unpack, the entry writer) and whiteout names. */
export { pack, sortedNames } from './pack.js';
export { packUnion, unionChanges, unionFileBytes, type UnionEntry, type UnionWalk } from './pack-union.js';
export { unpack, type UnpackOptions } from './unpack.js';
export { LayerTarWriter, type PackOptions } from './writer.js';
export { AbortError } from './abort.js';
export { listTar, type TarEntry } from './tar-reader.js';
export type { EntryKind } from './header.js';
export type { PaxTime } from './pax.js';
export {
  WHITEOUT_PREFIX,
  WHITEOUT_META_PREFIX,
  WHITEOUT_LINK_DIR,
  WHITEOUT_OPAQUE_DIR,
  isOverlayXattr,
  overlayOpaqueXattr,
  whiteoutNameFor,
  type WhiteoutFormat,
  type OverlayXattrPrefix,
} from './whiteouts.js';
