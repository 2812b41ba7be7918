/**
 * Project quotas: a directory's project id and PROJINHERIT flag (FS_IOC_FSGETXATTR/FSSETXATTR),
 * and quota records through quotactl(2) (target: the block device path) or quotactl_fd(2)
 * (target: an fd of any file on the filesystem, Linux 5.14+). Sizes are bytes (rounded up to the
 * kernel's 1 KiB quota blocks), inode counts are counts.
 */
import { binding } from './binding.js';
import { assertObject, invalidArgType } from './errors.js';

export interface FsXattr {
  /** FS_XFLAG.* */
  xflags: number;
  extsize: number;
  nextents: number;
  projid: number;
  cowextsize: number;
}

export type QuotaType = 'user' | 'group' | 'project';

export interface QuotaLimits {
  /** Bytes; 0 = no limit. */
  blockHardLimit: number;
  blockSoftLimit: number;
  /** Inodes; 0 = no limit. */
  inodeHardLimit: number;
  inodeSoftLimit: number;
}

export interface Quota extends QuotaLimits {
  /** Bytes in use. */
  spaceUsed: number;
  inodesUsed: number;
}

/** A block device path (quotactl) or an open fd on the filesystem (quotactl_fd). */
export type QuotaTarget = string | number;

const quotaTypes: Record<QuotaType, number> = { user: 0, group: 1, project: 2 };

function typeNumber(type: QuotaType): number {
  const n = quotaTypes[type];
  if (n === undefined) throw invalidArgType('type', "one of 'user', 'group', 'project'", type);
  return n;
}

/** FS_IOC_FSGETXATTR. */
export const fsGetXattr: (fd: number) => Promise<FsXattr> = binding.fsGetXattr;

/** FS_IOC_FSGETXATTR, change the fields given, FS_IOC_FSSETXATTR. */
export function fsSetXattr(fd: number, attr: { xflags?: number; projid?: number }): Promise<void> {
  assertObject(attr, 'attr');
  return binding.fsSetXattr(fd, attr.xflags, attr.projid);
}

/** Q_GETQUOTA. ESRCH when quotas of that type are off; ENOENT for a missing device path. */
export function quotaGet(target: QuotaTarget, type: QuotaType, id: number): Promise<Quota> {
  return binding.quotaGet(target, typeNumber(type), id);
}

/** Q_SETQUOTA of only the limits given (the record is read first, so the others keep their values). */
export function quotaSet(target: QuotaTarget, type: QuotaType, id: number, limits: Partial<QuotaLimits>): Promise<void> {
  assertObject(limits, 'limits');
  return binding.quotaSet(
    target,
    typeNumber(type),
    id,
    limits.blockHardLimit,
    limits.blockSoftLimit,
    limits.inodeHardLimit,
    limits.inodeSoftLimit,
  );
}

/** Q_GETFMT: the quota format id (QFMT.VFS_V1 for ext4's internal quota); ESRCH when quota is off for that type. */
export function quotaFormat(target: QuotaTarget, type: QuotaType): Promise<number> {
  return binding.quotaFormat(target, typeNumber(type));
}
