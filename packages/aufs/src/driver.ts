/**
 * The aufs storage driver (moby's and containers/storage's daemon/graphdriver/aufs): each layer is
 * an AUFS branch `diff/<id>` with its ancestry in `layers/<id>` (layout.ts has the format, which is
 * Docker's), and get() mounts the branch over its ancestors' branches at `mnt/<id>`.
 *
 * - Mounting goes through a backend (backend.ts): the kernel's aufs where the kernel has it, else
 *   fuse-overlayfs, run so that the branch it writes stays in AUFS format; what it still leaves of
 *   its own is removed when the union is taken down (branch.ts), so a layer is in one format
 *   whichever backend mounted it.
 * - get()/put() are counted per layer (n gets need n puts), one at a time per layer, and adopt the
 *   mounts an earlier process left. A layer without parent is served as its branch directory, as
 *   moby does - unless it must be read-only, then as a read-only bind mount. A layer with children
 *   is always mounted read-only (its branch as the top read-only branch): writing under a child
 *   would change the child's content, and a read-only union leaves no work directory behind.
 * - Diffs against the direct parent are the branch itself (moby's fast path): diff() is the branch
 *   as a tar with `.wh..wh.*` metadata left out, changes() read the branch's whiteouts against the
 *   ancestors, applyDiff() extracts with whiteouts kept as files. Against anything else, core's
 *   NaiveDiffDriver compares mounted trees.
 * - Size limits (limits.ts): aufslimit's createWithQuota, an ext4 image mounted on the branch or a
 *   project quota on it.
 * - Removal renames the branch and the mount point to `<id>-removing` first and deletes them then
 *   (moby's atomicRemove); the layers file goes first, so a crash never leaves half a layer that
 *   exists() would report.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { chmod, chown, mkdir, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import {
  changesFromLayerDir,
  errorCode,
  FsMagic,
  fsNameOf,
  getFsMagic,
  GraphDriverError,
  hostRoot,
  IncompatibleFsError,
  InvalidOptionError,
  KeyedMutex,
  LayerExistsError,
  LayerUnknownError,
  mountsUnder,
  NaiveDiffDriver,
  nearestExistingDir,
  normalizeParent,
  OperationFailedError,
  pack,
  packUnion,
  parseStorageOpt,
  pathFileGetter,
  RefMounts,
  sortChanges,
  unionChanges,
  unionFileBytes,
  unmount,
  unmountRecursive,
  unpack,
  validateLayerId,
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
import { MNT, MS, mount, umount2 } from '@graphdriver/native';
import { chooseBackend, type MountBackend } from './backend.js';
import { hasFuseWorkdir, normalizeBranch, type NormalizeReport } from './branch.js';
import { walkMerged } from './merged.js';
import { KernelAufsBackend } from './kernel-aufs.js';
import { assertNotReserved, DRIVER_NAME, Layout, REMOVING_SUFFIX, ROOT_MODE } from './layout.js';
import { LayerLimits, type BranchRoot } from './limits.js';
import { aufsOptions, splitMountopt, type AufsOptions } from './options.js';
import { branchDiffSize, diskUsage } from './usage.js';

const debug = debuglog('graphdriver:aufs');

/** What is mounted at a layer's mount point. */
type MountKind = 'union' | 'bind';

