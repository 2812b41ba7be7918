/**
 * @graphdriver/native: the Linux syscalls Node lacks, for container layer storage. This file only
 * re-exports; each concern has its own module.
 */
export { NativeError, isNativeError } from './errors.js';
export {
  O, RESOLVE, AT, S, RENAME, DT, UTIME, XATTR, FS_XFLAG, MS, MNT, FSOPEN, FSMOUNT, MOUNT_ATTR, MOVE_MOUNT, OPEN_TREE,
  LO_FLAGS, QFMT,
} from './constants.js';
export * from './at.js';
export * from './xattr.js';
export * from './files.js';
export * from './mount.js';
export * from './loop.js';
export * from './blockdev.js';
export * from './quota.js';
export * from './dm.js';
