/**
 * The benchmarks of moby's graphbench_unix.go (the same in containers/storage), with their names,
 * parameters and fixtures, and with the timer stopped where Go stops it: Exists, GetEmpty (get
 * timed, put not), DiffBase, DiffN as DiffSmallUpper (10/10), Diff10KFileUpper (10/10000) and
 * Diff10KFilesBottom (10000/10), DiffApplyN as DiffApply100 (the diff layer's creation and the
 * content checks untimed), DeepLayerDiff as Diff20Layers, DeepLayerRead as Read20Layers; plus
 * DiffApply10000 and Read128Layers, which the Go suites do not run.
 *
 * As in Go, DiffN and DeepLayerDiff diff the top layer against no parent (the whole layer) and
 * DiffApplyN applies that whole-layer diff onto a fresh child of the base.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Driver } from '@graphdriver/core';
import { addFile, addFiles, addManyFiles, addManyLayers, checkManyFiles, randomId } from '../fixtures.js';

export interface Timer {
  start(): void;
  stop(): void;
}

export interface BenchCase<S = unknown> {
  /** moby's benchmark name without `Benchmark` and the driver prefix. */
  name: string;
  /** The Go function with its parameters. */
  go: string;
  setup(driver: Driver): Promise<S>;
  /** One operation; the timer runs on entry and must run again on return. */
  op(driver: Driver, state: S, timer: Timer): Promise<void>;
  teardown?(driver: Driver, state: S): Promise<void>;
}

async function drain(stream: Readable): Promise<void> {
  for await (const chunk of stream) void chunk;
}

function defineCase<S>(c: BenchCase<S>): BenchCase {
  return c as unknown as BenchCase;
}

const exists = defineCase<string>({
  name: 'Exists',
  go: 'DriverBenchExists',
  async setup(driver) {
    const base = randomId();
    await driver.create(base);
    return base;
  },
  async op(driver, base) {
    if (!(await driver.exists(base))) throw new Error("Newly created image doesn't exist");
  },
});

const getEmpty = defineCase<string>({
  name: 'GetEmpty',
  go: 'DriverBenchGetEmpty',
  async setup(driver) {
    const base = randomId();
    await driver.create(base);
    return base;
  },
  async op(driver, base, timer) {
    await driver.get(base);
    timer.stop();
    await driver.put(base);
    timer.start();
  },
});

const diffBase = defineCase<string>({
  name: 'DiffBase',
  go: 'DriverBenchDiffBase',
  async setup(driver) {
    const base = randomId();
    await driver.create(base);
    await addFiles(driver, base, 3);
    return base;
  },
  async op(driver, base) {
    await drain(await driver.diff(base));
  },
});

function diffN(name: string, bottom: number, top: number): BenchCase {
  return defineCase<string>({
    name,
    go: `DriverBenchDiffN(${bottom}, ${top})`,
    async setup(driver) {
      const base = randomId();
      const upper = randomId();
      await driver.create(base);
      await addManyFiles(driver, base, bottom, 3);
      await driver.create(upper, base);
      await addManyFiles(driver, upper, top, 6);
      return upper;
    },
    async op(driver, upper) {
      await drain(await driver.diff(upper));
    },
  });
}

function diffApplyN(fileCount: number): BenchCase {
  return defineCase<{ base: string; upper: string }>({
    name: `DiffApply${fileCount}`,
    go: `DriverBenchDiffApplyN(${fileCount})`,
    async setup(driver) {
      const base = randomId();
      const upper = randomId();
      await driver.create(base);
      await addManyFiles(driver, base, fileCount, 3);
      await driver.create(upper, base);
      await addManyFiles(driver, upper, fileCount, 6);
      return { base, upper };
    },
    async op(driver, { base, upper }, timer) {
      timer.stop();
      const diff = randomId();
      await driver.create(diff, base);
      await checkManyFiles(driver, diff, fileCount, 3);
      timer.start();
      const arch = await driver.diff(upper);
      await driver.applyDiff(diff, undefined, arch);
      timer.stop();
      await checkManyFiles(driver, diff, fileCount, 6);
      // Go keeps every diff layer until the end; removing them keeps long runs within the disk.
      await driver.remove(diff);
      timer.start();
    },
  });
}

function deepLayerDiff(layerCount: number): BenchCase {
  return defineCase<string>({
    name: `Diff${layerCount}Layers`,
    go: `DriverBenchDeepLayerDiff(${layerCount})`,
    async setup(driver) {
      const base = randomId();
      await driver.create(base);
      await addFiles(driver, base, 50);
      return addManyLayers(driver, base, layerCount);
    },
    async op(driver, top) {
      await drain(await driver.diff(top));
    },
  });
}

const CONTENT = Buffer.from('test content');

function deepLayerRead(layerCount: number): BenchCase {
  return defineCase<{ top: string; file: string }>({
    name: `Read${layerCount}Layers`,
    go: `DriverBenchDeepLayerRead(${layerCount})`,
    async setup(driver) {
      const base = randomId();
      await driver.create(base);
      await addFile(driver, base, 'testfile.txt', CONTENT);
      const top = await addManyLayers(driver, base, layerCount);
      const root = await driver.get(top);
      return { top, file: join(root, 'testfile.txt') };
    },
    async op(_driver, { file }, timer) {
      // Blocking, as Go's os.ReadFile: the figure is the cost of the lookup through the layer stack,
      // not of four thread-pool round trips of an async readFile.
      const c = readFileSync(file);
      timer.stop();
      if (!c.equals(CONTENT)) throw new Error(`${file}: content differs`);
      timer.start();
    },
    async teardown(driver, { top }) {
      await driver.put(top);
    },
  });
}

/** Every benchmark, in moby's order, then ours. */
export function benchCases(): BenchCase[] {
  return [
    exists,
    getEmpty,
    diffBase,
    diffN('DiffSmallUpper', 10, 10),
    diffN('Diff10KFileUpper', 10, 10000),
    diffN('Diff10KFilesBottom', 10000, 10),
    diffApplyN(100),
    deepLayerDiff(20),
    deepLayerRead(20),
    diffApplyN(10000),
    deepLayerRead(128),
  ];
}
