/**
 * QuotaControl: per-directory size (and inode) limits through project quotas, on xfs and on ext4
 * with the project feature - moby's quota/projectquota.go and containers/storage's drivers/quota.
 *
 * Each limited directory gets its own project id with the inherit flag, so everything created in
 * it counts against that id, and a hard limit is set on the id. Ids are numbered as moby numbers
 * them: the base directory's own project id is the floor (an admin can reserve ids with xfs_quota
 * by giving the base an id), the first id above it stays unused (moby spends it on its probe), and
 * directories get the ids after that; on start the base's subdirectories are scanned so that ids
 * of an earlier run are known and never handed out twice. The id is given to the directory before
 * its limit is set, so the quota record exists (the directory is charged to it) when it is written. Two QuotaControls in different processes on one base can
 * still pick the same id (moby has the same race): one store, one process.
 *
 * quotactl goes through quotactl_fd on an fd of the base directory (Linux 5.14+); on older kernels
 * through a block device node `backingFsBlockDev` made in the base directory, as moby does.
 */
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { readdir, realpath, stat, unlink } from 'node:fs/promises';
import { debuglog } from 'node:util';
import { FS_XFLAG, S, fsGetXattr, fsSetXattr, mknod, quotaFormat, quotaGet, quotaSet } from '@graphdriver/native';
import { InvalidOptionError, LayerUnknownError, OperationFailedError, QuotaNotSupportedError, errorCode } from '../errors.js';
import { inspectQuotaFs, type QuotaFs } from './detect.js';

const debug = debuglog('graphdriver:core');

export interface QuotaLimit {
  /** Hard limit in bytes; 0 means no limit. */
  size: number;
  /** Hard limit on the number of inodes; 0 or absent means no limit. */
  inodes?: number;
}

export interface QuotaUsage {
  /** The hard limit in bytes (0: none). */
  size: number;
  /** The inode hard limit (0: none). */
  inodes: number;
  /** Bytes in use by the directory's project. */
  used: number;
  /** Inodes in use by the directory's project. */
  usedInodes: number;
}

type QuotaTarget = number | string;

function withDirFd<T>(path: string, fn: (fd: number) => Promise<T>): Promise<T> {
  const fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW);
  return fn(fd).finally(() => closeSync(fd));
}

async function projectIdOf(dir: string): Promise<number> {
  return withDirFd(dir, async (fd) => (await fsGetXattr(fd)).projid);
}

async function assignProjectId(dir: string, projid: number): Promise<void> {
  await withDirFd(dir, async (fd) => {
    const cur = await fsGetXattr(fd);
    await fsSetXattr(fd, { projid, xflags: cur.xflags | FS_XFLAG.PROJINHERIT });
  });
}

export class QuotaControl {
  private readonly quotas = new Map<string, number>();
  private allocation: Promise<unknown> = Promise.resolve();

  private constructor(
    /** The base directory (real path) whose subdirectories get limits. */
    readonly basePath: string,
    readonly backingFs: QuotaFs,
    /** The base's own project id: every id we hand out is above it. */
    readonly baseProjectId: number,
    private nextProjectId: number,
    /** quotactl_fd (undefined) or the block device node for quotactl(2). */
    private readonly deviceNode: string | undefined,
  ) {}

  /**
   * Check that the filesystem of `basePath` enforces project quotas and learn the ids in use
   * under it. QuotaNotSupportedError (with the reason: kernel option, mount option, filesystem)
   * when it cannot.
   */
  static async create(basePath: string): Promise<QuotaControl> {
    const base = await realpath(basePath);
    const facts = await inspectQuotaFs(base);
    const refuse = (detail: string[], cause?: unknown): QuotaNotSupportedError =>
      new QuotaNotSupportedError(`project quotas are not available on ${base} (${facts.fsName}): ${detail.join('; ')}`, cause === undefined ? undefined : { cause });
    if (facts.fs === undefined) throw refuse(facts.reasons);

    let baseId: number;
    try {
      baseId = await projectIdOf(base);
    } catch (err) {
      throw refuse([...facts.reasons, `reading the project id of ${base} failed (${errorCode(err) ?? String(err)})`], err);
    }
    if (baseId >= 0xffffffff - 2) throw refuse([`the project id of ${base} (${baseId}) leaves no ids above it`]);

    // moby probes by setting a limit on the first id above the base. We read the base's own
    // project record (it exists: the base directory is charged to it) and write its limits back
    // unchanged - the same "can we set quotas here" test (EPERM in a user namespace...) without
    // creating a record for an id nobody uses. XFS answers ENOENT for ids without usage or limits.
    let deviceNode: string | undefined;
    const probe = async (target: QuotaTarget): Promise<void> => {
      if (facts.fs === 'ext4') await quotaFormat(target, 'project'); // ESRCH: project quota is off
      const q = await quotaGet(target, 'project', baseId);
      await quotaSet(target, 'project', baseId, {
        blockHardLimit: q.blockHardLimit,
        blockSoftLimit: q.blockSoftLimit,
        inodeHardLimit: q.inodeHardLimit,
        inodeSoftLimit: q.inodeSoftLimit,
      });
    };
    try {
      try {
        await withDirFd(base, probe);
      } catch (err) {
        if (errorCode(err) !== 'ENOSYS' || facts.reasons.length > 0) throw err;
        // quotactl_fd is missing (kernel < 5.14): quotactl(2) wants a block device node.
        deviceNode = await makeBackingFsDev(base);
        await probe(deviceNode);
      }
    } catch (err) {
      const code = errorCode(err);
      const why = facts.reasons.length > 0 ? facts.reasons : [`quotactl answered ${code ?? String(err)}${code === 'ESRCH' ? ' (project quota is off)' : ''}`];
      throw refuse(why, err);
    }
    if (!facts.enforcedByMount) throw refuse(facts.reasons);

    const control = new QuotaControl(base, facts.fs, baseId, baseId + 2, deviceNode);
    await control.scanExisting();
    debug('QuotaControl %s (%s): base id %d, next id %d, %d known', base, facts.fs, baseId, control.nextProjectId, control.quotas.size);
    return control;
  }

