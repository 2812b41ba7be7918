/**
 * Size-limited rw branches - the aufslimit fork's createWithQuota - enforced one of two ways:
 *
 *  - loop: a sparse ext4 image of the limit's size, `<home>/limits/<id>.img`, attached to a loop
 *    device (autoclear) and mounted on `diff/<id>`, so the branch is a filesystem of that size and a
 *    write beyond it fails with ENOSPC. No /etc/fstab entry (aufslimit wrote one): the driver mounts
 *    the images of its layers itself at start (re-adoption) and whenever a limited branch is needed
 *    and not mounted (after cleanup()). The image is made with no reserved blocks (`-m 0`: the
 *    limit is the same for root), an uninitialised journal (`lazy_journal_init`: a 10G image takes
 *    4 MiB of disk instead of 68), the branch root's owner, and without `lost+found`, which would
 *    show in the container. Unmounting the image releases its loop device (autoclear).
 *  - quota: a project quota on `diff/<id>` (core's QuotaControl), where the filesystem of `diff/`
 *    has project quotas (xfs with prjquota, ext4 with the project and quota features).
 *
 * `auto` takes a project quota where there is one (no image, no loop device, no mount) and an
 * image elsewhere. Either way the limit covers the layer's own branch only, as overlay's does.
 */
import { readdirSync, rmdirSync, statSync } from 'node:fs';
import { chmod, chown, rm } from 'node:fs/promises';
import { debuglog } from 'node:util';
import {
  attachLoop,
  createSparseFile,
  errorCode,
  InvalidOptionError,
  isMountPoint,
  LazyQuotaControl,
  mkfs,
  mountAt,
  unmount,
  type QuotaControl,
} from '@graphdriver/core';
import { mount } from '@graphdriver/native';
import type { Layout } from './layout.js';
import type { LimitMethod } from './options.js';

const debug = debuglog('graphdriver:aufs');

/** The smallest image mke2fs makes a usable ext4 of (with the journal left out below 1 MiB it could go lower). */
export const MIN_LOOP_LIMIT = 1024 * 1024;
const IMAGE_SUFFIX = '.img';

export interface BranchRoot {
  mode: number;
  uid: number;
  gid: number;
}

export type AppliedLimit = 'loop' | 'quota';

export class LayerLimits {
  readonly #quota: LazyQuotaControl;
  /** Limited branches this process has mounted (or found mounted). */
  readonly #mounted = new Set<string>();

  constructor(
    private readonly layout: Layout,
    readonly method: LimitMethod,
  ) {
    this.#quota = new LazyQuotaControl(layout.diffRoot, 'aufs');
  }

  /** The project quota control of `diff/`, or the QuotaNotSupportedError that says why there is none. */
  quotaControl(): Promise<QuotaControl> {
    return this.#quota.control();
  }

  /** How a new limit is enforced here. */
  async resolve(): Promise<AppliedLimit> {
    if (this.method === 'loop') return 'loop';
    if (this.method === 'quota') {
      await this.quotaControl();
      return 'quota';
    }
    return this.quotaControl().then(
      () => 'quota',
      () => 'loop',
    );
  }

  /** What status() says about limits. */
  async describe(): Promise<string> {
    const how = await this.resolve().catch((err: unknown) => `unavailable (${(err as Error).message})`);
    if (how === 'loop') return 'loop-mounted ext4 image';
    if (how === 'quota') return 'project quota';
    return how;
  }

