/**
 * The journaled ext4 loop filesystem the benchmarks run on (BASELINE.md: this machine's root ext4
 * has no journal and will not reuse inodes freed in the last minute, which makes create-after-
 * delete up to 10x slower and the figures meaningless). A sparse image, a loop device with
 * autoclear, mkfs.ext4 with its journal, mounted; unmounted, detached and deleted afterwards,
 * also when the benchmark throws.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachLoop, createSparseFile, mkfs } from '@graphdriver/core';
import { mount, umount2 } from '@graphdriver/native';

export interface Ext4Image {
  /** Where it is mounted. */
  readonly path: string;
  /** `ext4 (journaled, loop image of N GiB)`. */
  readonly description: string;
}

/** Runs `fn` on a fresh journaled ext4 of `gib` GiB (sparse) made under `parent` (default the temp dir). */
export async function withJournaledExt4<T>(fn: (fs: Ext4Image) => Promise<T>, opts: { gib?: number; parent?: string } = {}): Promise<T> {
  const gib = opts.gib ?? 16;
  const dir = await mkdtemp(join(opts.parent ?? tmpdir(), 'graphtest-bench-'));
  const image = join(dir, 'ext4.img');
  const mnt = join(dir, 'mnt');
  let mounted = false;
  try {
    await createSparseFile(image, gib * 1024 ** 3);
    await mkdir(mnt);
    const loop = await attachLoop(image, { autoclear: true });
    try {
      // -O has_journal: the point of the image (mke2fs.conf could say otherwise); no lazy init so
      // that background zeroing does not run during the measurements.
      await mkfs(loop.path, 'ext4', { args: ['-O', 'has_journal', '-E', 'lazy_itable_init=0,lazy_journal_init=0'] });
      await mount(loop.path, mnt, 'ext4', 0, null);
      mounted = true;
    } finally {
      // Mounted, the filesystem holds the device; autoclear detaches it at the unmount.
      if (mounted) loop.close();
      else await loop.detach();
    }
    return await fn({ path: mnt, description: `ext4 (journaled, ${gib} GiB loop image)` });
  } finally {
    if (mounted) await umount2(mnt);
    await rm(dir, { recursive: true, force: true });
  }
}
