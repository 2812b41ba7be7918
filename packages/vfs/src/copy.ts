/**
 * copyTree: a directory tree copied with everything a container sees of it - moby's and
 * containers/storage's drivers/copy.DirCopy, for vfs layers.
 *
 * - Regular file data goes through libuv's copyfile with COPYFILE_FICLONE: a reflink (FICLONE)
 *   where the filesystem can share extents (xfs reflink=1, btrfs), else copy_file_range (in-kernel,
 *   no user-space buffers), else read/write. Small files are copied synchronously: a thread-pool
 *   round trip costs more than their copy (measured on 10,000 files of 64 bytes on a journaled ext4:
 *   0.9-1.2 s async, 0.43-0.53 s sync, cp -a 0.37-0.49 s); large ones go to the pool, several at
 *   once. The walk yields to the event loop every few thousand entries.
 * - Hard links inside the tree stay hard links (by source inode), devices, FIFOs and sockets are
 *   made with mknod, symlinks are recreated with their target.
 * - Then owners, modes, xattrs (binary values, security.capability included) and atime/mtime with
 *   nanoseconds, in that order, because chown clears setuid/setgid and security.capability; symlinks
 *   get their own times (AT_SYMLINK_NOFOLLOW); directories get theirs last, deepest first, after
 *   everything inside them was written.
 *
 * Nothing is ever followed: entries are read with lstat semantics and every destination path is
 * inside a directory this copy made itself.
 */
