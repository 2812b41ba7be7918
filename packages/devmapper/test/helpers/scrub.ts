/**
 * Leaves the machine clean after a test that failed half-way: unmounts what is under a store's root
 * and its reflink pool's mount, detaches loop devices on its files, removes its device-mapper devices
 * (thin devices before the pool). A passing test never needs it: its own cleanup() must leave
 * nothing, which `leftovers()` checks.
 */
import { closeSync } from 'node:fs';
import { detachLoop, listLoops, mounts, unmount } from '@graphdriver/core';
import { dm, dmOpenControl, MNT } from '@graphdriver/native';

export async function scrub(root: string, prefix: string | undefined): Promise<void> {
  const mine = (p: string): boolean => p.startsWith(`${root}/`) || (prefix !== undefined && p.includes(prefix));
  const points = (await mounts()).map((m) => m.mountPoint).filter(mine).sort((a, b) => b.length - a.length);
  for (const p of points) await unmount(p, { flags: MNT.DETACH, retries: 0 }).catch(() => undefined);
  if (prefix !== undefined) {
    let fd: number | undefined;
    try {
      fd = await dmOpenControl();
    } catch {
      fd = undefined;
    }
    if (fd !== undefined) {
      try {
        const names = (await dm.listDevices(fd)).map((d) => d.name).filter((n) => n.startsWith(prefix));
        for (const n of [...names.filter((n) => !n.endsWith('-pool')), ...names.filter((n) => n.endsWith('-pool'))]) {
          await dm.remove(fd, n, { deferred: true }).catch(() => undefined);
        }
      } finally {
        closeSync(fd);
      }
    }
  }
  for (let i = 0; i < 3; i++) {
    try {
      for (const l of await listLoops()) if (mine(l.backingFile)) await detachLoop(l.path).catch(() => undefined);
      break;
    } catch {
      // a device torn down while listed: list again
    }
  }
}
