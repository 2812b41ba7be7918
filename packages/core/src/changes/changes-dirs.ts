/**
 * changesDirs: the changes that turn one directory tree (the parent layer) into another (the
 * layer), found by walking both trees side by side - moby's ChangesDirs with its Linux walker
 * (pkg/archive changes.go addChanges, changes_linux.go) and containers/storage's extra checks.
 *
 * Rules, as moby's:
 * - an entry only in the new tree is an add, and so is everything below it;
 * - an entry only in the old tree is a delete (its descendants are not listed);
 * - an entry in both is a modify when statDifferent says so (mode, owner, rdev, and for
 *   non-directories size and mtime with whole-second tolerance), when security.capability or a
 *   user.* xattr differs, or when a symlink's target differs (the last two from containers/storage);
 * - a directory with any change below it is a modify itself (the root never is);
 * - an entry that is the very same inode on the same device in both trees is unchanged, and its
 *   subtree is not walked (moby prunes on getdents inode numbers the same way).
 * The result is sorted by path in byte order.
 *
 * Directory reads and lstats run synchronously, one directory at a time, yielding to the event
 * loop between directories: on a cached tree that is 3-4x faster than an async call per entry
 * (measured: 10,100 entries x 2 trees, 61 ms sync vs 170-310 ms with one promise per lstat).
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { debuglog } from 'node:util';
import type { Change } from '../driver.js';
import { sortChanges } from './paths.js';
import { isDir, isRegular, isSymlink, lstatEntry, sameObject, statDifferent, type EntryStat } from './stat.js';
import { readComparedXattrs, sameXattrs } from './xattrs.js';

const debug = debuglog('graphdriver:core');

export interface ChangesDirsOptions {
  signal?: AbortSignal;
}

/** Entries handled between two yields to the event loop. */
const YIELD_EVERY = 2048;

interface Walk {
  newRoot: string;
  oldRoot: string | undefined;
  changes: Change[];
  signal: AbortSignal | undefined;
  sinceYield: number;
}

function readNames(dir: string): string[] {
  return readdirSync(dir).sort();
}

/** Whether two entries that statDifferent calls equal still differ in what stat does not show. */
function extrasDiffer(oldPath: string, newPath: string, newStat: EntryStat): boolean {
  if (isSymlink(newStat) && readlinkSync(oldPath) !== readlinkSync(newPath)) return true;
  // security.capability only exists on regular files; user.* on regular files and directories.
  if (isRegular(newStat) || isDir(newStat)) {
    return !sameXattrs(readComparedXattrs(oldPath), readComparedXattrs(newPath));
  }
  return false;
}

/**
 * Compare the directory `rel` ('' for the root) of both trees. `oldIsDir` false means the old tree
 * has no directory there, so everything below is new. Returns whether any change was recorded below.
 */
async function walkPair(w: Walk, rel: string, oldIsDir: boolean): Promise<boolean> {
  w.signal?.throwIfAborted();
  const newNames = readNames(w.newRoot + rel || '/');
  const oldNames = oldIsDir && w.oldRoot !== undefined ? readNames(w.oldRoot + rel || '/') : [];
  let changed = false;
  const subdirs: Array<{ path: string; oldIsDir: boolean; recorded: boolean }> = [];

  let i = 0;
  let j = 0;
  while (i < newNames.length || j < oldNames.length) {
    const nn = newNames[i];
    const on = oldNames[j];
    let name: string;
    let inNew = false;
    let inOld = false;
    if (on === undefined || (nn !== undefined && nn < on)) {
      name = nn as string;
      inNew = true;
      i++;
    } else if (nn === undefined || on < nn) {
      name = on;
      inOld = true;
      j++;
    } else {
      name = nn;
      inNew = inOld = true;
      i++;
      j++;
    }
    const path = `${rel}/${name}`;
    const newStat = inNew ? lstatEntry(w.newRoot + path) : undefined;
    const oldStat = inOld ? lstatEntry((w.oldRoot as string) + path) : undefined;
    w.sinceYield++;

    if (newStat === undefined) {
      if (oldStat !== undefined) {
        w.changes.push({ path, kind: 'delete' });
        changed = true;
      }
      continue;
    }
    if (oldStat === undefined) {
      w.changes.push({ path, kind: 'add' });
      changed = true;
      if (isDir(newStat)) subdirs.push({ path, oldIsDir: false, recorded: true });
      continue;
    }
    if (sameObject(oldStat, newStat)) continue;
    let recorded = false;
    if (
      statDifferent(oldStat, newStat) ||
      extrasDiffer((w.oldRoot as string) + path, w.newRoot + path, newStat)
    ) {
      w.changes.push({ path, kind: 'modify' });
      changed = recorded = true;
    }
    // A non-directory that replaced a directory hides the old subtree: nothing below is listed.
    if (isDir(newStat)) subdirs.push({ path, oldIsDir: isDir(oldStat), recorded });
  }

  for (const sub of subdirs) {
    if (w.sinceYield >= YIELD_EVERY) {
      w.sinceYield = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const inner = await walkPair(w, sub.path, sub.oldIsDir);
    if (inner) {
      changed = true;
      // moby: a directory with changes inside is listed, so that its metadata travels with them.
      if (!sub.recorded) w.changes.push({ path: sub.path, kind: 'modify' });
    }
  }
  return changed;
}

/**
 * The changes from `oldDir` to `newDir`, sorted by path. Without `oldDir` every entry of `newDir`
 * is an add.
 */
export async function changesDirs(newDir: string, oldDir?: string, opts: ChangesDirsOptions = {}): Promise<Change[]> {
  const started = performance.now();
  const w: Walk = {
    newRoot: newDir.replace(/\/+$/, ''),
    oldRoot: oldDir === undefined || oldDir === '' ? undefined : oldDir.replace(/\/+$/, ''),
    changes: [],
    signal: opts.signal,
    sinceYield: 0,
  };
  await walkPair(w, '', w.oldRoot !== undefined);
  sortChanges(w.changes);
  debug('changesDirs %s <- %s: %d changes in %d ms', newDir, oldDir ?? '(empty)', w.changes.length, Math.round(performance.now() - started));
  return w.changes;
}
