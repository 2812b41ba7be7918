/**
 * Mounting: classic mount(2)/umount2(2) and the new mount API (fsopen, fsconfig, fsmount,
 * move_mount, open_tree, mount_setattr). All return Promises: a mount may block. File descriptors
 * are plain numbers; close them with fs.closeSync. Failures of fsconfig and fsmount carry the
 * kernel's fs_context messages in `fsContext` (and in the message).
 */
import { binding, type PathLike } from './binding.js';
import { assertObject } from './errors.js';

/** mount_setattr's struct mount_attr. `usernsFd` with MOUNT_ATTR.IDMAP in attrSet makes an idmapped mount. */
export interface MountAttr {
  attrSet?: number;
  attrClr?: number;
  /** MS.PRIVATE, MS.SLAVE, MS.SHARED or MS.UNBINDABLE; 0 leaves it. */
  propagation?: number;
  usernsFd?: number;
}

/**
 * mount(2). `data` must be shorter than a page (4096 bytes on x86-64): longer data is refused with
 * a RangeError, because the kernel would silently cut it. On failure `path` is the source (or
 * the target when the source is null) and `dest` the target.
 */
export function mount(
  source: PathLike | null,
  target: PathLike,
  fstype: string | null,
  flags: number,
  data?: string | null,
): Promise<void> {
  return binding.mount(source, target, fstype, flags, data);
}

/** umount2(2); MNT.DETACH for a lazy unmount. */
export function umount2(target: PathLike, flags?: number): Promise<void> {
  return binding.umount2(target, flags);
}

/** Opens a filesystem context: `fsopen('overlay')`. Default flags FSOPEN.CLOEXEC. */
export function fsopen(fsName: string, flags?: number): Promise<number> {
  return binding.fsopen(fsName, flags);
}

/** FSCONFIG_SET_STRING, e.g. ('lowerdir+', '/layers/1'), one lower per call on overlayfs (6.8+). */
export function fsconfigSetString(fsfd: number, key: string, value: string): Promise<void> {
  return binding.fsconfigSetString(fsfd, key, value);
}

/** FSCONFIG_SET_FLAG, e.g. ('ro'). */
export function fsconfigSetFlag(fsfd: number, key: string): Promise<void> {
  return binding.fsconfigSetFlag(fsfd, key);
}

/** FSCONFIG_SET_FD, e.g. ('lowerdir+', dirFd) or ('source', blockDevFd). */
export function fsconfigSetFd(fsfd: number, key: string, fd: number): Promise<void> {
  return binding.fsconfigSetFd(fsfd, key, fd);
}

/** FSCONFIG_CMD_CREATE: creates the superblock. */
export function fsconfigCreate(fsfd: number): Promise<void> {
  return binding.fsconfigCreate(fsfd);
}

/** Turns a created context into a detached mount; returns its fd. Default flags FSMOUNT.CLOEXEC; attrFlags are MOUNT_ATTR.*. */
export function fsmount(fsfd: number, flags?: number, attrFlags?: number): Promise<number> {
  return binding.fsmount(fsfd, flags, attrFlags);
}

/** Attaches (or moves) a mount: `moveMount(mountFd, '', AT.FDCWD, '/target', MOVE_MOUNT.F_EMPTY_PATH)`. */
export function moveMount(fromDirfd: number, fromPath: PathLike, toDirfd: number, toPath: PathLike, flags?: number): Promise<void> {
  return binding.moveMount(fromDirfd, fromPath, toDirfd, toPath, flags);
}

/** open_tree(2); OPEN_TREE.CLONE makes a detached copy (a bind mount to attach with moveMount). Default flags OPEN_TREE.CLOEXEC. */
export function openTree(dirfd: number, path: PathLike, flags?: number): Promise<number> {
  return binding.openTree(dirfd, path, flags);
}

/** mount_setattr(2): change mount attributes, propagation, or make an idmapped mount. `flags`: AT.EMPTY_PATH, AT.RECURSIVE... */
export function mountSetattr(dirfd: number, path: PathLike, flags: number, attr: MountAttr): Promise<void> {
  assertObject(attr, 'attr');
  return binding.mountSetattr(dirfd, path, flags, attr.attrSet, attr.attrClr, attr.propagation, attr.usernsFd);
}