import { constants as fsConstants, copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { debuglog } from 'node:util';
import {
  AT,
  S,
  fchmodatSync,
  fchownatSync,
  fstatatSync,
  lgetxattrSync,
  linkatSync,
  llistxattrSync,
  lsetxattrSync,
  mknodatSync,
  readlinkatSync,
  symlinkatSync,
  utimensatSync,
  type NativeStat,
} from '@graphdriver/native';

const debug = debuglog('graphdriver:vfs');

export interface CopyTreeOptions {
  signal?: AbortSignal;
  /** File copies in flight at once (thread-pool jobs). Default 8. */
  concurrency?: number;
  /** Keep going when an xattr cannot be set on the destination (moby's vfs.xattrs=i_want_broken_containers). Default false. */
  bestEffortXattrs?: boolean;
}

export interface CopyTreeStats {
  files: number;
  dirs: number;
  hardLinks: number;
  others: number;
  bytes: number;
}

const NOFOLLOW = AT.SYMLINK_NOFOLLOW;
/** Files up to this size are copied without a thread-pool hop. */
const SYNC_COPY_MAX = 256 * 1024;
/** Entries handled between two yields to the event loop. */
const YIELD_EVERY = 2048;
/** COPYFILE_EXCL: the destination is new; FICLONE: reflink when possible, falling back inside libuv. */
const COPY_MODE = fsConstants.COPYFILE_EXCL | fsConstants.COPYFILE_FICLONE;

interface Pending {
  src: string;
  dst: string;
  st: NativeStat;
}

function type(st: NativeStat): number {
  return st.mode & S.IFMT;
}

function copyXattrs(src: string, dst: string, bestEffort: boolean): void {
  let names: string[];
  try {
    names = llistxattrSync(src);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return;
    throw err;
  }
  for (const name of names) {
    const value = lgetxattrSync(src, name);
    try {
      lsetxattrSync(dst, name, value);
    } catch (err) {
      if (!bestEffort) throw err;
      debug('copyTree: dropping xattr %s of %s: %s', name, dst, (err as Error).message);
    }
  }
}

/** Owner, mode, xattrs and times of `dst` from `st`, in the order that keeps each of them. */
function applyMetadata(src: string, dst: string, st: NativeStat, bestEffort: boolean): void {
  fchownatSync(AT.FDCWD, dst, st.uid, st.gid, NOFOLLOW);
  // A symlink's mode is always 0777 and cannot be changed.
  if (type(st) !== S.IFLNK) fchmodatSync(AT.FDCWD, dst, st.mode & 0o7777);
  copyXattrs(src, dst, bestEffort);
  utimensatSync(AT.FDCWD, dst, st.atime, st.mtime, NOFOLLOW);
}

/**
 * Copies the tree at `src` onto `dst`. `dst` must exist as an empty directory (the caller may have
 * given it a project quota); it ends with `src`'s owner, mode, xattrs and times.
 */
export async function copyTree(src: string, dst: string, opts: CopyTreeOptions = {}): Promise<CopyTreeStats> {
  const bestEffort = opts.bestEffortXattrs ?? false;
  const concurrency = Math.max(1, opts.concurrency ?? 8);
  const stats: CopyTreeStats = { files: 0, dirs: 0, hardLinks: 0, others: 0, bytes: 0 };
  /** First destination of each multiply-linked source inode. */
  const linked = new Map<string, string>();
  const laterLinks: Array<{ target: string; dst: string }> = [];
  const dirs: Pending[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const copyOne = async (p: Pending): Promise<void> => {
    await copyFile(p.src, p.dst, COPY_MODE);
    applyMetadata(p.src, p.dst, p.st, bestEffort);
  };
  const schedule = async (p: Pending): Promise<void> => {
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    if (failure !== undefined) throw failure;
    const job = copyOne(p).then(
      () => {
        inFlight.delete(job);
      },
      (err: unknown) => {
        inFlight.delete(job);
        failure ??= err;
      },
    );
    inFlight.add(job);
  };

  const rootStat = fstatatSync(AT.FDCWD, src, NOFOLLOW);
  if (type(rootStat) !== S.IFDIR) throw Object.assign(new Error(`ENOTDIR: not a directory, copy '${src}'`), { code: 'ENOTDIR', path: src });
  dirs.push({ src, dst, st: rootStat });

  // Depth-first with an explicit stack: deep trees cannot overflow the JS stack.
  const stack: Array<{ src: string; dst: string }> = [{ src, dst }];
  let sinceYield = 0;
  while (stack.length > 0) {
    opts.signal?.throwIfAborted();
    if (failure !== undefined) break;
    const dir = stack.pop()!;
    for (const name of readdirSync(dir.src)) {
      const s = `${dir.src}/${name}`;
      const d = `${dir.dst}/${name}`;
      if (++sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
        opts.signal?.throwIfAborted();
      }
      const st = fstatatSync(AT.FDCWD, s, NOFOLLOW);
      const t = type(st);
      if (t === S.IFDIR) {
        // Writable for us until its own mode is set, after its content.
        mkdirSync(d, { mode: 0o700 });
        dirs.push({ src: s, dst: d, st });
        stack.push({ src: s, dst: d });
        stats.dirs++;
        continue;
      }
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = linked.get(key);
        if (first !== undefined) {
          laterLinks.push({ target: first, dst: d });
          continue;
        }
        linked.set(key, d);
      }
      switch (t) {
        case S.IFREG:
          stats.files++;
          stats.bytes += st.size;
          if (st.size <= SYNC_COPY_MAX) {
            copyFileSync(s, d, COPY_MODE);
            applyMetadata(s, d, st, bestEffort);
          } else {
            await schedule({ src: s, dst: d, st });
          }
          break;
        case S.IFLNK:
          symlinkatSync(readlinkatSync(AT.FDCWD, s), AT.FDCWD, d);
          applyMetadata(s, d, st, bestEffort);
          stats.others++;
          break;
        default:
          // char and block devices, FIFOs, sockets: mknod makes all of them.
          mknodatSync(AT.FDCWD, d, t | (st.mode & 0o7777), st.rdevMajor, st.rdevMinor);
          applyMetadata(s, d, st, bestEffort);
          stats.others++;
      }
    }
  }
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;
  opts.signal?.throwIfAborted();

  // Links after their target has its content and metadata (which the link shares).
  for (const l of laterLinks) {
    linkatSync(AT.FDCWD, l.target, AT.FDCWD, l.dst);
    stats.hardLinks++;
  }
  // Directories last and deepest first, so that nothing written inside changes their mtime again.
  for (let i = dirs.length - 1; i >= 0; i--) {
    const d = dirs[i]!;
    applyMetadata(d.src, d.dst, d.st, bestEffort);
  }
  return stats;
}
