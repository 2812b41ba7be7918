/**
 * The overlay storage driver (moby's overlay2, containers/storage's overlay): each layer is a
 * directory of its own changes (`<home>/<id>/diff`), and get() mounts it with the layers below as
 * an overlayfs - layout.ts has the on-disk format, which is theirs byte for byte.
 *
 * - Layers appear whole: a new layer is built in `<home>/staging` and renamed into place, then its
 *   short link is made; removal renames it out first. A crash leaves garbage in staging (cleared on
 *   start) and at worst a missing link (repaired on start and whenever a mount misses one).
 * - get()/put() are counted per layer (n gets need n puts), run one at a time per layer, and adopt
 *   the mounts an earlier process left (mounts.ts). A layer without lowers is served as its diff
 *   directory itself, as moby does - unless it must be read-only (it has children, it is in an
 *   additional image store, or the caller asked), then as a read-only bind mount of it. A layer
 *   with children (`committed`) is mounted read-only: its diff as the top lower, no upper.
 * - Mounts go through mounter.ts: the new mount API or mount(2) (`overlay.mount_api`), or a mount
 *   program (fuse-overlayfs) that stores AUFS whiteouts.
 * - Diffs are read from the upper directory where the probes say it is right (diff.ts), else
 *   computed by core's NaiveDiffDriver; applyDiff extracts straight into `diff/`, staged.
 */
