/**
 * `pnpm bench` for overlay: graphtest's benchmarks (moby's names and parameters) on a journaled
 * ext4 loop image, printed beside moby's overlay2 and containers/storage's overlay Go figures; then
 * get/put latency at depth 1, 100 and 500 (bench/mount-latency.ts) beside the bare kernel mount in
 * the same run; and 10,000 files extracted by GNU tar -x and by applyDiff in the same run
 * (bench/apply-reference.ts). Written as JSON to bench-results/overlay.json. Arguments: benchmark
 * names to run only those (`mounts` and `apply` for those parts alone); GRAPHTEST_BENCHTIME (ms) and GRAPHTEST_COUNT override
 * Go's 1 s and 3 samples.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { benchmarks, withJournaledExt4, type BenchReport } from '@graphdriver/graphtest';
import { init } from '../src/index.js';
import { applyReference, type ApplyReferenceRow } from './apply-reference.js';
import { mountLatency, type MountLatencyReport } from './mount-latency.js';

const args = process.argv.slice(2);
const only = args.filter((a) => a !== 'mounts' && a !== 'apply');
const wantGraphtest = args.length === 0 || only.length > 0;
const wantMounts = args.length === 0 || args.includes('mounts');
const wantApply = args.length === 0 || args.includes('apply');
const options = process.env.OVERLAY_BENCH_OPTIONS?.split(' ').filter((s) => s !== '') ?? [];

let graphtest: BenchReport | undefined;
if (wantGraphtest) {
  graphtest = await benchmarks((root) => init({ home: join(root, 'overlay'), root, options }), {
    ...(only.length > 0 ? { only } : {}),
    ...(process.env.GRAPHTEST_BENCHTIME === undefined ? {} : { benchtimeMs: Number(process.env.GRAPHTEST_BENCHTIME) }),
    ...(process.env.GRAPHTEST_COUNT === undefined ? {} : { count: Number(process.env.GRAPHTEST_COUNT) }),
  });
}
let mounts: MountLatencyReport | undefined;
let apply: ApplyReferenceRow[] | undefined;
if (wantMounts || wantApply) {
  await withJournaledExt4(
    async (fs) => {
      if (wantApply) apply = await applyReference(fs.path, Number(process.env.OVERLAY_APPLY_ROUNDS ?? 5));
      if (wantMounts) mounts = await mountLatency(fs.path, { rounds: Number(process.env.OVERLAY_MOUNT_ROUNDS ?? 30) });
    },
    { gib: 4 },
  );
}
await mkdir('bench-results', { recursive: true });
await writeFile(join('bench-results', 'overlay.json'), `${JSON.stringify({ graphtest, apply, mounts }, null, 2)}\n`);
console.log('\nJSON: bench-results/overlay.json');
