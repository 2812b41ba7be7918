/**
 * Conformance reports said the way the workspace's test runner counts them: graphtest's closing
 * line per driver (`vfs: N passed, N failed, N skipped`) and uvu-shaped totals, summed over the
 * reports a test script ran. Shaped after graphtest's Report, which testkit does not import.
 */

export interface Totals {
  passed: number;
  failed: number;
  skipped: number;
}

export interface ReportLike extends Totals {
  driver: string;
  cases: ReadonlyArray<{ name: string; status: string; ms: number; reason?: string; error?: string }>;
}

/** The reports summed, with failures a script found beyond them (a case that had to run and skipped). */
export function totalsOf(reports: readonly Totals[], extraFailures = 0): Totals {
  return {
    passed: reports.reduce((n, r) => n + r.passed, 0),
    failed: reports.reduce((n, r) => n + r.failed, 0) + extraFailures,
    skipped: reports.reduce((n, r) => n + r.skipped, 0),
  };
}

/** One line per case (a qemu lane's guest prints them; the host sees them again, prefixed). */
export function printCaseLines(reports: readonly ReportLike[]): void {
  for (const r of reports) {
    for (const c of r.cases) {
      console.log(`  ${c.status}  ${r.driver}: ${c.name} (${Math.round(c.ms)} ms)${c.reason ? `: ${c.reason}` : ''}${c.error ? `: ${c.error.split('\n')[0]}` : ''}`);
    }
  }
}

/** uvu-shaped totals, so that the workspace's test runner counts these cases with the uvu tests. */
export function printUvuTotals(t: Totals): void {
  console.log(`\n  Total:     ${t.passed + t.failed + t.skipped}\n  Passed:    ${t.passed}\n  Skipped:   ${t.skipped}\n`);
}

/** The closing line graphtest prints for a run (`vfs: N passed, N failed, N skipped`) and uvu-shaped totals after it. */
export function printReportLines(label: string, t: Totals): void {
  console.log(`${label}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
  printUvuTotals(t);
}

/**
 * The end of a lane script in the guest: every case's line and the closing line for `label`.
 * Returns the exit code: 0 only when nothing failed and nothing skipped - the lane is where the
 * host's skips run for real.
 */
export function finishLaneReports(label: string, reports: readonly ReportLike[]): number {
  printCaseLines(reports);
  const total = totalsOf(reports);
  printReportLines(label, total);
  return total.failed === 0 && total.skipped === 0 ? 0 : 1;
}
