/** A temp dir for one mount test; whatever the test left mounted under it is lazily unmounted (util-linux, deepest first) and the dir removed. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { mountsUnder } from '../../src/fs/mountinfo.js';

const run = promisify(execFile);

export async function withMountTmp(prefix: string, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(`/tmp/${prefix}-`);
  try {
    await fn(dir);
  } finally {
    const left = (await mountsUnder(dir)).map((m) => m.mountPoint).sort((a, b) => b.length - a.length);
    for (const p of left) await run('umount', ['-l', p]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
