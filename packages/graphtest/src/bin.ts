#!/usr/bin/env node
/**
 * The `graphtest` command: the conformance suite (or, with --bench, the benchmarks) for any
 * installed driver, found through core's registry (built-in names import their package lazily, so
 * a driver that is not installed is "not supported" and its cases are skips that say so).
 *
 *   graphtest --driver vfs [--root DIR] [--bench] [--json FILE] [--option k=v]...
 *             [--only CASE]... [--skip "CASE: reason"]... [--quota-root DIR]
 *             [--benchtime MS] [--count N] [--fail-on-skip]
 *
 * Exit status: 0 when no case failed, 1 when one did (or, with --fail-on-skip, when one was
 * skipped), 2 for a usage error.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { getDriver, knownDrivers } from '@graphdriver/core';
import { benchmarks } from './bench/benchmarks.js';
import { conformance } from './conformance.js';
import type { DriverFactory } from './context.js';
import { parseSkipList } from './runner.js';

const USAGE = `usage: graphtest --driver NAME [--root DIR] [--bench] [--json FILE] [--option key=value]...
                 [--only CASE]... [--skip "CASE: reason"]... [--quota-root DIR]
                 [--benchtime MS] [--count N] [--fail-on-skip]

  --driver NAME      the storage driver (${knownDrivers().join(', ')}, or any registered one)
  --root DIR         where the stores are made (default: the temp dir; for --bench: a journaled
                     ext4 loop image made for the run)
  --bench            run the benchmarks instead of the conformance suite
  --json FILE        also write the report as JSON
  --option k=v       a driver option, as moby takes them (vfs.imagestore=/x, overlay.mountopt=nodev)
  --only CASE        run only this case or family (repeatable; comma-separated lists too)
  --skip "CASE: why" skip a case, saying why (repeatable)
  --quota-root DIR   a directory on a filesystem with project quotas: SetQuota must pass there
  --benchtime MS     timed time per benchmark sample (default 1000)
  --count N          samples per benchmark (default 3)
  --fail-on-skip     exit 1 when a case was skipped`;

function usage(message: string): never {
  process.stderr.write(`graphtest: ${message}\n${USAGE}\n`);
  process.exit(2);
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (err) {
    usage((err as Error).message);
  }
  const v = args.values;
  if (v.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const name = v.driver;
  if (name === undefined) usage('--driver is required');
  if (!knownDrivers().includes(name)) usage(`unknown storage driver ${JSON.stringify(name)}`);
  const options = v.option ?? [];
  const only = (v.only ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  try {
    parseSkipList(v.skip);
  } catch (err) {
    usage((err as Error).message);
  }
  const factory: DriverFactory = (root) => getDriver(name, { root, options, resolveFrom: process.cwd() });

  if (v.bench === true) {
    const report = await benchmarks(factory, {
      label: name,
      ...(only.length > 0 ? { only } : {}),
      ...(v.root === undefined ? {} : { root: v.root }),
      ...(v.benchtime === undefined ? {} : { benchtimeMs: Number(v.benchtime) }),
      ...(v.count === undefined ? {} : { count: Number(v.count) }),
    });
    if (v.json !== undefined) await writeFile(v.json, `${JSON.stringify(report, null, 2)}\n`);
    return 0;
  }

  const report = await conformance(factory, {
    label: name,
    ...(only.length > 0 ? { only } : {}),
    ...(v.skip === undefined ? {} : { skip: v.skip }),
    ...(v.root === undefined ? {} : { root: v.root }),
    ...(v['quota-root'] === undefined ? {} : { quotaRoot: v['quota-root'] }),
  });
  if (v.json !== undefined) await writeFile(v.json, `${JSON.stringify(report, null, 2)}\n`);
  if (report.failed > 0) return 1;
  if (v['fail-on-skip'] === true && report.skipped > 0) return 1;
  return 0;
}

function parse() {
  return parseArgs({
    options: {
      driver: { type: 'string' },
      root: { type: 'string' },
      bench: { type: 'boolean' },
      json: { type: 'string' },
      option: { type: 'string', multiple: true },
      only: { type: 'string', multiple: true },
      skip: { type: 'string', multiple: true },
      'quota-root': { type: 'string' },
      benchtime: { type: 'string' },
      count: { type: 'string' },
      'fail-on-skip': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`graphtest: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
