/**
 * Filesystem magic numbers: the table of `statfs(2)` `f_type` values drivers check their backing
 * filesystem against (overlay on overlay is refused, quotas need xfs/ext4...), with the names moby
 * shows as "Backing Filesystem" (daemon/internal/fstype and containers/storage drivers/driver_linux.go:
 * ext2/3/4 are "extfs", overlay is "overlayfs"), plus the filesystems that came later (bcachefs,
 * erofs, ntfs3...) and the pseudo filesystems a store root should never be on (proc, sysfs...).
 */
import { statfs } from 'node:fs/promises';

/** `f_type` values of statfs(2), from linux/magic.h and the filesystems' own sources. */
export const FsMagic = {
  Unsupported: 0x00000000,
  // moby's table (names as moby's FsNames)
  Aufs: 0x61756673,
  Btrfs: 0x9123683e,
  Cramfs: 0x28cd3d45,
  Ecryptfs: 0xf15f,
  Extfs: 0x0000ef53,
  F2fs: 0xf2f52010,
  Fuse: 0x65735546,
  Gpfs: 0x47504653,
  Jffs2: 0x000072b6,
  Jfs: 0x3153464a,
  Nfs: 0x00006969,
  Overlay: 0x794c7630,
  Ramfs: 0x858458f6,
  Reiserfs: 0x52654973,
  Smb: 0x0000517b,
  Squashfs: 0x73717368,
  Tmpfs: 0x01021994,
  Vxfs: 0xa501fcf5,
  Xfs: 0x58465342,
  Zfs: 0x2fc12fc1,
  // containers/storage's additions (network and cluster filesystems)
  Acfs: 0x61636673,
  Afs: 0x5346414f,
  Ceph: 0x00c36400,
  Cifs: 0xff534d42,
  Erofs: 0xe0f5e1e2,
  Fhgfs: 0x19830326,
  Ibrix: 0x013111a8,
  Kafs: 0x6b414653,
  Lustre: 0x0bd00bd0,
  Ncp: 0x564c,
  Nfsd: 0x6e667364,
  Ocfs2: 0x7461636f,
  Panfs: 0xaad7aaea,
  Prlfs: 0x7c7c6673,
  Smb2: 0xfe534d42,
  Snfs: 0xbeefdead,
  Vboxsf: 0x786f4256,
  // newer local filesystems
  Bcachefs: 0xca451a4e,
  Ntfs: 0x5346544e,
  Ntfs3: 0x7366746e,
  Exfat: 0x2011bab0,
  Msdos: 0x00004d44,
  Hfsplus: 0x0000482b,
  Iso9660: 0x00009660,
  Udf: 0x15013346,
  Nilfs: 0x00003434,
  Gfs2: 0x01161970,
  Zonefs: 0x5a4f4653,
  V9fs: 0x01021997,
  // pseudo filesystems (never a valid store root, but a root may sit on one by mistake)
  Proc: 0x00009fa0,
  Sysfs: 0x62656572,
  Devpts: 0x00001cd1,
  Cgroup: 0x0027e0eb,
  Cgroup2: 0x63677270,
  Debugfs: 0x64626720,
  Tracefs: 0x74726163,
  Securityfs: 0x73636673,
  Selinuxfs: 0xf97cff8c,
  Nsfs: 0x6e736673,
  Bpf: 0xcafe4a11,
  Hugetlbfs: 0x958458f6,
  Mqueue: 0x19800202,
  Autofs: 0x00000187,
  Configfs: 0x62656570,
  Pstore: 0x6165676c,
  Efivarfs: 0xde5e81e4,
  BinfmtMisc: 0x42494e4d,
} as const;

export type FsMagicName = keyof typeof FsMagic;

