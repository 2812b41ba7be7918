/**
 * Re-running a test file inside the qemu lane (/work/shared/tools/vm-lane.sh: Debian's 6.1 kernel,
 * which has what this host kernel lacks: project quotas, device-mapper). The guest sees the
 * workspace read-write at the same path and runs the same uvu command on the same file.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as assert from 'uvu/assert';

const run = promisify(execFile);
const VM_LANE = '/work/shared/tools/vm-lane.sh';

/** True inside the guest (vm-lane exports VMLANE_GUEST=1). */
export const inVmLane = process.env.VMLANE_GUEST === '1';

/** Why the lane cannot run here, or undefined when it can. */
export function vmLaneUnavailable(): string | undefined {
  if (!existsSync(VM_LANE)) return `${VM_LANE} is missing`;
  if (!existsSync('/usr/bin/qemu-system-x86_64')) return 'qemu-system-x86_64 is not installed';
  return undefined;
}

/**
 * Runs `uvu test <pattern>` of this package in the guest and asserts that exactly `expectedPassed`
 * tests passed there (so a guest that skipped or lost tests fails here too).
 */
export async function runInVmLane(pattern: string, expectedPassed: number): Promise<void> {
  const pkgDir = fileURLToPath(new URL('../..', import.meta.url));
  const workspace = fileURLToPath(new URL('../../../..', import.meta.url));
  let stdout = '';
  try {
    ({ stdout } = await run(VM_LANE, ['node', '--import', 'tsx', 'node_modules/uvu/bin.js', 'test', pattern], {
      cwd: pkgDir,
      env: { ...process.env, VMLANE_SHARE: workspace, FORCE_COLOR: '0' },
      maxBuffer: 16 << 20,
      timeout: 240_000,
    }));
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    assert.unreachable(`the vm-lane run failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
  const passed = /Passed:\s+(\d+)/.exec(stdout);
  assert.ok(passed && Number(passed[1]) === expectedPassed, `expected ${expectedPassed} passed in the guest:\n${stdout}`);
}
