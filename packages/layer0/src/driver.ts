/**
 * The layer0 storage driver (openstorage's graph/drivers/layer0): an overlay driver whose container
 * layers - the writable top layer of a container - live on volumes from a volume driver, so that
 * their files survive the container's removal and re-creation, a restart of the process, and (with a
 * network volume driver) a move to another host.
 *
 * - Composition: every layer is an overlay layer of a wrapped OverlayDriver (`<home>/overlay`).
 *   Plain layers are exactly that. A container layer X (made with createReadWrite on `<X>-init`,
 *   the engine's pattern, or asked for with storageOpt `volume`) has its overlay directory inside its
 *   volume, mounted at `<home>/X-vol` (placement.ts).
 * - Volumes: found again for the same container (state, then the container label), else a free
 *   volume named after the image as openstorage's layer0 took it, else made (naming.ts).
 * - remove() saves the container's upper in the volume and unmounts (and detaches) it; making the
 *   layer again restores the upper, so the files written earlier are back.
 * - State is persisted in `<home>/layer0.json` (state.ts) and reloaded on start: the volumes of live
 *   container layers are mounted again before the overlay driver starts (whose link repair would
 *   otherwise drop the links of layers it cannot see), then half-done creations are undone and
 *   half-done removals finished.
 */
import { chown, lstat, mkdir, rm, rmdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import {
  bytesSize,
  canonicalMountPath,
  errorCode,
  GraphDriverError,
  hostRoot,
  InvalidOptionError,
  isValidLayerId,
  KeyedMutex,
  LayerBusyError,
  LayerExistsError,
  LayerUnknownError,
  mountsUnder,
  normalizeParent,
  OperationFailedError,
  QuotaNotSupportedError,
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
  type ShiftingDriver,
  type StagedApplyDriver,
  type StagedDiff,
  type TemplateDriver,
} from '@graphdriver/core';
import { OverlayDriver } from '@graphdriver/overlay';
import { containerOfInit, DRIVER_NAME, Layer0Layout } from './layout.js';
import { baseVolumeName, CONTAINER_LABEL, isNamedAfter, nextFreeVolumeName, volumeLabels } from './naming.js';
import { layer0Options, parseLayerStorageOpt, splitOptions, volumeDriverOptions, type Layer0Options, type LayerStorageOpts } from './options.js';
import { isMovedIntoVolume, moveLayerIntoVolume, removeMoveLeftovers, saveUpper } from './placement.js';
import { commitStagedAcross } from './staged-commit.js';
import { Layer0State, type ContainerEntry, type ContainerPhase } from './state.js';
import type { Volume, VolumeDriver } from './volume.js';
import { openVolumeDriver } from './volume-registry.js';

const debug = debuglog('graphdriver:layer0');

/** What layer0 knows of a layer that lives (or lived) on a volume. */
export interface ContainerVolume {
  /** The layer id. */
  id: string;
  volume: string;
  volumeId: string;
  /** The volume driver's name. */
  driver: string;
  /** The image the layer was made on (the parent of `<X>-init`), when known. */
  image: string | undefined;
  /** Asked for with storageOpt `volume`. */
  explicit: boolean;
  /** `live`: the layer exists; `saved`: it was removed and its upper waits in the volume; `creating`/`removing`: in between. */
  phase: ContainerPhase;
  /** Where the volume is (or would be) mounted: `<home>/<id>-vol`. */
  mountPoint: string;
}

function wrap(operation: string, id: string | undefined, err: unknown): unknown {
  if (err instanceof GraphDriverError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  return new OperationFailedError(operation, id, err);
}

/** A volume chosen for a container layer, and whether it was made for this creation. */
interface Chosen {
  driver: VolumeDriver;
  volume: Volume;
  created: boolean;
  /** Removed layers whose saved claim on this volume is taken over (an explicit request for it). */
  takenFrom?: string[];
}

export class Layer0Driver
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
  readonly options: Layer0Options;
  /** The wrapped overlay driver (home `<home>/overlay`). */
  readonly overlay: OverlayDriver;
  readonly layout: Layer0Layout;
  readonly #state: Layer0State;
  readonly #volumeDrivers = new Map<string, VolumeDriver>();
  readonly #volumeDriverOptions: Readonly<Record<string, string>>;
  /** Per layer id: creation, removal and (re)mounting of container layers. */
  readonly #locks = new KeyedMutex<string>();
  /** Choosing and making volumes, so that two containers never take the same free one. */
  readonly #placement = new KeyedMutex<string>();
  /** Container layers whose volume is mounted (by us, or found mounted). */
  readonly #mounted = new Set<string>();
  /** Container layers whose volume could not be mounted, and why. */
  readonly #unavailable = new Map<string, unknown>();
  /** The group of the host id container root maps to: owner group of mount points, as the overlay driver does its dirs. */
  readonly #rootGid: number;

  private constructor(init: {
    home: string;
    options: Layer0Options;
    overlay: OverlayDriver;
    state: Layer0State;
    volumeDrivers: Map<string, VolumeDriver>;
    mounted: Set<string>;
    unavailable: Map<string, unknown>;
    rootGid: number;
  }) {
    this.#rootGid = init.rootGid;
    this.home = init.home;
    this.options = init.options;
    this.overlay = init.overlay;
    this.layout = new Layer0Layout(init.home);
    this.#state = init.state;
    this.#volumeDriverOptions = volumeDriverOptions(init.options);
    for (const [k, v] of init.volumeDrivers) this.#volumeDrivers.set(k, v);
    for (const id of init.mounted) this.#mounted.add(id);
    for (const [k, v] of init.unavailable) this.#unavailable.set(k, v);
  }

  /**
   * Parses the options, loads the state, mounts the volumes of live container layers, starts the
   * wrapped overlay driver, then finishes what an interrupted creation or removal left.
   */
  static async start(ctx: DriverInitContext): Promise<Layer0Driver> {
    const split = splitOptions(ctx.options);
    const options = layer0Options.parse(split.layer0);
    const home = ctx.home;
    const layout = new Layer0Layout(home);
    const root = hostRoot(ctx.idMappings);
    await mkdir(home, { recursive: true, mode: 0o710 });
    await chown(home, process.getuid?.() ?? 0, root.gid);
    await mkdir(layout.volumesDir, { recursive: true, mode: 0o700 });

    const state = await Layer0State.load(home);
    const drivers = new Map<string, VolumeDriver>();
    const driverOpts = volumeDriverOptions(options);
    // the configured driver starts now: a bad volume_opt or an unusable driver is an error at start
    const configured = await openVolumeDriver(options.volume_driver, layout.volumesDir, driverOpts);
    drivers.set(options.volume_driver, configured);
    // moby: a default size that cannot be enforced is an error at start, not at the first container
    if (options.volume_size !== undefined && configured.limitsSize === false) {
      throw new QuotaNotSupportedError(`layer0: the ${configured.name} volume driver cannot limit the size of volumes (layer0.volume_size); use the loopback volume driver for size limits`);
    }

    // volumes first: the overlay driver's start repairs its links from what it can see
    const mounted = new Set<string>();
    const unavailable = new Map<string, unknown>();
    for (const [id, entry] of state.active()) {
      try {
        let vd = drivers.get(entry.driver);
        if (vd === undefined) {
          vd = await openVolumeDriver(entry.driver, layout.volumesDir, {});
          drivers.set(entry.driver, vd);
        }
        if (await mountVolume(vd, entry, layout.mountPoint(id), root.gid)) mounted.add(id);
        else unavailable.set(id, new LayerUnknownError(entry.volume, 'volume'));
      } catch (err) {
        debug('start: the volume %s of %s cannot be mounted: %o', entry.volume, id, err);
        unavailable.set(id, err);
      }
    }

    let overlay: OverlayDriver;
    try {
      overlay = await OverlayDriver.start({
        home: layout.overlayHome,
        root: ctx.root,
        options: split.overlay,
        ...(ctx.idMappings === undefined ? {} : { idMappings: ctx.idMappings }),
      });
    } catch (err) {
      // leave nothing mounted behind a driver that did not start
      for (const id of mounted) {
        const entry = state.containers.get(id)!;
        await releaseVolume(drivers.get(entry.driver)!, entry, layout.mountPoint(id)).catch(() => undefined);
      }
      throw err;
    }
    const d = new Layer0Driver({ home, options, overlay, state, volumeDrivers: drivers, mounted, unavailable, rootGid: root.gid });
    await removeMoveLeftovers(layout);
    await d.#recover();
    debug('layer0 at %s: volume driver %s, %d container layers on volumes', home, options.volume_driver, state.active().length);
    return d;
  }

  // ---- volumes -----------------------------------------------------------------------------------

  /** The volume driver registered as `name`, opened on first use (the configured one's options only go to it). */
  async volumeDriver(name: string = this.options.volume_driver): Promise<VolumeDriver> {
    let vd = this.#volumeDrivers.get(name);
    if (vd === undefined) {
      vd = await openVolumeDriver(name, this.layout.volumesDir, name === this.options.volume_driver ? this.#volumeDriverOptions : {});
      this.#volumeDrivers.set(name, vd);
    }
    return vd;
  }

  /** What layer0 knows of layer `id`'s volume, or undefined for a plain layer. */
  volumeOf(id: string): ContainerVolume | undefined {
    const e = this.#state.containers.get(id);
    return e === undefined ? undefined : this.#describe(id, e);
  }

  /** Every layer that lives or lived on a volume. */
  containerVolumes(): ContainerVolume[] {
    return [...this.#state.containers].map(([id, e]) => this.#describe(id, e));
  }

  #describe(id: string, e: ContainerEntry): ContainerVolume {
    return { id, volume: e.volume, volumeId: e.volumeId, driver: e.driver, image: e.image, explicit: e.explicit, phase: e.phase, mountPoint: this.layout.mountPoint(id) };
  }

  /**
   * Deletes a volume of the volume driver `driver` (default: the configured one) and forgets the
   * saved layers it held. A volume a live layer is on is a LayerBusyError.
   */
  async deleteVolume(name: string, driver: string = this.options.volume_driver): Promise<void> {
    await this.#placement.withLock('volumes', async () => {
      const holders = [...this.#state.containers].filter(([, e]) => e.driver === driver && e.volume === name);
      const busy = holders.find(([, e]) => e.phase !== 'saved');
      if (busy !== undefined) throw new LayerBusyError(busy[0], `it lives on volume ${JSON.stringify(name)}`);
      const vd = await this.volumeDriver(driver);
      const [v] = await vd.enumerate({ name });
      if (v === undefined) throw new LayerUnknownError(name, 'volume');
      await vd.delete(v.id);
      for (const [id] of holders) this.#state.containers.delete(id);
      if (holders.length > 0) await this.#state.save();
    });
  }

  /** Mounts the volume of container layer `id` if it is not mounted. */
  async #ensureMounted(id: string, entry: ContainerEntry): Promise<void> {
    if (this.#mounted.has(id)) return;
    const vd = await this.volumeDriver(entry.driver);
    const ok = await mountVolume(vd, entry, this.layout.mountPoint(id), this.#rootGid);
    if (!ok) throw new OperationFailedError('mounting the volume', id, new LayerUnknownError(entry.volume, 'volume'));
    this.#mounted.add(id);
    if (this.#unavailable.delete(id)) {
      // the overlay driver could not see this layer when it started, and dropped its short link
      await this.overlay.repairLinks();
    }
  }

  async #releaseVolume(id: string, entry: ContainerEntry): Promise<void> {
    const vd = await this.volumeDriver(entry.driver);
    this.#mounted.delete(id);
    await releaseVolume(vd, entry, this.layout.mountPoint(id));
  }

  /**
   * A layer about to be used: for a container layer whose volume is not mounted (after cleanup(),
   * or unavailable at start), mounts it. Plain layers pass straight through.
   */
  async #ready(id: string): Promise<void> {
    if (this.#mounted.has(id)) return;
    const entry = this.#state.containers.get(id);
    if (entry === undefined || entry.phase !== 'live') return;
    await this.#locks.withLock(id, async () => {
      const now = this.#state.containers.get(id);
      if (now === undefined || now.phase !== 'live') return;
      try {
        await this.#ensureMounted(id, now);
      } catch (err) {
        throw wrap('mounting the volume', id, err);
      }
    });
  }

  /** Picks the volume of a new container layer (see naming.ts); runs under the placement lock. */
  async #chooseVolume(id: string, image: string | undefined, so: LayerStorageOpts): Promise<Chosen> {
    const size = so.size ?? this.options.volume_size;
    const spec = size === undefined ? {} : { size };
    const labels = volumeLabels(id, image);
    const othersOn = (driver: string, name: string): Array<[string, ContainerEntry]> => this.#state.holdersOf(driver, name, id);
    if (so.volume !== undefined) {
      const vd = await this.volumeDriver();
      const holders = othersOn(vd.name, so.volume);
      const live = holders.find(([, e]) => e.phase !== 'saved');
      if (live !== undefined) {
        throw new LayerBusyError(live[0], `its volume ${JSON.stringify(so.volume)} was asked for layer ${JSON.stringify(id)}`);
      }
      const [found] = await vd.enumerate({ name: so.volume });
      if (found !== undefined) {
        if (found.attachPath.length > 0) {
          throw new LayerBusyError(id, `volume ${JSON.stringify(so.volume)} is mounted at ${found.attachPath.join(', ')}`);
        }
        return { driver: vd, volume: found, created: false, takenFrom: holders.map(([h]) => h) };
      }
      const volumeId = await vd.create({ name: so.volume, labels }, spec);
      return { driver: vd, volume: await inspectOne(vd, volumeId), created: true };
    }

    // the same container made again: its volume from last time, which holds its saved upper
    const prior = this.#state.containers.get(id);
    if (prior !== undefined) {
      const vd = await this.volumeDriver(prior.driver);
      const [v] = await vd.inspect([prior.volumeId]);
      if (v !== undefined && v.attachPath.length === 0 && othersOn(prior.driver, prior.volume).length === 0) {
        return { driver: vd, volume: v, created: false };
      }
    }

    const vd = await this.volumeDriver();
    const all = await vd.enumerate();
    const free = (v: Volume): boolean => v.attachPath.length === 0 && othersOn(vd.name, v.locator.name).length === 0;
    // made for this container by an earlier run or on another host sharing the volumes
    const labelled = all.find((v) => v.locator.labels[CONTAINER_LABEL] === id && free(v));
    if (labelled !== undefined) return { driver: vd, volume: labelled, created: false };
    // openstorage's layer0: a volume provisioned for the image, not in use
    const base = baseVolumeName(image, id);
    const provisioned = all.find((v) => isNamedAfter(v.locator.name, base) && v.locator.labels[CONTAINER_LABEL] === undefined && free(v));
    if (provisioned !== undefined) return { driver: vd, volume: provisioned, created: false };
    const name = nextFreeVolumeName(base, new Set(all.map((v) => v.locator.name)));
    const volumeId = await vd.create({ name, labels }, spec);
    return { driver: vd, volume: await inspectOne(vd, volumeId), created: true };
  }

  // ---- ProtoDriver -----------------------------------------------------------------------------

  create(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts, false);
  }

  createReadWrite(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.#create(id, parent, opts, true);
  }

  async #create(id: string, parent: string | undefined, opts: CreateOpts | undefined, readWrite: boolean): Promise<void> {
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    const so = parseLayerStorageOpt(opts?.storageOpt);
    if (so.volume !== undefined && !readWrite) {
      throw new InvalidOptionError('volume', 'layer0: only writable layers (createReadWrite) can live on a volume');
    }
    const onVolume = readWrite && (so.volume !== undefined || (parentId !== undefined && parentId === `${id}-init`));
    if (!onVolume) {
      const active = this.#state.containers.get(id);
      if (active !== undefined && active.phase !== 'saved') throw new LayerExistsError(id);
      const overlayOpts: CreateOpts = { ...opts, ...(so.overlay === undefined ? { storageOpt: {} } : { storageOpt: so.overlay }) };
      if (readWrite) await this.overlay.createReadWrite(id, parentId, overlayOpts);
      else await this.overlay.create(id, parentId, overlayOpts);
      const container = containerOfInit(id);
      if (container !== undefined && isValidLayerId(container)) {
        // the engine's init layer: the container layer made on it next is named after this image
        this.#state.inits.set(container, { image: parentId });
        await this.#state.save();
      }
      return;
    }
    if (so.inodes !== undefined) {
      throw new InvalidOptionError('inodes', 'layer0: a layer on a volume is limited by the size of its volume; it takes no inode limit');
    }
    await this.#locks.withLock(id, () => this.#createOnVolume(id, parentId, opts, so));
  }

  async #createOnVolume(id: string, parentId: string | undefined, opts: CreateOpts | undefined, so: LayerStorageOpts): Promise<void> {
    const prior = this.#state.containers.get(id);
    if ((prior !== undefined && prior.phase !== 'saved') || (await this.overlay.exists(id))) throw new LayerExistsError(id);
    if (parentId !== undefined) {
      if (!(await this.exists(parentId))) throw new LayerUnknownError(parentId, 'parent layer');
      await this.#ready(parentId);
    }
    const image = parentId !== undefined && parentId === `${id}-init` ? this.#state.inits.get(id)?.image : parentId;

    const chosen = await this.#placement.withLock('volumes', async () => {
      const c = await this.#chooseVolume(id, image, so);
      this.#state.containers.set(id, {
        volume: c.volume.locator.name,
        volumeId: c.volume.id,
        driver: c.driver.name,
        image,
        explicit: so.volume !== undefined,
        phase: 'creating',
      });
      await this.#state.save();
      return c;
    });
    const entry = this.#state.containers.get(id)!;
    debug('create %s on volume %s (%s)%s', id, entry.volume, entry.driver, chosen.created ? ', made now' : '');

    try {
      await this.#ensureMounted(id, entry);
      const overlayOpts: CreateOpts = {
        ...(opts?.mountLabel === undefined ? {} : { mountLabel: opts.mountLabel }),
        ...(opts?.idMappings === undefined ? {} : { idMappings: opts.idMappings }),
      };
      await this.overlay.createReadWrite(id, parentId, overlayOpts);
      await moveLayerIntoVolume(this.layout, id);
    } catch (err) {
      await this.#undoCreate(id, entry, chosen, prior).catch((undo: unknown) => debug('create %s: undoing failed: %o', id, undo));
      throw wrap('create', id, err);
    }
    entry.phase = 'live';
    // the volume is this layer's now: removed layers that claimed it would get it back otherwise
    for (const other of chosen.takenFrom ?? []) this.#state.containers.delete(other);
    await this.#state.save();
  }

  /** Takes back what a failed creation made: the overlay layer, the restore, the mount, a new volume. */
  async #undoCreate(id: string, entry: ContainerEntry, chosen: Chosen | undefined, prior: ContainerEntry | undefined): Promise<void> {
    await this.#discardOverlayLayer(id);
    if (this.#mounted.has(id)) await saveUpper(this.layout, id);
    await this.#releaseVolume(id, entry);
    if (chosen?.created === true) {
      await chosen.driver.delete(chosen.volume.id).catch((err: unknown) => debug('create %s: deleting volume %s: %o', id, chosen.volume.id, err));
      this.#state.containers.delete(id);
    } else if (prior !== undefined) {
      this.#state.containers.set(id, prior);
    } else {
      entry.phase = 'saved';
    }
    await this.#state.save();
  }

  /** Removes the overlay's layer `id`, whether its directory is in the overlay home or is our symlink. */
  async #discardOverlayLayer(id: string): Promise<void> {
    await this.overlay.remove(id);
    // a symlink into a volume that is not mounted is no layer to the overlay driver: it stays
    try {
      if ((await lstat(this.layout.overlayEntry(id))).isSymbolicLink()) await rm(this.layout.overlayEntry(id), { force: true });
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
    }
  }

  async remove(id: string): Promise<void> {
    validateLayerId(id);
    const entry = this.#state.containers.get(id);
    if (entry === undefined || entry.phase === 'saved') {
      await this.overlay.remove(id);
      const container = containerOfInit(id);
      if (container !== undefined && this.#state.inits.delete(container)) await this.#state.save();
      return;
    }
    await this.#locks.withLock(id, async () => {
      const now = this.#state.containers.get(id);
      if (now === undefined || now.phase === 'saved') return this.overlay.remove(id);
      try {
        await this.#removeFromVolume(id, now);
      } catch (err) {
        throw wrap('remove', id, err);
      }
    });
  }

  /** remove() of a container layer: the upper is saved in the volume, which is unmounted and detached. */
  async #removeFromVolume(id: string, entry: ContainerEntry): Promise<void> {
    entry.phase = 'removing';
    await this.#state.save();
    const vd = await this.volumeDriver(entry.driver);
    const [v] = await vd.inspect([entry.volumeId]);
    if (v === undefined) {
      // the volume is gone (deleted behind our back): nothing to save, only the layer to forget
      await this.#discardOverlayLayer(id);
      this.#mounted.delete(id);
      await rmdir(this.layout.mountPoint(id)).catch(() => undefined);
      this.#state.containers.delete(id);
      await this.#state.save();
      return;
    }
    await this.#ensureMounted(id, entry);
    await this.#discardOverlayLayer(id);
    await saveUpper(this.layout, id);
    await this.#releaseVolume(id, entry);
    entry.phase = 'saved';
    await this.#state.save();
    debug('removed %s; its upper is saved in volume %s', id, entry.volume);
  }

  /** After a start: creations cut short are undone, removals cut short are finished. */
  async #recover(): Promise<void> {
    for (const [id, entry] of this.#state.active()) {
      if (entry.phase === 'live') continue;
      try {
        if (entry.phase === 'creating') {
          if (this.#mounted.has(id) && (await isMovedIntoVolume(this.layout, id))) {
            debug('start: the creation of %s had finished; it is live', id);
            entry.phase = 'live';
            await this.#state.save();
          } else {
            debug('start: undoing the creation of %s, cut short', id);
            await this.#undoCreate(id, entry, undefined, undefined);
          }
        } else {
          debug('start: finishing the removal of %s', id);
          await this.#removeFromVolume(id, entry);
        }
      } catch (err) {
        debug('start: recovering %s: %o', id, err);
        this.#unavailable.set(id, err);
      }
    }
  }

  async get(id: string, opts?: MountOpts): Promise<string> {
    await this.#ready(id);
    return this.overlay.get(id, opts);
  }

  async put(id: string): Promise<void> {
    return this.overlay.put(id);
  }

  async exists(id: string): Promise<boolean> {
    validateLayerId(id);
    const entry = this.#state.containers.get(id);
    if (entry !== undefined && entry.phase === 'live') return true;
    return this.overlay.exists(id);
  }

  async status(): Promise<Array<[string, string]>> {
    const vd = await this.volumeDriver();
    const entries = [...this.#state.containers.values()];
    const rows: Array<[string, string]> = [
      ...(await this.overlay.status()),
      ['Volume driver', `${vd.name} (${vd.type})`],
      ['Volume size', this.options.volume_size === undefined ? "the volume driver's default" : bytesSize(this.options.volume_size)],
      ['Container layers on volumes', String(entries.filter((e) => e.phase === 'live').length)],
      ['Saved container layers', String(entries.filter((e) => e.phase === 'saved').length)],
      ...((await vd.status?.()) ?? []),
    ];
    if (this.#unavailable.size > 0) rows.push(['Volumes not mounted', [...this.#unavailable.keys()].sort().join(',')]);
    return rows;
  }

  async metadata(id: string): Promise<Record<string, string>> {
    await this.#ready(id);
    const md = await this.overlay.metadata(id);
    const entry = this.#state.containers.get(id);
    if (entry === undefined || entry.phase === 'saved') return md;
    return {
      ...md,
      VolumeName: entry.volume,
      VolumeId: entry.volumeId,
      VolumeDriver: entry.driver,
      VolumeMountPoint: this.layout.mountPoint(id),
    };
  }

  /**
   * Unmounts everything: the overlay driver's mounts, then the volumes (detaching block volumes),
   * then anything left under the home by an earlier process; the volume drivers let go of what
   * they hold. The driver can go on being used: volumes are mounted again when needed.
   */
  async cleanup(): Promise<void> {
    const failures: unknown[] = [];
    await this.overlay.cleanup().catch((err: unknown) => failures.push(err));
    for (const [id, entry] of this.#state.active()) {
      await this.#locks
        .withLock(id, async () => {
          // mounts an earlier process left inside the layer (its merged dir), which the overlay driver did not count
          await unmountRecursive(this.layout.layerInVolume(id), { lazyFallback: true, retries: 20, retryDelayMs: 25 }).catch((err: unknown) => {
            if (errorCode(err) !== 'ENOENT') throw err;
          });
          await this.#releaseVolume(id, entry);
        })
        .catch((err: unknown) => failures.push(err));
    }
    try {
      const canonicalHome = await canonicalMountPath(this.home);
      const tops = (await mountsUnder(this.home)).map((m) => m.mountPoint).filter((p) => p !== canonicalHome);
      for (const p of new Set(tops)) await unmountRecursive(p, { lazyFallback: true, retries: 20, retryDelayMs: 25 }).catch((err: unknown) => failures.push(err));
    } catch (err) {
      failures.push(err);
    }
    for (const vd of this.#volumeDrivers.values()) await vd.shutdown?.().catch((err: unknown) => failures.push(err));
    if (failures.length > 0) throw wrap('cleanup', undefined, failures[0]);
  }

  // ---- DiffDriver ------------------------------------------------------------------------------

  async diff(id: string, parent?: string, opts?: DiffOpts): Promise<Readable> {
    await this.#ready(id);
    return this.overlay.diff(id, parent, opts);
  }

  async changes(id: string, parent?: string, opts?: DiffOpts): Promise<Change[]> {
    await this.#ready(id);
    return this.overlay.changes(id, parent, opts);
  }

  async diffSize(id: string, parent?: string, opts?: DiffOpts): Promise<number> {
    await this.#ready(id);
    return this.overlay.diffSize(id, parent, opts);
  }

  async applyDiff(id: string, parent: string | undefined, tar: Readable, opts?: ApplyDiffOpts): Promise<number> {
    let onVolume: boolean;
    try {
      validateLayerId(id);
      onVolume = this.#state.containers.get(id)?.phase === 'live';
      if (onVolume) await this.#ready(id);
    } catch (err) {
      tar.destroy();
      throw err;
    }
    if (!onVolume) return this.overlay.applyDiff(id, parent, tar, opts);
    // The overlay driver stages an apply into an empty layer on the host filesystem and renames it
    // in, which cannot reach a volume: held mounted, it applies in place (as moby applies).
    try {
      await this.overlay.get(id);
    } catch (err) {
      tar.destroy();
      throw err;
    }
    try {
      return await this.overlay.applyDiff(id, parent, tar, opts);
    } finally {
      await this.overlay.put(id);
    }
  }

  // ---- optional capabilities -------------------------------------------------------------------

  async createFromTemplate(id: string, template: string, opts: CreateFromTemplateOpts = {}): Promise<void> {
    if (opts.parent !== undefined) normalizeParent(opts.parent);
    validateLayerId(template);
    await this.#ready(template);
    return this.#create(id, template, opts.create, opts.readWrite ?? false);
  }

  async listLayers(): Promise<string[]> {
    const ids = new Set(await this.overlay.listLayers());
    // a layer whose volume is not mounted is still a layer
    for (const [id, e] of this.#state.containers) if (e.phase === 'live') ids.add(id);
    return [...ids];
  }

  async diffGetter(id: string): Promise<FileGetter> {
    await this.#ready(id);
    return this.overlay.diffGetter(id);
  }

  async readWriteDiskUsage(id: string): Promise<DiskUsage> {
    await this.#ready(id);
    return this.overlay.readWriteDiskUsage(id);
  }

  supportsShifting(): boolean {
    return this.overlay.supportsShifting();
  }

  async updateLayerIdMap(id: string, toContainer: IdMappings, toHost: IdMappings, mountLabel?: string): Promise<void> {
    await this.#ready(id);
    return this.overlay.updateLayerIdMap(id, toContainer, toHost, mountLabel);
  }

  async applyDiffToStaging(id: string, parent: string | undefined, tar: Readable, opts?: ApplyDiffOpts): Promise<StagedDiff> {
    try {
      validateLayerId(id);
      await this.#ready(id);
    } catch (err) {
      tar.destroy();
      throw err;
    }
    return this.overlay.applyDiffToStaging(id, parent, tar, opts);
  }

  async commitStaged(id: string, staged: StagedDiff): Promise<void> {
    validateLayerId(id);
    if (this.#state.containers.get(id)?.phase !== 'live') return this.overlay.commitStaged(id, staged);
    await this.#ready(id);
    await this.#locks.withLock(id, async () => {
      // the same refusal as the overlay driver's: a diff is not replaced under a mount
      if ((await mountsUnder(this.layout.layerInVolume(id))).length > 0) {
        throw new OperationFailedError('commitStaged', id, new Error('the layer is mounted: its diff cannot be replaced under the mount'));
      }
      try {
        await commitStagedAcross(staged, {
          stagingRoot: `${this.layout.overlayHome}/staging`,
          layerDir: this.layout.layerInVolume(id),
          whiteouts: this.overlay.options.mount_program === undefined ? 'overlay' : 'aufs',
        });
      } catch (err) {
        throw wrap('commitStaged', id, err);
      }
    });
  }

  async cleanupStaging(staged: StagedDiff): Promise<void> {
    return this.overlay.cleanupStaging(staged);
  }

  additionalImageStores(): string[] {
    return this.overlay.additionalImageStores();
  }
}

/** The volume `id` as the driver reports it; it was just made, so missing is an error. */
async function inspectOne(vd: VolumeDriver, id: string): Promise<Volume> {
  const [v] = await vd.inspect([id]);
  if (v === undefined) throw new OperationFailedError(`inspecting volume ${JSON.stringify(id)} of volume driver ${vd.name}`, undefined, new LayerUnknownError(id, 'volume'));
  return v;
}

/**
 * Mounts the volume of `entry` at `mountPoint` (attaching a block volume first) unless it is
 * mounted there already. Resolves false when the volume does not exist.
 */
async function mountVolume(vd: VolumeDriver, entry: ContainerEntry, mountPoint: string, gid: number): Promise<boolean> {
  await mkdir(mountPoint, { recursive: true, mode: 0o710 });
  await chown(mountPoint, process.getuid?.() ?? 0, gid);
  const [v] = await vd.inspect([entry.volumeId]);
  if (v === undefined) return false;
  const canonical = await canonicalMountPath(mountPoint);
  if (v.attachPath.includes(canonical)) return true;
  if (v.attachPath.length > 0) throw new LayerBusyError(entry.volume, `the volume is mounted elsewhere (${v.attachPath.join(', ')})`);
  if (vd.type === 'block') await vd.attach(entry.volumeId);
  try {
    await vd.mount(entry.volumeId, mountPoint);
  } catch (err) {
    if (vd.type === 'block') await vd.detach(entry.volumeId).catch(() => undefined);
    throw err;
  }
  return true;
}

/** Unmounts the volume of `entry` from `mountPoint`, detaches a block volume, removes the mount point. */
async function releaseVolume(vd: VolumeDriver, entry: ContainerEntry, mountPoint: string): Promise<void> {
  await vd.unmount(entry.volumeId, mountPoint);
  if (vd.type === 'block') await vd.detach(entry.volumeId);
  await rmdir(mountPoint).catch((err: unknown) => {
    if (errorCode(err) !== 'ENOENT') debug('removing mount point %s: %o', mountPoint, err);
  });
}

/** The registry's entry point (core's driver package convention). */
export const init: DriverInit = (ctx) => Layer0Driver.start(ctx);
export const name = DRIVER_NAME;
