/**
 * The dm-thin backend for real. This host's kernel has no device-mapper, so on the host this script
 * re-runs itself inside the qemu lane (scripts/vm-lane.sh boots Debian's 6.1 kernel, which has
 * dm-thin-pool) and says the guest's closing lines again, where the workspace's runner counts them.
 * In the guest (VMLANE_GUEST=1) it runs, on dm-thin pools:
 *  - the whole graphtest conformance suite (`devmapper-thin: N passed, N failed, N skipped`), with
 *    DeepLayerRead at 48 layers instead of 128: the guest is emulated (10-40x slower) and 128 layers
 *    alone take 2.5 minutes there; 128 runs on the reflink pool on the host;
 *  - the driver's own cases, the same as driver.test.ts runs on the reflink pool, and those only
 *    dm-thin has: dm.thinpooldev, dm.datadev/dm.metadatadev (`devmapper-thin-driver: ...`).
 * A backend that is "not supported" in the guest is a failure, not a skip.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformance, runCases, type Report } from '@graphdriver/graphtest';
import { inVmLane, printReportLines, runInVmLane } from '@graphdriver/testkit';
import { init, ROOTFS_MODE } from '../src/index.js';
import { driverCases } from './helpers/driver-cases.js';
import { CONFORMANCE_OPTIONS } from './helpers/stores.js';
import { thinCases } from './helpers/thin-cases.js';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CONFORMANCE = 'devmapper-thin';
const DRIVER = 'devmapper-thin-driver';
export const LANE_DEEP_LAYER_READ = 48;

function lines(r: Report): void {
  for (const c of r.cases) {
    console.log(`  ${c.status}  ${r.driver}: ${c.name} (${Math.round(c.ms)} ms)${c.reason ? `: ${c.reason}` : ''}${c.error ? `: ${c.error}` : ''}`);
  }
}

async function inGuest(): Promise<number> {
  const only = process.env.GRAPHTEST_ONLY?.split(',').filter((s) => s !== '');
  const ownCases = [...driverCases('thin'), ...thinCases];
  const isOwn = (sel: string): boolean => ownCases.some((c) => c.name.startsWith(sel));
  const wanted = (name: string): boolean => only === undefined || only.some((o) => name.startsWith(o));
  // GRAPHTEST_ONLY may name the suite's cases, this driver's, or both: each part gets its own
  const suiteOnly = only?.filter((sel) => !isOwn(sel));
  console.log(`  DeepLayerRead runs with ${LANE_DEEP_LAYER_READ} layers here (128 on the host's reflink pool): the guest is emulated`);
  const suite: Report =
    suiteOnly !== undefined && suiteOnly.length === 0
      ? { driver: CONFORMANCE, cases: [], passed: 0, failed: 0, skipped: 0 }
      : await conformance((root) => init({ home: join(root, 'devmapper'), root, options: [...CONFORMANCE_OPTIONS, 'dm.backend=thin'] }), {
          label: CONFORMANCE,
          capabilities: { rootMode: ROOTFS_MODE },
          deepLayerRead: [LANE_DEEP_LAYER_READ],
          ...(suiteOnly === undefined ? {} : { only: suiteOnly }),
        });
  const own = await runCases<null>(
    ownCases.filter((c) => wanted(c.name)).map((c) => ({ name: c.name, run: () => c.run() })),
    { label: DRIVER, setup: async () => null, teardown: async () => undefined, output: null },
  );
  lines(own);
  printReportLines(CONFORMANCE, suite);
  printReportLines(DRIVER, own);
  return suite.failed + suite.skipped + own.failed + own.skipped === 0 ? 0 : 1;
}

async function onHost(): Promise<number> {
  console.log('  dm-thin runs in the qemu lane: this kernel has no device-mapper');
  // GRAPHTEST_ONLY selects cases in the guest too (the lane passes only the variables it is told about)
  process.env.VMLANE_ENV = [process.env.VMLANE_ENV, 'GRAPHTEST_ONLY'].filter((v) => v !== undefined && v !== '').join(' ');
  const lane = await runInVmLane(['node', '--import', 'tsx', 'test/thin-lane.ts'], { cwd: pkgDir, timeoutSeconds: 900 }).catch((err: unknown) => {
    console.log(`  fail  qemu lane: ${(err as Error).message}`);
    return undefined;
  });
  let bad = 0;
  for (const label of [CONFORMANCE, DRIVER]) {
    const line = lane && new RegExp(`^${label}: (\\d+) passed, (\\d+) failed, (\\d+) skipped`, 'm').exec(lane.output);
    const r = line ? { passed: Number(line[1]), failed: Number(line[2]), skipped: Number(line[3]) } : { passed: 0, failed: 1, skipped: 0 };
    bad += r.failed + r.skipped;
    printReportLines(label, r);
  }
  if (lane) console.log(`  qemu lane: exit ${lane.code} after ${lane.seconds.toFixed(1)} s`);
  if (lane && lane.code !== 0 && bad === 0) {
    // the guest failed outside any case (a crash after its lines): count it
    printReportLines(`${DRIVER}-exit`, { passed: 0, failed: 1, skipped: 0 });
    bad++;
  }
  return bad === 0 ? 0 : 1;
}

process.exitCode = inVmLane ? await inGuest() : await onHost();