function wrap(operation: string, id: string | undefined, err: unknown): unknown {
  if (err instanceof GraphDriverError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  return new OperationFailedError(operation, id, err);
}

export class AufsDriver implements Driver, TemplateDriver, ListLayersDriver, DiffGetterDriver, DiskUsageDriver {
  readonly name = DRIVER_NAME;
  readonly home: string;
  readonly options: AufsOptions;
  /** moby's name of the filesystem that holds the home (`extfs`, `xfs`...). */
  readonly backingFs: string;
  readonly backend: MountBackend;
  readonly #layout: Layout;
  readonly #locks = new KeyedMutex<string>();
  readonly #refs = new RefMounts();
  /** Layers without parent served as their branch directory, and how many gets hold them. */
  readonly #direct = new Map<string, number>();
  /** What is mounted at each mount point we hold. */
  readonly #kinds = new Map<string, MountKind>();
  /** Ancestry read from `layers/<id>` (it never changes while the layer exists). */
  readonly #parents = new Map<string, readonly string[]>();
  /** Number of children per layer, read from every layers file the first time it is needed. */
  #children: Map<string, number> | undefined;
  readonly #limits: LayerLimits;
  readonly #naive: NaiveDiffDriver;
  readonly #idMappings: IdMappings | undefined;

  private constructor(init: { home: string; options: AufsOptions; backingFs: string; backend: MountBackend; idMappings: IdMappings | undefined }) {
    this.home = init.home;
    this.options = init.options;
    this.backingFs = init.backingFs;
    this.backend = init.backend;
    this.#idMappings = init.idMappings;
    this.#layout = new Layout(init.home);
    this.#limits = new LayerLimits(this.#layout, init.options.limit_method);
    this.#naive = new NaiveDiffDriver(this, init.idMappings === undefined ? {} : { idMappings: init.idMappings });
  }

  /**
   * Checks the host (a mount backend, a backing filesystem aufs can sit on), makes the layout,
   * deletes what an interrupted remove left, adopts the mounts of an earlier process, mounts the
   * images of size-limited layers and brings back to AUFS format the branches a crash left as
   * fuse-overlayfs wrote them.
   */
  static async start(ctx: DriverInitContext): Promise<AufsDriver> {
    const options = aufsOptions.parse(ctx.options);
    const home = ctx.home;
    const backend = await chooseBackend({
      choice: options.mount_backend,
      ...(options.mount_program === undefined ? {} : { program: options.mount_program }),
      mountopt: options.mountopt,
      home: await nearestExistingDir(home),
    });
    const magic = await getFsMagic(await nearestExistingDir(home));
    const backingFs = fsNameOf(magic);
    // moby refuses aufs over aufs, btrfs and ecryptfs; btrfs only troubles the kernel's aufs
    if (magic === FsMagic.Aufs || magic === FsMagic.Ecryptfs || (magic === FsMagic.Btrfs && backend instanceof KernelAufsBackend)) {
      throw new IncompatibleFsError(`AUFS is not supported over ${backingFs}`, backingFs);
    }

    const layout = new Layout(home);
    const root = hostRoot(ctx.idMappings);
    const uid = process.getuid?.() ?? 0;
    for (const dir of [home, layout.diffRoot, layout.layersRoot, layout.mntRoot]) {
      await mkdir(dir, { recursive: true, mode: 0o710 });
      await chown(dir, uid, root.gid);
    }
    await mkdir(layout.limitsRoot, { recursive: true, mode: 0o700 });

    const d = new AufsDriver({ home, options, backingFs, backend, idMappings: ctx.idMappings });
    await d.#removeStale();
    const adopted = await d.#adoptMounts();
    await d.#limits.adopt((id) => layout.exists(id));
    // moby: a default size that cannot be enforced is an error at start, not at the first layer
    if (options.size > 0) await d.#limits.resolve();
    await d.#settleAll(adopted);
    debug('aufs driver at %s: %s on %s', home, backend.describe(), backingFs);
    return d;
  }

  /** moby's init: `<x>-removing` directories under mnt/ and diff/ are what a remove left; they go. */
  async #removeStale(): Promise<void> {
    for (const dir of [this.#layout.mntRoot, this.#layout.diffRoot]) {
      for (const name of await readdir(dir)) {
        if (!name.endsWith(REMOVING_SUFFIX)) continue;
        debug('removing the stale %s/%s', dir, name);
        await removeTree(join(dir, name)).catch((err: unknown) => debug('removing %s/%s failed: %o', dir, name, err));
      }
    }
  }

  /** Counts the unions an earlier process left at `mnt/<id>` as one reference each (moby's rule). */
  async #adoptMounts(): Promise<Set<string>> {
    const canonical = await realpath(this.#layout.mntRoot);
    const points: string[] = [];
    for (const m of await mountsUnder(this.#layout.mntRoot)) {
      if (dirname(m.mountPoint) !== canonical) continue;
      const ours = join(this.#layout.mntRoot, relative(canonical, m.mountPoint));
      points.push(ours);
      this.#kinds.set(ours, this.backend.ownsFsType(m.fsType) ? 'union' : 'bind');
    }
    const adopted = await this.#refs.adopt(points);
    for (const p of points) if (!adopted.includes(p)) this.#kinds.delete(p);
    if (adopted.length > 0) debug('adopted %d mounts left by an earlier process: %o', adopted.length, adopted);
    return new Set(adopted);
  }

  /** Branches that still hold fuse-overlayfs's work directory and are not mounted: a crash left them; normalize them. */
  async #settleAll(adopted: Set<string>): Promise<void> {
    for (const id of this.#layout.listIds()) {
      if (adopted.has(this.#layout.mountPath(id))) continue;
      if (hasFuseWorkdir(this.#layout.diffPath(id))) await this.#normalize(id, false);
    }
  }

  async #normalize(id: string, live: boolean): Promise<NormalizeReport> {
    return normalizeBranch(this.#layout.diffPath(id), { keepWorkdir: live });
  }

  /**
   * Makes the branch of `id` ready to be read as it is stored: its size-limit image mounted, and
   * fuse-overlayfs's own state removed (from a live writable union too, keeping its work directory).
   * Called with the layer's lock held.
   */
  async #settle(id: string): Promise<void> {
    await this.#limits.ensureMounted(id);
    if (!hasFuseWorkdir(this.#layout.diffPath(id))) return;
    const live = this.#refs.count(this.#layout.mountPath(id)) > 0;
    await this.#normalize(id, live);
  }

  /**
   * #settle for the layer (under its lock) and, with `ancestors`, for its ancestors' branches too
   * (their images mounted, and normalized if one is still held by a writable union that was made
   * before it had children). Returns the branches, the layer's first.
   */
  async #settleStack(id: string, ancestors: boolean): Promise<string[]> {
    const parents = this.#parentsOf(id);
    await this.#locks.withLock(id, () => this.#settle(id));
    if (ancestors) for (const p of parents) await this.#locks.withLock(p, () => this.#settle(p));
    return [id, ...(ancestors ? parents : [])].map((x) => this.#layout.diffPath(x));
  }

  // ---- ancestry ---------------------------------------------------------------------------------

  /** The layer's parent and ancestors (parent first); LayerUnknownError when it does not exist. */
  #parentsOf(id: string): readonly string[] {
    const cached = this.#parents.get(id);
    if (cached !== undefined) return cached;
    const read = this.#layout.readParents(id);
    if (read === undefined) throw new LayerUnknownError(id);
    this.#parents.set(id, read);
    return read;
  }

  #childCounts(): Map<string, number> {
    if (this.#children !== undefined) return this.#children;
    const counts = new Map<string, number>();
    for (const id of this.#layout.listIds()) {
      const parent = this.#parentsOf(id)[0];
      if (parent !== undefined) counts.set(parent, (counts.get(parent) ?? 0) + 1);
    }
    this.#children = counts;
    return counts;
  }

  #hasChildren(id: string): boolean {
    return (this.#childCounts().get(id) ?? 0) > 0;
  }

  #noteChild(parent: string | undefined, delta: 1 | -1): void {
    if (parent === undefined || this.#children === undefined) return;
    const n = (this.#children.get(parent) ?? 0) + delta;
    if (n > 0) this.#children.set(parent, n);
    else this.#children.delete(parent);
  }

  // ---- ProtoDriver ------------------------------------------------------------------------------

  create(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts, false, undefined);
  }

  createReadWrite(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts, true, undefined);
  }

  /**
   * The aufslimit fork's call: a writable layer whose own branch holds at most `bytes` (a loop-mounted
   * ext4 image of that size, or a project quota; see limits.ts). The same as createReadWrite with
   * `storageOpt: { size }`.
   */
  async createWithQuota(id: string, parent: string | undefined, bytes: number, opts?: CreateOpts): Promise<void> {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new InvalidOptionError('size', `aufs: createWithQuota needs a positive whole number of bytes (got ${bytes})`);
    await this.#create(id, parent, opts, true, bytes);
  }

  /** The size limit of a new layer: none for read-only layers (storage options are refused there), else storageOpt over the default. */
  #sizeLimit(opts: CreateOpts | undefined, readWrite: boolean): number {
    const given = opts?.storageOpt !== undefined && Object.keys(opts.storageOpt).length > 0;
    if (!readWrite) {
      if (given) throw new InvalidOptionError('storageOpt', 'aufs: --storage-opt is only supported for read-write layers');
      return 0;
    }
    return parseStorageOpt(opts?.storageOpt, ['size'], 'aufs').size ?? this.options.size;
  }

  async #create(id: string, parent: string | undefined, opts: CreateOpts | undefined, readWrite: boolean, bytes: number | undefined): Promise<void> {
    validateLayerId(id);
    assertNotReserved(id);
    const parentId = normalizeParent(parent);
    const size = bytes ?? this.#sizeLimit(opts, readWrite);
    await this.#locks.withLock(id, async () => {
      if (this.#layout.exists(id)) throw new LayerExistsError(id);
      let chain: string[] = [];
      let root: BranchRoot;
      if (parentId !== undefined) {
        const above = this.#layout.readParents(parentId);
        if (above === undefined) throw new LayerUnknownError(parentId, 'parent layer');
        chain = [parentId, ...above];
        // containers/storage: a child's branch root takes its parent's mode and owner (the union's root is the top branch's)
        const st = await stat(this.#layout.diffPath(parentId));
        root = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      } else {
        root = { mode: ROOT_MODE, ...hostRoot(opts?.idMappings ?? this.#idMappings) };
      }
      const branch = this.#layout.diffPath(id);
      const mnt = this.#layout.mountPath(id);
      try {
        await this.#clearLeftovers(id);
        for (const dir of [mnt, branch]) {
          await mkdir(dir, { mode: 0o700 });
          await chown(dir, root.uid, root.gid);
          await chmod(dir, root.mode);
        }
        if (size > 0) await this.#limits.apply(id, size, root);
        this.#layout.writeLayersFile(id, chain);
      } catch (err) {
        await this.#limits.release(id).catch(() => undefined);
        await rm(branch, { recursive: true, force: true }).catch(() => undefined);
        await rm(mnt, { recursive: true, force: true }).catch(() => undefined);
        throw wrap('create', id, err);
      }
      this.#parents.set(id, chain);
      this.#noteChild(parentId, 1);
    });
  }

  /** Branch, mount point and image of a layer that does not exist (a create a crash interrupted). */
  async #clearLeftovers(id: string): Promise<void> {
    await this.#limits.release(id);
    for (const dir of [this.#layout.diffPath(id), this.#layout.mountPath(id)]) {
      if ((await stat(dir).catch(() => undefined)) === undefined) continue;
      debug('create %s: clearing %s, left by an earlier create', id, dir);
      await removeTree(dir);
    }
  }

  async remove(id: string): Promise<void> {
    validateLayerId(id);
    await this.#locks.withLock(id, async () => {
      const branch = this.#layout.diffPath(id);
      const mnt = this.#layout.mountPath(id);
      const exists = this.#layout.exists(id);
      // moby and containers/storage: removing what is not there is not an error
      if (!exists && (await stat(branch).catch(() => undefined)) === undefined && (await stat(mnt).catch(() => undefined)) === undefined) return;
      const parent = exists ? this.#parentsOf(id)[0] : undefined;
      this.#direct.delete(id);
      try {
        // every reference goes: remove() of a mounted layer unmounts it
        while ((await this.#refs.put(mnt, () => this.#unmount(mnt))) > 0);
      } catch (err) {
        throw wrap('unmounting before remove', id, err);
      }
      try {
        this.#layout.removeLayersFile(id);
        this.#parents.delete(id);
        if (exists) this.#noteChild(parent, -1);
        await this.#limits.release(id);
        await atomicRemove(branch);
        await atomicRemove(mnt);
      } catch (err) {
        throw wrap('remove', id, err);
      }
    });
  }

  async get(id: string, opts: MountOpts = {}): Promise<string> {
    validateLayerId(id);
    const extra = (opts.options ?? []).flatMap((o) => splitMountopt(o));
    if (opts.idMappings !== undefined) throw new InvalidOptionError('idMappings', 'aufs: mounts with id mappings are not supported');
    return this.#locks.withLock(id, async () => {
      const parents = this.#parentsOf(id);
      const held = this.#direct.get(id);
      if (held !== undefined) {
        this.#direct.set(id, held + 1);
        return this.#layout.diffPath(id);
      }
      const mnt = this.#layout.mountPath(id);
      if (this.#refs.count(mnt) > 0) {
        await this.#refs.get(mnt, () => this.#mount(id, parents, opts, extra));
        return mnt;
      }
      try {
        await this.#limits.ensureMounted(id);
      } catch (err) {
        throw wrap('mounting the size-limit image', id, err);
      }
      const readOnly = opts.readOnly === true || extra.includes('ro') || this.#hasChildren(id);
      if (parents.length === 0 && !readOnly) {
        this.#direct.set(id, 1);
        return this.#layout.diffPath(id);
      }
      await this.#refs.get(mnt, () => this.#mount(id, parents, opts, extra));
      return mnt;
    });
  }

  async #mount(id: string, parents: readonly string[], opts: MountOpts, extra: string[]): Promise<void> {
    const mnt = this.#layout.mountPath(id);
    const branch = this.#layout.diffPath(id);
    const readOnly = opts.readOnly === true || extra.includes('ro') || this.#hasChildren(id);
    try {
      // moby makes it with the layer; a store made elsewhere may lack it. Synchronous: one metadata call.
      mkdirSync(mnt, { recursive: true, mode: 0o755 });
      for (const p of parents) await this.#limits.ensureMounted(p);
      if (parents.length === 0) {
        await bindReadOnly(branch, mnt);
        this.#kinds.set(mnt, 'bind');
        return;
      }
      // as label.FormatMountLabel: a label always goes to the kernel (it refuses one where SELinux is off)
      const label = opts.mountLabel !== undefined && opts.mountLabel !== '' ? opts.mountLabel : undefined;
      const options = extra.filter((o) => o !== 'ro');
      const ro = parents.map((p) => this.#layout.diffPath(p));
      await this.backend.mount({
        target: mnt,
        ...(readOnly ? { ro: [branch, ...ro] } : { rw: branch, ro }),
        ...(label === undefined ? {} : { mountLabel: label }),
        ...(options.length === 0 ? {} : { options }),
      });
      this.#kinds.set(mnt, 'union');
      debug('get %s: %s union at %s (%d branches)', id, readOnly ? 'read-only' : 'writable', mnt, parents.length + 1);
    } catch (err) {
      throw wrap('mounting', id, err);
    }
  }

  async #unmount(mnt: string): Promise<void> {
    const kind = this.#kinds.get(mnt) ?? 'union';
    if (kind === 'bind') await unmount(mnt, { retries: 20, retryDelayMs: 25, lazyFallback: true });
    else await this.backend.unmount(mnt);
    this.#kinds.delete(mnt);
  }

  async put(id: string): Promise<void> {
    validateLayerId(id);
    await this.#locks.withLock(id, async () => {
      const held = this.#direct.get(id);
      if (held !== undefined) {
        if (held > 1) this.#direct.set(id, held - 1);
        else this.#direct.delete(id);
        return;
      }
      if (!this.#layout.exists(id)) throw new LayerUnknownError(id);
      const mnt = this.#layout.mountPath(id);
      try {
        const left = await this.#refs.put(mnt, () => this.#unmount(mnt));
        if (left === 0 && hasFuseWorkdir(this.#layout.diffPath(id))) await this.#normalize(id, false);
      } catch (err) {
        throw wrap('unmounting', id, err);
      }
    });
  }

  async exists(id: string): Promise<boolean> {
    validateLayerId(id);
    return this.#layout.exists(id);
  }

  /** moby's rows (Root Dir, Backing Filesystem, Dirs, Dirperm1 Supported), the mount backend and how size limits are enforced. */
  async status(): Promise<Array<[string, string]>> {
    const dirperm1 = this.backend instanceof KernelAufsBackend && this.backend.dirperm1;
    return [
      ['Root Dir', this.home],
      ['Backing Filesystem', this.backingFs],
      ['Dirs', String(this.#layout.listIds().length)],
      ['Dirperm1 Supported', String(dirperm1)],
      ['Mount backend', this.backend.describe()],
      ['Size limits', await this.#limits.describe()],
    ];
  }

  async metadata(id: string): Promise<Record<string, string>> {
    validateLayerId(id);
    const parents = this.#parentsOf(id);
    const md: Record<string, string> = { DiffDir: this.#layout.diffPath(id) };
    if (parents.length > 0) {
      md.MergedDir = this.#layout.mountPath(id);
      md.LowerDirs = parents.map((p) => this.#layout.diffPath(p)).join(':');
    }
    if (this.#limits.hasImage(id)) md.SizeLimitImage = this.#layout.limitImage(id);
    return md;
  }

  /** Unmounts everything the driver mounted (unions, then the images of limited branches) and what else is mounted under its home. */
  async cleanup(): Promise<void> {
    this.#direct.clear();
    const failures: unknown[] = [];
    for (const [path] of this.#refs.counts()) {
      try {
        while ((await this.#refs.put(path, () => this.#unmount(path))) > 0);
        const id = basename(path);
        if (hasFuseWorkdir(this.#layout.diffPath(id))) await this.#normalize(id, false);
      } catch (err) {
        failures.push(err);
      }
    }
    try {
      for (const p of new Set((await mountsUnder(this.#layout.mntRoot)).map((m) => m.mountPoint))) {
        await unmountRecursive(p, { lazyFallback: true, retries: 20, retryDelayMs: 25 }).catch((err: unknown) => failures.push(err));
      }
    } catch (err) {
      failures.push(err);
    }
    failures.push(...(await this.#limits.unmountAll()));
    // what is left under the home (never the home itself, which may be a filesystem the user mounted there)
    try {
      const canonicalHome = await realpath(this.home);
      const tops = (await mountsUnder(this.home)).map((m) => m.mountPoint).filter((p) => p !== canonicalHome);
      for (const p of new Set(tops)) await unmountRecursive(p, { lazyFallback: true, retries: 20, retryDelayMs: 25 }).catch((err: unknown) => failures.push(err));
    } catch (err) {
      failures.push(err);
    }
    this.#kinds.clear();
    if (failures.length > 0) throw wrap('cleanup', undefined, failures[0]);
  }

  // ---- DiffDriver --------------------------------------------------------------------------------

  /** moby's isParent: the diff is the branch itself when `parent` is the layer's direct parent (or both have none). */
  #isDirect(id: string, parent: string | undefined): boolean {
    const parents = this.#parentsOf(id);
    if (parent === undefined) return parents.length === 0;
    return parents[0] === parent;
  }

  async diff(id: string, parent?: string, opts: DiffOpts = {}): Promise<Readable> {
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    const idMappings = opts.idMappings ?? this.#idMappings;
    const packOpts = {
      ...(idMappings === undefined ? {} : { idMappings }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    };
    if (this.#isDirect(id, parentId)) {
      await this.#settleStack(id, false).catch((err: unknown) => {
        throw wrap('diff', id, err);
      });
      // AUFS needs no parent for a diff: the branch is the layer tar, its metadata left out (moby)
      return pack(this.#layout.diffPath(id), { excludeAufsMetadata: true, ...packOpts });
    }
    if (parentId !== undefined) return this.#naive.diff(id, parentId, opts);
    // the whole layer: its union, read from the branches (what packing its mount gives)
    const branches = await this.#settleStack(id, true).catch((err: unknown) => {
      throw wrap('diff', id, err);
    });
    return packUnion((visit) => walkMerged(branches, visit, opts.signal), packOpts);
  }

  async changes(id: string, parent?: string, opts: DiffOpts = {}): Promise<Change[]> {
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    const direct = this.#isDirect(id, parentId);
    if (!direct && parentId !== undefined) return this.#naive.changes(id, parentId, opts);
    try {
      const [branch, ...lowers] = await this.#settleStack(id, true);
      // the whole layer: every entry of its union is an add
      if (!direct) return sortChanges(await unionChanges((visit) => walkMerged([branch!, ...lowers], visit, opts.signal)));
      // AUFS has no snapshots: the branch's whiteouts are read against every ancestor (moby)
      return await changesFromLayerDir(branch!, {
        whiteouts: 'aufs',
        lowerDirs: lowers,
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      });
    } catch (err) {
      throw wrap('changes', id, err);
    }
  }

  async diffSize(id: string, parent?: string, opts: DiffOpts = {}): Promise<number> {
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    const direct = this.#isDirect(id, parentId);
    if (!direct && parentId !== undefined) return this.#naive.diffSize(id, parentId, opts);
    try {
      if (direct) {
        await this.#settleStack(id, false);
        return await branchDiffSize(this.#layout.diffPath(id), opts.signal);
      }
      const branches = await this.#settleStack(id, true);
      return await unionFileBytes((visit) => walkMerged(branches, visit, opts.signal));
    } catch (err) {
      throw wrap('diffSize', id, err);
    }
  }

  async applyDiff(id: string, parent: string | undefined, tar: Readable, opts: ApplyDiffOpts = {}): Promise<number> {
    let parentId: string | undefined;
    let direct: boolean;
    try {
      validateLayerId(id);
      parentId = normalizeParent(parent);
      direct = this.#isDirect(id, parentId);
    } catch (err) {
      tar.destroy();
      throw err;
    }
    const ignoreChownErrors = opts.ignoreChownErrors ?? this.options.ignore_chown_errors;
    const applied = await this.#locks.withLock(id, async (): Promise<number | undefined> => {
      try {
        await this.#settle(id);
      } catch (err) {
        tar.destroy();
        throw wrap('applyDiff', id, err);
      }
      // A tar against no parent is a whole tree. Laid into the empty branch of a layer with parents
      // it shows what extracting it through the union shows: an entry of the tar hides the same name
      // below, as the union's replace would, and a directory merges with the one below as there.
      if (!direct && !(parentId === undefined && this.#isUntouched(id))) return undefined;
      // the direct parent: extracted into the branch as it is, whiteouts kept as files (moby)
      const idMappings = opts.idMappings ?? this.#idMappings;
      try {
        return await unpack(this.#layout.diffPath(id), tar, {
          whiteouts: 'aufs',
          ignoreChownErrors,
          ...(idMappings === undefined ? {} : { idMappings }),
          ...(opts.signal === undefined ? {} : { signal: opts.signal }),
        });
      } catch (err) {
        tar.destroy();
        throw wrap('applyDiff', id, err);
      }
    });
    // any other parent: through the union (moby's naive apply), outside the lock its get() takes
    return applied ?? this.#naive.applyDiff(id, parentId, tar, { ...opts, ignoreChownErrors });
  }

  /** The layer's branch is empty and nothing holds it: a whole tree can be laid into it directly. */
  #isUntouched(id: string): boolean {
    if (this.#direct.has(id) || this.#refs.count(this.#layout.mountPath(id)) > 0) return false;
    return readdirSync(this.#layout.diffPath(id)).length === 0;
  }

  // ---- optional capabilities -------------------------------------------------------------------

  /** containers/storage's NaiveCreateFromTemplate: a new layer on `opts.parent` holding the template's diff against it. */
  async createFromTemplate(id: string, template: string, opts: CreateFromTemplateOpts = {}): Promise<void> {
    validateLayerId(template);
    const parent = normalizeParent(opts.parent);
    if (!this.#layout.exists(template)) throw new LayerUnknownError(template, 'template layer');
    await this.#create(id, parent, opts.create, opts.readWrite ?? false, undefined);
    try {
      const tar = await this.diff(template, parent, opts.templateIdMappings === undefined ? {} : { idMappings: opts.templateIdMappings });
      await this.applyDiff(id, parent, tar, opts.templateIdMappings === undefined ? {} : { idMappings: opts.templateIdMappings });
    } catch (err) {
      await this.remove(id).catch(() => undefined);
      throw err;
    }
  }

  async listLayers(): Promise<string[]> {
    return this.#layout.listIds();
  }

  async diffGetter(id: string): Promise<FileGetter> {
    validateLayerId(id);
    this.#parentsOf(id);
    await this.#locks.withLock(id, () => this.#settle(id));
    return pathFileGetter(this.#layout.diffPath(id));
  }

  /** Bytes and inodes of the layer's own branch (containers/storage's directory.Usage). */
  async readWriteDiskUsage(id: string): Promise<DiskUsage> {
    validateLayerId(id);
    this.#parentsOf(id);
    await this.#locks.withLock(id, () => this.#limits.ensureMounted(id));
    return diskUsage(this.#layout.diffPath(id));
  }
}

/** A read-only bind mount of `source` at `target` (a layer without parent that must not be written). */
async function bindReadOnly(source: string, target: string): Promise<void> {
  await mount(source, target, null, MS.BIND);
  try {
    await mount(null, target, null, MS.REMOUNT | MS.BIND | MS.RDONLY);
  } catch (err) {
    await umount2(target, MNT.DETACH).catch(() => undefined);
    throw err;
  }
}

/** moby's atomicRemove: rename to `<path>-removing`, then delete it. */
async function atomicRemove(path: string): Promise<void> {
  const target = `${path}${REMOVING_SUFFIX}`;
  try {
    await rename(path, target);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') {
      // not there (a remove that failed half way renamed it already)
    } else if (code === 'EEXIST' || code === 'ENOTEMPTY') {
      if ((await stat(path).catch(() => undefined)) !== undefined) {
        throw new OperationFailedError(`renaming ${path} to ${target}`, undefined, new Error(`${target} exists but should not; it needs to be cleaned up by hand`, { cause: err }));
      }
    } else {
      throw err;
    }
  }
  await removeTree(target);
}

/** rm -rf that copes with something left mounted inside (EBUSY: unmount what is under it, try again). */
async function removeTree(path: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rm(path, { recursive: true, force: true });
      return;
    } catch (err) {
      if (errorCode(err) !== 'EBUSY' || attempt >= 3) throw err;
      await unmountRecursive(path, { lazyFallback: true });
    }
  }
}

export const name = DRIVER_NAME;

/** The registry's entry point (core's driver package convention). */
export const init: DriverInit = (ctx) => AufsDriver.start(ctx);
