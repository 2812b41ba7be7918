/**
 * graphtest's own small test runner: runs a list of cases one after the other, each in the context
 * its setup makes, and accounts for each as pass, fail or skip. It is not uvu because a case must be
 * able to skip at run time with the reason the driver gave: a case (or its setup) that throws an
 * error for which core's `isNotSupported()` is true, or that calls `skipCase(reason)`, is a skip with
 * that reason - never a pass. A case the caller asked to skip is a skip with the caller's reason.
 *
 * It prints one line per case and closes with `<label>: N passed, N failed, N skipped`, the line CI
 * greps, and returns the same facts as a report object.
 */
import { isNotSupported } from '@graphdriver/core';

export type CaseStatus = 'pass' | 'fail' | 'skip';

export interface CaseResult {
  name: string;
  status: CaseStatus;
  /** Why the case was skipped. */
  reason?: string;
  /** Why the case failed: the error's message (and stack, where there is one). */
  error?: string;
  /** Wall time of setup, case and teardown, in milliseconds. */
  ms: number;
}

export interface Report {
  /** The driver (or whatever the label names) the cases ran against. */
  driver: string;
  cases: CaseResult[];
  passed: number;
  failed: number;
  skipped: number;
}

export interface Case<Ctx> {
  /** Unique; `Family(param)` for parameterised cases, e.g. `DeepLayerRead(128)`. */
  name: string;
  run(ctx: Ctx): Promise<void>;
}

/** Thrown by a case to skip itself; the runner reports `reason`. */
export class CaseSkipped extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
  override get name(): string {
    return 'CaseSkipped';
  }
}

/** Ends the running case as a skip with `reason`. */
export function skipCase(reason: string): never {
  throw new CaseSkipped(reason);
}

/** A case selected by name: its exact name, or its family (`DiffApply` selects `DiffApply(10)` and `DiffApply(100)`). */
export function caseMatches(caseName: string, selector: string): boolean {
  if (caseName === selector) return true;
  const paren = caseName.indexOf('(');
  return paren > 0 && caseName.slice(0, paren) === selector;
}

/**
 * Parses skip entries, `"<case or family>: <reason>"`. A skip without a reason is refused: a skipped
 * case must say why in the report.
 */
export function parseSkipList(entries: readonly string[] | undefined): Array<{ selector: string; reason: string }> {
  return (entries ?? []).map((entry) => {
    const colon = entry.indexOf(':');
    const selector = (colon < 0 ? entry : entry.slice(0, colon)).trim();
    const reason = colon < 0 ? '' : entry.slice(colon + 1).trim();
    if (selector === '' || reason === '') {
      throw new TypeError(`skip entry ${JSON.stringify(entry)} must be "<case>: <reason>"`);
    }
    return { selector, reason };
  });
}

export interface RunCasesOptions<Ctx> {
  /** Shown in the closing line and the report (`vfs`). */
  label: string;
  /** `"<case>: <reason>"` entries. */
  skip?: readonly string[];
  /** Run only these cases (names or families). */
  only?: readonly string[];
  /** Aborts the run: the running case sees it through its context, no later case starts, and the run rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Where the lines go; null for none. Default process.stdout. */
  output?: NodeJS.WritableStream | null;
  /** Makes the context of one case. A not-supported error here skips the case. */
  setup(c: Case<Ctx>): Promise<Ctx>;
  /**
   * Releases what setup made. Runs whatever the case did; an error here fails a case that had
   * passed (a case that leaks is not a pass).
   */
  teardown(ctx: Ctx, c: Case<Ctx>): Promise<void>;
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const head = `${err.name}${typeof code === 'string' ? ` [${code}]` : ''}: ${err.message}`;
    const stack = err.stack?.split('\n').slice(1).join('\n');
    const cause = err.cause === undefined ? '' : `\ncaused by ${describeError(err.cause)}`;
    return `${head}${stack ? `\n${stack}` : ''}${cause}`;
  }
  return String(err);
}

function firstLine(s: string): string {
  const nl = s.indexOf('\n');
  return nl < 0 ? s : s.slice(0, nl);
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `        ${l}`)
    .join('\n');
}

