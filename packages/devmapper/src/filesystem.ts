/**
 * The filesystems on the devices: making the base device's (moby's createFilesystem: ext4 with
 * every inode table and the journal written now, since a thin pool would otherwise allocate them
 * lazily under the first container, and tune2fs to turn off forced checks; xfs as mkfs.xfs makes
 * it), recognising a device's filesystem from its superblock magic (moby's ProbeFsType), mounting a
 * device as a layer (xfs with `nouuid`: every layer is a snapshot of one filesystem and shares its
 * UUID), growing a filesystem after its device grew, and xfs's ENOSPC retry limit.
 */
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { mkfs, OperationFailedError, parseMountOptions, resizeFs, unmount } from '@graphdriver/core';
import { MNT, mount, umount2 } from '@graphdriver/native';
import type { FsType } from './options.js';
import { runTool } from './tools.js';

const debug = debuglog('graphdriver:devmapper');

/** Makes the base device's filesystem as moby does. */
export async function createFilesystem(device: string, fs: FsType, mkfsArgs: readonly string[]): Promise<void> {
  if (fs === 'xfs') {
    await mkfs(device, 'xfs', { args: mkfsArgs });
    return;
  }
  try {
    await mkfs(device, 'ext4', { args: ['-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', ...mkfsArgs] });
  } catch (err) {
    // e2fsprogs older than 1.43 has no lazy_journal_init
    debug('mkfs.ext4 with lazy_journal_init=0 failed (%s), trying without', err);
    await mkfs(device, 'ext4', { args: ['-E', 'nodiscard,lazy_itable_init=0', ...mkfsArgs] });
  }
  // moby turns off the forced checks with tune2fs; e2fsprogs since 1.42 makes them off already, and a
  // process less counts where a store is made per test under emulation.
  if (!(await ext4ChecksOff(device))) await runTool('tune2fs', ['-c', '-1', '-i', '0', device], `tune2fs of ${device}`);
}

/** The ext4 superblock says: no maximal mount count (s_max_mnt_count -1) and no check interval (s_checkinterval 0). */
async function ext4ChecksOff(device: string): Promise<boolean> {
  const fh = await open(device, 'r');
  try {
    const sb = Buffer.alloc(1024);
    const { bytesRead } = await fh.read(sb, 0, 1024, 1024);
    if (bytesRead < 0x48 || sb.readUInt16LE(0x38) !== 0xef53) return false;
    return sb.readInt16LE(0x36) === -1 && sb.readUInt32LE(0x44) === 0;
  } finally {
    await fh.close();
  }
}

const PROBES: ReadonlyArray<{ fs: string; magic: Buffer; offset: number }> = [
  { fs: 'btrfs', magic: Buffer.from('_BHRfS_M'), offset: 0x10040 },
  { fs: 'ext4', magic: Buffer.from([0x53, 0xef]), offset: 0x438 },
  { fs: 'xfs', magic: Buffer.from('XFSB'), offset: 0 },
];
const PROBE_LENGTH = Math.max(...PROBES.map((p) => p.offset + p.magic.length));

/** The filesystem on `device` by its superblock magic: 'ext4', 'xfs' or 'btrfs'. */
export async function probeFsType(device: string): Promise<string> {
  const fh = await open(device, 'r');
  try {
    const buf = Buffer.alloc(PROBE_LENGTH);
    const { bytesRead } = await fh.read(buf, 0, PROBE_LENGTH, 0);
    if (bytesRead !== PROBE_LENGTH) throw new Error(`devmapper: unable to detect filesystem type of ${device}, short read`);
    for (const p of PROBES) {
      if (buf.subarray(p.offset, p.offset + p.magic.length).equals(p.magic)) return p.fs;
    }
    throw new Error(`devmapper: unknown filesystem type on ${device}`);
  } finally {
    await fh.close();
  }
}

export interface LayerMountRequest {
  device: string;
  target: string;
  fstype: string;
  /** dm.mountopt. */
  driverOptions: readonly string[];
  mountLabel?: string | undefined;
  /** MountOpts.options of this get(). */
  extra?: readonly string[] | undefined;
  readOnly?: boolean | undefined;
}

/** Mounts a device: nouuid for xfs, then dm.mountopt, the label, and the caller's options. */
export async function mountLayer(m: LayerMountRequest): Promise<void> {
  const lists: string[] = [];
  if (m.fstype === 'xfs') lists.push('nouuid');
  lists.push(...m.driverOptions);
  if (m.mountLabel !== undefined && m.mountLabel !== '') lists.push(`context=${JSON.stringify(m.mountLabel)}`);
  lists.push(...(m.extra ?? []));
  if (m.readOnly === true) lists.push('ro');
  const { flags, data } = parseMountOptions({ driver: 'devmapper' }, lists);
  await mount(m.device, m.target, m.fstype, flags, data.length === 0 ? null : data.join(','));
}

/**
 * Grows the filesystem on `device` to the device's size. ext4 offline (e2fsck, resize2fs: an online
 * resize needs CAP_SYS_RESOURCE), xfs online on a private temporary mount (xfs grows only mounted).
 */
export async function growFilesystem(device: string, fstype: string, mountOptions: readonly string[]): Promise<void> {
  if (fstype === 'ext4') {
    await resizeFs(device, undefined, 'ext4');
    return;
  }
  if (fstype !== 'xfs') throw new OperationFailedError(`growing the filesystem on ${device}`, undefined, new Error(`unsupported filesystem type ${fstype}`));
  const dir = await mkdtemp(join(tmpdir(), 'graphdriver-dm-grow-'));
  try {
    await mountLayer({ device, target: dir, fstype, driverOptions: mountOptions });
    try {
      await runTool('xfs_growfs', [dir], `xfs_growfs of ${device}`);
    } finally {
      await unmount(dir, { lazyFallback: true });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether the kernel has xfs (moby's xfsSupported: a mount attempt loads the module, /proc/filesystems tells). */
export async function kernelHasXfs(): Promise<boolean> {
  const listed = async (): Promise<boolean> => /\txfs$/m.test(await readFile('/proc/filesystems', 'utf8'));
  if (await listed()) return true;
  const dir = await mkdtemp(join(tmpdir(), 'graphdriver-dm-xfs-'));
  try {
    // fails (no such device): its point is the module request
    await mount('none', dir, 'xfs', 0, null).then(
      () => umount2(dir, MNT.DETACH),
      () => undefined,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return listed();
}

/** Writes dm.xfs_nospace_max_retries to /sys/fs/xfs/<dev>/error/metadata/ENOSPC/max_retries. */
export async function setXfsNospaceRetries(kernelName: string, retries: number): Promise<void> {
  const file = `/sys/fs/xfs/${kernelName}/error/metadata/ENOSPC/max_retries`;
  try {
    await writeFile(file, String(retries));
  } catch (err) {
    throw new OperationFailedError(
      `setting dm.xfs_nospace_max_retries (${file})`,
      undefined,
      new Error(`user specified daemon option dm.xfs_nospace_max_retries but it does not seem to be supported on this system: ${err instanceof Error ? err.message : String(err)}`, { cause: err }),
    );
  }
}
