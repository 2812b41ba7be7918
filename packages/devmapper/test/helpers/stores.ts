/**
 * What devmapper's tests share: the options of the conformance runs (a 40M ext4 base device, so that
 * SetQuota's `size: 50M` is a larger device whose filesystem grows, in an 8G sparse pool), stores
 * made on a fresh directory for either backend, and the checks that nothing is left behind (no
 * device-mapper device, loop device or mount of the store).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listLoops, mounts } from '@graphdriver/core';
import { dm, dmOpenControl } from '@graphdriver/native';
import { closeSync } from 'node:fs';
import { DevmapperDriver, type DevmapperStartExtras } from '../../src/index.js';

export type Backend = 'reflink' | 'thin';

export const CONFORMANCE_OPTIONS = ['dm.fs=ext4', 'dm.basesize=40M', 'dm.loopdatasize=8G', 'dm.loopmetadatasize=64M'];

/** Small stores for the driver's own tests: a 32M ext4 base in a 1G pool. */
export const SMALL_OPTIONS = ['dm.fs=ext4', 'dm.basesize=32M', 'dm.loopdatasize=1G', 'dm.loopmetadatasize=16M'];

export function start(root: string, backend: Backend, options: string[] = SMALL_OPTIONS, extras: DevmapperStartExtras = {}): Promise<DevmapperDriver> {
  return DevmapperDriver.start({ home: join(root, 'devmapper'), root, options: [...options, `dm.backend=${backend}`] }, extras);
}

/** A fresh directory under the temp dir (the guest's /tmp is its own ext4 disk), removed after `fn`. */
export async function withRoot<T>(fn: (root: string) => Promise<T>): Promise<T> {
  const root = await mkdtemp(join(tmpdir(), 'devmapper-test-'));
  try {
    return await fn(root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** Mounts, loop devices and device-mapper devices that belong to a store under `root` (or its reflink pool). */
export async function leftovers(root: string, prefix?: string): Promise<string[]> {
  const out: string[] = [];
  for (const m of await mounts()) {
    if (m.mountPoint.startsWith(`${root}/`) || m.mountPoint === root) out.push(`mount ${m.mountPoint}`);
    if (prefix !== undefined && m.mountPoint.includes(prefix)) out.push(`mount ${m.mountPoint}`);
  }
  for (const l of await listLoopsSafely()) {
    if (l.backingFile.startsWith(`${root}/`) || (prefix !== undefined && l.backingFile.includes(prefix))) out.push(`loop ${l.path} -> ${l.backingFile}`);
  }
  if (prefix !== undefined) {
    let fd: number | undefined;
    try {
      fd = await dmOpenControl();
    } catch {
      fd = undefined;
    }
    if (fd !== undefined) {
      try {
        for (const d of await dm.listDevices(fd)) if (d.name.startsWith(prefix)) out.push(`dm ${d.name}`);
      } finally {
        closeSync(fd);
      }
    }
  }
  return out;
}

async function listLoopsSafely(): Promise<Awaited<ReturnType<typeof listLoops>>> {
  for (let i = 0; ; i++) {
    try {
      return await listLoops();
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENODEV' || i > 20) throw err;
    }
  }
}

export async function fileText(path: string): Promise<string> {
  return readFile(path, 'utf8');
}
