/**
 * How a layer mount is made, chosen once per driver from `overlay.mount_api` and what the kernel
 * offers, and how it is taken down:
 *
 *  - `new`: always the new mount API (fsopen/fsconfig `lowerdir+`/fsmount/move_mount); needs 6.8+.
 *  - `classic`: always mount(2), in the first of its forms that fits (mount-classic.ts), up to the
 *    mount(8) helper for 500 lowers - what older kernels get, forced here so it can be tested.
 *  - `auto` (default): mount(2) while its data fits a page (absolute short links, then fd paths:
 *    one syscall, ~0.3 ms for one lower), the new API beyond that (each fsconfig is a thread-pool
 *    round trip, ~25 us a lower: 13 ms for 500 lowers against 0.8 ms for 100 with mount(2) fd
 *    paths), and the mount(8) helper on kernels without `lowerdir+`.
 *  - a mount program (fuse-overlayfs) replaces all of it when configured.
 *
 * Read-only mounts of a layer without lowers are read-only bind mounts of its diff: overlay needs
 * two lowers when it has no upper.
 *
 * Unmounting retries EBUSY (a process that just left the mount) a short while, then detaches
 * lazily as moby always does, so that a put() never fails because of a late reader.
 */
import { MNT, MS, mount, umount2 } from '@graphdriver/native';
import { errorCode, unmount } from '@graphdriver/core';
import type { MountApi } from './options.js';
import { classicFormFor, mountClassic } from './mount-classic.js';
import { mountWithNewApi } from './mount-new.js';
import { fuseUnmount, mountWithProgram } from './mount-program.js';
import type { MountMethod, OverlayMount } from './mount-request.js';

export interface MounterOptions {
  api: MountApi;
  /** The kernel takes `lowerdir+` (6.8+). */
  lowerdirPlus: boolean;
  /** The mount program (fuse-overlayfs), if any. */
  program?: string;
  /** The working directory of the mount program. */
  home: string;
}

/** EBUSY retries before a lazy detach: 20 x 25 ms. */
const UNMOUNT_RETRIES = 20;
const UNMOUNT_RETRY_MS = 25;

export class Mounter {
  constructor(readonly opts: MounterOptions) {}

  /** The mount method as status() shows it. */
  describe(): string {
    if (this.opts.program !== undefined) return `mount program (${this.opts.program})`;
    switch (this.opts.api) {
      case 'new':
        return 'new mount API (fsconfig lowerdir+)';
      case 'classic':
        return 'mount(2) (absolute, fd-path or mount(8) helper data)';
      default:
        return this.opts.lowerdirPlus
          ? 'auto: mount(2) while the data fits a page, else the new mount API (fsconfig lowerdir+)'
          : 'auto: mount(2) (absolute, fd-path or mount(8) helper data); the kernel has no lowerdir+';
    }
  }

  /** The method `m` would be mounted with. */
  methodFor(m: OverlayMount): MountMethod | undefined {
    if (this.opts.program !== undefined) return 'mount program';
    if (this.opts.api === 'new') return 'new-api';
    if (this.opts.api === 'classic') return classicFormFor(m, { helper: true });
    return classicFormFor(m, { helper: false }) ?? (this.opts.lowerdirPlus ? 'new-api' : classicFormFor(m, { helper: true }));
  }

  async mount(m: OverlayMount): Promise<MountMethod> {
    if (this.opts.program !== undefined) {
      await mountWithProgram(this.opts.program, m, this.opts.home);
      return 'mount program';
    }
    switch (this.opts.api) {
      case 'new':
        await mountWithNewApi(m);
        return 'new-api';
      case 'classic':
        return mountClassic(m, { helper: true });
      default: {
        const form = classicFormFor(m, { helper: false });
        if (form !== undefined || !this.opts.lowerdirPlus) return mountClassic(m, { helper: true });
        await mountWithNewApi(m);
        return 'new-api';
      }
    }
  }

  /** A read-only bind mount of `source` at `target` (mount(2) bind, then a read-only remount). */
  async bindReadOnly(source: string, target: string, flags: number): Promise<MountMethod> {
    await mount(source, target, null, MS.BIND);
    try {
      await mount(null, target, null, MS.REMOUNT | MS.BIND | MS.RDONLY | (flags & (MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.NOATIME | MS.NODIRATIME)));
    } catch (err) {
      await umount2(target, MNT.DETACH).catch(() => undefined);
      throw err;
    }
    return 'bind';
  }

  /** Takes the mount at `target` down; resolves false when nothing was mounted there. */
  async unmount(target: string, fuse: boolean): Promise<boolean> {
    if (fuse && (await fuseUnmount(target))) return true;
    try {
      return await unmount(target, { retries: UNMOUNT_RETRIES, retryDelayMs: UNMOUNT_RETRY_MS, lazyFallback: true });
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return false;
      throw err;
    }
  }
}
