/**
 * Mounting through the new mount API (Linux 5.2+, `lowerdir+` 6.8+): fsopen("overlay"), one
 * fsconfig per option and per lower layer (so the 4095-byte limit of mount(2)'s data does not
 * apply and the kernel's own limit of 500 lowers is reachable), FSCONFIG_CMD_CREATE, fsmount with
 * the per-mount attributes, move_mount onto the target. fsconfig takes strings of at most 255
 * bytes: a longer path is handed over as `/proc/self/fd/N` of an O_PATH descriptor.
 */
import { closeSync } from 'node:fs';
import { mountAttrsOf } from '@graphdriver/core';
import {
  AT,
  FSMOUNT,
  MOVE_MOUNT,
  O,
  fsconfigCreate,
  fsconfigSetFlag,
  fsconfigSetString,
  fsmount,
  fsopen,
  moveMount,
  openat2Sync,
} from '@graphdriver/native';
import type { OverlayMount } from './mount-request.js';

/** fsconfig copies at most 256 bytes including the NUL (strndup_user in fs/fsopen.c). */
const FSCONFIG_MAX_STRING = 255;

export async function mountWithNewApi(m: OverlayMount): Promise<void> {
  const fds: number[] = [];
  const pathArg = (p: string): string => {
    if (Buffer.byteLength(p) <= FSCONFIG_MAX_STRING) return p;
    const fd = openat2Sync(AT.FDCWD, p, { flags: O.PATH | O.DIRECTORY | O.CLOEXEC });
    fds.push(fd);
    return `/proc/self/fd/${fd}`;
  };
  const fsfd = await fsopen('overlay');
  try {
    const { attrs, sbFlags } = mountAttrsOf(m.options.flags);
    // as mount(2) callers name it, so that mountinfo reads the same whichever API made the mount
    await fsconfigSetString(fsfd, 'source', 'overlay');
    for (const opt of [...m.driverData, ...m.options.data]) {
      const eq = opt.indexOf('=');
      if (eq < 0) await fsconfigSetFlag(fsfd, opt);
      else await fsconfigSetString(fsfd, opt.slice(0, eq), opt.slice(eq + 1));
    }
    for (const flag of sbFlags) await fsconfigSetFlag(fsfd, flag);
    for (const lower of m.lowers) await fsconfigSetString(fsfd, 'lowerdir+', pathArg(lower));
    if (m.upper !== undefined) {
      await fsconfigSetString(fsfd, 'upperdir', pathArg(m.upper.dir));
      await fsconfigSetString(fsfd, 'workdir', pathArg(m.upper.work));
    }
    if (m.label !== undefined) await fsconfigSetString(fsfd, 'context', m.label);
    await fsconfigCreate(fsfd);
    const mfd = await fsmount(fsfd, FSMOUNT.CLOEXEC, attrs);
    try {
      await moveMount(mfd, '', AT.FDCWD, m.target, MOVE_MOUNT.F_EMPTY_PATH);
    } finally {
      closeSync(mfd);
    }
  } finally {
    closeSync(fsfd);
    for (const fd of fds) closeSync(fd);
  }
}
