/**
 * The two whiteout formats of layer storage and the names that carry them.
 *
 * AUFS (and every layer tar): a deleted `name` is an empty file `.wh.name` beside it; an opaque
 * directory holds an empty file `.wh..wh..opq`; `.wh..wh.*` at the top of a branch is AUFS's own
 * metadata (`.wh..wh.plnk` keeps hard-link sources, `.wh..wh.aufs`, `.wh..wh.orph`).
 * overlayfs: a deleted name is a 0/0 character device, an opaque directory has the xattr
 * `<trusted|user>.overlay.opaque=y`. Everything in `trusted.overlay.*` / `user.overlay.*` is
 * overlay's private bookkeeping and never travels in a tar.
 */

export type WhiteoutFormat = 'aufs' | 'overlay';
export type OverlayXattrPrefix = 'trusted' | 'user';

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_LINK_DIR = '.wh..wh.plnk';
export const WHITEOUT_OPAQUE_DIR = '.wh..wh..opq';

/** The xattr overlayfs reads to make a directory opaque. */
export function overlayOpaqueXattr(prefix: OverlayXattrPrefix = 'trusted'): string {
  return `${prefix}.overlay.opaque`;
}

/** True for overlayfs's own xattrs (`trusted.overlay.*`, `user.overlay.*`): never packed, never applied. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** True for an overlayfs whiteout: a character device with device number 0/0. */
export function isOverlayWhiteout(isCharDevice: boolean, major: number, minor: number): boolean {
  return isCharDevice && major === 0 && minor === 0;
}

/** `a/b` -> `a/.wh.b`: the AUFS whiteout entry for a deleted path. */
export function whiteoutNameFor(relPath: string): string {
  const slash = relPath.lastIndexOf('/');
  return `${relPath.slice(0, slash + 1)}${WHITEOUT_PREFIX}${relPath.slice(slash + 1)}`;
}

/**
 * True for AUFS metadata that moby's aufs Diff leaves out (its exclude patterns `.wh..wh.*` and
 * `!.wh..wh..opq` match at the top of the branch only): `.wh..wh.plnk/...`, `.wh..wh.aufs`...
 */
export function isAufsMetadata(relPath: string): boolean {
  return relPath.startsWith(WHITEOUT_META_PREFIX) && relPath !== WHITEOUT_OPAQUE_DIR;
}
