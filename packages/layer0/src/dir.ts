/**
 * The `dir` volume driver: each volume is a directory `<home>/data/<name>` on the filesystem of
 * layer0's home, bind-mounted where layer0 wants it. No size limit (asking for one is a
 * QuotaNotSupportedError), nothing to attach: the cheapest way to keep container layers across
 * re-creation on one host, and the shape of drivers whose volumes are directories somewhere (an NFS
 * export mounted on the host, a cluster filesystem).
 *
 * Where a volume is mounted is read from the mount table, not remembered: a bind mount of a
 * directory shows in mountinfo as a mount of the directory's filesystem whose root is the
 * directory's path inside that filesystem.
 */
import { mkdir, realpath, rm } from 'node:fs/promises';
import { join, posix, relative } from 'node:path';
import { debuglog } from 'node:util';
import {
  canonicalMountPath,
  InvalidOptionError,
  isAtOrUnder,
  KeyedMutex,
  LayerBusyError,
  mounts,
  OperationFailedError,
  QuotaNotSupportedError,
  unmount,
  type MountInfo,
} from '@graphdriver/core';
import { MS, mount } from '@graphdriver/native';
import { validateVolumeName } from './naming.js';
import { VolumeRecords, type VolumeRecord } from './volume-records.js';
import type { Volume, VolumeCallOptions, VolumeDriver, VolumeDriverContext, VolumeQuery, VolumeSpec } from './volume.js';

const debug = debuglog('graphdriver:layer0');

const DATA_DIR = 'data';

/** The mount points where directory `dir` (canonical) is bind-mounted, from one read of the mount table. */
export function bindMountsOf(dir: string, table: readonly MountInfo[]): string[] {
  // the mount dir lives on: the deepest mount point above it, the topmost of those stacked there
  let home: MountInfo | undefined;
  for (const m of table) {
    if (!isAtOrUnder(dir, m.mountPoint) || m.mountPoint === dir) continue;
    if (home === undefined || m.mountPoint.length >= home.mountPoint.length) home = m;
  }
  if (home === undefined) return [];
  const root = posix.join(home.root, relative(home.mountPoint, dir));
  return table.filter((m) => m.major === home.major && m.minor === home.minor && m.root === root && m !== home).map((m) => m.mountPoint);
}

export class DirVolumeDriver implements VolumeDriver {
  readonly name: string;
  readonly type = 'file' as const;
  readonly limitsSize = false;
  readonly home: string;
  readonly #records: VolumeRecords;
  readonly #locks = new KeyedMutex<string>();

  private constructor(name: string, home: string) {
    this.name = name;
    this.home = home;
    this.#records = new VolumeRecords(home);
  }

  static async create(ctx: VolumeDriverContext): Promise<DirVolumeDriver> {
    const [key] = Object.keys(ctx.options);
    if (key !== undefined) throw new InvalidOptionError('layer0.volume_opt', `layer0: the dir volume driver takes no options, got ${JSON.stringify(key)}`);
    const home = await realpath(ctx.home);
    await mkdir(join(home, DATA_DIR), { recursive: true, mode: 0o700 });
    return new DirVolumeDriver(ctx.name, home);
  }

  dataPath(name: string): string {
    return join(this.home, DATA_DIR, name);
  }

  async create(locator: { name: string; labels?: Readonly<Record<string, string>> }, spec: VolumeSpec): Promise<string> {
    const name = locator.name;
    validateVolumeName(name);
    if (spec.size !== undefined) {
      throw new QuotaNotSupportedError(`layer0: the dir volume driver cannot limit the size of volume ${JSON.stringify(name)}; use the loopback volume driver for size limits`);
    }
    if (spec.format !== undefined) throw new InvalidOptionError('format', 'layer0: the dir volume driver makes no filesystems');
    return this.#locks.withLock(name, async () => {
      if ((await this.#records.read(name)) !== undefined) {
        throw new OperationFailedError(`creating volume ${JSON.stringify(name)}`, undefined, Object.assign(new Error('a volume of that name exists'), { code: 'EEXIST' }));
      }
      const data = this.dataPath(name);
      // a directory without a record is what a crash during create or delete left
      await rm(data, { recursive: true, force: true });
      try {
        await mkdir(data, { mode: 0o755 });
        await this.#records.write({ name, labels: { ...(locator.labels ?? {}) }, ctime: new Date().toISOString() });
      } catch (err) {
        await rm(data, { recursive: true, force: true }).catch(() => undefined);
        throw err;
      }
      debug('dir: created volume %s', name);
      return name;
    });
  }

  #toVolume(r: VolumeRecord, table: readonly MountInfo[]): Volume {
    return {
      id: r.name,
      locator: { name: r.name, labels: r.labels },
      spec: {},
      devicePath: undefined,
      attachPath: bindMountsOf(this.dataPath(r.name), table),
      ctime: new Date(r.ctime),
    };
  }

  async inspect(ids: readonly string[]): Promise<Volume[]> {
    const table = await mounts();
    const out: Volume[] = [];
    for (const id of ids) {
      const r = await this.#records.read(id);
      if (r !== undefined) out.push(this.#toVolume(r, table));
    }
    return out;
  }

  async enumerate(query: VolumeQuery = {}): Promise<Volume[]> {
    const records = await this.#records.list(query);
    if (records.length === 0) return [];
    const table = await mounts();
    return records.map((r) => this.#toVolume(r, table));
  }

  /** Nothing to attach: the path to mount from. */
  async attach(id: string): Promise<string> {
    await this.#records.get(id);
    return this.dataPath(id);
  }

  async detach(id: string): Promise<void> {
    await this.#records.get(id);
  }

  async mount(id: string, path: string): Promise<void> {
    const mountPath = await canonicalMountPath(path);
    await this.#locks.withLock(id, async () => {
      await this.#records.get(id);
      const data = this.dataPath(id);
      if (bindMountsOf(data, await mounts()).includes(mountPath)) return;
      try {
        await mount(data, mountPath, null, MS.BIND, null);
      } catch (err) {
        throw new OperationFailedError(`bind-mounting volume ${JSON.stringify(id)} at ${mountPath}`, undefined, err);
      }
      debug('dir: mounted volume %s at %s', id, mountPath);
    });
  }

  async unmount(id: string, path: string, opts: VolumeCallOptions = {}): Promise<void> {
    const mountPath = await canonicalMountPath(path);
    await this.#locks.withLock(id, async () => {
      if (!bindMountsOf(this.dataPath(id), await mounts()).includes(mountPath)) return;
      try {
        await unmount(mountPath, { ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
      } catch (err) {
        throw new OperationFailedError(`unmounting volume ${JSON.stringify(id)} from ${mountPath}`, undefined, err);
      }
      debug('dir: unmounted volume %s from %s', id, mountPath);
    });
  }

  async delete(id: string): Promise<void> {
    await this.#locks.withLock(id, async () => {
      await this.#records.get(id);
      const mountedAt = bindMountsOf(this.dataPath(id), await mounts());
      if (mountedAt.length > 0) throw new LayerBusyError(id, `the volume is mounted at ${mountedAt.join(', ')}`);
      await this.#records.remove(id);
      await rm(this.dataPath(id), { recursive: true, force: true });
      debug('dir: deleted volume %s', id);
    });
  }

  async status(): Promise<Array<[string, string]>> {
    return [['Volume directories', join(this.home, DATA_DIR)]];
  }
}
