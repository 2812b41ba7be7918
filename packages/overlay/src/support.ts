/**
 * Whether the overlay driver can work here, checked at init as moby's and containers/storage's
 * Init do, each refusal a typed "not supported" error that says why:
 *
 *  - the kernel has no overlay filesystem (not in /proc/filesystems, and asking for it does not
 *    load the module): PrerequisitesError;
 *  - the backing filesystem is overlay, aufs or ecryptfs (overlay cannot stack on them; a mount
 *    program can): IncompatibleFsError;
 *  - the backing filesystem reports no d_type in directory entries (xfs made with ftype=0, ext4
 *    without the filetype feature), so whiteouts would be misread: IncompatibleFsError with the
 *    hint to reformat;
 *  - a mount program that does not exist or cannot run: PrerequisitesError.
 *
 * The checks run on the home if it exists, else on its nearest existing ancestor (moby: a home
 * that is a mount of its own is what counts, and a refused store leaves no directory behind).
 */
import { closeSync, constants as fsConstants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { FsMagic, IncompatibleFsError, PrerequisitesError, errorCode, fsNameOf, getFsMagic, supportsDType } from '@graphdriver/core';
import { fsopen } from '@graphdriver/native';

export interface BackingFs {
  magic: number;
  /** moby's name for it: `extfs`, `xfs`, `btrfs`, `tmpfs`... */
  name: string;
  supportsDType: boolean;
}

/** True when /proc/filesystems lists `overlay`. */
export function listsOverlay(procFilesystems: string): boolean {
  return procFilesystems.split('\n').some((line) => line.split('\t').pop()?.trim() === 'overlay');
}

/** PrerequisitesError unless the kernel has overlayfs (fsopen() loads the module on demand, as a mount would). */
export async function checkKernelOverlay(): Promise<void> {
  if (listsOverlay(await readFile('/proc/filesystems', 'utf8'))) return;
  try {
    closeSync(await fsopen('overlay'));
  } catch (err) {
    throw new PrerequisitesError(
      `overlay: the kernel has no overlay filesystem: it is not in /proc/filesystems and could not be loaded (${errorCode(err) ?? String(err)}); load the overlay module or build it in (CONFIG_OVERLAY_FS)`,
      { cause: err },
    );
  }
}

/** moby's ErrDTypeNotSupported wording, with its reformat hints. */
export function dtypeRefusal(backingFs: string): IncompatibleFsError {
  let msg = `overlay: the backing ${backingFs} filesystem is formatted without d_type support, which leads to incorrect behavior.`;
  if (backingFs === 'xfs') msg += ' Reformat the filesystem with ftype=1 to enable d_type support.';
  if (backingFs === 'extfs') msg += ' Reformat the filesystem (or use tune2fs) with -O filetype flag to enable d_type support.';
  msg += ' Backing filesystems without d_type support are not supported.';
  return new IncompatibleFsError(msg, backingFs);
}

/** Inspects the filesystem that would hold the home; refuses what overlay cannot stack on. */
export async function checkBackingFs(testDir: string, usingMountProgram: boolean): Promise<BackingFs> {
  const magic = await getFsMagic(testDir);
  const name = fsNameOf(magic);
  if (!usingMountProgram && (magic === FsMagic.Overlay || magic === FsMagic.Aufs || magic === FsMagic.Ecryptfs)) {
    throw new IncompatibleFsError(`'overlay' is not supported over ${name} (${testDir}): a mount_program (fuse-overlayfs) is required`, name);
  }
  const dtype = await supportsDType(testDir);
  // containers/storage leaves d_type to the mount program; the kernel's overlay needs it
  if (!dtype && !usingMountProgram) throw dtypeRefusal(name);
  return { magic, name, supportsDType: dtype };
}

/** PrerequisitesError unless `program` exists and is executable. */
export async function checkMountProgram(program: string): Promise<void> {
  try {
    await access(program, fsConstants.X_OK);
  } catch (err) {
    throw new PrerequisitesError(`overlay: the mount program ${program} cannot be run: ${errorCode(err) ?? String(err)}`, { cause: err });
  }
}
