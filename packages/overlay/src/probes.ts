/**
 * What the running kernel's overlay does, found by trying it, as moby's and containers/storage's
 * check.go do, and cached in the home as containers/storage caches them (`<feature>-true` or
 * `<feature>-false`, the reason inside) - with the kernel release on the first line, so that a new
 * kernel is probed again rather than trusted:
 *
 *  - native diff (`native-diff(<mountopt>)`): reading a layer's changes straight from its upper dir
 *    is wrong when the kernel copies the opaque flag up with a directory (before 4.8), when renames
 *    of directories leave `redirect` xattrs (redirect_dir), or when copy-ups are metadata only
 *    (metacopy): each is tried on a scratch mount with the configured mount options;
 *  - metacopy (`metacopy(<mountopt>)`), reported in status();
 *  - idmapped lowers (`idmapped-lower-dir()`): an overlay on an idmapped clone of a directory;
 *  - `lowerdir+` (not cached: one fsopen and one fsconfig).
 *
 * The names carry parentheses, so no cache file can be mistaken for a layer id. Scratch
 * directories are made under `<home>/staging`, which a crash leaves to the next start to clear.
 */
import { closeSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { MNT, fsconfigSetString, fsopen, lgetxattrSync, lsetxattrSync, mount, umount2 } from '@graphdriver/native';
import { errorCode } from '@graphdriver/core';
import { idmappedClone, createUserNamespace } from './idmap.js';
import type { ParsedMountOptions } from './mount-options.js';

const debug = debuglog('graphdriver:overlay');

export interface ProbeResult {
  ok: boolean;
  /** Why not (or what was seen), for status() and logs. */
  reason: string;
}

/** The cache of probe results in the home. */
export class ProbeCache {
  constructor(
    readonly home: string,
    readonly kernel = release(),
  ) {}

  #file(feature: string, ok: boolean): string {
    return join(this.home, `${feature}-${ok}`);
  }

  async #read(feature: string): Promise<ProbeResult | undefined> {
    for (const ok of [true, false]) {
      let text: string;
      try {
        text = await readFile(this.#file(feature, ok), 'utf8');
      } catch (err) {
        if (errorCode(err) === 'ENOENT') continue;
        throw err;
      }
      const nl = text.indexOf('\n');
      const first = nl < 0 ? text : text.slice(0, nl);
      if (first !== `kernel ${this.kernel}`) {
        await unlink(this.#file(feature, ok)).catch(() => undefined);
        return undefined;
      }
      return { ok, reason: nl < 0 ? '' : text.slice(nl + 1) };
    }
    return undefined;
  }

  /** The cached result of `feature`, else `probe()`'s (which is then cached). */
  async get(feature: string, probe: () => Promise<ProbeResult>): Promise<ProbeResult> {
    const cached = await this.#read(feature);
    if (cached !== undefined) return cached;
    const result = await probe();
    await writeFile(this.#file(feature, result.ok), `kernel ${this.kernel}\n${result.reason}`, { mode: 0o600 });
    await rm(this.#file(feature, !result.ok), { force: true });
    debug('probe %s: %s (%s)', feature, result.ok, result.reason);
    return result;
  }
}

/** The data options of the configured mountopt, for the scratch mounts (c/s probes with them). */
function dataOf(opts: ParsedMountOptions): string {
  return opts.data.length === 0 ? '' : `,${opts.data.join(',')}`;
}

/** Runs `fn` in a fresh scratch directory under `scratchParent`, removed afterwards (a mount at `<dir>/merged` too). */
async function inScratch<T>(scratchParent: string, prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  await mkdir(scratchParent, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(scratchParent, `${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await umount2(join(dir, 'merged'), MNT.DETACH).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

async function mkdirs(base: string, ...dirs: string[]): Promise<void> {
  for (const d of dirs) await mkdir(join(base, d), { recursive: true, mode: 0o755 });
}

function xattr(path: string, name: string): string | undefined {
  try {
    return lgetxattrSync(path, name).toString();
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENODATA' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') return undefined;
    throw err;
  }
}

/** Whether copy-ups are metadata only (containers/storage's doesMetacopy). */
export async function probeMetacopy(scratchParent: string, opts: ParsedMountOptions): Promise<ProbeResult> {
  return inScratch(scratchParent, 'metacopy-check', async (td) => {
    await mkdirs(td, 'l1', 'l2', 'work', 'merged');
    await writeFile(join(td, 'l1', 'f'), Buffer.from([0xff]), { mode: 0o700 });
    try {
      await mount('overlay', join(td, 'merged'), 'overlay', opts.flags, `lowerdir=${td}/l1,upperdir=${td}/l2,workdir=${td}/work${dataOf(opts)}`);
    } catch (err) {
      if (errorCode(err) === 'EINVAL') return { ok: false, reason: `the mount options are not taken: ${(err as Error).message}` };
      throw err;
    }
    try {
      await chmod(join(td, 'merged', 'f'), 0o600);
    } finally {
      await umount2(join(td, 'merged'), 0);
    }
    const on = xattr(join(td, 'l2', 'f'), 'trusted.overlay.metacopy') !== undefined;
    return { ok: on, reason: on ? 'a chmod copied up only the metadata' : 'a chmod copied up the whole file' };
  });
}

/**
 * Whether diffs can be read from upper dirs (moby's doesSupportNativeDiff, with containers/storage's
 * mount options), and not when copy-ups are metadata only.
 */
export async function probeNativeDiff(scratchParent: string, opts: ParsedMountOptions, metacopy: boolean): Promise<ProbeResult> {
  if (metacopy) return { ok: false, reason: 'metacopy is on: upper files may hold only metadata' };
  return inScratch(scratchParent, 'opaque-bug-check', async (td) => {
    await mkdirs(td, 'l1/d', 'l1/d1', 'l2/d', 'l3', 'work', 'merged');
    lsetxattrSync(join(td, 'l2', 'd'), 'trusted.overlay.opaque', Buffer.from('y'));
    const merged = join(td, 'merged');
    await mount('overlay', merged, 'overlay', opts.flags, `lowerdir=${td}/l2:${td}/l1,upperdir=${td}/l3,workdir=${td}/work${dataOf(opts)}`);
    try {
      // a file in d copies the opaque directory d up from l2 into l3
      await writeFile(join(merged, 'd', 'f'), '');
      if (xattr(join(td, 'l3', 'd'), 'trusted.overlay.opaque') === 'y') {
        return { ok: false, reason: 'the kernel copies the opaque flag up with a directory (fixed in 4.8)' };
      }
      try {
        await rename(join(merged, 'd1'), join(merged, 'd2'));
      } catch (err) {
        // EXDEV: no redirect_dir, directories cannot be renamed across layers - native diff is right
        if (errorCode(err) === 'EXDEV') return { ok: true, reason: 'no redirect_dir, no opaque copy-up, no metacopy' };
        throw err;
      }
      if (xattr(join(td, 'l3', 'd2'), 'trusted.overlay.redirect') !== undefined) {
        return { ok: false, reason: 'redirect_dir is on: a renamed directory is a redirect xattr in the upper dir' };
      }
      return { ok: true, reason: 'no redirect_dir, no opaque copy-up, no metacopy' };
    } finally {
      await umount2(merged, 0).catch(() => undefined);
    }
  });
}

/** Whether an overlay can stack on an idmapped clone of a directory (containers/storage's supportsIdmappedLowerLayers). */
export async function probeIdmappedLowers(scratchParent: string): Promise<ProbeResult> {
  return inScratch(scratchParent, 'idmapped-check', async (td) => {
    await mkdirs(td, 'lower', 'upper', 'work', 'merged');
    let ns: number;
    try {
      ns = await createUserNamespace({ uidMap: [{ containerId: 0, hostId: 0, size: 1 }], gidMap: [{ containerId: 0, hostId: 0, size: 1 }] });
    } catch (err) {
      return { ok: false, reason: `no user namespace: ${(err as Error).message}` };
    }
    try {
      let tree: number;
      try {
        tree = await idmappedClone(join(td, 'lower'), ns);
      } catch (err) {
        return { ok: false, reason: `no idmapped mounts: ${(err as Error).message}` };
      }
      try {
        await mount('overlay', join(td, 'merged'), 'overlay', 0, `lowerdir=/proc/self/fd/${tree},upperdir=${td}/upper,workdir=${td}/work`);
        await umount2(join(td, 'merged'), 0);
        return { ok: true, reason: 'an overlay mounts on an idmapped lower' };
      } catch (err) {
        return { ok: false, reason: `overlay refuses an idmapped lower: ${(err as Error).message}` };
      } finally {
        closeSync(tree);
      }
    } finally {
      closeSync(ns);
    }
  });
}

/** Whether the kernel's overlay takes `lowerdir+` through fsconfig (6.8+). */
export async function probeLowerdirPlus(dir: string): Promise<boolean> {
  let fd: number;
  try {
    fd = await fsopen('overlay');
  } catch {
    return false;
  }
  try {
    await fsconfigSetString(fd, 'lowerdir+', dir);
    return true;
  } catch (err) {
    debug('probe lowerdir+: %s', (err as Error).message);
    return false;
  } finally {
    closeSync(fd);
  }
}
