/**
 * What the aufs driver adds over fuse-overlayfs itself, measured on a journaled ext4 loop image:
 *
 *  - get/put of a writable layer at depth 1, 20 and 128 (branches under it), beside the bare cost
 *    measured in the same run on the same branches: spawning fuse-overlayfs with the same options
 *    and umount2. Rounds are interleaved (driver, bare, driver, ...) so that the noise of other users
 *    of the machine falls on both. put() includes normalizing the branch (nothing to do here).
 *  - normalizing a 10,000-file branch (100 directories x 100 files): clean (the walk alone, what
 *    every put of a writable union pays in proportion to its branch), every file with
 *    fuse-overlayfs's origin xattr (a container that copied up everything), and 10,000 0/0 devices
 *    turned into `.wh.` files - what converting overlay-style whiteouts would cost, which running
 *    fuse-overlayfs with FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT=1 avoids.
 *  - createWithQuota (sparse file, mkfs.ext4, loop attach, mount) and its remove.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buildTar } from '@graphdriver/graphtest';
import { lsetxattrSync, mknodSync, S, umount2 } from '@graphdriver/native';
import { DISABLE_OVL_WHITEOUT, FUSE_WORKDIR, fuseOptions, init, normalizeBranch, type AufsDriver } from '../src/index.js';

export interface CostRow {
  what: string;
  /** Nanoseconds. */
  min: number;
  median: number;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const now = (): bigint => process.hrtime.bigint();
export const fmtNs = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(0)} us`);

function spawnFuse(options: string, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('setpriv', ['--bounding-set=-sys_resource', '--', 'fuse-overlayfs', '-o', options, target], {
      env: { ...process.env, [DISABLE_OVL_WHITEOUT]: '1' },
      stdio: 'ignore',
    });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`fuse-overlayfs exited ${code}`))));
  });
}

async function stack(d: AufsDriver, depth: number, prefix: string): Promise<string> {
  let parent: string | undefined;
  for (let i = 0; i < depth; i++) {
    const id = `${prefix}-${i}`;
    await d.create(id, parent);
    await d.applyDiff(id, parent, Readable.from([buildTar([{ name: `f${i}`, type: 'file', data: `${i}` }])]));
    parent = id;
  }
  const top = `${prefix}-top`;
  await d.createReadWrite(top, parent);
  return top;
}

export async function mountCosts(dir: string, opts: { rounds: number; print: (s: string) => void }): Promise<CostRow[]> {
  const rows: CostRow[] = [];
  const d = (await init({ home: join(dir, 'aufs'), root: dir, options: [] })) as AufsDriver;
  try {
    for (const depth of [1, 20, 128]) {
      const top = await stack(d, depth, `s${depth}`);
      const md = await d.metadata(top);
      const bareTarget = join(dir, `bare-${depth}`);
      await mkdir(bareTarget, { recursive: true });
      const options = fuseOptions({ target: bareTarget, rw: md.DiffDir!, ro: md.LowerDirs!.split(':') }, '');
      const driver: number[] = [];
      const bare: number[] = [];
      for (let r = 0; r < opts.rounds; r++) {
        let t = now();
        await d.get(top);
        await d.put(top);
        driver.push(Number(now() - t));
        t = now();
        mkdirSync(join(md.DiffDir!, FUSE_WORKDIR), { recursive: true });
        await spawnFuse(options, bareTarget);
        await umount2(bareTarget);
        bare.push(Number(now() - t));
      }
      rmSync(join(md.DiffDir!, FUSE_WORKDIR), { recursive: true, force: true });
      rows.push({ what: `get+put, depth ${depth}`, min: Math.min(...driver), median: median(driver) });
      rows.push({ what: `bare fuse-overlayfs + umount2, depth ${depth}`, min: Math.min(...bare), median: median(bare) });
      opts.print(`  depth ${String(depth).padStart(3)}: get+put ${fmtNs(median(driver))} (min ${fmtNs(Math.min(...driver))}), bare ${fmtNs(median(bare))} (min ${fmtNs(Math.min(...bare))})`);
    }

    const quota: number[] = [];
    const removal: number[] = [];
    for (let r = 0; r < Math.min(opts.rounds, 10); r++) {
      let t = now();
      await d.createWithQuota(`q${r}`, undefined, 1024 * 1024 * 1024);
      quota.push(Number(now() - t));
      t = now();
      await d.remove(`q${r}`);
      removal.push(Number(now() - t));
    }
    rows.push({ what: 'createWithQuota 1G', min: Math.min(...quota), median: median(quota) });
    rows.push({ what: 'remove of a 1G limited layer', min: Math.min(...removal), median: median(removal) });
    opts.print(`  createWithQuota(1G): ${fmtNs(median(quota))} (min ${fmtNs(Math.min(...quota))}); its remove ${fmtNs(median(removal))}`);
  } finally {
    await d.cleanup();
  }
  return rows;
}

function buildBranch(base: string, kind: 'clean' | 'xattr' | 'devices'): void {
  rmSync(base, { recursive: true, force: true });
  for (let dd = 0; dd < 100; dd++) {
    mkdirSync(`${base}/d${dd}`, { recursive: true });
    for (let f = 0; f < 100; f++) {
      const p = `${base}/d${dd}/f${f}`;
      if (kind === 'devices') {
        mknodSync(p, S.IFCHR, 0, 0);
        continue;
      }
      writeFileSync(p, 'x');
      if (kind === 'xattr') lsetxattrSync(p, 'user.fuseoverlayfs.origin', Buffer.from(`d${dd}/f${f}\0`));
    }
  }
}

export async function normalizeCosts(dir: string, opts: { rounds: number; print: (s: string) => void }): Promise<CostRow[]> {
  const rows: CostRow[] = [];
  const base = join(dir, 'branch');
  for (const kind of ['clean', 'xattr', 'devices'] as const) {
    const t: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      buildBranch(base, kind);
      const s = now();
      await normalizeBranch(base);
      t.push(Number(now() - s));
    }
    rows.push({ what: `normalize 10,000 files (${kind})`, min: Math.min(...t), median: median(t) });
    opts.print(`  normalize 10,000 files (${kind}): ${fmtNs(median(t))} (min ${fmtNs(Math.min(...t))})`);
  }
  rmSync(base, { recursive: true, force: true });
  return rows;
}
