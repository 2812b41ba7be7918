/**
 * Benchmark results as people read them (a table with the Go reference figures and our ratio to
 * them) and as machines do (the report object, written as JSON by the bin).
 */
import type { ReferenceDriver } from './baseline.js';

export interface ReferenceFigure {
  driver: ReferenceDriver;
  min: number;
  median: number;
  /** Our median / the Go median: below 1 is faster than Go. */
  ratio: number;
}

export interface BenchResult {
  name: string;
  go: string;
  /** Nanoseconds per operation of each sample. */
  samples: number[];
  /** b.N of each sample. */
  iterations: number[];
  min: number;
  median: number;
  references: ReferenceFigure[];
}

export interface BenchReport {
  driver: string;
  /** The filesystem the store was on. */
  fs: string;
  benchtimeMs: number;
  count: number;
  node: string;
  kernel: string;
  date: string;
  /** A physical reference taken in the same run (GNU tar -c of 10,000 small files), ns. */
  calibration?: { what: string; min: number; median: number };
  results: BenchResult[];
}

/** `3.21 us`, `1.95 ms`, `0.573 s` - three significant digits, Go's units. */
export function formatNs(ns: number): string {
  const fmt = (v: number, unit: string): string => `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${unit}`;
  if (ns < 1e3) return fmt(ns, 'ns');
  if (ns < 1e6) return fmt(ns / 1e3, 'us');
  if (ns < 1e9) return fmt(ns / 1e6, 'ms');
  return fmt(ns / 1e9, 's');
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** The table: one row per benchmark, our min / median, then each Go reference and the ratio. */
export function formatBenchTable(report: BenchReport): string {
  const refs = report.results[0]?.references.map((r) => r.driver) ?? [];
  const head = ['benchmark', 'N', `${report.driver} min / median`, ...refs.flatMap((r) => [`${r} min / median`, 'ratio'])];
  const rows = report.results.map((r) => {
    const cells = [r.name, r.iterations.join('/'), `${formatNs(r.min)} / ${formatNs(r.median)}`];
    for (const d of refs) {
      const f = r.references.find((x) => x.driver === d);
      cells.push(f === undefined ? '-' : `${formatNs(f.min)} / ${formatNs(f.median)}`, f === undefined ? '-' : `${f.ratio.toFixed(2)}x`);
    }
    return cells;
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => pad(c, widths[i]!, i > 0)).join('  ');
  const out = [
    `${report.driver} on ${report.fs}; benchtime ${report.benchtimeMs} ms, ${report.count} samples; node ${report.node}, kernel ${report.kernel}`,
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ];
  if (report.calibration !== undefined) {
    out.push(`same-run reference: ${report.calibration.what}: ${formatNs(report.calibration.min)} / ${formatNs(report.calibration.median)}`);
  }
  if (refs.length > 0) out.push('Go figures: ../shared/BASELINE.md (journaled ext4 loop image); ratio = our median / Go median');
  return out.join('\n');
}
