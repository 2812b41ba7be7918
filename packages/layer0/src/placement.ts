/**
 * Putting a container layer's overlay directory inside its volume and taking its upper back out.
 *
 * The overlay driver makes layer X in its own home (`<home>/overlay/X`: diff, work, link, lower).
 * moveLayerIntoVolume makes the same directory in the mounted volume (`<home>/X-vol/X`) - with the
 * upper saved there earlier as its diff, when there is one - and then swaps the overlay's directory
 * for a symlink to it in one renameat2(RENAME_EXCHANGE): the overlay driver sees the layer in the
 * volume from then on (its lookups follow the symlink), and its remove() only takes the symlink.
 *
 * saveUpper is the reverse of the restore: the layer's diff becomes `<home>/X-vol/upper` and the
 * rest of the layer directory goes. Restoring is a rename of `upper` to `X/diff` and saving the
 * rename back, so at no time do both exist and no step copies data.
 */
import { chmod, chown, copyFile, lstat, mkdir, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { debuglog } from 'node:util';
import { errorCode } from '@graphdriver/core';
import { AT, RENAME, renameat2Sync } from '@graphdriver/native';
import { MOVE_PREFIX, type Layer0Layout } from './layout.js';

const debug = debuglog('graphdriver:layer0');

const DIFF = 'diff';

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** True when the overlay's entry for `id` is our symlink into the volume (the move completed). */
export async function isMovedIntoVolume(layout: Layer0Layout, id: string): Promise<boolean> {
  try {
    return (await lstat(layout.overlayEntry(id))).isSymbolicLink();
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Moves overlay layer `id`, just made in the overlay home, into the volume mounted at
 * `layout.mountPoint(id)`. Resolves true when a saved upper was restored as its diff.
 */
export async function moveLayerIntoVolume(layout: Layer0Layout, id: string): Promise<boolean> {
  const hostDir = layout.overlayEntry(id);
  const volDir = layout.layerInVolume(id);
  const saved = layout.savedUpper(id);
  const top = await lstat(hostDir);
  if (!top.isDirectory()) throw new Error(`${hostDir} is not a directory`);
  // what an interrupted earlier attempt left (its diff, if it had been restored, was saved back)
  await rm(volDir, { recursive: true, force: true });
  await mkdir(volDir);
  await chown(volDir, top.uid, top.gid);
  await chmod(volDir, top.mode & 0o7777);

  let restored = false;
  for (const entry of await readdir(hostDir, { withFileTypes: true })) {
    const from = join(hostDir, entry.name);
    const to = join(volDir, entry.name);
    const st = await lstat(from);
    if (entry.isDirectory()) {
      if (entry.name === DIFF && (await exists(saved))) {
        // the container's files from before: a rename inside the volume
        await rename(saved, to);
        restored = true;
        continue;
      }
      // diff and work of a new layer: empty directories, made with their mode and owner
      await mkdir(to);
      await chown(to, st.uid, st.gid);
      await chmod(to, st.mode & 0o7777);
    } else if (entry.isSymbolicLink()) {
      await symlink(await readlink(from), to);
    } else if (entry.isFile()) {
      // link, lower: small state files
      await copyFile(from, to);
      await chown(to, st.uid, st.gid);
      await chmod(to, st.mode & 0o7777);
    }
  }

  const link = join(layout.overlayHome, `${MOVE_PREFIX}${id}`);
  await rm(link, { recursive: true, force: true });
  await symlink(relative(layout.overlayHome, volDir), link);
  // one step: the overlay sees its old directory or the volume's, never neither
  renameat2Sync(AT.FDCWD, link, AT.FDCWD, hostDir, RENAME.EXCHANGE);
  await rm(link, { recursive: true, force: true });
  debug('moved layer %s into its volume (%s)%s', id, volDir, restored ? ', upper restored' : '');
  return restored;
}

/**
 * Saves the diff of `id`'s layer in its volume as the volume's `upper` and removes the rest of the
 * layer directory there. Resolves true when a diff was saved.
 */
export async function saveUpper(layout: Layer0Layout, id: string): Promise<boolean> {
  const volDir = layout.layerInVolume(id);
  const diff = join(volDir, DIFF);
  let saved = false;
  if (await exists(diff)) {
    // both can only exist if a restore was undone by hand; the layer's diff is the newer one
    await rm(layout.savedUpper(id), { recursive: true, force: true });
    await rename(diff, layout.savedUpper(id));
    saved = true;
  }
  await rm(volDir, { recursive: true, force: true });
  debug('saved the upper of %s: %s', id, saved);
  return saved;
}

/** Entries an interrupted move left in the overlay home. */
export async function removeMoveLeftovers(layout: Layer0Layout): Promise<void> {
  let names: string[];
  try {
    names = await readdir(layout.overlayHome);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return;
    throw err;
  }
  for (const n of names) if (n.startsWith(MOVE_PREFIX)) await rm(join(layout.overlayHome, n), { recursive: true, force: true });
}
