/**
 * Can the filesystem under a directory enforce project quotas, and if not, why not - in words a
 * user can act on (the missing kernel option, the missing mount option or filesystem feature).
 * moby and containers/storage only say "quota not supported"; the reason is the useful part.
 */
import { FsMagic, getFsMagic, mountContaining } from '../fs/index.js';
import { kernelConfig } from './kernel-config.js';

export type QuotaFs = 'xfs' | 'ext4';

export interface QuotaFsFacts {
  fs: QuotaFs | undefined;
  /** The filesystem name for messages (`xfs`, `ext4`, `btrfs`, `0x794c7630`...). */
  fsName: string;
  mountPoint: string | undefined;
  /** Project quota is enforced according to the mount's options. */
  enforcedByMount: boolean;
  /** Everything found that stands in the way, most fundamental first. Empty when nothing does. */
  reasons: string[];
}

/** What the filesystem holding `path` offers for project quotas. */
export async function inspectQuotaFs(path: string): Promise<QuotaFsFacts> {
  const magic = await getFsMagic(path);
  const mount = await mountContaining(path);
  const options = new Set((mount?.superOptions ?? '').split(','));
  const fsType = mount?.fsType ?? `0x${magic.toString(16)}`;
  const reasons: string[] = [];
  const config = await kernelConfig();
  const missing = (option: string): boolean => config !== undefined && config.get(option) === undefined;
  const configNote = (option: string): string => `${option} is not set in ${config?.source ?? 'the kernel config'}`;

  if (magic === FsMagic.Xfs) {
    if (missing('CONFIG_XFS_QUOTA')) reasons.push(`this kernel has no XFS quota support (${configNote('CONFIG_XFS_QUOTA')})`);
    const enforced = options.has('prjquota') || options.has('pquota') || options.has('pqenforce');
    if (!enforced) {
      reasons.push(
        options.has('pqnoenforce')
          ? `${mount?.mountPoint ?? path} is mounted with pqnoenforce (accounting only); mount it with -o prjquota`
          : `${mount?.mountPoint ?? path} is not mounted with -o prjquota`,
      );
    }
    return { fs: 'xfs', fsName: 'xfs', mountPoint: mount?.mountPoint, enforcedByMount: enforced, reasons };
  }
  if (magic === FsMagic.Extfs && fsType === 'ext4') {
    if (missing('CONFIG_QUOTA')) reasons.push(`this kernel has no disk quota support (${configNote('CONFIG_QUOTA')})`);
    if (missing('CONFIG_QFMT_V2')) reasons.push(`this kernel cannot use ext4 quota files (${configNote('CONFIG_QFMT_V2')})`);
    const enforced = options.has('prjquota');
    if (!enforced) {
      reasons.push(
        `${mount?.mountPoint ?? path} is not mounted with -o prjquota (the filesystem also needs the project and quota features: mkfs.ext4 -O quota,project, or tune2fs -O quota,project)`,
      );
    }
    return { fs: 'ext4', fsName: 'ext4', mountPoint: mount?.mountPoint, enforcedByMount: enforced, reasons };
  }
  reasons.push(`project quotas need xfs or ext4, and ${path} is on ${fsType}`);
  return { fs: undefined, fsName: fsType, mountPoint: mount?.mountPoint, enforcedByMount: false, reasons };
}
