/**
 * The `loopback` volume driver, layer0's default: each volume is a sparse image file
 * `<home>/<name>.img` with a filesystem on it (ext4 unless `layer0.volume_opt=fs=xfs`), attached as
 * a loop device through core's blockdev and mounted. The image's size is the volume's limit: a full
 * volume gives ENOSPC to the writer and to nothing else. Blocks are allocated as they are written,
 * so a 10 GiB volume costs a few MiB until used.
 *
 * Loop devices are attached with autoclear: our handle holds the device until the mount does, then
 * is closed, so the kernel releases the device with its last unmount, and a process that dies
 * between attach and mount leaves no device behind.
 */
import { realpath, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import {
  attachLoop,
  bytesSize,
  canonicalMountPath,
  createSparseFile,
  detachLoop,
  errorCode,
  InvalidOptionError,
  KeyedMutex,
  LayerBusyError,
  listLoops,
  mkfs,
  mounts,
  OperationFailedError,
  unmount,
  type LoopDevice,
  type LoopInfo,
  type MountInfo,
} from '@graphdriver/core';
import { mount } from '@graphdriver/native';
import { validateVolumeName } from './naming.js';
import { VolumeRecords, type VolumeRecord } from './volume-records.js';
import type { Volume, VolumeCallOptions, VolumeDriver, VolumeDriverContext, VolumeQuery, VolumeSpec } from './volume.js';

const debug = debuglog('graphdriver:layer0');

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/** The size of a volume made without one (sparse: it costs what is written). */
export const DEFAULT_LOOPBACK_SIZE = 10 * GiB;
const FORMATS = ['ext4', 'xfs'] as const;
type Format = (typeof FORMATS)[number];
/** The smallest filesystems mkfs makes (xfsprogs refuses below 300 MB). */
const MIN_SIZE: Record<Format, number> = { ext4: 16 * MiB, xfs: 300 * MiB };
/**
 * mkfs arguments: no reserved blocks (the volume's size is what the container gets), and nothing
 * written that a sparse file already reads as zeros (inode tables, journal), nor discarded.
 */
const MKFS_ARGS: Record<Format, string[]> = {
  ext4: ['-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard'],
  xfs: ['-K'],
};

function isFormat(s: string): s is Format {
  return (FORMATS as readonly string[]).includes(s);
}

/** One snapshot of the host: loop devices by backing file and the mount table. */
interface HostView {
  loops: Map<string, LoopInfo[]>;
  mounts: MountInfo[];
}

export class LoopbackVolumeDriver implements VolumeDriver {
  readonly name: string;
  readonly type = 'block' as const;
  readonly limitsSize = true;
  readonly home: string;
  readonly format: Format;
  readonly #records: VolumeRecords;
  readonly #locks = new KeyedMutex<string>();
  /** Devices attached by us and not yet held by a mount. */
  readonly #handles = new Map<string, LoopDevice>();

  private constructor(name: string, home: string, format: Format) {
    this.name = name;
    this.home = home;
    this.format = format;
    this.#records = new VolumeRecords(home);
  }

  static async create(ctx: VolumeDriverContext): Promise<LoopbackVolumeDriver> {
    let format: Format = 'ext4';
    for (const [key, value] of Object.entries(ctx.options)) {
      if (key === 'fs') {
        if (!isFormat(value)) throw new InvalidOptionError('layer0.volume_opt', `layer0: the loopback volume driver makes ext4 or xfs, not ${JSON.stringify(value)} (volume_opt fs=)`);
        format = value;
      } else {
        throw new InvalidOptionError('layer0.volume_opt', `layer0: unknown option ${JSON.stringify(key)} of the loopback volume driver (known: fs)`);
      }
    }
    // canonical: the kernel records loop backing files and mount points by their real paths
    return new LoopbackVolumeDriver(ctx.name, await realpath(ctx.home), format);
  }

  imagePath(name: string): string {
    return join(this.home, `${name}.img`);
  }

  async create(locator: { name: string; labels?: Readonly<Record<string, string>> }, spec: VolumeSpec, opts: VolumeCallOptions = {}): Promise<string> {
    const name = locator.name;
    validateVolumeName(name);
    const format = spec.format ?? this.format;
    if (!isFormat(format)) throw new InvalidOptionError('format', `layer0: the loopback volume driver makes ext4 or xfs, not ${JSON.stringify(format)}`);
    const size = spec.size ?? DEFAULT_LOOPBACK_SIZE;
    if (!Number.isSafeInteger(size) || size < MIN_SIZE[format]) {
      throw new InvalidOptionError('size', `layer0: a loopback ${format} volume needs at least ${bytesSize(MIN_SIZE[format])}, ${JSON.stringify(size)} bytes asked for volume ${JSON.stringify(name)}`);
    }
    return this.#locks.withLock(name, async () => {
      if ((await this.#records.read(name)) !== undefined) {
        throw new OperationFailedError(`creating volume ${JSON.stringify(name)}`, undefined, Object.assign(new Error('a volume of that name exists'), { code: 'EEXIST' }));
      }
      const image = this.imagePath(name);
      // an image without a record is what a crash during create or delete left
      await rm(image, { force: true });
      try {
        await createSparseFile(image, size);
        await mkfs(image, format, { args: MKFS_ARGS[format], ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
        await this.#records.write({ name, labels: { ...(locator.labels ?? {}) }, size, format, ctime: new Date().toISOString() });
      } catch (err) {
        await rm(image, { force: true }).catch(() => undefined);
        throw err;
      }
      debug('loopback: created volume %s (%s, %d bytes)', name, format, size);
      return name;
    });
  }

  async #hostView(): Promise<HostView> {
    const loops = new Map<string, LoopInfo[]>();
    for (const l of await listLoops()) {
      if (l.backingDeleted) continue;
      loops.set(l.backingFile, [...(loops.get(l.backingFile) ?? []), l]);
    }
    return { loops, mounts: await mounts() };
  }

  #loopsOf(view: HostView, name: string): LoopInfo[] {
    return view.loops.get(this.imagePath(name)) ?? [];
  }

  #mountPointsOf(view: HostView, name: string): string[] {
    const devices = new Set(this.#loopsOf(view, name).map((l) => l.path));
    return view.mounts.filter((m) => devices.has(m.source)).map((m) => m.mountPoint);
  }

  #toVolume(r: VolumeRecord, view: HostView): Volume {
    return {
      id: r.name,
      locator: { name: r.name, labels: r.labels },
      spec: { ...(r.size === undefined ? {} : { size: r.size }), ...(r.format === undefined ? {} : { format: r.format }) },
      devicePath: this.#loopsOf(view, r.name)[0]?.path,
      attachPath: this.#mountPointsOf(view, r.name),
      ctime: new Date(r.ctime),
    };
  }

  async inspect(ids: readonly string[]): Promise<Volume[]> {
    const view = await this.#hostView();
    const out: Volume[] = [];
    for (const id of ids) {
      const r = await this.#records.read(id);
      if (r !== undefined) out.push(this.#toVolume(r, view));
    }
    return out;
  }

  async enumerate(query: VolumeQuery = {}): Promise<Volume[]> {
    const records = await this.#records.list(query);
    if (records.length === 0) return [];
    const view = await this.#hostView();
    return records.map((r) => this.#toVolume(r, view));
  }

  async attach(id: string, opts: VolumeCallOptions = {}): Promise<string> {
    return this.#locks.withLock(id, async () => {
      await this.#records.get(id);
      const held = this.#handles.get(id);
      if (held !== undefined) return held.path;
      const attached = this.#loopsOf(await this.#hostView(), id)[0];
      if (attached !== undefined) return attached.path;
      const dev = await attachLoop(this.imagePath(id), { autoclear: true, ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
      this.#handles.set(id, dev);
      debug('loopback: attached volume %s at %s', id, dev.path);
      return dev.path;
    });
  }

  async mount(id: string, path: string): Promise<void> {
    const mountPath = await canonicalMountPath(path);
    await this.#locks.withLock(id, async () => {
      const r = await this.#records.get(id);
      const view = await this.#hostView();
      const device = this.#handles.get(id)?.path ?? this.#loopsOf(view, id)[0]?.path;
      if (device === undefined) {
        throw new OperationFailedError(`mounting volume ${JSON.stringify(id)}`, undefined, Object.assign(new Error('the volume is not attached'), { code: 'ENXIO' }));
      }
      if (view.mounts.some((m) => m.source === device && m.mountPoint === mountPath)) return;
      try {
        await mount(device, mountPath, r.format ?? this.format, 0, null);
      } catch (err) {
        throw new OperationFailedError(`mounting volume ${JSON.stringify(id)} (${device}) at ${mountPath}`, undefined, err);
      }
      // the mount holds the device now; with autoclear the kernel lets it go with the last unmount
      this.#handles.get(id)?.close();
      this.#handles.delete(id);
      debug('loopback: mounted volume %s (%s) at %s', id, device, mountPath);
    });
  }

  async unmount(id: string, path: string, opts: VolumeCallOptions = {}): Promise<void> {
    const mountPath = await canonicalMountPath(path);
    await this.#locks.withLock(id, async () => {
      const view = await this.#hostView();
      if (!this.#mountPointsOf(view, id).includes(mountPath)) return;
      try {
        await unmount(mountPath, { ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
      } catch (err) {
        throw new OperationFailedError(`unmounting volume ${JSON.stringify(id)} from ${mountPath}`, undefined, err);
      }
      debug('loopback: unmounted volume %s from %s', id, mountPath);
    });
  }

  async detach(id: string): Promise<void> {
    await this.#locks.withLock(id, async () => {
      const view = await this.#hostView();
      const mountedAt = this.#mountPointsOf(view, id);
      if (mountedAt.length > 0) throw new LayerBusyError(id, `the volume is mounted at ${mountedAt.join(', ')}`);
      const held = this.#handles.get(id);
      this.#handles.delete(id);
      if (held !== undefined) await held.detach();
      for (const l of this.#loopsOf(view, id)) await detachLoop(l.path);
    });
  }

  async delete(id: string): Promise<void> {
    await this.#locks.withLock(id, async () => {
      await this.#records.get(id);
      const view = await this.#hostView();
      const mountedAt = this.#mountPointsOf(view, id);
      if (mountedAt.length > 0) throw new LayerBusyError(id, `the volume is mounted at ${mountedAt.join(', ')}`);
      if (this.#handles.has(id) || this.#loopsOf(view, id).length > 0) throw new LayerBusyError(id, 'the volume is attached');
      // the record first: an image without one is garbage, never a volume
      await this.#records.remove(id);
      await rm(this.imagePath(id), { force: true });
      debug('loopback: deleted volume %s', id);
    });
  }

  async status(): Promise<Array<[string, string]>> {
    return [
      ['Volume images', this.home],
      ['Volume filesystem', this.format],
      ['Default volume size', bytesSize(DEFAULT_LOOPBACK_SIZE)],
    ];
  }

  /** Detaches what we attached and no mount holds, and devices of our images left unmounted by an earlier process. */
  async shutdown(): Promise<void> {
    for (const [id, dev] of [...this.#handles]) {
      this.#handles.delete(id);
      await dev.detach().catch((err: unknown) => debug('loopback: detaching %s: %o', dev.path, err));
    }
    const view = await this.#hostView();
    const mounted = new Set(view.mounts.map((m) => m.source));
    for (const [file, loops] of view.loops) {
      if (!file.startsWith(`${this.home}/`) || !file.endsWith('.img')) continue;
      for (const l of loops) {
        if (mounted.has(l.path)) continue;
        await detachLoop(l.path).catch((err: unknown) => {
          if (errorCode(err) !== 'ENXIO') debug('loopback: detaching %s: %o', l.path, err);
        });
      }
    }
  }
}
