/**
 * Reference-counted mounts, for drivers' get/put: the first get of a path mounts it, the last put
 * unmounts it, n gets need n puts. Calls on one path run one at a time in arrival order (so a put
 * never unmounts under a get that is mounting, and no path is mounted twice); calls on different
 * paths run in parallel.
 *
 * Mounts we did not make. The rule is moby's mountref.Counter / containers/storage's RefCounter:
 *  - Adoption: a path found mounted that holds no reference in this counter gets a count of 1. That is
 *    the reference of the earlier process (a daemon that restarted while containers kept their
 *    rootfs mounted); the current process inherits it, so the put that matches that earlier get
 *    unmounts, and a get in between only adds a reference. moby and containers/storage adopt
 *    lazily, on the first get or put of the path; we do too, and `adopt()` / `adoptUnder()` do it
 *    eagerly for the paths a driver knows, so counts are right (and checkable) from the start.
 *  - Staleness (containers/storage's addition, which moby lacks): when a counted path turns out to
 *    be no longer mounted (unmounted behind our back: conmon cleanup, an admin's umount), its count
 *    drops to 0, so the next get mounts again instead of handing out an empty directory, and a put
 *    does not try to unmount what is gone.
 * Failures: a mount function that throws leaves the count as it was; an unmount function that
 * throws leaves the mount referenced once (count 1), so a retried put unmounts it.
 */
import { resolve } from 'node:path';
import { debuglog } from 'node:util';
import { KeyedMutex } from './locks.js';
import { isMountPoint, mountsUnder } from './mountinfo.js';

const debug = debuglog('graphdriver:core');

/** Tells whether something is mounted at a path (default: isMountPoint; overlay may check the fs magic instead). */
export type MountedChecker = (path: string) => Promise<boolean>;

export interface RefMountsOptions {
  isMounted?: MountedChecker;
}

export class RefMounts {
  /** Paths with at least one reference; a path not in it is checked for adoption on its next touch. */
  readonly #counts = new Map<string, number>();
  readonly #lock = new KeyedMutex<string>();
  readonly #isMounted: MountedChecker;

  constructor(opts: RefMountsOptions = {}) {
    this.#isMounted = opts.isMounted ?? isMountPoint;
  }

  /** A counter that has already adopted the mounts at `paths` (see adopt). */
  static async create(opts: RefMountsOptions & { adopt?: Iterable<string> } = {}): Promise<RefMounts> {
    const refs = new RefMounts(opts);
    if (opts.adopt !== undefined) await refs.adopt(opts.adopt);
    return refs;
  }

  /**
   * Takes a reference on `path`, calling `mount()` when it is the first. Returns the count after.
   * `mount` must leave something mounted at `path` when it resolves.
   */
  async get(path: string, mount: () => Promise<void>): Promise<number> {
    const key = resolve(path);
    return this.#lock.withLock(key, async () => {
      let count = await this.#current(key);
      if (count === 0) {
        await mount();
        debug('refmounts: mounted %s', key);
      }
      count++;
      this.#counts.set(key, count);
      return count;
    });
  }

  /**
   * Drops a reference on `path`, calling `unmount()` when it was the last. Returns the count after.
   * A put on a path that holds no reference and is not mounted does nothing.
   */
  async put(path: string, unmount: () => Promise<void>): Promise<number> {
    const key = resolve(path);
    return this.#lock.withLock(key, async () => {
      const count = await this.#current(key);
      if (count === 0) return 0;
      if (count > 1) {
        this.#counts.set(key, count - 1);
        return count - 1;
      }
      try {
        await unmount();
      } catch (err) {
        this.#counts.set(key, 1);
        throw err;
      }
      debug('refmounts: unmounted %s', key);
      this.#counts.delete(key);
      return 0;
    });
  }

  /** The references held on `path` now (0 for a path never got, or released). */
  count(path: string): number {
    return this.#counts.get(resolve(path)) ?? 0;
  }

  /** Every path with references, and its count. */
  counts(): Map<string, number> {
    return new Map(this.#counts);
  }

  /**
   * Adopts the mounts left at `paths` by an earlier process: each one that is mounted and not yet
   * counted gets a count of 1. Returns the paths adopted.
   */
  async adopt(paths: Iterable<string>): Promise<string[]> {
    const adopted: string[] = [];
    await Promise.all(
      [...paths].map((p) => {
        const key = resolve(p);
        return this.#lock.withLock(key, async () => {
          if (this.#counts.has(key)) return;
          if (await this.#isMounted(key)) {
            this.#counts.set(key, 1);
            adopted.push(key);
          }
        });
      }),
    );
    return adopted.sort();
  }

  /**
   * Adopts the mounts at or under `dir` that `match` selects (default: every one; a driver passes
   * e.g. `(p) => p.endsWith('/merged')` so that mounts inside its mounts are not counted).
   */
  async adoptUnder(dir: string, match: (mountPoint: string) => boolean = () => true): Promise<string[]> {
    const points = new Set((await mountsUnder(dir)).map((m) => m.mountPoint).filter(match));
    return this.adopt(points);
  }

  /** The count of `key` after checking it against the system (adoption and staleness rules). */
  async #current(key: string): Promise<number> {
    const count = this.#counts.get(key);
    if (count === undefined) {
      if (!(await this.#isMounted(key))) return 0;
      debug('refmounts: adopting %s, mounted by an earlier process', key);
      this.#counts.set(key, 1);
      return 1;
    }
    if (!(await this.#isMounted(key))) {
      debug('refmounts: %s was unmounted behind our back; dropping %d references', key, count);
      this.#counts.delete(key);
      return 0;
    }
    return count;
  }
}
