/**
 * `pnpm bench` for aufs: graphtest's benchmarks (moby's names and parameters) on a journaled ext4
 * loop image, through fuse-overlayfs (no kernel aufs here, so moby's aufs cannot be measured on this
 * machine: moby's overlay2 and containers/storage's overlay figures from BASELINE.md are printed
 * beside ours as the nearest Go reference); then what the driver adds over fuse-overlayfs itself
 * (bench/aufs-costs.ts). Written as JSON to bench-results/aufs.json. Arguments: benchmark names to
 * run only those (`costs` for the second part alone); GRAPHTEST_BENCHTIME (ms) and GRAPHTEST_COUNT
 * override Go's 1 s and 3 samples; AUFS_COST_ROUNDS the rounds of the second part (default 15).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { benchmarks, withJournaledExt4, type BenchReport } from '@graphdriver/graphtest';
import { init } from '../src/index.js';
import { mountCosts, normalizeCosts, type CostRow } from './aufs-costs.js';

const args = process.argv.slice(2);
const only = args.filter((a) => a !== 'costs');
const wantGraphtest = args.length === 0 || only.length > 0;
const wantCosts = args.length === 0 || args.includes('costs');

let graphtest: BenchReport | undefined;
if (wantGraphtest) {
  graphtest = await benchmarks((root) => init({ home: join(root, 'aufs'), root, options: [] }), {
    reference: ['moby overlay2', 'c/s overlay'],
    ...(only.length > 0 ? { only } : {}),
    ...(process.env.GRAPHTEST_BENCHTIME === undefined ? {} : { benchtimeMs: Number(process.env.GRAPHTEST_BENCHTIME) }),
    ...(process.env.GRAPHTEST_COUNT === undefined ? {} : { count: Number(process.env.GRAPHTEST_COUNT) }),
  });
}
let costs: CostRow[] | undefined;
if (wantCosts) {
  const rounds = Number(process.env.AUFS_COST_ROUNDS ?? 15);
  console.log('\naufs over fuse-overlayfs (journaled ext4 loop image):');
  costs = await withJournaledExt4(
    async (fs) => [...(await mountCosts(fs.path, { rounds, print: console.log })), ...(await normalizeCosts(fs.path, { rounds: Math.min(rounds, 5), print: console.log }))],
    { gib: 8 },
  );
}
await mkdir('bench-results', { recursive: true });
await writeFile(join('bench-results', 'aufs.json'), `${JSON.stringify({ graphtest, costs }, null, 2)}\n`);
console.log('\nJSON: bench-results/aufs.json');
