/**
 * Scratch filesystems for tests and benchmarks: a sparse image file formatted with mkfs and
 * loop-mounted with util-linux's `mount -o loop` (whose loop device is autocleared on unmount),
 * so a test can run on xfs with project quotas, a journaled ext4, or a reflink-capable fs, and
 * leave no mount, loop device or file behind.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type ScratchFsType = 'ext4' | 'xfs' | 'btrfs';

export interface ScratchFsOptions {
  /** Size of the sparse image, as truncate(1) takes it. Default: 512M (xfs needs at least 300M). */
  size?: string;
  /** Extra mkfs arguments, e.g. ['-m', 'reflink=1'] for xfs or ['-O', 'quota,project'] for ext4. */
  mkfsArgs?: string[];
  /** Mount options, e.g. ['prjquota']. */
  mountOptions?: string[];
}

export interface ScratchFs {
  /** Where the filesystem is mounted. */
  readonly path: string;
  readonly fstype: ScratchFsType;
  /** Unmount and delete the image. Safe to call twice. */
  dispose(): Promise<void>;
}

const mkfsCommand: Record<ScratchFsType, [string, string[]]> = {
  ext4: ['mkfs.ext4', ['-q', '-F']],
  xfs: ['mkfs.xfs', ['-q', '-f']],
  btrfs: ['mkfs.btrfs', ['-q', '-f']],
};

export async function createScratchFs(fstype: ScratchFsType, opts: ScratchFsOptions = {}): Promise<ScratchFs> {
  const dir = await mkdtemp(join(tmpdir(), `gd-scratch-${fstype}-`));
  const image = join(dir, 'image');
  const path = join(dir, 'mnt');
  let mounted = false;
  const dispose = async (): Promise<void> => {
    if (mounted) {
      await run('umount', [path]);
      mounted = false;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await writeFile(image, '');
    await truncate(image, parseSize(opts.size ?? '512M'));
    const [cmd, args] = mkfsCommand[fstype];
    await run(cmd, [...args, ...(opts.mkfsArgs ?? []), image]);
    await run('mkdir', [path]);
    const options = ['loop', ...(opts.mountOptions ?? [])].join(',');
    await run('mount', ['-t', fstype, '-o', options, image, path]);
    mounted = true;
    return { path, fstype, dispose };
  } catch (err) {
    await dispose().catch(() => undefined);
    throw err;
  }
}

/** Run `fn` on a fresh scratch filesystem that is removed afterwards, also when `fn` throws. */
export async function withScratchFs<T>(
  fstype: ScratchFsType,
  opts: ScratchFsOptions,
  fn: (fs: ScratchFs) => Promise<T>,
): Promise<T> {
  const scratch = await createScratchFs(fstype, opts);
  try {
    return await fn(scratch);
  } finally {
    await scratch.dispose();
  }
}

function parseSize(size: string): number {
  const m = /^(\d+)([KMGT]?)$/i.exec(size);
  if (!m) throw new Error(`bad size ${size}`);
  const exp = ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
  return Number(m[1]) * 1024 ** exp;
}