import { closeSync, mkdirSync, rmdirSync } from 'node:fs';
import { access, chmod, chown, mkdir, mkdtemp, readdir, realpath, rename, rm, rmdir, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import {
  errorCode,
  GraphDriverError,
  hostRoot,
  InvalidOptionError,
  KeyedMutex,
  LayerBusyError,
  LayerExistsError,
  LayerUnknownError,
  LazyQuotaControl,
  MaxDepthError,
  mountsUnder,
  NaiveDiffDriver,
  nearestExistingDir,
  normalizeParent,
  OperationFailedError,
  parseStorageOpt,
  PrerequisitesError,
  RefMounts,
  unmountRecursive,
  validateLayerId,
  writeFileAtomic,
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
  type ShiftingDriver,
  type StagedApplyDriver,
  type StagedDiff,
  type TemplateDriver,
} from '@graphdriver/core';
import { AT, MOUNT_ATTR, MOVE_MOUNT, mountSetattr, moveMount } from '@graphdriver/native';
import { applyLayerTar, LayerDiffs } from './diff.js';
import { layerFileGetter } from './file-getter.js';
import { chownByMaps } from './chown.js';
import { idmappedClone, isContiguous, UserNamespaces } from './idmap.js';
import {
  assertNotReserved,
  COMMITTED_FILE,
  DIFF,
  DRIVER_NAME,
  isLayerName,
  Layout,
  LINK_DIR,
  LINK_FILE,
  LOWER_FILE,
  MAX_LOWERS,
  MOUNT_PROGRAM_MARKER,
  readOptional,
  WORK,
  type LayerLocation,
} from './layout.js';
import { generateLinkId } from './link-id.js';
import { repairLinks, type LinkRepairReport } from './links.js';
import { parseMountOptions, type ParsedMountOptions } from './mount-options.js';
import type { MountMethod, OverlayMount } from './mount-request.js';
import { Mounter } from './mounter.js';
import { isLayerMounted } from './mount-check.js';
import { overlayOptions, type OverlayOptions } from './options.js';
import { ProbeCache, probeIdmappedLowers, probeLowerdirPlus, probeMetacopy, probeNativeDiff, type ProbeResult } from './probes.js';
import { StagingArea } from './staging.js';
import { checkBackingFs, checkKernelOverlay, checkMountProgram, type BackingFs } from './support.js';
import { diskUsage } from './usage.js';

const debug = debuglog('graphdriver:overlay');

/** Root mode of a layer without parent (containers/storage's defaultPerms). */
export const ROOT_MODE = 0o555;

/** What the probes found, fixed for the driver's life. */
export interface OverlayFeatures {
  nativeDiff: ProbeResult;
  metacopy: boolean;
  lowerdirPlus: boolean;
  idmappedLowers: boolean;
}

/** A layer's lowers and whether it has children, as get() needs them (see #shapeOf). */
interface LayerShape {
  dir: string;
  ino: number | undefined;
  lowers: string[];
  committed: boolean;
}

/** How get() serves a layer. */
type Plan =
  | { kind: 'direct' }
  | { kind: 'bind'; readOnly: boolean }
  | { kind: 'overlay'; lowers: string[]; readOnly: boolean };

function wrap(operation: string, id: string | undefined, err: unknown): unknown {
  if (err instanceof GraphDriverError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  return new OperationFailedError(operation, id, err);
}

export class OverlayDriver
  implements
    Driver,
    TemplateDriver,
    ListLayersDriver,
    DiffGetterDriver,
    DiskUsageDriver,
    ShiftingDriver,
    StagedApplyDriver,
    AdditionalImageStoresDriver
{
  readonly name = DRIVER_NAME;
  readonly home: string;
  readonly options: OverlayOptions;
  readonly backingFs: BackingFs;
  readonly features: OverlayFeatures;
  readonly #layout: Layout;
  readonly #locks = new KeyedMutex<string>();
  readonly #refs: RefMounts;
  /** Layers served as their diff directory, and how many gets hold them. */
  readonly #direct = new Map<string, number>();
  /** Mount points we mounted through the mount program (they unmount through fusermount). */
  readonly #fuseMounts = new Set<string>();
  /** What #shapeOf read, by layer id. */
  readonly #shapes = new Map<string, LayerShape>();
  readonly #mounter: Mounter;
  readonly #mountOptions: ParsedMountOptions;
  readonly #driverData: readonly string[];
  readonly #quotas: LazyQuotaControl;
  readonly #idMappings: IdMappings | undefined;
  readonly #userns = new UserNamespaces();
  readonly #naive: NaiveDiffDriver;
  readonly #diffs: LayerDiffs;
  readonly #staging: StagingArea;

  private constructor(init: {
    home: string;
    options: OverlayOptions;
    backingFs: BackingFs;
    features: OverlayFeatures;
    mounter: Mounter;
    mountOptions: ParsedMountOptions;
    driverData: string[];
    idMappings: IdMappings | undefined;
  }) {
    this.home = init.home;
    this.options = init.options;
    this.backingFs = init.backingFs;
    this.features = init.features;
    this.#layout = new Layout(init.home, init.options.imagestore);
    this.#refs = new RefMounts({ isMounted: (p) => Promise.resolve(isLayerMounted(p, this.#diffOfMountPoint(p))) });
    this.#mounter = init.mounter;
    this.#mountOptions = init.mountOptions;
    this.#driverData = init.driverData;
    this.#idMappings = init.idMappings;
    this.#quotas = new LazyQuotaControl(init.home, DRIVER_NAME);
    this.#naive = new NaiveDiffDriver(this, init.idMappings === undefined ? {} : { idMappings: init.idMappings });
    this.#staging = new StagingArea(this.#layout.stagingDir);
    this.#diffs = new LayerDiffs({
      layout: this.#layout,
      naive: this.#naive,
      nativeDiff: init.features.nativeDiff.ok,
      whiteouts: init.options.mount_program === undefined ? 'overlay' : 'aufs',
      idMappings: init.idMappings,
      repairLinks: () => this.repairLinks(),
    });
  }

  /** Checks the host, makes the home, clears staging, repairs links, probes the kernel, adopts mounts. */
  static async start(ctx: DriverInitContext): Promise<OverlayDriver> {
    const options = overlayOptions.parse(ctx.options);
    const home = ctx.home;
    const mountOptions = parseMountOptions(options.mountopt);

    // containers/storage's marker: a store whose layers were written through a mount program
    // holds AUFS whiteouts that the kernel's overlay would show as plain files.
    let program = options.mount_program;
    const marker = readOptional(join(home, MOUNT_PROGRAM_MARKER))?.trim();
    if (program === undefined && marker === 'true') {
      const found = await findInPath('fuse-overlayfs');
      if (found === undefined) {
        throw new PrerequisitesError(
          `overlay: ${home} was written through a mount program (${MOUNT_PROGRAM_MARKER} says true) and fuse-overlayfs is not in PATH: its layers hold AUFS whiteouts the kernel's overlay would misread; install fuse-overlayfs or set overlay.mount_program`,
        );
      }
      debug('%s was written through a mount program; using %s', home, found);
      program = found;
    }
    if (program !== undefined) await checkMountProgram(program);
    else await checkKernelOverlay();
    const backingFs = await checkBackingFs(await nearestExistingDir(home), program !== undefined);

    const root = hostRoot(ctx.idMappings);
    await mkdir(home, { recursive: true, mode: 0o710 });
    await chown(home, process.getuid?.() ?? 0, root.gid);
    await mkdir(join(home, LINK_DIR), { recursive: true, mode: 0o700 });
    if (program !== undefined) await writeFile(join(home, MOUNT_PROGRAM_MARKER), 'true', { mode: 0o600 });
    else if (marker === undefined) await writeFile(join(home, MOUNT_PROGRAM_MARKER), 'false', { mode: 0o600 });

    const layout = new Layout(home, options.imagestore);
    await StagingArea.clear(layout.stagingDir);
    await repairLinks(layout);

    const cache = new ProbeCache(home);
    let features: OverlayFeatures;
    if (program !== undefined) {
      // containers/storage: with a mount program diffs are always naive; shifting is the program's
      features = { nativeDiff: { ok: false, reason: 'a mount program is used' }, metacopy: false, lowerdirPlus: false, idmappedLowers: false };
    } else {
      const key = options.mountopt;
      const metacopy = (await cache.get(`metacopy(${key})`, () => probeMetacopy(layout.stagingDir, mountOptions))).ok;
      const nativeDiff = await cache.get(`native-diff(${key})`, () => probeNativeDiff(layout.stagingDir, mountOptions, metacopy));
      const idmapped = (await cache.get('idmapped-lower-dir()', () => probeIdmappedLowers(layout.stagingDir))).ok;
      const lowerdirPlus = await probeLowerdirPlus(layout.linkDir);
      features = { nativeDiff, metacopy, lowerdirPlus, idmappedLowers: idmapped };
    }
    if (program === undefined && options.mount_api === 'new' && !features.lowerdirPlus) {
      throw new PrerequisitesError('overlay: mount_api=new needs a kernel whose overlay takes lowerdir+ through fsconfig (Linux 6.8 or later)');
    }

    // moby: index=off where the module has the parameter, so that an upper is never tied to one set of lowers
    const driverData: string[] = [];
    if (program === undefined && readOptional('/sys/module/overlay/parameters/index')?.trim() === 'Y') driverData.push('index=off');

    const d = new OverlayDriver({
      home,
      options: { ...options, mount_program: program },
      backingFs,
      features,
      mounter: new Mounter({ api: options.mount_api, lowerdirPlus: features.lowerdirPlus, ...(program === undefined ? {} : { program }), home }),
      mountOptions,
      driverData,
      idMappings: ctx.idMappings,
    });
    // moby: a default size that cannot be enforced is an error at start, not at the first layer
    if (options.size > 0 || options.inodes > 0) await d.#quotas.control();
    await d.#adoptMounts();
    debug('overlay driver at %s: %s on %s, native diff %s (%s)', home, d.#mounter.describe(), backingFs.name, features.nativeDiff.ok, features.nativeDiff.reason);
    return d;
  }

  /** The diff directory behind a mount point: `<id>/diff` beside `<id>/merged`, or the store layer's. */
  #diffOfMountPoint(mountPoint: string): string {
    const layerDir = dirname(mountPoint);
    if (dirname(layerDir) === this.#layout.storeMountsDir) {
      const layer = this.#layout.find(basename(layerDir));
      if (layer !== undefined) return join(layer.dir, DIFF);
    }
    return join(layerDir, DIFF);
  }

  /** Counts the mounts an earlier process left on our mount points as one reference each (moby's rule). */
  async #adoptMounts(): Promise<void> {
    const canonicalHome = await realpath(this.home);
    const fuse = new Set<string>();
    const points: string[] = [];
    for (const m of await mountsUnder(this.home)) {
      if (!m.mountPoint.endsWith('/merged')) continue;
      const ours = join(this.home, relative(canonicalHome, m.mountPoint));
      points.push(ours);
      if (m.fsType.startsWith('fuse')) fuse.add(ours);
    }
    const adopted = await this.#refs.adopt(points);
    for (const p of adopted) if (fuse.has(p)) this.#fuseMounts.add(p);
    if (adopted.length > 0) debug('adopted %d mounts left by an earlier process: %o', adopted.length, adopted);
  }

  // ---- ProtoDriver ------------------------------------------------------------------------------

  create(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts, false);
  }

  createReadWrite(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts, true);
  }

  /** The size and inode limits of a new layer: none for read-only layers (moby refuses them), else storageOpt over the defaults. */
  #limits(opts: CreateOpts | undefined, readWrite: boolean): { size: number; inodes: number } {
    const given = opts?.storageOpt !== undefined && Object.keys(opts.storageOpt).length > 0;
    if (!readWrite) {
      if (given) throw new InvalidOptionError('storageOpt', 'overlay: --storage-opt size is only supported for ReadWrite layers');
      return { size: 0, inodes: 0 };
    }
    const parsed = parseStorageOpt(opts?.storageOpt, ['size', 'inodes'], 'overlay');
    return { size: parsed.size ?? this.options.size, inodes: parsed.inodes ?? this.options.inodes };
  }

  async #create(id: string, parent: string | undefined, opts: CreateOpts | undefined, readWrite: boolean): Promise<void> {
    validateLayerId(id);
    assertNotReserved(id);
    const parentId = normalizeParent(parent);
    const limits = this.#limits(opts, readWrite);
    await this.#locks.withLock(id, async () => {
      if (this.#layout.find(id) !== undefined) throw new LayerExistsError(id);
      const parentLayer = parentId === undefined ? undefined : this.#layout.find(parentId);
      if (parentId !== undefined && parentLayer === undefined) throw new LayerUnknownError(parentId, 'parent layer');
      const lowers = parentLayer === undefined ? [] : await this.#lowersForChildOf(parentLayer);
      if (lowers.length > MAX_LOWERS) throw new MaxDepthError(lowers.length, MAX_LOWERS, `stack of lowers under layer ${JSON.stringify(id)}`);
      const rootPair = hostRoot(opts?.idMappings ?? this.#idMappings);
      const staging = await mkdtemp(join(this.#layout.stagingDir, `${id}-`));
      let linkName: string | undefined;
      try {
        // moby: the layer directory is 0710, ours, with the mapped root's group
        await chmod(staging, 0o710);
        await chown(staging, process.getuid?.() ?? 0, rootPair.gid);
        if (limits.size > 0 || limits.inodes > 0) await this.#quotas.limit(staging, limits);
        // containers/storage: a child's diff takes its parent's root mode and owner
        let mode = ROOT_MODE;
        let owner = rootPair;
        if (parentLayer !== undefined) {
          const st = await stat(join(parentLayer.dir, DIFF));
          mode = st.mode & 0o7777;
          owner = { uid: st.uid, gid: st.gid };
        }
        const diff = join(staging, DIFF);
        await mkdir(diff);
        await chown(diff, owner.uid, owner.gid);
        await chmod(diff, mode);
        linkName = generateLinkId();
        await writeFileAtomic(join(staging, LINK_FILE), linkName, { mode: 0o644, syncDirectory: false });
        if (parentLayer !== undefined) {
          await mkdir(join(staging, WORK), { mode: 0o700 });
          await chown(join(staging, WORK), rootPair.uid, rootPair.gid);
          await writeFileAtomic(join(staging, LOWER_FILE), lowers.join(':'), { mode: 0o644, syncDirectory: false });
        }
        try {
          await rename(staging, this.#layout.layerDir(id));
        } catch (err) {
          if (errorCode(err) === 'EEXIST' || errorCode(err) === 'ENOTEMPTY') throw new LayerExistsError(id, { cause: err });
          throw err;
        }
      } catch (err) {
        await rm(staging, { recursive: true, force: true }).catch(() => undefined);
        throw wrap('create', id, err);
      }
      try {
        await symlink(join('..', id, DIFF), join(this.#layout.linkDir, linkName));
        // moby: the parent now has a child, so its mounts are read-only from here on
        if (parentLayer !== undefined && !parentLayer.readOnly) {
          const committed = join(parentLayer.dir, COMMITTED_FILE);
          if (readOptional(committed) === undefined) await writeFileAtomic(committed, '', { mode: 0o600, syncDirectory: false });
          this.#shapes.delete(parentLayer.id);
        }
      } catch (err) {
        // the layer is in place; a missing link is what repairLinks() makes again
        debug('create %s: finishing failed: %o', id, err);
        throw wrap('create', id, err);
      }
    });
  }

  /** The `lower` entries of a new child of `parent`: the parent's link first, then its lowers. */
  async #lowersForChildOf(parent: LayerLocation): Promise<string[]> {
    let link = this.#layout.readLinkName(parent);
    if (link === undefined && !parent.readOnly) {
      debug('parent %s has no link name; repairing the links', parent.id);
      await this.repairLinks();
      link = this.#layout.readLinkName(parent);
    }
    if (link === undefined) throw new OperationFailedError('reading the link name', parent.id, new Error(`${join(parent.dir, LINK_FILE)} is missing or garbled`));
    return [`${LINK_DIR}/${link}`, ...this.#layout.lowerEntries(parent)];
  }

  async remove(id: string): Promise<void> {
    validateLayerId(id);
    await this.#locks.withLock(id, async () => {
      const layer = this.#layout.find(id);
      // moby and containers/storage: removing what is not there is not an error
      if (layer === undefined) return;
      if (layer.readOnly) throw new OperationFailedError('remove', id, new Error(`the layer is in a read-only additional image store (${layer.dir})`));
      this.#direct.delete(id);
      this.#shapes.delete(id);
      const merged = this.#layout.mergedDir(layer);
      try {
        // every reference goes: remove() of a mounted layer unmounts it (moby's EnsureRemoveAll)
        while ((await this.#refs.put(merged, () => this.#unmount(merged))) > 0);
      } catch (err) {
        throw wrap('unmounting before remove', id, err);
      }
      const link = this.#layout.readLinkName(layer);
      if (link !== undefined) await rm(join(this.#layout.linkDir, link), { force: true });
      const doomed = await mkdtemp(join(this.#layout.stagingDir, `${id}-removing-`));
      try {
        await rename(layer.dir, join(doomed, 'layer'));
      } catch (err) {
        await rm(doomed, { recursive: true, force: true });
        throw wrap('remove', id, err);
      }
      // gone from the store already; a failure below only leaves garbage in staging for the next start
      await removeTree(doomed).catch((err: unknown) => debug('remove %s: %s left in staging: %o', id, doomed, err));
    });
  }

  async get(id: string, opts: MountOpts = {}): Promise<string> {
    validateLayerId(id);
    const extra = parseMountOptions(opts.options);
    return this.#locks.withLock(id, () => this.#get(id, opts, extra));
  }

  async #get(id: string, opts: MountOpts, extra: ParsedMountOptions): Promise<string> {
    const layer = this.#layout.find(id);
    if (layer === undefined) throw new LayerUnknownError(id);
    const diff = join(layer.dir, DIFF);
    const held = this.#direct.get(id);
    if (held !== undefined) {
      this.#direct.set(id, held + 1);
      return diff;
    }
    const merged = this.#layout.mergedDir(layer);
    if (this.#refs.count(merged) > 0) {
      await this.#refs.get(merged, () => this.#mount(layer, merged, opts, extra));
      return merged;
    }
    const plan = this.#plan(layer, opts, extra);
    if (plan.kind === 'direct') {
      this.#direct.set(id, 1);
      return diff;
    }
    await this.#refs.get(merged, () => this.#mount(layer, merged, opts, extra, plan));
    return merged;
  }

  /**
   * A layer's lowers and whether it has children, read once per layer: get() asks on every call and
   * each answer is a stat (~4 us here). The lowers never change; `committed` is only written by our
   * create(), which forgets the parent's entry, as remove() forgets the layer's; a layer made again
   * has a directory of another inode.
   */
  #shapeOf(layer: LayerLocation): LayerShape {
    const cached = this.#shapes.get(layer.id);
    if (cached !== undefined && layer.ino !== undefined && cached.ino === layer.ino && cached.dir === layer.dir) return cached;
    const shape: LayerShape = {
      dir: layer.dir,
      ino: layer.ino,
      lowers: this.#layout.lowerEntries(layer),
      committed: readOptional(join(layer.dir, COMMITTED_FILE)) !== undefined,
    };
    if (layer.ino !== undefined) this.#shapes.set(layer.id, shape);
    return shape;
  }

  /** How layer `layer` is served for a get with `opts` (see the top of the file). */
  #plan(layer: LayerLocation, opts: MountOpts, extra: ParsedMountOptions): Plan {
    const { lowers, committed } = this.#shapeOf(layer);
    const readOnly = opts.readOnly === true || extra.readOnly || this.#mountOptions.readOnly || layer.readOnly || committed;
    if (lowers.length === 0) {
      if (!readOnly && opts.idMappings === undefined) return { kind: 'direct' };
      return { kind: 'bind', readOnly };
    }
    return { kind: 'overlay', lowers, readOnly };
  }

  async #mount(layer: LayerLocation, merged: string, opts: MountOpts, extra: ParsedMountOptions, planned?: Plan): Promise<void> {
    const plan = planned ?? this.#plan(layer, opts, extra);
    try {
      // synchronous: one metadata call, cheaper than a thread-pool round trip on every get
      mkdirSync(merged, { recursive: true, mode: 0o700 });
      const method = await this.#mountWithRepair(layer, merged, opts, plan);
      if (method === 'mount program') this.#fuseMounts.add(merged);
      debug('get %s: mounted at %s (%s)', layer.id, merged, method);
    } catch (err) {
      removeMountPoint(merged);
      throw wrap('mounting', layer.id, err);
    }
  }

  /** Mounts once; a lower link that is missing (ENOENT) is repaired and the mount tried again. */
  async #mountWithRepair(layer: LayerLocation, merged: string, opts: MountOpts, plan: Plan): Promise<MountMethod> {
    try {
      return await this.#mountPlan(layer, merged, opts, plan);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT' || plan.kind !== 'overlay') throw err;
      const report = await this.repairLinks();
      if (report.restored.length === 0 && report.relinked.length === 0) throw err;
      debug('get %s: a lower link was missing; repaired %o, mounting again', layer.id, report);
      return this.#mountPlan(layer, merged, opts, plan);
    }
  }

  async #mountPlan(layer: LayerLocation, merged: string, opts: MountOpts, plan: Plan): Promise<MountMethod> {
    const diff = join(layer.dir, DIFF);
    const options = parseMountOptions(this.options.mountopt, opts.options);
    if (plan.kind === 'bind') {
      if (opts.idMappings !== undefined) return this.#idmappedBind(diff, merged, opts.idMappings, plan.readOnly);
      return this.#mounter.bindReadOnly(diff, merged, options.flags);
    }
    if (plan.kind !== 'overlay') throw new Error('unreachable');
    const depth = plan.lowers.length + (plan.readOnly ? 1 : 0);
    if (depth > MAX_LOWERS) throw new MaxDepthError(depth, MAX_LOWERS, `read-only mount of layer ${JSON.stringify(layer.id)}`);
    const trees: number[] = [];
    try {
      // read-only: the layer's own diff is the top lower (moby)
      let lowerPaths = plan.lowers.map((e) => this.#layout.lowerLinkPath(e));
      if (plan.readOnly) lowerPaths = [diff, ...lowerPaths];
      const idmapped = opts.idMappings !== undefined && this.options.mount_program === undefined;
      if (idmapped) lowerPaths = await this.#idmappedLowers(lowerPaths, opts.idMappings!, trees);
      // passed through as moby's and containers/storage's label.FormatMountLabel do: without an LSM
      // that takes it, the kernel refuses the mount (a label given there is the caller's mistake)
      const label = opts.mountLabel !== undefined && opts.mountLabel !== '' ? opts.mountLabel : undefined;
      const m: OverlayMount = {
        target: merged,
        lowers: lowerPaths,
        options: { ...options, readOnly: plan.readOnly },
        driverData: this.#driverData,
        ...(plan.readOnly ? {} : { upper: { dir: diff, work: join(layer.dir, WORK) } }),
        ...(label === undefined ? {} : { label }),
        ...(opts.idMappings !== undefined && this.options.mount_program !== undefined ? { programMappings: programMappings(opts.idMappings) } : {}),
      };
      // a store made by containers/storage has it; moby's makes it with the layer; synchronous: it is there
      if (!plan.readOnly) mkdirSync(join(layer.dir, WORK), { recursive: true, mode: 0o700 });
      return await this.#mounter.mount(m);
    } finally {
      for (const t of trees) closeSync(t);
    }
  }

  /** The lower paths rewritten through idmapped clones of the homes that hold them. */
  async #idmappedLowers(paths: string[], mappings: IdMappings, trees: number[]): Promise<string[]> {
    if (!this.features.idmappedLowers) throw new PrerequisitesError('overlay: this kernel cannot mount an overlay on idmapped lowers');
    const ns = await this.#userns.fdFor(mappings);
    const clones = new Map<string, number>();
    const out: string[] = [];
    for (const p of paths) {
      // p is <home>/l/<name> (or a read-only layer's own <home>/<id>/diff): clone the home, so that
      // the link's ../<id>/diff stays inside the clone
      const home = join(p, '..', '..');
      let tree = clones.get(home);
      if (tree === undefined) {
        tree = await idmappedClone(home, ns);
        trees.push(tree);
        clones.set(home, tree);
      }
      out.push(`/proc/self/fd/${tree}/${relative(home, p)}`);
    }
    return out;
  }

  /** A layer without lowers shown with `mappings`: an idmapped clone of its diff, attached at `merged`. */
  async #idmappedBind(diff: string, merged: string, mappings: IdMappings, readOnly: boolean): Promise<MountMethod> {
    if (!this.features.idmappedLowers) throw new PrerequisitesError('overlay: this kernel cannot make idmapped mounts');
    const ns = await this.#userns.fdFor(mappings);
    const tree = await idmappedClone(diff, ns);
    try {
      if (readOnly) await mountSetattr(tree, '', AT.EMPTY_PATH, { attrSet: MOUNT_ATTR.RDONLY });
      await moveMount(tree, '', AT.FDCWD, merged, MOVE_MOUNT.F_EMPTY_PATH);
    } finally {
      closeSync(tree);
    }
    return 'bind';
  }

  async #unmount(merged: string): Promise<void> {
    const fuse = this.#fuseMounts.has(merged);
    await this.#mounter.unmount(merged, fuse);
    this.#fuseMounts.delete(merged);
    // moby: removing the mount point makes the kernel drop copies of the mount that other mount
    // namespaces still hold, which would otherwise keep the upper dir in use (~0.1 ms)
    removeMountPoint(merged);
    if (dirname(dirname(merged)) === this.#layout.storeMountsDir) removeMountPoint(dirname(merged));
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
      const layer = this.#layout.find(id);
      if (layer === undefined) throw new LayerUnknownError(id);
      const merged = this.#layout.mergedDir(layer);
      try {
        await this.#refs.put(merged, () => this.#unmount(merged));
      } catch (err) {
        throw wrap('unmounting', id, err);
      }
    });
  }

  async exists(id: string): Promise<boolean> {
    validateLayerId(id);
    return this.#layout.find(id) !== undefined;
  }

  async status(): Promise<Array<[string, string]>> {
    const rows: Array<[string, string]> = [
      ['Backing Filesystem', this.backingFs.name],
      ['Supports d_type', String(this.backingFs.supportsDType)],
      ['Native Overlay Diff', String(this.features.nativeDiff.ok)],
      ['Using metacopy', String(this.features.metacopy)],
      ['Supports shifting', String(this.supportsShifting())],
      ['Mount method', this.#mounter.describe()],
    ];
    if (!this.features.nativeDiff.ok) rows.push(['Naive diff because', this.features.nativeDiff.reason]);
    if (this.options.imagestore.length > 0) rows.push(['Additional image stores', this.options.imagestore.join(',')]);
    return rows;
  }

  async metadata(id: string): Promise<Record<string, string>> {
    validateLayerId(id);
    const layer = this.#layout.find(id);
    if (layer === undefined) throw new LayerUnknownError(id);
    const md: Record<string, string> = {
      WorkDir: join(layer.dir, WORK),
      MergedDir: this.#layout.mergedDir(layer),
      UpperDir: join(layer.dir, DIFF),
    };
    try {
      const lowers = await this.#diffs.lowerDiffDirs(layer);
      if (lowers.length > 0) md.LowerDir = lowers.join(':');
    } catch (err) {
      throw wrap('reading the lowers', id, err);
    }
    return md;
  }

  /** Unmounts everything under the home (moby's RecursiveUnmount) and forgets every reference. */
  async cleanup(): Promise<void> {
    this.#direct.clear();
    const failures: unknown[] = [];
    for (const [path] of this.#refs.counts()) {
      try {
        while ((await this.#refs.put(path, () => this.#unmount(path))) > 0);
      } catch (err) {
        failures.push(err);
      }
    }
    // what is left under the home (mounts of an earlier process, a crashed idmap update); never the
    // home itself, which may be a filesystem of its own that the user mounted there
    try {
      const canonicalHome = await realpath(this.home);
      const tops = (await mountsUnder(this.home)).map((m) => m.mountPoint).filter((p) => p !== canonicalHome);
      for (const p of new Set(tops)) await unmountRecursive(p, { lazyFallback: true, retries: 20, retryDelayMs: 25 }).catch((err: unknown) => failures.push(err));
    } catch (err) {
      failures.push(err);
    }
    this.#fuseMounts.clear();
    await this.#userns.closeAll();
    if (failures.length > 0) throw wrap('cleanup', undefined, failures[0]);
  }

  /** Makes `l/` and the layers' `link` files agree again (also done on start and when a mount misses a link). */
  async repairLinks(): Promise<LinkRepairReport> {
    return repairLinks(this.#layout);
  }

  // ---- DiffDriver ------------------------------------------------------------------------------

  async diff(id: string, parent?: string, opts: DiffOpts = {}): Promise<Readable> {
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    const layer = this.#layout.find(id);
    if (layer === undefined) throw new LayerUnknownError(id);
    return this.#diffs.diff(layer, parentId, opts);
  }

  async changes(id: string, parent?: string, opts: DiffOpts = {}): Promise<Change[]> {
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    const layer = this.#layout.find(id);
    if (layer === undefined) throw new LayerUnknownError(id);
    return this.#diffs.changes(layer, parentId, opts);
  }

  async diffSize(id: string, parent?: string, opts: DiffOpts = {}): Promise<number> {
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    const layer = this.#layout.find(id);
    if (layer === undefined) throw new LayerUnknownError(id);
    return this.#diffs.diffSize(layer, parentId, opts);
  }

  async applyDiff(id: string, parent: string | undefined, tar: Readable, opts: ApplyDiffOpts = {}): Promise<number> {
    let layer: LayerLocation;
    let parentId: string | undefined;
    try {
      validateLayerId(id);
      parentId = normalizeParent(parent);
      const found = this.#layout.find(id);
      if (found === undefined) throw new LayerUnknownError(id);
      if (found.readOnly) throw new OperationFailedError('applyDiff', id, new Error(`the layer is in a read-only additional image store (${found.dir})`));
      layer = found;
    } catch (err) {
      tar.destroy();
      throw err;
    }
    const applyOpts = { ...opts, ignoreChownErrors: opts.ignoreChownErrors ?? this.options.ignore_chown_errors };
    const ownParent = this.#diffs.appliesNatively(layer, parentId);
    const applied = await this.#locks.withLock(id, async (): Promise<number | undefined> => {
      const diff = join(layer.dir, DIFF);
      // Staged (extract aside, then swap in) when nothing could notice the swap: the diff is empty
      // and not mounted. Otherwise in place, as moby applies.
      const staged = this.#refs.count(this.#layout.mergedDir(layer)) === 0 && !this.#direct.has(id) && (await readdir(diff)).length === 0;
      // A tar against no parent is a whole tree: laid into the empty upper of a layer with lowers it
      // shows what extracting it through the mount shows (a directory or file of the tar hides the
      // same name below, as the mount's replace would), so it needs no mount either.
      if (!ownParent && !(parentId === undefined && staged)) return undefined;
      if (!staged) return applyLayerTar(diff, tar, this.#diffs.unpackOptions(applyOpts), id);
      const s = await this.#staging.extract(layer, tar, this.#diffs.unpackOptions(applyOpts));
      try {
        await this.#staging.commit(layer, s);
      } catch (err) {
        await this.#staging.discard(s);
        throw wrap('applyDiff', id, err);
      }
      return s.size;
    });
    // any other parent: through the mount (moby's and containers/storage's naive apply); outside
    // the layer's lock, which the naive driver's get() takes
    return applied ?? this.#naive.applyDiff(id, parentId, tar, applyOpts);
  }

  // ---- optional capabilities -------------------------------------------------------------------

  /** containers/storage: a child of the template (`opts.parent` is the caller's bookkeeping). */
  async createFromTemplate(id: string, template: string, opts: CreateFromTemplateOpts = {}): Promise<void> {
    if (opts.parent !== undefined) normalizeParent(opts.parent);
    return this.#create(id, template, opts.create, opts.readWrite ?? false);
  }

  /** The layers of this store (not of additional image stores). */
  async listLayers(): Promise<string[]> {
    const names = await readdir(this.home);
    return names.filter((n) => isLayerName(n) && this.#layout.isLayerDir(n));
  }

  async diffGetter(id: string): Promise<FileGetter> {
    validateLayerId(id);
    const layer = this.#layout.find(id);
    if (layer === undefined) throw new LayerUnknownError(id);
    const dirs = [join(layer.dir, DIFF), ...(await this.#diffs.lowerDiffDirs(layer))];
    return layerFileGetter(dirs, this.options.mount_program === undefined ? 'overlay' : 'aufs');
  }

  /** Bytes and inodes of the layer's own diff directory (containers/storage's directory.Usage). */
  async readWriteDiskUsage(id: string): Promise<DiskUsage> {
    validateLayerId(id);
    const layer = this.#layout.find(id);
    if (layer === undefined) throw new LayerUnknownError(id);
    return diskUsage(join(layer.dir, DIFF));
  }

  supportsShifting(): boolean {
    if (this.options.mount_program !== undefined) return true;
    return this.features.idmappedLowers;
  }

  /**
   * Re-owns a layer's files from one mapping to another (containers/storage's NaiveLayerIDMapUpdater):
   * each file's host id is read back to its container id with `toContainer` and mapped out again with
   * `toHost`. Files of lower layers are copied up into this layer as they are re-owned.
   */
  async updateLayerIdMap(id: string, toContainer: IdMappings, toHost: IdMappings, mountLabel?: string): Promise<void> {
    validateLayerId(id);
    const layer = this.#layout.find(id);
    if (layer === undefined) throw new LayerUnknownError(id);
    if (layer.readOnly) throw new OperationFailedError('updateLayerIdMap', id, new Error(`the layer is in a read-only additional image store (${layer.dir})`));
    await this.#locks.withLock(id, async () => {
      const lowers = this.#layout.lowerEntries(layer);
      if (lowers.length === 0) {
        await chownByMaps(join(layer.dir, DIFF), toContainer, toHost);
        return;
      }
      // a second writable overlay on an upper that is mounted is undefined behaviour (the kernel warns)
      if (this.#refs.count(this.#layout.mergedDir(layer)) > 0) throw new LayerBusyError(id, 'it is mounted; put() it before changing its id mapping');
      // a writable mount of its own, whatever its committed state, so that changes land in diff/
      const merged = join(layer.dir, 'idmap-update');
      await mkdir(merged, { recursive: true, mode: 0o700 });
      try {
        await this.#mountPlan(layer, merged, mountLabel === undefined ? {} : { mountLabel }, { kind: 'overlay', lowers, readOnly: false });
        try {
          await chownByMaps(merged, toContainer, toHost);
        } finally {
          await this.#mounter.unmount(merged, this.options.mount_program !== undefined);
        }
      } catch (err) {
        throw wrap('updateLayerIdMap', id, err);
      } finally {
        await rmdir(merged).catch(() => undefined);
      }
    });
  }

  // ---- staged apply (containers/storage's ApplyDiffWithDiffer / ApplyDiffFromStagingDirectory) ----

  async applyDiffToStaging(id: string, parent: string | undefined, tar: Readable, opts: ApplyDiffOpts = {}): Promise<StagedDiff> {
    let layer: LayerLocation;
    try {
      validateLayerId(id);
      normalizeParent(parent);
      const found = this.#layout.find(id);
      if (found === undefined) throw new LayerUnknownError(id);
      if (found.readOnly) throw new OperationFailedError('applyDiffToStaging', id, new Error(`the layer is in a read-only additional image store (${found.dir})`));
      layer = found;
    } catch (err) {
      tar.destroy();
      throw err;
    }
    const applyOpts = { ...opts, ignoreChownErrors: opts.ignoreChownErrors ?? this.options.ignore_chown_errors };
    return this.#staging.extract(layer, tar, this.#diffs.unpackOptions(applyOpts));
  }

  /** Moves a staged diff into layer `id` in one rename; the layer's earlier diff is discarded. */
  async commitStaged(id: string, staged: StagedDiff): Promise<void> {
    validateLayerId(id);
    await this.#locks.withLock(id, async () => {
      const layer = this.#layout.find(id);
      if (layer === undefined) throw new LayerUnknownError(id);
      if (layer.readOnly) throw new OperationFailedError('commitStaged', id, new Error(`the layer is in a read-only additional image store (${layer.dir})`));
      if (this.#refs.count(this.#layout.mergedDir(layer)) > 0 || this.#direct.has(id)) {
        throw new OperationFailedError('commitStaged', id, new Error('the layer is mounted: its diff cannot be replaced under the mount'));
      }
      await this.#staging.commit(layer, staged);
    });
  }

  async cleanupStaging(staged: StagedDiff): Promise<void> {
    await this.#staging.discard(staged);
  }

  additionalImageStores(): string[] {
    return [...this.options.imagestore];
  }
}

/** fuse-overlayfs's mapping options (containers/storage's optsAppendMappings). */
function programMappings(m: IdMappings): string[] {
  if (!isContiguous(m.uidMap) || !isContiguous(m.gidMap)) {
    throw new InvalidOptionError('idMappings', 'overlay: a mount program takes only contiguous id mappings');
  }
  const one = (kind: 'uid' | 'gid', maps: IdMappings['uidMap']): string => {
    if (maps.length === 1 && maps[0]!.size === 1) return `squash_to_${kind}=${maps[0]!.hostId}`;
    return `${kind}mapping=${maps.map((x) => `${x.containerId}:${x.hostId}:${x.size}`).join(':')}`;
  };
  return [one('uid', m.uidMap), one('gid', m.gidMap)];
}

async function findInPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      await access(p, 1);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/** rmdir of an unmounted mount point; one that is still busy or not empty stays (the next get reuses it). */
function removeMountPoint(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // ENOENT, ENOTEMPTY, EBUSY: nothing to do
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
export const init: DriverInit = (ctx) => OverlayDriver.start(ctx);
