/**
 * The qemu lane: scripts/vm-lane.sh boots Debian's 6.1 kernel, which has what this project's CI
 * kernel lacks (xfs and ext4 project quotas, device-mapper with dm-thin), and runs one command in it
 * with the workspace shared read-write at the same path. A test file that needs such a kernel runs
 * its cases directly where the kernel has the feature and otherwise re-runs itself through here.
 * When the lane cannot run at all (qemu missing), that is a failure, not a skip: scripts/setup.sh
 * installs qemu, and a test that silently did not run would look like a pass.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createScratchFs } from './scratch-fs.js';
import { printReportLines } from './reports.js';

/** The workspace root (this file is packages/testkit/src/vm-lane.ts). */
export const WORKSPACE_ROOT = fileURLToPath(new URL('../../..', import.meta.url)).replace(/\/$/, '');
export const VM_LANE = `${WORKSPACE_ROOT}/scripts/vm-lane.sh`;

/** True inside the guest (vm-lane exports VMLANE_GUEST=1). */
export const inVmLane = process.env.VMLANE_GUEST === '1';

/** Why the lane cannot run on this machine, or undefined when it can. */
export function vmLaneUnavailable(): string | undefined {
  if (!existsSync(VM_LANE)) return `${VM_LANE} is missing`;
  if (!['/usr/bin/qemu-system-x86_64', '/usr/local/bin/qemu-system-x86_64'].some((p) => existsSync(p))) {
    return 'qemu-system-x86_64 is not installed (scripts/setup.sh installs it)';
  }
  return undefined;
}

export interface VmLaneRun {
  /** The guest command's exit code (125: the guest gave none - boot failure, panic, timeout). */
  code: number;
  /** What the command printed (stdout and stderr merged), colours stripped. */
  output: string;
  seconds: number;
}

/**
 * Runs `argv` in the guest with `cwd` as its working directory, echoing its output with a `  | `
 * prefix. Throws when the lane cannot run here.
 */
export async function runInVmLane(argv: string[], opts: { cwd: string; timeoutSeconds?: number }): Promise<VmLaneRun> {
  const why = vmLaneUnavailable();
  if (why !== undefined) throw new Error(`the qemu lane cannot run: ${why}`);
  const started = Date.now();
  const child = spawn(VM_LANE, argv, {
    cwd: opts.cwd,
    env: {
      ...process.env,
      VMLANE_SHARE: WORKSPACE_ROOT,
      VMLANE_TIMEOUT: String(opts.timeoutSeconds ?? 600),
      FORCE_COLOR: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (d: Buffer): void => {
    output += d.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 125)));
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  console.log(plain.trimEnd().split('\n').map((l) => `  | ${l}`).join('\n'));
  return { code, output: plain, seconds: (Date.now() - started) / 1000 };
}

/**
 * Runs this package's uvu test files matching `pattern` in the guest and throws unless they all
 * passed and exactly `expectedPassed` of them ran (a guest that lost or skipped tests fails too).
 */
export async function runUvuInVmLane(pkgDir: string, pattern: string, expectedPassed: number): Promise<void> {
  const r = await runInVmLane(['node', '--import', 'tsx', 'node_modules/uvu/bin.js', 'test', pattern], { cwd: pkgDir });
  const passed = Number(/Passed:\s+(\d+)/.exec(r.output)?.[1] ?? -1);
  if (r.code !== 0 || passed !== expectedPassed) {
    throw new Error(`qemu lane: exit ${r.code}, ${passed} passed where ${expectedPassed} were expected (after ${r.seconds.toFixed(1)} s)`);
  }
  console.log(`  qemu lane: ${passed} passed in ${r.seconds.toFixed(1)} s`);
}

/** Whether this kernel can mount xfs with project quotas (the lane's kernel can; this project's CI kernel cannot). */
export async function kernelHasProjectQuota(): Promise<boolean> {
  try {
    const fs = await createScratchFs('xfs', { size: '320M', mountOptions: ['prjquota'] });
    await fs.dispose();
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a script in the guest that prints graphtest's closing line for `label`, then says that line
 * (and uvu-shaped totals) again on the host, where the workspace's test runner counts them: the
 * guest's own lines reach the host prefixed. A lane that could not run, died before its line, or
 * exited non-zero counts as a failure. Returns the exit code to use.
 */
export async function runReportInVmLane(label: string, argv: string[], opts: { cwd: string; timeoutSeconds?: number }): Promise<number> {
  const lane = await runInVmLane(argv, opts).catch((err: unknown) => {
    console.log(`  fail  qemu lane: ${(err as Error).message}`);
    return undefined;
  });
  const line = lane && new RegExp(`^${label}: (\\d+) passed, (\\d+) failed, (\\d+) skipped`, 'm').exec(lane.output);
  if (!lane || !line) {
    printReportLines(label, { passed: 0, failed: 1, skipped: 0 });
    return 1;
  }
  console.log(`  qemu lane: exit ${lane.code} after ${lane.seconds.toFixed(1)} s`);
  const r = { passed: Number(line[1]), failed: Number(line[2]) + (lane.code === 0 ? 0 : 1), skipped: Number(line[3]) };
  printReportLines(label, r);
  return r.failed === 0 ? 0 : 1;
}
