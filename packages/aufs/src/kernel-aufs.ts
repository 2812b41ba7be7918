/**
 * The kernel's aufs as a mount backend, as moby's aufs driver drives it (aufs.go aufsMount, mount.go
 * Unmount, useDirperm):
 *
 *  - mount data `br:<rw>=rw:<ro1>=ro+wh:...,dio,xino=/dev/shm/aufs.xino[,<mountopt>][,dirperm1]`,
 *    with the SELinux `context="<label>"` after it when a label is given. The kernel cuts mount data
 *    at a page without a word, so the branch list is cut where moby cuts it (a page minus the label,
 *    minus 54 bytes, minus `,dirperm1` when used) and the remaining branches are added by remounts
 *    with `append:<ro>=ro+wh,` entries, as many per remount as fit;
 *  - dirperm1 where the module takes it (probed once by mounting a scratch branch with it);
 *  - unmount: `auplink <target> flush` first (where auplink is installed; it folds pseudo-links back),
 *    then umount2 retried on EBUSY (5 times, 100 ms apart, as moby).
 *
 * This host's kernel has no aufs (no mainline kernel does): the option strings are unit-tested
 * against the ones moby builds; mounting runs wherever /proc/filesystems lists aufs.
 */
import { execFile } from 'node:child_process';
import { closeSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { errorCode, unmount } from '@graphdriver/core';
import { MS, fsopen, mount } from '@graphdriver/native';
import type { BranchMount, MountBackend } from './backend.js';

const debug = debuglog('graphdriver:aufs');

/** moby's xino file (one per host, shared by every aufs mount). */
export const AUFS_XINO = '/dev/shm/aufs.xino';
/** What moby keeps free of branches in the first mount's data: room for the options and the label. */
const DATA_RESERVE = 54;
const DIRPERM1 = ',dirperm1';
const PAGE_SIZE = 4096;

export interface AufsDataOptions {
  /** Add `dirperm1` (the module supports it). */
  dirperm1: boolean;
  /** SELinux label of the mount (`context="<label>"`), empty or absent for none. */
  mountLabel?: string;
  /** Extra options after xino (containers/storage's aufs.mountopt), comma-separated. */
  mountopt?: string;
  /** The page size the kernel cuts mount data at. Default 4096. */
  pageSize?: number;
}

export interface AufsMountData {
  /** The data of the first mount(2). */
  mount: string;
  /** The data of each MS_REMOUNT that adds the branches that did not fit, in order. */
  appends: string[];
}

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/** go-selinux's label.FormatMountLabel. */
export function formatMountLabel(src: string, mountLabel: string | undefined): string {
  if (mountLabel === undefined || mountLabel === '') return src;
  return src === '' ? `context=${JSON.stringify(mountLabel)}` : `${src},context=${JSON.stringify(mountLabel)}`;
}

/**
 * The mount data moby's aufsMount builds for a union of `rw` over `ro` (topmost first): byte for
 * byte the same strings, so that a kernel that takes moby's mounts takes ours.
 */
export function aufsMountData(rw: string, ro: readonly string[], opts: AufsDataOptions): AufsMountData {
  return buildData(`br:${rw}=rw`, ro, opts);
}

/** The data of a read-only union: every branch `=ro+wh` (moby mounts only read-write unions). */
export function aufsReadOnlyData(ro: readonly string[], opts: AufsDataOptions): AufsMountData {
  if (ro.length === 0) throw new RangeError('aufs: a read-only union needs at least one branch');
  return buildData(`br:${ro[0]!}=ro+wh`, ro.slice(1), opts);
}

function buildData(head: string, ro: readonly string[], opts: AufsDataOptions): AufsMountData {
  const label = opts.mountLabel ?? '';
  const room = (opts.pageSize ?? PAGE_SIZE) - bytes(label) - DATA_RESERVE - (opts.dirperm1 ? DIRPERM1.length : 0);
  if (bytes(head) > room) throw new RangeError(`aufs: the top branch (${head}) does not fit in one page of mount data`);
  let branches = head;
  let used = bytes(head);
  let index = 0;
  for (; index < ro.length; index++) {
    const layer = `:${ro[index]}=ro+wh`;
    if (used + bytes(layer) > room) break;
    branches += layer;
    used += bytes(layer);
  }
  let options = `dio,xino=${AUFS_XINO}`;
  if (opts.mountopt !== undefined && opts.mountopt !== '') options += `,${opts.mountopt}`;
  if (opts.dirperm1) options += DIRPERM1;
  const first = formatMountLabel(`${branches},${options}`, label);

  const appends: string[] = [];
  while (index < ro.length) {
    let data = '';
    let size = 0;
    for (; index < ro.length; index++) {
      const layer = `append:${ro[index]}=ro+wh,`;
      if (size + bytes(layer) > room) break;
      data += layer;
      size += bytes(layer);
    }
    // moby would loop for ever on a branch longer than the room; say what is wrong instead
    if (data === '') throw new RangeError(`aufs: the branch path ${ro[index]} does not fit in one page of mount data`);
    appends.push(formatMountLabel(data, label));
  }
  return { mount: first, appends };
}

/** True when /proc/filesystems lists aufs. */
export function listsAufs(procFilesystems: string): boolean {
  return procFilesystems.split('\n').some((line) => line.split('\t').pop()?.trim() === 'aufs');
}

/**
 * Whether the kernel has aufs: listed in /proc/filesystems, or loadable (fsopen asks the kernel to
 * load `fs-aufs`, which is what moby's `modprobe aufs` is for). Answers the reason when it has not.
 */
export async function kernelAufsUnavailable(): Promise<string | undefined> {
  try {
    if (listsAufs(await readFile('/proc/filesystems', 'utf8'))) return undefined;
  } catch (err) {
    return `/proc/filesystems cannot be read (${errorCode(err) ?? String(err)})`;
  }
  try {
    closeSync(await fsopen('aufs'));
    return undefined;
  } catch (err) {
    return `AUFS was not found in /proc/filesystems and could not be loaded (${errorCode(err) ?? String(err)})`;
  }
}

/** moby's useDirperm: mount a scratch branch with dirperm1; the module supports it when that works. */
export async function probeDirperm1(): Promise<boolean> {
  const base = await mkdtemp(join(tmpdir(), 'graphdriver-aufs-base-'));
  const union = await mkdtemp(join(tmpdir(), 'graphdriver-aufs-union-'));
  try {
    await mount('none', union, 'aufs', 0, `br:${base},dirperm1,xino=${AUFS_XINO}`);
  } catch (err) {
    debug('dirperm1 is not supported: %s', (err as Error).message);
    await rm(union, { recursive: true, force: true });
    await rm(base, { recursive: true, force: true });
    return false;
  }
  try {
    await unmountAufs(union);
  } catch (err) {
    debug('dirperm1 probe: unmounting %s failed: %s', union, (err as Error).message);
  }
  await rm(union, { recursive: true, force: true }).catch(() => undefined);
  await rm(base, { recursive: true, force: true }).catch(() => undefined);
  return true;
}

/** `auplink <target> flush`, best effort (moby logs and goes on); retried while it says EINVAL. */
async function auplinkFlush(target: string): Promise<void> {
  for (let i = 0; i <= 5; i++) {
    const code = await new Promise<number | string>((resolve) => {
      execFile('auplink', [target, 'flush'], (err) => {
        if (err === null) resolve(0);
        else resolve(typeof err.code === 'number' ? err.code : String(err.code));
      });
    });
    if (code === 0) return;
    // EINVAL (22): auplink did not find the target in a mount table that was changing meanwhile
    if (code !== 22) {
      debug('auplink %s flush: %s', target, code);
      return;
    }
  }
}

/** moby's Unmount: auplink flush, then umount2 retried on EBUSY. Resolves false when nothing was mounted. */
export async function unmountAufs(target: string): Promise<boolean> {
  await auplinkFlush(target);
  return unmount(target, { retries: 5, retryDelayMs: 100 });
}

export class KernelAufsBackend implements MountBackend {
  readonly name = 'aufs';

  constructor(
    readonly dirperm1: boolean,
    readonly mountopt: string,
  ) {}

  describe(): string {
    return `aufs (kernel${this.dirperm1 ? ', dirperm1' : ''})`;
  }

  ownsFsType(fsType: string): boolean {
    return fsType === 'aufs';
  }

  async mount(m: BranchMount): Promise<void> {
    const opts: AufsDataOptions = { dirperm1: this.dirperm1, mountopt: [this.mountopt, ...(m.options ?? [])].filter((s) => s !== '').join(',') };
    if (m.mountLabel !== undefined) opts.mountLabel = m.mountLabel;
    const data = m.rw === undefined ? aufsReadOnlyData(m.ro, opts) : aufsMountData(m.rw, m.ro, opts);
    const flags = m.rw === undefined ? MS.RDONLY : 0;
    await mount('none', m.target, 'aufs', flags, data.mount);
    try {
      for (const more of data.appends) await mount('none', m.target, 'aufs', MS.REMOUNT | flags, more);
    } catch (err) {
      await unmountAufs(m.target).catch(() => undefined);
      throw err;
    }
  }

  unmount(target: string): Promise<boolean> {
    return unmountAufs(target);
  }
}
