/**
 * get/put latency of the overlay driver at depth 1, 100 and 500 (lowers under the mounted layer),
 * for each `overlay.mount_api`, beside the bare kernel cost measured in the same run on the same
 * layers: the new mount API's syscalls alone (fsopen, one fsconfig per lower, create, fsmount,
 * move_mount), mount(2) alone where its data fits a page, and umount2. Rounds are interleaved
 * (driver, bare, driver, ...) so that noise from the other users of the machine falls on both.
 */
import { closeSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AT,
  FSMOUNT,
  MOVE_MOUNT,
  O,
  fsconfigCreate,
  fsconfigSetString,
  fsmount,
  fsopen,
  mount,
  moveMount,
  openat2Sync,
  umount2,
} from '@graphdriver/native';
import { init, type OverlayDriver } from '../src/index.js';

export interface LatencyRow {
  depth: number;
  what: string;
  /** Nanoseconds. */
  min: number;
  median: number;
}

export interface MountLatencyReport {
  rounds: number;
  rows: LatencyRow[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const now = (): bigint => process.hrtime.bigint();
const fmt = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(0)} us`);

async function bareNewApi(lowers: readonly string[], upper: string, work: string, target: string): Promise<void> {
  const fs = await fsopen('overlay');
  try {
    await fsconfigSetString(fs, 'source', 'overlay');
    for (const l of lowers) await fsconfigSetString(fs, 'lowerdir+', l);
    await fsconfigSetString(fs, 'upperdir', upper);
    await fsconfigSetString(fs, 'workdir', work);
    await fsconfigCreate(fs);
    const m = await fsmount(fs, FSMOUNT.CLOEXEC, 0);
    try {
      await moveMount(m, '', AT.FDCWD, target, MOVE_MOUNT.F_EMPTY_PATH);
    } finally {
      closeSync(m);
    }
  } finally {
    closeSync(fs);
  }
}

/** mount(2) with fd paths (the shortest data that needs no helper process); undefined when it does not fit. */
async function bareMount2(lowers: readonly string[], upper: string, work: string, target: string): Promise<boolean> {
  const fds = [...lowers, upper, work].map((p) => openat2Sync(AT.FDCWD, p, { flags: O.PATH | O.DIRECTORY | O.CLOEXEC }));
  try {
    const name = (i: number): string => `/proc/self/fd/${fds[i]!}`;
    const data = `lowerdir=${lowers.map((_, i) => name(i)).join(':')},upperdir=${name(lowers.length)},workdir=${name(lowers.length + 1)}`;
    if (data.length > 4095) return false;
    await mount('overlay', target, 'overlay', 0, data);
    return true;
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

export async function mountLatency(dir: string, opts: { rounds: number; depths?: readonly number[]; print?: (s: string) => void }): Promise<MountLatencyReport> {
  const print = opts.print ?? ((s: string) => console.log(s));
  const depths = opts.depths ?? [1, 100, 500];
  const root = join(dir, 'mount-latency');
  await mkdir(root, { recursive: true });
  const rows: LatencyRow[] = [];
  const drivers: Record<string, OverlayDriver> = {};
  try {
    const maker = (await init({ home: join(root, 'overlay'), root, options: [] })) as OverlayDriver;
    // one stack, deep enough for the deepest depth; the layer at index d has d lowers
    const ids = ['layer-0'];
    await maker.create('layer-0');
    for (let i = 1; i <= Math.max(...depths); i++) {
      ids.push(`layer-${i}`);
      await maker.create(`layer-${i}`, `layer-${i - 1}`);
    }
    await maker.cleanup();
    for (const api of ['auto', 'new', 'classic']) {
      drivers[api] = (await init({ home: join(root, 'overlay'), root, options: [`overlay.mount_api=${api}`] })) as OverlayDriver;
    }
    print(`\nget/put latency (${opts.rounds} rounds, min / median), beside the bare kernel calls on the same layers`);
    for (const depth of depths) {
      const id = ids[depth]!;
      const md = await drivers.auto!.metadata(id);
      const lowers = md.LowerDir!.split(':');
      const upper = md.UpperDir!;
      const work = md.WorkDir!;
      const target = join(root, `bare-${depth}`);
      await mkdir(target, { recursive: true });
      const samples = new Map<string, number[]>();
      const add = (what: string, ns: bigint): void => {
        const s = samples.get(what) ?? [];
        s.push(Number(ns));
        samples.set(what, s);
      };
      for (let r = 0; r < opts.rounds; r++) {
        for (const [api, d] of Object.entries(drivers)) {
          let t = now();
          await d.get(id);
          add(`get (mount_api=${api})`, now() - t);
          t = now();
          await d.put(id);
          add(`put (mount_api=${api})`, now() - t);
        }
        let t = now();
        await bareNewApi(lowers, upper, work, target);
        add('bare new API (fsopen..move_mount)', now() - t);
        t = now();
        await umount2(target, 0);
        add('bare umount2', now() - t);
        t = now();
        if (await bareMount2(lowers, upper, work, target)) {
          add('bare mount(2), fd paths', now() - t);
          await umount2(target, 0);
        }
      }
      for (const [what, s] of samples) {
        const row = { depth, what, min: Math.min(...s), median: median(s) };
        rows.push(row);
        print(`  depth ${String(depth).padStart(3)}  ${what.padEnd(36)} ${fmt(row.min).padStart(9)} / ${fmt(row.median)}`);
      }
    }
  } finally {
    for (const d of Object.values(drivers)) await d.cleanup().catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  }
  return { rounds: opts.rounds, rows };
}