  /** Limits the branch `diff/<id>` (an empty directory) to `bytes`; `root` is what its root must look like. */
  async apply(id: string, bytes: number, root: BranchRoot): Promise<AppliedLimit> {
    const how = await this.resolve();
    if (how === 'quota') {
      await (await this.quotaControl()).setQuota(this.layout.diffPath(id), { size: bytes });
      debug('limit %s: project quota of %d bytes', id, bytes);
      return 'quota';
    }
    if (bytes < MIN_LOOP_LIMIT) {
      throw new InvalidOptionError('size', `aufs: a size limit enforced by an ext4 image must be at least ${MIN_LOOP_LIMIT} bytes (got ${bytes})`);
    }
    const image = this.layout.limitImage(id);
    await createSparseFile(image, bytes);
    try {
      await mkfs(image, 'ext4', { args: ['-m', '0', '-E', `lazy_journal_init=1,root_owner=${root.uid}:${root.gid}`] });
      await this.#mount(id);
      const branch = this.layout.diffPath(id);
      rmdirSync(`${branch}/lost+found`);
      await chown(branch, root.uid, root.gid);
      await chmod(branch, root.mode);
    } catch (err) {
      await this.release(id).catch(() => undefined);
      throw err;
    }
    debug('limit %s: ext4 image of %d bytes on %s', id, bytes, this.layout.diffPath(id));
    return 'loop';
  }

  /** Whether layer `id` has an image (a loop limit). */
  hasImage(id: string): boolean {
    return statSync(this.layout.limitImage(id), { throwIfNoEntry: false }) !== undefined;
  }

  /** Mounts the image of layer `id` on its branch unless it is mounted already; nothing for a layer without image. */
  async ensureMounted(id: string): Promise<void> {
    if (this.#mounted.has(id)) return;
    if (!this.hasImage(id)) return;
    if (await isMountPoint(this.layout.diffPath(id))) {
      this.#mounted.add(id);
      return;
    }
    await this.#mount(id);
  }

  async #mount(id: string): Promise<void> {
    const dev = await attachLoop(this.layout.limitImage(id), { autoclear: true });
    try {
      await mount(dev.path, this.layout.diffPath(id), 'ext4', 0, '');
    } catch (err) {
      await dev.detach().catch(() => undefined);
      throw err;
    }
    // the mount holds the device now; it goes when the mount does
    dev.close();
    this.#mounted.add(id);
  }

  /** Unmounts the image of layer `id` (its loop device goes with it). Resolves whether something was unmounted. */
  async unmount(id: string): Promise<boolean> {
    this.#mounted.delete(id);
    const branch = this.layout.diffPath(id);
    const m = await mountAt(branch);
    if (m === undefined || m.fsType !== 'ext4' || !/^\/dev\/loop\d+$/.test(m.source)) return false;
    // a fuse-overlayfs that is still exiting holds the branch a moment after its union went
    return unmount(branch, { retries: 40, retryDelayMs: 25, lazyFallback: true });
  }

  /** Unmounts and deletes layer `id`'s image, if it has one. */
  async release(id: string): Promise<void> {
    await this.unmount(id);
    await rm(this.layout.limitImage(id), { force: true });
  }

  /**
   * At start: mounts the image of every layer that has one (re-adoption), deletes the images of
   * layers that no longer exist (a crash between removing the layer and its image).
   */
  async adopt(exists: (id: string) => boolean): Promise<{ mounted: string[]; dropped: string[] }> {
    const mounted: string[] = [];
    const dropped: string[] = [];
    let names: string[];
    try {
      names = readdirSync(this.layout.limitsRoot);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return { mounted, dropped };
      throw err;
    }
    for (const name of names) {
      if (!name.endsWith(IMAGE_SUFFIX)) continue;
      const id = name.slice(0, -IMAGE_SUFFIX.length);
      if (!exists(id)) {
        await this.release(id);
        dropped.push(id);
        continue;
      }
      const was = await isMountPoint(this.layout.diffPath(id));
      await this.ensureMounted(id);
      if (!was) mounted.push(id);
    }
    if (mounted.length + dropped.length > 0) debug('limits: mounted %o, dropped %o', mounted, dropped);
    return { mounted, dropped };
  }

  /** Unmounts every limited branch (cleanup); they are mounted again when next needed. */
  async unmountAll(): Promise<unknown[]> {
    const failures: unknown[] = [];
    let names: string[] = [];
    try {
      names = readdirSync(this.layout.limitsRoot);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') failures.push(err);
    }
    for (const name of names) {
      if (!name.endsWith(IMAGE_SUFFIX)) continue;
      await this.unmount(name.slice(0, -IMAGE_SUFFIX.length)).catch((err: unknown) => failures.push(err));
    }
    this.#mounted.clear();
    return failures;
  }
}
