/**
 * Mounting through classic mount(2), for kernels without `lowerdir+` (and, in `auto` mode, for
 * stacks whose data fits a page: one syscall instead of one per layer). The kernel reads at most a
 * page of data and cuts the rest SILENTLY - a mount that "works" with fewer lowers and no upper -
 * so the length is always checked (native's mount() refuses long data too), and the data takes
 * the first of three forms that fits:
 *
 *  1. absolute paths of the short links (moby's first form): `lowerdir=<home>/l/A:<home>/l/B,...`;
 *  2. fd paths: every lower, the upper and the work dir opened O_PATH and named
 *     `/proc/self/fd/N` (~18 bytes a layer, whatever the home's path; fits ~220 lowers);
 *  3. a mount(8) helper process whose working directory is its own /proc/self/fd, the layers
 *     handed to it as descriptors 3, 4, 5... and named by their numbers (`lowerdir=3:4:5`; fits
 *     the kernel's 500). This is containers/storage's trick (its mountfrom re-exec), done without
 *     a chdir of our own process: moby's mountFrom unshares CLONE_FS on a locked thread, which
 *     Node cannot do.
 */
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { AT, O, mount, openat2Sync } from '@graphdriver/native';
import { flagWords, MaxDepthError, OperationFailedError } from '@graphdriver/core';
import { isPlainPath, type MountMethod, type OverlayMount } from './mount-request.js';

/** The largest data mount(2) passes on whole: a page less its NUL. */
export const MOUNT_DATA_MAX = 4095;

/** The data string of `m` with each path replaced by `name(path)`. */
export function classicData(m: OverlayMount, name: (path: string) => string, extraWords: readonly string[] = []): string {
  const parts = [`lowerdir=${m.lowers.map(name).join(':')}`];
  if (m.upper !== undefined) parts.push(`upperdir=${name(m.upper.dir)}`, `workdir=${name(m.upper.work)}`);
  parts.push(...m.driverData, ...m.options.data, ...extraWords);
  if (m.label !== undefined) parts.push(`context=${JSON.stringify(m.label)}`);
  return parts.join(',');
}

function allPaths(m: OverlayMount): string[] {
  return m.upper === undefined ? [...m.lowers] : [...m.lowers, m.upper.dir, m.upper.work];
}

/** Opens each path O_PATH (following the short links); closes what it opened when one fails. */
function openPaths(paths: readonly string[]): number[] {
  const fds: number[] = [];
  try {
    for (const p of paths) fds.push(openat2Sync(AT.FDCWD, p, { flags: O.PATH | O.DIRECTORY | O.CLOEXEC }));
  } catch (err) {
    for (const fd of fds) closeSync(fd);
    throw err;
  }
  return fds;
}

/** Which forms mountClassic may use; `helper: false` stops at the fd-path form. */
export interface ClassicOptions {
  helper: boolean;
  /** Skip the absolute form (tests force the fd-path form with it). */
  skipAbsolute?: boolean;
}

/** The form that would be used for `m` (without mounting): for tests and status. */
export function classicFormFor(m: OverlayMount, opts: ClassicOptions): MountMethod | undefined {
  if (!opts.skipAbsolute && allPaths(m).every(isPlainPath) && classicData(m, (p) => p).length <= MOUNT_DATA_MAX) return 'mount(2)';
  // A guess at the descriptors' numbers (four digits: a process with fewer than 10,000 open files);
  // mountClassic checks the real data and moves on to the next form when the guess was short.
  if (classicData(m, () => '/proc/self/fd/1234').length <= MOUNT_DATA_MAX) return 'mount(2) fd paths';
  if (opts.helper && classicData(m, () => '1234', flagWords(m.options.flags)).length <= MOUNT_DATA_MAX) return 'mount(8) helper';
  return undefined;
}

/** Mounts `m` with mount(2) in the first form that fits (see the top of the file). Returns the form used. */
export async function mountClassic(m: OverlayMount, opts: ClassicOptions): Promise<MountMethod> {
  const source = 'overlay';
  if (!opts.skipAbsolute && allPaths(m).every(isPlainPath)) {
    const data = classicData(m, (p) => p);
    if (data.length <= MOUNT_DATA_MAX) {
      await mount(source, m.target, 'overlay', m.options.flags, data);
      return 'mount(2)';
    }
  }
  const paths = allPaths(m);
  const fds = openPaths(paths);
  try {
    const fdOf = new Map(paths.map((p, i) => [p, fds[i]!] as const));
    const data = classicData(m, (p) => `/proc/self/fd/${fdOf.get(p)!}`);
    if (data.length <= MOUNT_DATA_MAX) {
      await mount(source, m.target, 'overlay', m.options.flags, data);
      return 'mount(2) fd paths';
    }
    // In the helper the descriptors are 3, 4, 5... in the order of `paths`.
    const helperData = classicData(m, (p) => String(paths.indexOf(p) + 3), flagWords(m.options.flags));
    if (!opts.helper || helperData.length > MOUNT_DATA_MAX) {
      const name = opts.helper ? (p: string): string => String(paths.indexOf(p) + 3) : (p: string): string => `/proc/self/fd/${fdOf.get(p)!}`;
      throw new MaxDepthError(m.lowers.length, maxLowersFitting(m, name), 'stack of lowers for one mount(2)');
    }
    await mountWithHelper(m.target, helperData, fds);
    return 'mount(8) helper';
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** How many of `m`'s lowers fit in mount(2)'s data when each path is written as `name(path)`. */
function maxLowersFitting(m: OverlayMount, name: (path: string) => string): number {
  let n = m.lowers.length;
  while (n > 0 && classicData({ ...m, lowers: m.lowers.slice(0, n) }, name).length > MOUNT_DATA_MAX) n--;
  return n;
}

/** mount(8) in a child whose cwd is its own /proc/self/fd, with `fds` as its descriptors 3, 4, 5... */
function mountWithHelper(target: string, data: string, fds: readonly number[]): Promise<void> {
  return new Promise((resolve, reject) => {
    // -n: no mtab; -i: no /sbin/mount.overlay helper; the data goes to mount(2) as it is
    const child = spawn('mount', ['-n', '-i', '-t', 'overlay', '-o', data, 'overlay', target], {
      cwd: '/proc/self/fd',
      stdio: ['ignore', 'ignore', 'pipe', ...fds],
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => reject(new OperationFailedError(`mounting ${target} through mount(8)`, undefined, err)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new OperationFailedError(`mounting ${target} through mount(8)`, undefined, new Error(`mount exited with ${code}: ${stderr.trim()}`)));
    });
  });
}
