/**
 * Making and growing filesystems on block devices (or image files) with e2fsprogs and xfsprogs,
 * as moby's devmapper (mkfs on its base device, resize2fs/xfs_growfs on dm.basesize growth) and
 * layer0's volumes need.
 */
import { InvalidOptionError, OperationFailedError } from '../errors.js';
import { isLoopDevicePath, refreshLoopCapacity } from './loop.js';
import { runTool, ToolError } from './tools.js';

export type MkfsType = 'ext4' | 'xfs';

export interface MkfsOptions {
  /** Extra arguments for mkfs.ext4 / mkfs.xfs, before the device (e.g. `['-m', 'reflink=1']`). */
  args?: readonly string[];
  /** Filesystem label: at most 16 bytes for ext4, 12 for xfs. */
  label?: string;
  signal?: AbortSignal;
}

const LABEL_MAX: Record<MkfsType, number> = { ext4: 16, xfs: 12 };

/** Make a filesystem of `fstype` on `device`, overwriting whatever is there (-F / -f). */
export async function mkfs(device: string, fstype: MkfsType, opts: MkfsOptions = {}): Promise<void> {
  if (fstype !== 'ext4' && fstype !== 'xfs') {
    throw new InvalidOptionError('fstype', `mkfs: unsupported filesystem ${JSON.stringify(fstype)} (ext4 or xfs)`);
  }
  const args: string[] = fstype === 'ext4' ? ['-q', '-F'] : ['-q', '-f'];
  if (opts.label !== undefined) {
    if (Buffer.byteLength(opts.label) > LABEL_MAX[fstype]) {
      throw new InvalidOptionError('label', `mkfs: ${fstype} labels have at most ${LABEL_MAX[fstype]} bytes, ${JSON.stringify(opts.label)} is longer`);
    }
    args.push('-L', opts.label);
  }
  args.push(...(opts.args ?? []), device);
  await runTool(`mkfs.${fstype}`, args, `mkfs.${fstype} on ${device}`, opts.signal);
}

export interface ResizeFsOptions {
  signal?: AbortSignal;
}

/**
 * Grow the filesystem on `device` to the size of the device. ext4: with a mountpoint (mounted)
 * online through resize2fs, which needs CAP_SYS_RESOURCE (the kernel's EXT4_IOC_RESIZE_FS);
 * without one (unmounted) offline, after the forced check resize2fs insists on (e2fsck -f -p).
 * xfs: xfs_growfs on the mountpoint (xfs only grows mounted). When `device` is a loop device its
 * capacity is re-read first, so growing the backing file and calling this is enough.
 */
export async function resizeFs(device: string, mountpoint: string | undefined, fstype: MkfsType, opts: ResizeFsOptions = {}): Promise<void> {
  if (isLoopDevicePath(device)) await refreshLoopCapacity(device);
  if (fstype === 'ext4') {
    if (mountpoint === undefined) {
      await runTool('e2fsck', ['-f', '-p', device], `checking ${device} before resizing it`, opts.signal, [1]);
      await runTool('resize2fs', [device], `resize2fs of ${device}`, opts.signal);
      return;
    }
    try {
      await runTool('resize2fs', [device], `online resize2fs of ${device} (mounted on ${mountpoint})`, opts.signal);
    } catch (err) {
      const cause = err instanceof Error ? err.cause : undefined;
      if (cause instanceof ToolError && /Permission denied to resize/.test(cause.stderr)) {
        throw new OperationFailedError(
          `online resize2fs of ${device} (mounted on ${mountpoint})`,
          undefined,
          new Error('growing a mounted ext4 needs CAP_SYS_RESOURCE, which this process lacks; unmount it and call resizeFs without a mountpoint', { cause }),
        );
      }
      throw err;
    }
    return;
  }
  if (fstype === 'xfs') {
    if (mountpoint === undefined) throw new InvalidOptionError('mountpoint', `resizeFs: xfs grows only while mounted; give the mountpoint of ${device}`);
    await runTool('xfs_growfs', [mountpoint], `xfs_growfs of ${mountpoint} (${device})`, opts.signal);
    return;
  }
  throw new InvalidOptionError('fstype', `resizeFs: unsupported filesystem ${JSON.stringify(fstype)} (ext4 or xfs)`);
}
