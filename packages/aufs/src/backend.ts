/**
 * The mount backends behind one interface, and the choice between them at init: the kernel's aufs
 * (kernel-aufs.ts) where the kernel has it, else fuse-overlayfs (fuse-backend.ts), which reads AUFS
 * whiteouts in its lower branches and is run so that it writes them into its upper. Neither being
 * possible is a PrerequisitesError that says why each one is not.
 */
import { debuglog } from 'node:util';
import { PrerequisitesError } from '@graphdriver/core';
import { FuseOverlayBackend, findFuseOverlayfs } from './fuse-backend.js';
import { KernelAufsBackend, kernelAufsUnavailable, probeDirperm1 } from './kernel-aufs.js';
import type { MountBackendChoice } from './options.js';

const debug = debuglog('graphdriver:aufs');

/** One union mount: a writable branch (none for a read-only union) over read-only ones. */
export interface BranchMount {
  target: string;
  /** The writable branch; absent for a read-only union. */
  rw?: string;
  /** The read-only branches, topmost first. */
  ro: string[];
  /** SELinux label of the mount. */
  mountLabel?: string;
  /** Extra mount options of this mount (MountOpts.options). */
  options?: string[];
}

export interface MountBackend {
  /** `aufs` or `fuse-overlayfs`: what status() shows. */
  readonly name: 'aufs' | 'fuse-overlayfs';
  /** One line for status(). */
  describe(): string;
  /** Whether a mount of this filesystem type (mountinfo's `type[.subtype]`) is one of ours. */
  ownsFsType(fsType: string): boolean;
  mount(m: BranchMount): Promise<void>;
  /** Takes the union at `target` down; resolves false when nothing was mounted there. */
  unmount(target: string): Promise<boolean>;
}

export interface BackendChoice {
  choice: MountBackendChoice;
  /** The fuse-overlayfs binary, if the user named one. */
  program?: string;
  /** aufs.mountopt. */
  mountopt: string;
  /** Where the mount program runs (the driver's home). */
  home: string;
}

/** The backend the options and the host allow, or a PrerequisitesError saying why there is none. */
export async function chooseBackend(c: BackendChoice): Promise<MountBackend> {
  const reasons: string[] = [];
  if (c.choice !== 'fuse-overlayfs') {
    const why = await kernelAufsUnavailable();
    if (why === undefined) {
      const dirperm1 = await probeDirperm1();
      debug('kernel aufs (dirperm1 %s)', dirperm1);
      return new KernelAufsBackend(dirperm1, c.mountopt);
    }
    reasons.push(`kernel aufs: ${why}`);
  }
  if (c.choice !== 'aufs') {
    const found = await findFuseOverlayfs(c.program);
    if ('program' in found) return new FuseOverlayBackend(found.program, c.mountopt, c.home);
    reasons.push(`fuse-overlayfs: ${found.reason}`);
  }
  throw new PrerequisitesError(`aufs: no mount backend can work here (${reasons.join('; ')})`);
}
