/**
 * The flag constants, as the addon read them from the C headers of the machine it was built on
 * (open flags differ between architectures, so they are never hard-coded here). Each object is
 * frozen and typed with its names.
 */
import { binding } from './binding.js';

type Names<K extends string> = Readonly<Record<K, number>>;

function group<K extends string>(name: string, keys: readonly K[]): Names<K> {
  const raw = binding.constants[name];
  if (raw === undefined) throw new Error(`@graphdriver/native: the addon has no constants ${name}`);
  for (const key of keys) {
    if (typeof raw[key] !== 'number') throw new Error(`@graphdriver/native: the addon has no constant ${name}.${key}`);
  }
  return Object.freeze({ ...raw }) as Names<K>;
}

/** open(2) / openat2 flags. */
export const O = group('O', [
  'RDONLY', 'WRONLY', 'RDWR', 'CREAT', 'EXCL', 'TRUNC', 'APPEND', 'NOFOLLOW', 'DIRECTORY', 'CLOEXEC', 'PATH',
  'NONBLOCK', 'NOCTTY', 'TMPFILE', 'NOATIME', 'DIRECT', 'SYNC', 'DSYNC', 'LARGEFILE',
] as const);

/** openat2's `how.resolve`. */
export const RESOLVE = group('RESOLVE', ['NO_XDEV', 'NO_MAGICLINKS', 'NO_SYMLINKS', 'BENEATH', 'IN_ROOT', 'CACHED'] as const);

/** *at flags and AT.FDCWD. */
export const AT = group('AT', [
  'FDCWD', 'SYMLINK_NOFOLLOW', 'SYMLINK_FOLLOW', 'REMOVEDIR', 'EMPTY_PATH', 'RECURSIVE', 'NO_AUTOMOUNT',
] as const);

/** File type and mode bits (st_mode, mknod). */
export const S = group('S', [
  'IFMT', 'IFREG', 'IFDIR', 'IFLNK', 'IFCHR', 'IFBLK', 'IFIFO', 'IFSOCK', 'ISUID', 'ISGID', 'ISVTX',
] as const);

/** renameat2 flags. */
export const RENAME = group('RENAME', ['NOREPLACE', 'EXCHANGE', 'WHITEOUT'] as const);

/** getdents d_type values. */
export const DT = group('DT', ['UNKNOWN', 'FIFO', 'CHR', 'DIR', 'BLK', 'REG', 'LNK', 'SOCK', 'WHT'] as const);

/** Special `nsec` values for utimensat: set to now, or leave unchanged. */
export const UTIME = group('UTIME', ['NOW', 'OMIT'] as const);

/** setxattr flags. */
export const XATTR = group('XATTR', ['CREATE', 'REPLACE'] as const);

/** struct fsxattr fsx_xflags (FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR). */
export const FS_XFLAG = group('FS_XFLAG', [
  'REALTIME', 'PREALLOC', 'IMMUTABLE', 'APPEND', 'SYNC', 'NOATIME', 'NODUMP', 'RTINHERIT', 'PROJINHERIT',
  'NOSYMLINKS', 'EXTSIZE', 'EXTSZINHERIT', 'NODEFRAG', 'FILESTREAM', 'DAX', 'COWEXTSIZE', 'HASATTR',
] as const);

/** mount(2) flags. */
export const MS = group('MS', [
  'RDONLY', 'NOSUID', 'NODEV', 'NOEXEC', 'SYNCHRONOUS', 'REMOUNT', 'MANDLOCK', 'DIRSYNC', 'NOSYMFOLLOW', 'NOATIME',
  'NODIRATIME', 'BIND', 'MOVE', 'REC', 'SILENT', 'POSIXACL', 'UNBINDABLE', 'PRIVATE', 'SLAVE', 'SHARED', 'RELATIME',
  'STRICTATIME', 'LAZYTIME',
] as const);

/** umount2 flags. */
export const MNT = group('MNT', ['FORCE', 'DETACH', 'EXPIRE', 'UMOUNT_NOFOLLOW'] as const);

/** fsopen flags. */
export const FSOPEN = group('FSOPEN', ['CLOEXEC'] as const);

/** fsmount flags. */
export const FSMOUNT = group('FSMOUNT', ['CLOEXEC'] as const);

/** Mount attributes: fsmount's attrFlags and mount_setattr's attrSet/attrClr. */
export const MOUNT_ATTR = group('MOUNT_ATTR', [
  'RDONLY', 'NOSUID', 'NODEV', 'NOEXEC', '_ATIME', 'RELATIME', 'NOATIME', 'STRICTATIME', 'NODIRATIME', 'IDMAP', 'NOSYMFOLLOW',
] as const);

/** move_mount flags (BENEATH: Linux 6.5). */
export const MOVE_MOUNT = group('MOVE_MOUNT', [
  'F_SYMLINKS', 'F_AUTOMOUNTS', 'F_EMPTY_PATH', 'T_SYMLINKS', 'T_AUTOMOUNTS', 'T_EMPTY_PATH', 'SET_GROUP', 'BENEATH',
] as const);

/** open_tree flags. */
export const OPEN_TREE = group('OPEN_TREE', ['CLONE', 'CLOEXEC'] as const);

/** Loop device flags (LOOP_CONFIGURE, LOOP_GET_STATUS64). */
export const LO_FLAGS = group('LO_FLAGS', ['READ_ONLY', 'AUTOCLEAR', 'PARTSCAN', 'DIRECT_IO'] as const);

/** Quota format ids (Q_GETFMT). */
export const QFMT = group('QFMT', ['VFS_OLD', 'VFS_V0', 'OCFS2', 'VFS_V1'] as const);
