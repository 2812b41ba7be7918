/**
 * What this host's kernel cannot show, in the qemu lane (scripts/vm-lane.sh boots Debian's 6.1
 * kernel): on the host this script re-runs itself there and passes its exit code on. In the guest
 * (VMLANE_GUEST=1) it runs:
 *
 *  - graphtest's SetQuota on a plain layer0 layer, with `quotaRoot` on an xfs mounted with prjquota:
 *    the storageOpt `size` of a layer that is not on a volume reaches the wrapped overlay driver's
 *    project quota (on the host that case skips: no project quotas in its kernel);
 *  - container layers on loopback volumes on Linux 6.1, whose overlay has no `lowerdir+` (mount(2)):
 *    graphtest cases with every writable layer on a volume, and the engine's pattern round trip
 *    (`<X>-init`, `<X>`, files back after remove + re-create and after a restart).
 *
 * Prints `layer0-quota: N passed, N failed, N skipped` and uvu-shaped totals; exits non-zero on failure.
 */
import { strict as assert } from 'node:assert';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformance, runCases, type Report } from '@graphdriver/graphtest';
import { finishLaneReports, inVmLane, runReportInVmLane, withScratchFs } from '@graphdriver/testkit';
import { init, type Layer0Driver } from '../src/index.js';
import { loopsUnder, mountsUnderRoot, withRoot } from './helpers.js';
import { onVolumes } from './on-volumes.js';

const pkgDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LABEL = 'layer0-quota';

const start = async (root: string, options: string[] = []): Promise<Layer0Driver> =>
  (await init({ home: join(root, 'layer0'), root, options })) as Layer0Driver;

async function roundTrip(): Promise<void> {
  await withRoot(async (root) => {
    let d = await start(root, ['layer0.volume_size=64M']);
    try {
      await d.create('img');
      await d.createReadWrite('c-init', 'img');
      await d.createReadWrite('c', 'c-init');
      let p = await d.get('c');
      await writeFile(join(p, 'f'), 'on 6.1');
      await d.put('c');
      await d.remove('c');
      await d.remove('c-init');
      await d.createReadWrite('c-init', 'img');
      await d.createReadWrite('c', 'c-init');
      await d.cleanup();
      d = await start(root, ['layer0.volume_size=64M']);
      p = await d.get('c');
      assert.equal(await readFile(join(p, 'f'), 'utf8'), 'on 6.1');
      await d.put('c');
    } finally {
      await d.cleanup();
    }
    assert.deepEqual(await mountsUnderRoot(root), []);
    assert.deepEqual(await loopsUnder(root), []);
  });
}

async function inGuest(): Promise<number> {
  const reports: Report[] = [];
  await withScratchFs('xfs', { size: '512M', mountOptions: ['prjquota'] }, async (fs) => {
    reports.push(await conformance((root) => start(root), { label: `${LABEL}-setquota`, only: ['SetQuota'], quotaRoot: fs.path, output: null }));
  });
  reports.push(
    await conformance(async (root) => onVolumes(await start(root, ['layer0.volume_size=64M'])), {
      label: `${LABEL}-volumes-linux61`,
      only: ['DiffApply(10)', 'SetQuota', 'CleanupLeavesNoMount'],
      output: null,
    }),
  );
  reports.push(
    await runCases<null>([{ name: 'ContainerRoundTrip(linux 6.1)', run: roundTrip }], {
      label: `${LABEL}-roundtrip`,
      setup: async () => null,
      teardown: async () => undefined,
      output: null,
    }),
  );
  return finishLaneReports(LABEL, reports);
}

async function onHost(): Promise<number> {
  console.log('  SetQuota through overlay and Linux 6.1 run in the qemu lane: this kernel has no project quotas');
  return runReportInVmLane(LABEL, ['node', '--import', 'tsx', 'test/quota-lane.ts'], { cwd: pkgDir });
}

process.exitCode = inVmLane ? await inGuest() : await onHost();