/** The one line per case that the runner prints (and the bin reprints from a report). */
export function formatCaseLine(r: CaseResult): string {
  const ms = `(${Math.round(r.ms)} ms)`;
  switch (r.status) {
    case 'pass':
      return `  pass  ${r.name} ${ms}`;
    case 'skip':
      return `  skip  ${r.name}: ${r.reason ?? ''}`;
    case 'fail':
      return `  FAIL  ${r.name} ${ms}: ${firstLine(r.error ?? '')}`;
  }
}

/** `vfs: 20 passed, 1 failed, 2 skipped` - the exact shape CI greps. */
export function formatSummaryLine(report: Pick<Report, 'driver' | 'passed' | 'failed' | 'skipped'>): string {
  return `${report.driver}: ${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`;
}

/** Runs `cases` in order and returns the report; never throws for a failing case, only for an abort. */
export async function runCases<Ctx>(cases: readonly Case<Ctx>[], opts: RunCasesOptions<Ctx>): Promise<Report> {
  const skips = parseSkipList(opts.skip);
  const only = opts.only ?? [];
  const out = opts.output === undefined ? process.stdout : opts.output;
  const print = (line: string): void => {
    out?.write(`${line}\n`);
  };
  const names = new Set<string>();
  for (const c of cases) {
    if (names.has(c.name)) throw new TypeError(`two cases are named ${JSON.stringify(c.name)}`);
    names.add(c.name);
  }
  for (const sel of [...only, ...skips.map((s) => s.selector)]) {
    if (!cases.some((c) => caseMatches(c.name, sel))) {
      throw new TypeError(`no case is named ${JSON.stringify(sel)} (cases: ${cases.map((c) => c.name).join(', ')})`);
    }
  }

  const results: CaseResult[] = [];
  for (const c of cases) {
    if (only.length > 0 && !only.some((sel) => caseMatches(c.name, sel))) continue;
    opts.signal?.throwIfAborted();
    const asked = skips.find((s) => caseMatches(c.name, s.selector));
    let result: CaseResult;
    if (asked !== undefined) {
      result = { name: c.name, status: 'skip', reason: asked.reason, ms: 0 };
    } else {
      result = await runOne(c, opts);
    }
    results.push(result);
    print(formatCaseLine(result));
    if (result.status === 'fail' && result.error !== undefined && result.error.includes('\n')) {
      print(indent(result.error));
    }
  }
  opts.signal?.throwIfAborted();

  const report: Report = {
    driver: opts.label,
    cases: results,
    passed: results.filter((r) => r.status === 'pass').length,
    failed: results.filter((r) => r.status === 'fail').length,
    skipped: results.filter((r) => r.status === 'skip').length,
  };
  print(formatSummaryLine(report));
  return report;
}

async function runOne<Ctx>(c: Case<Ctx>, opts: RunCasesOptions<Ctx>): Promise<CaseResult> {
  const start = performance.now();
  const done = (status: CaseStatus, extra: { reason?: string; error?: string }): CaseResult => ({
    name: c.name,
    status,
    ...extra,
    ms: performance.now() - start,
  });
  let ctx: Ctx;
  try {
    ctx = await opts.setup(c);
  } catch (err) {
    if (err instanceof CaseSkipped) return done('skip', { reason: err.reason });
    if (isNotSupported(err)) return done('skip', { reason: (err as Error).message });
    return done('fail', { error: `setup: ${describeError(err)}` });
  }

  let outcome: { status: CaseStatus; reason?: string; error?: string };
  try {
    await c.run(ctx);
    outcome = { status: 'pass' };
  } catch (err) {
    if (err instanceof CaseSkipped) outcome = { status: 'skip', reason: err.reason };
    else if (isNotSupported(err)) outcome = { status: 'skip', reason: (err as Error).message };
    else outcome = { status: 'fail', error: describeError(err) };
  }

  try {
    await opts.teardown(ctx, c);
  } catch (err) {
    const why = `teardown: ${describeError(err)}`;
    // A leak after a skip is still a leak: the driver did something wrong.
    outcome = { status: 'fail', error: outcome.status === 'fail' ? `${outcome.error}\n${why}` : why };
  }
  const extra: { reason?: string; error?: string } = {};
  if (outcome.reason !== undefined) extra.reason = outcome.reason;
  if (outcome.error !== undefined) extra.error = outcome.error;
  return done(outcome.status, extra);
}
