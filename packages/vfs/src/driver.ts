/**
 * The vfs storage driver (moby's and containers/storage's drivers/vfs): every layer is a plain
 * directory `<home>/dir/<id>` holding a full copy of its parent (see copy.ts: reflink, then
 * copy_file_range, then read/write), so it needs no mounts and runs on any filesystem - the
 * reference driver of graphtest. get() returns the directory and put() has nothing to release.
 *
 * - Layers appear whole: a new layer is built in `<home>/staging` and renamed into `dir/` when
 *   complete; a removed one is renamed out of `dir/` first and deleted there.
 * - A layer without parent has a root of mode 0555 owned by (mapped) root, as containers/storage
 *   makes it; a child's root takes its parent's owner, mode, xattrs and times with the copy.
 * - `size` in a writable layer's storageOpt (or the `vfs.size` default) is a project quota on the
 *   layer's directory (quota.ts); where the filesystem has none, QuotaNotSupportedError says why.
 * - Diffs are computed by core's NaiveDiffDriver, which compares the layer's tree with its parent's.
 * - Layers of read-only additional image stores (`vfs.imagestore`) can be read, used as parents
 *   and diffed, never written or removed.
 */
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { chmod, chown } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import {
  errorCode,
  getFsName,
  hostRoot,
  InvalidOptionError,
  KeyedMutex,
  LayerExistsError,
  LayerUnknownError,
  LazyQuotaControl,
  NaiveDiffDriver,
  normalizeParent,
  OperationFailedError,
  parseStorageOpt,
  pathFileGetter,
  unmountRecursive,
  validateLayerId,
  type AdditionalImageStoresDriver,
  type ApplyDiffOpts,
  type Change,
  type CreateFromTemplateOpts,
  type CreateOpts,
  type DiffGetterDriver,
  type DiffOpts,
  type DiskUsage,
  type DiskUsageDriver,
  type Driver,
  type DriverInit,
  type DriverInitContext,
  type FileGetter,
  type IdMappings,
  type ListLayersDriver,
  type MountOpts,
  type TemplateDriver,
} from '@graphdriver/core';
import { copyTree } from './copy.js';
import { DRIVER_NAME, isLayerName, Layout } from './layout.js';
import { vfsOptions, type VfsOptions } from './options.js';
import { diskUsage } from './usage.js';

const debug = debuglog('graphdriver:vfs');

/** Root mode of a layer without parent (containers/storage's defaultPerms). */
export const ROOT_MODE = 0o555;

