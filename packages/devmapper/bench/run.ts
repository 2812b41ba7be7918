/**
 * `pnpm bench` for devmapper: graphtest's benchmarks (moby's names and parameters) and create/remove
 * of 200 layers, on either pool backend, each in stores on a journaled ext4 loop image made for the
 * run. Results are printed and written as JSON to bench-results/devmapper-<backend>.json.
 *
 *   tsx bench/run.ts [--backend reflink|thin] [--skip-graphtest] [benchmark names...]
 *
 * The reflink pool runs here; dm-thin runs in the qemu lane (this kernel has no device-mapper),
 * which is emulated: its figures compare dm-thin with itself, not with the host's. The 200-layer
 * figures come with a same-run reference: the pool backend's own create_snap/delete without the
 * DeviceSet (no metadata files, no transactions), so the DeviceSet's share is what is left.
 * GRAPHTEST_BENCHTIME (ms) and GRAPHTEST_COUNT override Go's 1 s and 3 samples.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchmarks, formatNs, withJournaledExt4, type BenchReport } from '@graphdriver/graphtest';
import { inVmLane, runInVmLane } from '@graphdriver/testkit';
import { DevmapperDriver, init } from '../src/index.js';

type Backend = 'reflink' | 'thin';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const backendAt = args.indexOf('--backend');
const backend: Backend = backendAt >= 0 && args[backendAt + 1] === 'thin' ? 'thin' : 'reflink';
const skipGraphtest = args.includes('--skip-graphtest');
const only = args.filter((a, i) => !a.startsWith('--') && (backendAt < 0 || i !== backendAt + 1));

/** Stores with room for 10,000-file layers: a 1G ext4 base device (64Ki inodes) in a 16G sparse pool. */
const OPTIONS = ['dm.fs=ext4', 'dm.basesize=1G', 'dm.loopdatasize=16G', 'dm.loopmetadatasize=256M', `dm.backend=${backend}`];
const LAYERS = 200;

interface LayersResult {
  layers: number;
  createNsPerOp: number;
  removeNsPerOp: number;
  backendCreateNsPerOp: number;
  backendDeleteNsPerOp: number;
}

const now = (): bigint => process.hrtime.bigint();

/** 200 layers, each a snapshot of the one before; then removed from the top. Beside it the same through the bare pool backend. */
async function layers200(): Promise<LayersResult> {
  return withJournaledExt4(async (fs) => {
    const root = join(fs.path, 'layers200');
    await mkdir(root);
    const d = await DevmapperDriver.start({ home: join(root, 'devmapper'), root, options: OPTIONS });
    try {
      const ids = Array.from({ length: LAYERS }, (_, i) => `layer-${i}`);
      let t = now();
      for (let i = 0; i < LAYERS; i++) await d.create(ids[i]!, i === 0 ? undefined : ids[i - 1]);
      const create = Number(now() - t) / LAYERS;
      t = now();
      for (const id of [...ids].reverse()) await d.remove(id);
      const remove = Number(now() - t) / LAYERS;

      // the reference: the backend's own snapshot and delete of the same chain, ids far above the DeviceSet's
      const pool = d.deviceSet.backend;
      const base = await d.deviceSet.lookupDevice('');
      const refs = Array.from({ length: LAYERS }, (_, i) => ({ name: `bench-${i}`, id: 0x800000 + i }));
      t = now();
      for (let i = 0; i < LAYERS; i++) await pool.createSnap(refs[i]!.id, i === 0 ? { name: `${d.deviceSet.devicePrefix}-base`, id: base!.deviceId } : refs[i - 1]!);
      const backendCreate = Number(now() - t) / LAYERS;
      t = now();
      for (const r of [...refs].reverse()) await pool.deleteThin(r.id);
      const backendDelete = Number(now() - t) / LAYERS;
      return { layers: LAYERS, createNsPerOp: create, removeNsPerOp: remove, backendCreateNsPerOp: backendCreate, backendDeleteNsPerOp: backendDelete };
    } finally {
      await d.cleanup();
    }
  }, { gib: 32 });
}

async function runHere(): Promise<void> {
  let graphtest: BenchReport | undefined;
  const graphtestOnly = only.filter((n) => n !== 'Layers200');
  if (!skipGraphtest && (only.length === 0 || graphtestOnly.length > 0)) {
    graphtest = await benchmarks((root) => init({ home: join(root, 'devmapper'), root, options: OPTIONS }), {
      label: `devmapper-${backend}`,
      ...(graphtestOnly.length > 0 ? { only: graphtestOnly } : {}),
      ...(process.env.GRAPHTEST_BENCHTIME === undefined ? {} : { benchtimeMs: Number(process.env.GRAPHTEST_BENCHTIME) }),
      ...(process.env.GRAPHTEST_COUNT === undefined ? {} : { count: Number(process.env.GRAPHTEST_COUNT) }),
    });
  }
  const layers = only.length === 0 || only.includes('Layers200') ? await layers200() : undefined;
  if (layers !== undefined) {
    console.log(`\ncreate/remove of ${LAYERS} layers (each a snapshot of the one before) on ${backend}:`);
    console.log(`  create  ${formatNs(layers.createNsPerOp).padStart(10)}/op   (pool backend alone: ${formatNs(layers.backendCreateNsPerOp)}/op)`);
    console.log(`  remove  ${formatNs(layers.removeNsPerOp).padStart(10)}/op   (pool backend alone: ${formatNs(layers.backendDeleteNsPerOp)}/op)`);
  }
  const file = join(pkgDir, 'bench-results', `devmapper-${backend}.json`);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify({ backend, emulated: inVmLane, graphtest, layers }, null, 2)}\n`);
  console.log(`\nJSON: bench-results/devmapper-${backend}.json`);
}

if (backend === 'thin' && !inVmLane) {
  console.log('dm-thin runs in the qemu lane (this kernel has no device-mapper); its figures are emulated');
  // the lane passes only the variables it is told about into the guest
  process.env.VMLANE_ENV = [process.env.VMLANE_ENV, 'GRAPHTEST_BENCHTIME', 'GRAPHTEST_COUNT'].filter((v) => v !== undefined && v !== '').join(' ');
  const r = await runInVmLane(['node', '--import', 'tsx', 'bench/run.ts', ...args], { cwd: pkgDir, timeoutSeconds: 1800 });
  process.exitCode = r.code;
} else {
  await runHere();
}
