/**
 * `conformance(factory, options)`: the whole suite against one driver. Each case gets a fresh root
 * (under `options.root`, or the OS temp dir; SetQuota's under `options.quotaRoot` when given) and a
 * driver the factory makes on it; afterwards the driver is cleaned up, the case fails if any mount
 * is left under its directory (that mount is then taken down so the next case starts clean), and
 * the directory is removed.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { unmountRecursive, type Driver } from '@graphdriver/core';
import { classicCases } from './cases/classic.js';
import { fidelityCases } from './cases/fidelity.js';
import { mountPointsUnder } from './cases/helpers.js';
import { lifecycleCases } from './cases/lifecycle.js';
import { safetyCases } from './cases/safety.js';
import type { Capabilities, CaseContext, DriverFactory, ResolvedCapabilities } from './context.js';
import { DEFAULT_ROOT_PERMS } from './fixtures.js';
import { runCases, type Case, type Report } from './runner.js';

const debug = debuglog('graphdriver:graphtest');

export interface ConformanceOptions {
  /** `"<case or family>: <reason>"` entries; the reason shows in the report. */
  skip?: readonly string[];
  /** Run only these cases (names or families such as `DiffApply`). */
  only?: readonly string[];
  capabilities?: Capabilities;
  /**
   * A directory on a filesystem with project quotas: SetQuota makes its root there and must then
   * pass (a "quota not supported" there is a failure, not a skip).
   */
  quotaRoot?: string;
  /** Where the cases make their roots. Default: the OS temp dir. */
  root?: string;
  /** Name in the report and the closing line. Default: the driver's `name`. */
  label?: string;
  /** Layer counts of DeepLayerRead. Default [128] (moby's overlay2 test). */
  deepLayerRead?: readonly number[];
  /** File counts of DiffApply. Default [10, 100] (moby's overlay2, containers/storage's vfs). */
  diffApply?: readonly number[];
  signal?: AbortSignal;
  /** Where the per-case lines go; null for none. Default process.stdout. */
  output?: NodeJS.WritableStream | null;
}

/** Every case of the suite, in the order they run. */
export function conformanceCases(opts: Pick<ConformanceOptions, 'deepLayerRead' | 'diffApply'> = {}): Case<CaseContext>[] {
  return [
    ...classicCases({ deepLayerRead: opts.deepLayerRead ?? [128], diffApply: opts.diffApply ?? [10, 100] }),
    ...fidelityCases(),
    ...lifecycleCases(),
    ...safetyCases(),
  ];
}

export function resolveCapabilities(c: Capabilities = {}): ResolvedCapabilities {
  return {
    rootMode: c.rootMode ?? DEFAULT_ROOT_PERMS,
    trustedXattrs: c.trustedXattrs ?? true,
    devices: c.devices ?? true,
    createFromTemplate: c.createFromTemplate,
    listLayers: c.listLayers,
  };
}

interface LiveContext extends CaseContext {
  driver: Driver;
  /** The case's own directory: root and scratch are inside it. */
  base: string;
  cleaned: boolean;
}

/** Runs the conformance suite against drivers made by `factory` and returns the report. */
export async function conformance(factory: DriverFactory, options: ConformanceOptions = {}): Promise<Report> {
  const capabilities = resolveCapabilities(options.capabilities);
  const signal = options.signal ?? new AbortController().signal;
  const cases = conformanceCases(options);
  let label = options.label;

  const setup = async (c: Case<CaseContext>): Promise<LiveContext> => {
    const parent = c.name === 'SetQuota' && options.quotaRoot !== undefined ? options.quotaRoot : (options.root ?? tmpdir());
    await mkdir(parent, { recursive: true });
    const base = await mkdtemp(join(parent, 'graphtest-'));
    const root = join(base, 'root');
    const scratch = join(base, 'scratch');
    await mkdir(root);
    await mkdir(scratch);
    let driver: Driver;
    try {
      driver = await factory(root);
    } catch (err) {
      await rm(base, { recursive: true, force: true });
      throw err;
    }
    label ??= driver.name;
    const ctx: LiveContext = {
      driver,
      base,
      root,
      scratch,
      capabilities,
      quotaRequired: options.quotaRoot !== undefined,
      signal,
      cleaned: false,
      async cleanupDriver() {
        if (ctx.cleaned) return;
        ctx.cleaned = true;
        await ctx.driver.cleanup();
      },
      async restart() {
        await ctx.cleanupDriver();
        ctx.driver = await factory(root);
        ctx.cleaned = false;
        return ctx.driver;
      },
    };
    return ctx;
  };

  const teardown = async (ctx: LiveContext): Promise<void> => {
    const problems: string[] = [];
    try {
      await ctx.cleanupDriver();
    } catch (err) {
      problems.push(`cleanup() failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    const left = await mountPointsUnder(ctx.base);
    if (left.length > 0) {
      problems.push(`cleanup() left ${left.length} mount(s): ${left.join(', ')}`);
      // Take them down so that the next case, and the machine, start clean.
      await unmountRecursive(ctx.base, { lazyFallback: true }).catch((err: unknown) => debug('unmounting leftovers: %o', err));
    }
    await rm(ctx.base, { recursive: true, force: true, maxRetries: 3 });
    if (problems.length > 0) throw new Error(problems.join('; '));
  };

  // The label is known once the first driver exists; the runner asks for it at the end.
  const report = await runCases<CaseContext>(cases, {
    get label() {
      return label ?? 'driver';
    },
    ...(options.skip === undefined ? {} : { skip: options.skip }),
    ...(options.only === undefined ? {} : { only: options.only }),
    signal,
    ...(options.output === undefined ? {} : { output: options.output }),
    setup,
    teardown: (ctx) => teardown(ctx as LiveContext),
  });
  return report;
}