export class VfsDriver
  implements Driver, TemplateDriver, ListLayersDriver, DiffGetterDriver, DiskUsageDriver, AdditionalImageStoresDriver
{
  readonly name = DRIVER_NAME;
  readonly home: string;
  readonly options: VfsOptions;
  readonly #layout: Layout;
  readonly #quotas: LazyQuotaControl;
  readonly #locks = new KeyedMutex<string>();
  readonly #naive: NaiveDiffDriver;
  readonly #idMappings: IdMappings | undefined;

  private constructor(home: string, options: VfsOptions, idMappings: IdMappings | undefined) {
    this.home = home;
    this.options = options;
    this.#idMappings = idMappings;
    this.#layout = new Layout(home, options.imagestore);
    this.#quotas = new LazyQuotaControl(this.#layout.layersDir, DRIVER_NAME);
    this.#naive = new NaiveDiffDriver(this, idMappings === undefined ? {} : { idMappings });
  }

  /** Parses the options, makes the home and clears what a crash left in staging. */
  static async start(ctx: DriverInitContext): Promise<VfsDriver> {
    const options = vfsOptions.parse(ctx.options);
    const d = new VfsDriver(ctx.home, options, ctx.idMappings);
    await mkdir(d.#layout.layersDir, { recursive: true, mode: 0o700 });
    await rm(d.#layout.stagingDir, { recursive: true, force: true });
    await mkdir(d.#layout.stagingDir, { mode: 0o700 });
    // moby: a default size that cannot be enforced is an error at start, not at the first layer.
    if (options.size > 0) await d.#quotas.control();
    debug('vfs driver at %s (additional stores: %s)', ctx.home, options.imagestore.join(', ') || 'none');
    return d;
  }

  // ---- ProtoDriver ------------------------------------------------------------------------------

  create(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts, false);
  }

  createReadWrite(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts, true);
  }

  async #create(id: string, parent: string | undefined, opts: CreateOpts | undefined, readWrite: boolean): Promise<void> {
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    const size = this.#sizeLimit(opts, readWrite);
    await this.#locks.withLock(id, async () => {
      if (this.#layout.find(id) !== undefined) throw new LayerExistsError(id);
      const from = parentId === undefined ? undefined : this.#layout.find(parentId);
      if (parentId !== undefined && from === undefined) throw new LayerUnknownError(parentId, 'parent layer');
      const staging = await mkdtemp(join(this.#layout.stagingDir, `${id}-`));
      try {
        if (size > 0) await this.#quotas.limit(staging, { size });
        if (from !== undefined) {
          const stats = await copyTree(from.dir, staging);
          debug('create %s from %s: %d files (%d bytes), %d dirs, %d links', id, parentId, stats.files, stats.bytes, stats.dirs, stats.hardLinks);
        } else {
          const owner = hostRoot(opts?.idMappings ?? this.#idMappings);
          await chown(staging, owner.uid, owner.gid);
          await chmod(staging, ROOT_MODE);
        }
        await rename(staging, this.#layout.layerDir(id));
      } catch (err) {
        await rm(staging, { recursive: true, force: true }).catch(() => undefined);
        if (errorCode(err)?.startsWith('ERR_GRAPHDRIVER_')) throw err;
        throw new OperationFailedError('create', id, err);
      }
    });
  }

  /** The layer's size limit: none for read-only layers (moby refuses one), else storageOpt or the default. */
  #sizeLimit(opts: CreateOpts | undefined, readWrite: boolean): number {
    const given = opts?.storageOpt !== undefined && Object.keys(opts.storageOpt).length > 0;
    if (!readWrite) {
      if (given) throw new InvalidOptionError('storageOpt', 'vfs: storage options are not supported on read-only layers');
      return 0;
    }
    return parseStorageOpt(opts?.storageOpt, ['size'], 'vfs').size ?? this.options.size;
  }

  async remove(id: string): Promise<void> {
    validateLayerId(id);
    await this.#locks.withLock(id, async () => {
      const found = this.#layout.find(id);
      // moby and containers/storage: removing what is not there is not an error.
      if (found === undefined) return;
      if (found.readOnly) {
        throw new OperationFailedError('remove', id, new Error(`the layer is in a read-only additional image store (${found.dir})`));
      }
      const doomed = await mkdtemp(join(this.#layout.stagingDir, `${id}-removing-`));
      const target = join(doomed, 'layer');
      try {
        await rename(found.dir, target);
      } catch (err) {
        await rm(doomed, { recursive: true, force: true });
        throw new OperationFailedError('remove', id, err);
      }
      // Gone from dir/ already; a failure below only leaves garbage in staging for the next start.
      await removeTree(doomed).catch((err: unknown) => debug('remove %s: %s left in staging: %o', id, doomed, err));
    });
  }

  async get(id: string, opts?: MountOpts): Promise<string> {
    validateLayerId(id);
    for (const o of opts?.options ?? []) {
      // containers/storage ignores "ro"; vfs has no mount to pass anything else to.
      if (o !== 'ro') throw new InvalidOptionError('options', `vfs driver does not support mount options (got ${JSON.stringify(o)})`);
    }
    const found = this.#layout.find(id);
    if (found === undefined) throw new LayerUnknownError(id);
    return found.dir;
  }

  async put(id: string): Promise<void> {
    validateLayerId(id);
    // Nothing to release: get() mounted nothing.
  }

  async exists(id: string): Promise<boolean> {
    validateLayerId(id);
    return this.#layout.find(id) !== undefined;
  }

  async status(): Promise<Array<[string, string]>> {
    return [['Backing Filesystem', await getFsName(this.home)]];
  }

  async metadata(id: string): Promise<Record<string, string>> {
    validateLayerId(id);
    const found = this.#layout.find(id);
    if (found === undefined) throw new LayerUnknownError(id);
    return { SourceDir: found.dir };
  }

  async cleanup(): Promise<void> {
    // vfs holds no mounts and no open files between calls.
  }

  // ---- DiffDriver, through the naive (tree-compare) differ ------------------------------------

  diff(id: string, parent?: string, opts?: DiffOpts): Promise<Readable> {
    return this.#naive.diff(id, parent, opts);
  }

  changes(id: string, parent?: string, opts?: DiffOpts): Promise<Change[]> {
    return this.#naive.changes(id, parent, opts);
  }

  async applyDiff(id: string, parent: string | undefined, tar: Readable, opts: ApplyDiffOpts = {}): Promise<number> {
    try {
      validateLayerId(id);
      normalizeParent(parent);
      const found = this.#layout.find(id);
      if (found === undefined) throw new LayerUnknownError(id);
      if (found.readOnly) throw new OperationFailedError('applyDiff', id, new Error(`the layer is in a read-only additional image store (${found.dir})`));
    } catch (err) {
      tar.destroy();
      throw err;
    }
    return this.#naive.applyDiff(id, parent, tar, { ...opts, ignoreChownErrors: opts.ignoreChownErrors ?? this.options.ignore_chown_errors });
  }

  diffSize(id: string, parent?: string, opts?: DiffOpts): Promise<number> {
    return this.#naive.diffSize(id, parent, opts);
  }

  // ---- optional capabilities ------------------------------------------------------------------

  /** containers/storage: a copy of the template (its parent is only bookkeeping for the caller). */
  async createFromTemplate(id: string, template: string, opts: CreateFromTemplateOpts = {}): Promise<void> {
    if (opts.parent !== undefined) normalizeParent(opts.parent);
    return this.#create(id, template, opts.create, opts.readWrite ?? false);
  }

  /** The layers of this store (not of additional image stores). */
  async listLayers(): Promise<string[]> {
    const entries = await readdir(this.#layout.layersDir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && isLayerName(e.name)).map((e) => e.name);
  }

  async diffGetter(id: string): Promise<FileGetter> {
    return pathFileGetter(await this.get(id));
  }

  async readWriteDiskUsage(id: string): Promise<DiskUsage> {
    return diskUsage(await this.get(id));
  }

  additionalImageStores(): string[] {
    return [...this.options.imagestore];
  }
}

/** rm -rf that also copes with something a container left mounted inside the layer. */
async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true });
  } catch (err) {
    if (errorCode(err) !== 'EBUSY') throw err;
    await unmountRecursive(path, { lazyFallback: true });
    await rm(path, { recursive: true, force: true });
  }
}

export const name = DRIVER_NAME;

/** The registry's entry point (core's driver package convention). */
export const init: DriverInit = (ctx) => VfsDriver.start(ctx);
