/**
 * `pnpm bench` for vfs: graphtest's benchmarks (moby's names and parameters) on a journaled ext4
 * loop image, printed beside moby's and containers/storage's Go vfs figures, and written as JSON to
 * bench-results/vfs.json. Arguments: benchmark names to run only those; GRAPHTEST_BENCHTIME (ms)
 * and GRAPHTEST_COUNT override Go's 1 s and 3 samples.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { benchmarks } from '@graphdriver/graphtest';
import { init } from '../src/index.js';

const only = process.argv.slice(2);
const report = await benchmarks((root) => init({ home: join(root, 'vfs'), root, options: [] }), {
  ...(only.length > 0 ? { only } : {}),
  ...(process.env.GRAPHTEST_BENCHTIME === undefined ? {} : { benchtimeMs: Number(process.env.GRAPHTEST_BENCHTIME) }),
  ...(process.env.GRAPHTEST_COUNT === undefined ? {} : { count: Number(process.env.GRAPHTEST_COUNT) }),
});
await mkdir('bench-results', { recursive: true });
await writeFile(join('bench-results', 'vfs.json'), `${JSON.stringify(report, null, 2)}\n`);
console.log('\nJSON: bench-results/vfs.json');
