/** @graphdriver/graphtest public surface: re-exports only. */
export { conformance, conformanceCases, resolveCapabilities, type ConformanceOptions } from './conformance.js';
export type { Capabilities, CaseContext, DriverFactory, ResolvedCapabilities } from './context.js';
export {
  runCases,
  skipCase,
  CaseSkipped,
  caseMatches,
  parseSkipList,
  formatCaseLine,
  formatSummaryLine,
  type Case,
  type CaseResult,
  type CaseStatus,
  type Report,
  type RunCasesOptions,
} from './runner.js';
export { treeDigest, diffDigests, assertSameTree, type DigestEntry, type DigestOptions, type TreeDigest } from './digest.js';
export { buildTar, listTar, type TarEntry, type ListedEntry } from './tar.js';
export * as fixtures from './fixtures.js';
export { benchmarks, type BenchmarkOptions } from './bench/benchmarks.js';
export { benchCases, type BenchCase, type Timer } from './bench/cases.js';
export { GO_BASELINE, referenceDriversFor, type GoFigure, type ReferenceDriver } from './bench/baseline.js';
export { formatBenchTable, formatNs, type BenchReport, type BenchResult, type ReferenceFigure } from './bench/report.js';
export { withJournaledExt4, type Ext4Image } from './bench/ext4-image.js';
