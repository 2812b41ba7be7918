/**
 * Staged apply (containers/storage's ApplyDiffWithDiffer / ApplyDiffFromStagingDirectory): a layer
 * tar is extracted into `<home>/staging/<id>-apply-XXXXXX/diff`, never into the layer, and moved
 * into place only when complete, with one renameat2(RENAME_EXCHANGE) of the staged directory and
 * the layer's `diff/`: a reader sees the old diff or the new one. The old one (now in the staging
 * directory) is removed afterwards. A process killed mid-extraction leaves nothing but a staging
 * directory, which the next start removes (StagingArea.clear); one killed after the exchange leaves
 * a complete layer.
 *
 * The staged directory starts with the mode, owner and project id (quota) of the layer's current
 * `diff/`, so that a tar without a root entry gives the layer the root it had, and files extracted
 * into a size-limited layer count against its quota.
 */
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import { AT, FS_XFLAG, RENAME, fsGetXattr, fsSetXattr, renameat2Sync } from '@graphdriver/native';
import { errorCode, InvalidOptionError, unmountRecursive, type StagedDiff, type UnpackOptions } from '@graphdriver/core';
import { applyLayerTar } from './diff.js';
import { DIFF, type LayerLocation } from './layout.js';

const debug = debuglog('graphdriver:overlay');

/** A StagedDiff of ours: the layer it was extracted for is part of it. */
interface OwnStagedDiff extends StagedDiff {
  readonly layer: string;
}

async function projectIdOf(dir: string): Promise<{ projid: number; xflags: number } | undefined> {
  let fd: number;
  try {
    fd = openSync(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  } catch {
    return undefined;
  }
  try {
    const x = await fsGetXattr(fd);
    return { projid: x.projid, xflags: x.xflags };
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

async function setProjectId(dir: string, projid: number): Promise<void> {
  const fd = openSync(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    const cur = await fsGetXattr(fd);
    await fsSetXattr(fd, { projid, xflags: cur.xflags | FS_XFLAG.PROJINHERIT });
  } finally {
    closeSync(fd);
  }
}

export class StagingArea {
  constructor(readonly dir: string) {}

  /** What a crash left: mounts in it (probes) are taken down, everything in it removed. */
  static async clear(dir: string): Promise<void> {
    try {
      await unmountRecursive(dir, { lazyFallback: true, retries: 5, retryDelayMs: 20 });
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') debug('clearing %s: %o', dir, err);
    }
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }

  /** Extracts `tar` for layer `layer` into a new staging directory; nothing of the layer changes. */
  async extract(layer: LayerLocation, tar: Readable, opts: UnpackOptions): Promise<StagedDiff> {
    let top: string;
    try {
      top = await mkdtemp(join(this.dir, `${layer.id}-apply-`));
    } catch (err) {
      tar.destroy();
      throw err;
    }
    try {
      const target = join(top, DIFF);
      const current = await stat(join(layer.dir, DIFF));
      await mkdir(target);
      await chown(target, current.uid, current.gid);
      await chmod(target, current.mode & 0o7777);
      const project = await projectIdOf(layer.dir);
      if (project !== undefined && project.projid !== 0) await setProjectId(target, project.projid);
      const size = await applyLayerTar(target, tar, opts, layer.id);
      const staged: OwnStagedDiff = { stagingDir: top, size, layer: layer.id };
      return staged;
    } catch (err) {
      await rm(top, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** The staging directory of `staged`, checked to be one of ours (the caller hands it back). */
  #own(staged: StagedDiff): string {
    const rel = relative(this.dir, staged.stagingDir);
    if (rel === '' || rel.startsWith('..') || rel.includes(sep)) {
      throw new InvalidOptionError('staged', `overlay: ${JSON.stringify(staged.stagingDir)} is not a staging directory of this driver`);
    }
    return join(this.dir, rel);
  }

  /** Swaps the staged diff in for the layer's `diff/` in one rename, then drops the old one. */
  async commit(layer: LayerLocation, staged: StagedDiff): Promise<void> {
    const top = this.#own(staged);
    const forLayer = (staged as Partial<OwnStagedDiff>).layer;
    if (forLayer !== undefined && forLayer !== layer.id) {
      throw new InvalidOptionError('staged', `overlay: the staged diff was extracted for layer ${JSON.stringify(forLayer)}, not ${JSON.stringify(layer.id)}`);
    }
    renameat2Sync(AT.FDCWD, join(top, DIFF), AT.FDCWD, join(layer.dir, DIFF), RENAME.EXCHANGE);
    // the layer is complete now; what is left is its old diff, garbage for the next start at worst
    await rm(top, { recursive: true, force: true }).catch((err: unknown) => debug('commit %s: %s left in staging: %o', layer.id, top, err));
  }

  async discard(staged: StagedDiff): Promise<void> {
    await rm(this.#own(staged), { recursive: true, force: true });
  }
}
