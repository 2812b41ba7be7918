/**
 * commitStaged for a container layer on a volume. The overlay driver extracts staged diffs into its
 * own staging directory and swaps one in for a layer's diff with a rename - which cannot cross from
 * the host filesystem into a volume. So the staged tree is streamed across (core's pack and unpack,
 * whiteouts kept in the form the store uses, owners, modes, xattrs, devices, hard links and times
 * as they are) into a directory beside the layer's diff in the volume, swapped in there with one
 * renameat2(RENAME_EXCHANGE), and the old diff and the staging directory are removed: a reader sees
 * the old diff or the new one, as with the overlay driver's own commit.
 */
import { chmod, chown, mkdtemp, rm, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { debuglog } from 'node:util';
import { InvalidOptionError, pack, unpack, type StagedDiff } from '@graphdriver/core';
import { AT, RENAME, renameat2Sync } from '@graphdriver/native';

const debug = debuglog('graphdriver:layer0');

export interface CrossFsCommit {
  /** The overlay driver's staging directory (`<overlay home>/staging`): a staged diff must come from there. */
  stagingRoot: string;
  /** The layer's directory in the volume (`<home>/X-vol/X`). */
  layerDir: string;
  /** How the store keeps whiteouts: overlay's 0/0 devices, or AUFS files under a mount program. */
  whiteouts: 'overlay' | 'aufs';
  signal?: AbortSignal;
}

export async function commitStagedAcross(staged: StagedDiff, c: CrossFsCommit): Promise<void> {
  const rel = relative(c.stagingRoot, staged.stagingDir);
  if (rel === '' || rel.startsWith('..') || rel.includes(sep)) {
    throw new InvalidOptionError('staged', `layer0: ${JSON.stringify(staged.stagingDir)} is not a staging directory of this driver`);
  }
  const source = join(c.stagingRoot, rel, 'diff');
  const root = await stat(source);
  const target = await mkdtemp(join(c.layerDir, '.diff-staged-'));
  try {
    await chown(target, root.uid, root.gid);
    await chmod(target, root.mode & 0o7777);
    const tar = pack(source, { sourceWhiteouts: c.whiteouts, ...(c.signal === undefined ? {} : { signal: c.signal }) });
    await unpack(target, tar, { whiteouts: c.whiteouts, ...(c.signal === undefined ? {} : { signal: c.signal }) });
    renameat2Sync(AT.FDCWD, target, AT.FDCWD, join(c.layerDir, 'diff'), RENAME.EXCHANGE);
  } catch (err) {
    await rm(target, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  // `target` holds the old diff now
  await rm(target, { recursive: true, force: true });
  await rm(join(c.stagingRoot, rel), { recursive: true, force: true });
  debug('committed staged diff %s into %s across filesystems', staged.stagingDir, c.layerDir);
}
