/**
 * What a container layer on a volume costs next to a plain overlay one, measured in the same run on
 * the same filesystem: making a container (`<X>-init` + `<X>`) with a new loopback volume (sparse
 * file, mkfs, loop attach, mount, move in), removing it (upper saved, unmount, detach), making it
 * again (volume mounted, upper restored), and a get/put pair of the mounted layer; each beside the
 * wrapped overlay driver doing the same without volumes. Medians of `BENCH_N` runs (default 20).
 * Writes bench-results/layer0.json. Not part of `pnpm test`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { init as initOverlay } from '@graphdriver/overlay';
import type { Driver } from '@graphdriver/core';
import { init, type Layer0Driver } from '../src/index.js';

const N = Number(process.env.BENCH_N ?? 20);

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function time(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
}

interface Figures {
  create: number;
  remove: number;
  recreate: number;
  getPut: number;
}

async function measure(d: Driver): Promise<Figures> {
  await d.create('img');
  const create: number[] = [];
  const remove: number[] = [];
  const recreate: number[] = [];
  const getPut: number[] = [];
  for (let i = 0; i < N; i++) {
    const id = `c${i}`;
    create.push(await time(async () => {
      await d.createReadWrite(`${id}-init`, 'img');
      await d.createReadWrite(id, `${id}-init`);
    }));
    const p = await d.get(id);
    await writeFile(join(p, 'f'), 'x');
    getPut.push(await time(async () => {
      await d.get(id);
      await d.put(id);
    }));
    await d.put(id);
    remove.push(await time(async () => {
      await d.remove(id);
      await d.remove(`${id}-init`);
    }));
    recreate.push(await time(async () => {
      await d.createReadWrite(`${id}-init`, 'img');
      await d.createReadWrite(id, `${id}-init`);
    }));
  }
  return { create: median(create), remove: median(remove), recreate: median(recreate), getPut: median(getPut) };
}

const root = await mkdtemp('/tmp/layer0-bench-');
try {
  const overlay = await initOverlay({ home: join(root, 'overlay'), root, options: [] });
  let plain: Figures;
  try {
    plain = await measure(overlay);
  } finally {
    await overlay.cleanup();
  }
  const l0 = (await init({ home: join(root, 'layer0'), root, options: ['layer0.volume_size=1G'] })) as Layer0Driver;
  let vol: Figures;
  try {
    vol = await measure(l0);
  } finally {
    await l0.cleanup();
  }
  const rows: Array<[string, number, number]> = [
    ['container create (init + layer)', plain.create, vol.create],
    ['container remove (layer + init)', plain.remove, vol.remove],
    ['container re-create (upper restored)', plain.recreate, vol.recreate],
    ['get + put of a mounted layer', plain.getPut, vol.getPut],
  ];
  console.log(`median of ${N} runs, ms      overlay   layer0 (loopback volume)`);
  for (const [what, a, b] of rows) console.log(`${what.padEnd(40)} ${a.toFixed(2).padStart(8)} ${b.toFixed(2).padStart(10)}`);
  await mkdir('bench-results', { recursive: true });
  await writeFile('bench-results/layer0.json', `${JSON.stringify({ n: N, overlay: plain, layer0: vol }, null, 2)}\n`);
} finally {
  await rm(root, { recursive: true, force: true });
}
