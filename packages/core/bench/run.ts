/**
 * `pnpm --filter @graphdriver/core bench`: core's benchmarks, never part of the tests. Prints a
 * table per benchmark and writes the figures as JSON to bench-results/.
 * Environment: BENCH_ROUNDS (default 3), BENCH_BIG_MIB (size of the big file, default 1024),
 * BENCH_ONLY (a regular expression: only the cases whose name matches), BENCH_PROF (a directory:
 * each of our runs writes a V8 CPU profile there, `node --cpu-prof`; the timings then include the
 * profiler's overhead).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { formatTable, runArchiveBench } from './archive.js';

const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const bigBytes = Number(process.env.BENCH_BIG_MIB ?? 1024) * 2 ** 20;
const only = process.env.BENCH_ONLY === undefined ? undefined : new RegExp(process.env.BENCH_ONLY);
const profileDir = process.env.BENCH_PROF;
if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
if (!(rounds >= 1) || !(bigBytes > 0)) throw new Error('BENCH_ROUNDS and BENCH_BIG_MIB must be positive numbers');

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

log(`archive benchmark: ${rounds} rounds, kernel ${release()}, ${cpus().length} CPUs, node ${process.version}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const archive = await runArchiveBench({ rounds, bigBytes, log, only, profileDir });
log('');
log(`archive (${archive.fs}):`);
log(formatTable(archive.results));

const outDir = fileURLToPath(new URL('../bench-results/', import.meta.url));
mkdirSync(outDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const file = `${outDir}archive-${stamp}.json`;
writeFileSync(
  file,
  `${JSON.stringify({ date: new Date().toISOString(), kernel: release(), cpus: cpus().length, node: process.version, rounds, loadAfter: loadavg(), profiled: profileDir !== undefined, filesystem: archive.fs, results: archive.results }, null, 2)}\n`,
);
log(`\nwritten ${file}`);