/** The name moby prints for each magic (FsNames), extended with the filesystems moby does not know. */
export const FsNames: ReadonlyMap<number, string> = new Map<number, string>([
  [FsMagic.Unsupported, 'unsupported'],
  [FsMagic.Aufs, 'aufs'],
  [FsMagic.Btrfs, 'btrfs'],
  [FsMagic.Cramfs, 'cramfs'],
  [FsMagic.Ecryptfs, 'ecryptfs'],
  [FsMagic.Extfs, 'extfs'],
  [FsMagic.F2fs, 'f2fs'],
  [FsMagic.Fuse, 'fuse'],
  [FsMagic.Gpfs, 'gpfs'],
  [FsMagic.Jffs2, 'jffs2'],
  [FsMagic.Jfs, 'jfs'],
  [FsMagic.Nfs, 'nfs'],
  [FsMagic.Overlay, 'overlayfs'],
  [FsMagic.Ramfs, 'ramfs'],
  [FsMagic.Reiserfs, 'reiserfs'],
  [FsMagic.Smb, 'smb'],
  [FsMagic.Squashfs, 'squashfs'],
  [FsMagic.Tmpfs, 'tmpfs'],
  [FsMagic.Vxfs, 'vxfs'],
  [FsMagic.Xfs, 'xfs'],
  [FsMagic.Zfs, 'zfs'],
  [FsMagic.Acfs, 'acfs'],
  [FsMagic.Afs, 'afs'],
  [FsMagic.Ceph, 'ceph'],
  [FsMagic.Cifs, 'cifs'],
  [FsMagic.Erofs, 'erofs'],
  [FsMagic.Fhgfs, 'fhgfs'],
  [FsMagic.Ibrix, 'ibrix'],
  [FsMagic.Kafs, 'kafs'],
  [FsMagic.Lustre, 'lustre'],
  [FsMagic.Ncp, 'ncp'],
  [FsMagic.Nfsd, 'nfsd'],
  [FsMagic.Ocfs2, 'ocfs2'],
  [FsMagic.Panfs, 'panfs'],
  [FsMagic.Prlfs, 'prlfs'],
  [FsMagic.Smb2, 'smb2'],
  [FsMagic.Snfs, 'snfs'],
  [FsMagic.Vboxsf, 'vboxsf'],
  [FsMagic.Bcachefs, 'bcachefs'],
  [FsMagic.Ntfs, 'ntfs'],
  [FsMagic.Ntfs3, 'ntfs3'],
  [FsMagic.Exfat, 'exfat'],
  [FsMagic.Msdos, 'msdos'],
  [FsMagic.Hfsplus, 'hfsplus'],
  [FsMagic.Iso9660, 'iso9660'],
  [FsMagic.Udf, 'udf'],
  [FsMagic.Nilfs, 'nilfs2'],
  [FsMagic.Gfs2, 'gfs2'],
  [FsMagic.Zonefs, 'zonefs'],
  [FsMagic.V9fs, '9p'],
  [FsMagic.Proc, 'proc'],
  [FsMagic.Sysfs, 'sysfs'],
  [FsMagic.Devpts, 'devpts'],
  [FsMagic.Cgroup, 'cgroup'],
  [FsMagic.Cgroup2, 'cgroup2'],
  [FsMagic.Debugfs, 'debugfs'],
  [FsMagic.Tracefs, 'tracefs'],
  [FsMagic.Securityfs, 'securityfs'],
  [FsMagic.Selinuxfs, 'selinuxfs'],
  [FsMagic.Nsfs, 'nsfs'],
  [FsMagic.Bpf, 'bpf'],
  [FsMagic.Hugetlbfs, 'hugetlbfs'],
  [FsMagic.Mqueue, 'mqueue'],
  [FsMagic.Autofs, 'autofs'],
  [FsMagic.Configfs, 'configfs'],
  [FsMagic.Pstore, 'pstore'],
  [FsMagic.Efivarfs, 'efivarfs'],
  [FsMagic.BinfmtMisc, 'binfmt_misc'],
]);

/** What moby prints for a magic it has no name for. */
export const UNKNOWN_FS_NAME = '<unknown>';

/**
 * The `f_type` of the filesystem holding `path` (statfs(2) of the path itself, as moby's current
 * GetFSMagic does; pass an existing directory, e.g. the store root before the driver's home exists).
 * The value is normalised to an unsigned 32-bit number so that it compares equal to the table
 * whatever sign the platform's `f_type` has.
 */
export async function getFsMagic(path: string): Promise<number> {
  const st = await statfs(path);
  return st.type >>> 0;
}

/** The name of `magic` (`'xfs'`, `'extfs'`, `'overlayfs'`...), or `'<unknown>'` as moby shows it. */
export function fsNameOf(magic: number): string {
  return FsNames.get(magic >>> 0) ?? UNKNOWN_FS_NAME;
}

/** The name of the filesystem holding `path` (see getFsMagic and fsNameOf). */
export async function getFsName(path: string): Promise<string> {
  return fsNameOf(await getFsMagic(path));
}
