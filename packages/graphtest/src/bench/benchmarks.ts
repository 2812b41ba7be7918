/**
 * `benchmarks(factory, options)`: moby's graphtest benchmarks against one driver, on a journaled
 * ext4 loop image made for the run (or a root the caller gives), each measured as Go measures it
 * (measure.ts) in `count` samples with a fresh driver and store each, and printed as a table beside
 * the Go reference figures of BASELINE.md with our ratio to them. A physical reference (GNU tar -c
 * of 10,000 small files on the same filesystem) is taken in the same run, so that runs on a noisy
 * machine can be compared with each other.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { getFsName } from '@graphdriver/core';
import type { DriverFactory } from '../context.js';
import { caseMatches } from '../runner.js';
import { GO_BASELINE, referenceDriversFor, type ReferenceDriver } from './baseline.js';
import { benchCases, type BenchCase } from './cases.js';
import { withJournaledExt4 } from './ext4-image.js';
import { measure, median } from './measure.js';
import { formatBenchTable, formatNs, type BenchReport, type BenchResult } from './report.js';

export interface BenchmarkOptions {
  /** Run only these benchmarks (names such as `DiffApply100`). */
  only?: readonly string[];
  /** Timed time each sample aims at, as Go's -benchtime. Default 1000 ms. */
  benchtimeMs?: number;
  /** Samples per benchmark, as Go's -count. Default 3. */
  count?: number;
  /** Use this directory for the stores instead of a journaled ext4 loop image made for the run. */
  root?: string;
  /** Size of the ext4 image in GiB (sparse). Default 16. */
  imageGiB?: number;
  /** Name in the report. Default: the driver's name. */
  label?: string;
  /** Go drivers to compare with. Default: by the driver's name (vfs: moby's and c/s's vfs). */
  reference?: readonly ReferenceDriver[];
  signal?: AbortSignal;
  /** Where progress and the table go; null for none. Default process.stdout. */
  output?: NodeJS.WritableStream | null;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    // Piped and drained: GNU tar skips reading file data when it writes to /dev/null.
    p.stdout.resume();
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

/** GNU tar -c of 100 directories x 100 files of 64 bytes, piped, 3 rounds. */
async function calibrate(dir: string): Promise<BenchReport['calibration']> {
  const tree = join(dir, 'calibration');
  for (let d = 0; d < 100; d++) {
    await mkdir(join(tree, `d${d}`), { recursive: true });
    await Promise.all(Array.from({ length: 100 }, (_, f) => writeFile(join(tree, `d${d}`, `f${f}`), Buffer.alloc(64, f))));
  }
  const times: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const t = process.hrtime.bigint();
      await run('tar', ['-C', tree, '-cf', '-', '.']);
      times.push(Number(process.hrtime.bigint() - t));
    }
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
  return { what: 'GNU tar -c of 10,000 files of 64 bytes (piped)', min: Math.min(...times), median: median(times) };
}

/** Runs the benchmarks and returns the report (also printed as a table unless output is null). */
export async function benchmarks(factory: DriverFactory, options: BenchmarkOptions = {}): Promise<BenchReport> {
  const out = options.output === undefined ? process.stdout : options.output;
  const print = (s: string): void => void out?.write(`${s}\n`);
  const benchtimeMs = options.benchtimeMs ?? 1000;
  const count = options.count ?? 3;
  const all = benchCases();
  for (const sel of options.only ?? []) {
    if (!all.some((c) => caseMatches(c.name, sel))) throw new TypeError(`no benchmark is named ${JSON.stringify(sel)} (${all.map((c) => c.name).join(', ')})`);
  }
  const cases = options.only === undefined ? all : all.filter((c) => options.only!.some((s) => caseMatches(c.name, s)));

  const body = async (fsPath: string, fsDescription: string): Promise<BenchReport> => {
    const calibration = await calibrate(fsPath);
    let label = options.label;
    const results: BenchResult[] = [];
    for (const c of cases) {
      const samples: number[] = [];
      const iterations: number[] = [];
      for (let s = 0; s < count; s++) {
        options.signal?.throwIfAborted();
        const m = await sample(factory, c, fsPath, benchtimeMs, options.signal, (name) => (label ??= name));
        samples.push(m.nsPerOp);
        iterations.push(m.iterations);
      }
      const med = median(samples);
      const refs = options.reference ?? referenceDriversFor(label ?? '');
      const go = GO_BASELINE[c.name];
      const result: BenchResult = {
        name: c.name,
        go: c.go,
        samples,
        iterations,
        min: Math.min(...samples),
        median: med,
        references: go === undefined ? [] : refs.map((d) => ({ driver: d, ...go[d], ratio: med / go[d].median })),
      };
      results.push(result);
      const ratio = result.references.map((r) => `${r.ratio.toFixed(2)}x ${r.driver}`).join(', ');
      print(`  ${c.name}: ${formatNs(result.min)} / ${formatNs(med)} per op (N ${iterations.join('/')})${ratio === '' ? '' : `; ${ratio}`}`);
    }
    const report: BenchReport = {
      driver: label ?? 'driver',
      fs: fsDescription,
      benchtimeMs,
      count,
      node: process.version,
      kernel: release(),
      date: new Date().toISOString(),
      ...(calibration === undefined ? {} : { calibration }),
      results,
    };
    print('');
    print(formatBenchTable(report));
    return report;
  };

  if (options.root !== undefined) {
    await mkdir(options.root, { recursive: true });
    return body(options.root, `${await getFsName(options.root)} (${options.root})`);
  }
  return withJournaledExt4((fs) => body(fs.path, fs.description), { ...(options.imageGiB === undefined ? {} : { gib: options.imageGiB }) });
}

/** One sample: a fresh store and driver, the benchmark's setup, the measurement, and cleanup. */
async function sample(
  factory: DriverFactory,
  c: BenchCase,
  fsPath: string,
  benchtimeMs: number,
  signal: AbortSignal | undefined,
  named: (name: string) => void,
): Promise<{ nsPerOp: number; iterations: number }> {
  const dir = await mkdtemp(join(fsPath, `${c.name}-`));
  try {
    const driver = await factory(dir);
    named(driver.name);
    try {
      const state = await c.setup(driver);
      try {
        return await measure((timer) => c.op(driver, state, timer), benchtimeMs, signal);
      } finally {
        await c.teardown?.(driver, state);
      }
    } finally {
      await driver.cleanup();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