  /** Learn the ids that earlier runs gave to the base's subdirectories. */
  private async scanExisting(): Promise<void> {
    for (const entry of await readdir(this.basePath, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = `${this.basePath}/${entry.name}`;
      const id = await projectIdOf(dir);
      // An id at or below the base's is inherited or an admin's, not one of ours.
      if (id <= this.baseProjectId) continue;
      this.quotas.set(dir, id);
      if (id >= this.nextProjectId) this.nextProjectId = id + 1;
    }
  }

  private async withTarget<T>(fn: (target: QuotaTarget) => Promise<T>): Promise<T> {
    if (this.deviceNode !== undefined) return fn(this.deviceNode);
    return withDirFd(this.basePath, fn);
  }

  /** The project id of `dir` if it has one of ours (found by scan, set by us, or set by an earlier run). */
  private async knownId(dir: string): Promise<number | undefined> {
    const id = this.quotas.get(dir) ?? (await projectIdOf(dir));
    return id > this.baseProjectId ? id : undefined;
  }

  /** The project id `dir` has or gets (assigned with the inherit flag). */
  private ensureId(dir: string): Promise<number> {
    const next = this.allocation.then(async () => {
      const known = await this.knownId(dir);
      if (known !== undefined) {
        this.quotas.set(dir, known);
        if (known >= this.nextProjectId) this.nextProjectId = known + 1;
        return known;
      }
      const id = this.nextProjectId;
      await assignProjectId(dir, id);
      this.quotas.set(dir, id);
      this.nextProjectId = id + 1;
      debug('QuotaControl: %s gets project id %d', dir, id);
      return id;
    });
    this.allocation = next.catch(() => undefined);
    return next;
  }

  /** Limit `targetDir` (and everything created in it from now on) to `limit`. */
  async setQuota(targetDir: string, limit: QuotaLimit): Promise<void> {
    const inodes = limit.inodes ?? 0;
    if (!Number.isSafeInteger(limit.size) || limit.size < 0) throw new InvalidOptionError('size', `quota size must be a whole number of bytes >= 0, not ${limit.size}`);
    if (!Number.isSafeInteger(inodes) || inodes < 0) throw new InvalidOptionError('inodes', `quota inode limit must be a whole number >= 0, not ${inodes}`);
    const dir = await realpath(targetDir);
    const id = await this.ensureId(dir);
    try {
      // moby sets the soft limit equal to the hard one, so that no grace period ever applies
      await this.withTarget((t) =>
        quotaSet(t, 'project', id, { blockHardLimit: limit.size, blockSoftLimit: limit.size, inodeHardLimit: inodes, inodeSoftLimit: inodes }),
      );
    } catch (err) {
      throw new OperationFailedError(`setting the quota of ${dir} (project ${id})`, undefined, err);
    }
  }

  /** The limits and usage of `targetDir`. LayerUnknownError when it has no quota of ours. */
  async getQuota(targetDir: string): Promise<QuotaUsage> {
    const dir = await realpath(targetDir);
    const id = await this.knownId(dir);
    if (id === undefined) throw new LayerUnknownError(dir, 'project quota of directory');
    try {
      const q = await this.withTarget((t) => quotaGet(t, 'project', id));
      return { size: q.blockHardLimit, inodes: q.inodeHardLimit, used: q.spaceUsed, usedInodes: q.inodesUsed };
    } catch (err) {
      // XFS: a record with neither usage nor limits does not exist
      if (errorCode(err) === 'ENOENT' && this.deviceNode === undefined) return { size: 0, inodes: 0, used: 0, usedInodes: 0 };
      throw new OperationFailedError(`reading the quota of ${dir} (project ${id})`, undefined, err);
    }
  }

  /** Lift the limits of `targetDir` (its project id stays, so usage is still accounted). */
  async clearQuota(targetDir: string): Promise<void> {
    const dir = await realpath(targetDir);
    const id = await this.knownId(dir);
    if (id === undefined) return;
    try {
      await this.withTarget((t) => quotaSet(t, 'project', id, { blockHardLimit: 0, blockSoftLimit: 0, inodeHardLimit: 0, inodeSoftLimit: 0 }));
    } catch (err) {
      throw new OperationFailedError(`clearing the quota of ${dir} (project ${id})`, undefined, err);
    }
  }

  /** The project id QuotaControl gave `targetDir`, if any (for status and tests). */
  async projectId(targetDir: string): Promise<number | undefined> {
    return this.knownId(await realpath(targetDir));
  }
}

/** moby's makeBackingFsDev: a block device node of the base's filesystem, for quotactl(2). */
async function makeBackingFsDev(base: string): Promise<string> {
  const { dev } = await stat(base, { bigint: true });
  const node = `${base}/backingFsBlockDev`;
  // re-created each time: the home may have been copied to another device
  await unlink(node).catch(() => undefined);
  // glibc's major()/minor() split of a dev_t
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  await mknod(node, S.IFBLK | 0o600, major, minor);
  return node;
}
