/**
 * The Go reference figures of moby's and containers/storage's graphtest benchmarks on this project's
 * machine kind, root on a journaled ext4 loop image (../shared/BASELINE.md, second table: moby
 * v24.0.9, containers/storage v1.51.2, Go 1.19.8, min / median of 3 samples). Data, printed beside
 * our figures; compare ratios, never absolute numbers across machines.
 */

export interface GoFigure {
  /** Nanoseconds per operation. */
  min: number;
  median: number;
}

export type ReferenceDriver = 'moby overlay2' | 'moby vfs' | 'c/s overlay' | 'c/s vfs';

const us = 1e3;
const ms = 1e6;

/** Per benchmark name, the four Go drivers' figures. */
export const GO_BASELINE: Readonly<Record<string, Readonly<Record<ReferenceDriver, GoFigure>>>> = {
  Exists: {
    'moby overlay2': { min: 3.2 * us, median: 3.3 * us },
    'moby vfs': { min: 3.1 * us, median: 3.3 * us },
    'c/s overlay': { min: 6.2 * us, median: 6.4 * us },
    'c/s vfs': { min: 5.8 * us, median: 6.4 * us },
  },
  GetEmpty: {
    'moby overlay2': { min: 11.9 * us, median: 12.2 * us },
    'moby vfs': { min: 7.2 * us, median: 7.3 * us },
    'c/s overlay': { min: 301 * us, median: 306 * us },
    'c/s vfs': { min: 10.4 * us, median: 10.4 * us },
  },
  DiffBase: {
    'moby overlay2': { min: 164 * us, median: 176 * us },
    'moby vfs': { min: 145 * us, median: 152 * us },
    'c/s overlay': { min: 214 * us, median: 219 * us },
    'c/s vfs': { min: 200 * us, median: 203 * us },
  },
  DiffSmallUpper: {
    'moby overlay2': { min: 1.95 * ms, median: 2.03 * ms },
    'moby vfs': { min: 303 * us, median: 305 * us },
    'c/s overlay': { min: 1.0 * ms, median: 1.05 * ms },
    'c/s vfs': { min: 360 * us, median: 372 * us },
  },
  Diff10KFileUpper: {
    'moby overlay2': { min: 573 * ms, median: 601 * ms },
    'moby vfs': { min: 350 * ms, median: 361 * ms },
    'c/s overlay': { min: 581 * ms, median: 634 * ms },
    'c/s vfs': { min: 400 * ms, median: 405 * ms },
  },
  Diff10KFilesBottom: {
    'moby overlay2': { min: 501 * ms, median: 545 * ms },
    'moby vfs': { min: 430 * ms, median: 508 * ms },
    'c/s overlay': { min: 592 * ms, median: 680 * ms },
    'c/s vfs': { min: 395 * ms, median: 432 * ms },
  },
  DiffApply100: {
    'moby overlay2': { min: 29.9 * ms, median: 30.4 * ms },
    'moby vfs': { min: 29.4 * ms, median: 31.3 * ms },
    'c/s overlay': { min: 32.4 * ms, median: 34.3 * ms },
    'c/s vfs': { min: 20.6 * ms, median: 21.2 * ms },
  },
  Diff20Layers: {
    'moby overlay2': { min: 5.6 * ms, median: 5.8 * ms },
    'moby vfs': { min: 1.37 * ms, median: 1.42 * ms },
    'c/s overlay': { min: 5.2 * ms, median: 5.2 * ms },
    'c/s vfs': { min: 1.94 * ms, median: 1.95 * ms },
  },
  Read20Layers: {
    'moby overlay2': { min: 25 * us, median: 26 * us },
    'moby vfs': { min: 15 * us, median: 16 * us },
    'c/s overlay': { min: 23 * us, median: 24 * us },
    'c/s vfs': { min: 16 * us, median: 17 * us },
  },
};

/** The Go drivers a driver of ours is compared with: by its name, the same kind. */
export function referenceDriversFor(driverName: string): ReferenceDriver[] {
  if (driverName.includes('overlay') || driverName === 'layer0') return ['moby overlay2', 'c/s overlay'];
  if (driverName === 'vfs') return ['moby vfs', 'c/s vfs'];
  return [];
}
