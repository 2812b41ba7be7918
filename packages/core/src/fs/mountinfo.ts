/**
 * The mount table as the kernel shows it in /proc/self/mountinfo (proc(5)): parsing (octal escapes
 * such as `\040` for a space, optional fields, super options) and the questions drivers ask of it:
 * which mounts are at or under a path, is a path a mount point, what is mounted at a path.
 *
 * Every call reads the table afresh: mounts change under us (other processes, propagation), and a
 * cached table would answer yesterday's question. Parsing follows moby/sys/mountinfo, which is what
 * moby and containers/storage use, including its tolerance of spaces in the super options of old
 * cifs mounts.
 */
import { closeSync, fstatSync } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { AT, O, RESOLVE, openat2Sync } from '@graphdriver/native';
import { errorCode } from '../errors.js';

/** One line of mountinfo. Paths are unescaped. */
export interface MountInfo {
  /** Unique id of the mount (may be reused after unmount). */
  id: number;
  /** Id of the parent mount (self for the top of the tree). */
  parent: number;
  major: number;
  minor: number;
  /** The directory of the filesystem that forms the root of this mount (`/` unless a bind mount of a subtree). */
  root: string;
  /** Where it is mounted, relative to our root. */
  mountPoint: string;
  /** Per-mount options (`rw,nosuid,relatime`). */
  options: string;
  /** Optional fields (`shared:1`, `master:2`...), as they appear. */
  optional: string[];
  /** `type[.subtype]`, e.g. `ext4`, `fuse.fuse-overlayfs`. */
  fsType: string;
  /** Filesystem-specific source (`/dev/sda1`, `overlay`, `none`). */
  source: string;
  /** Per-superblock options (`rw,lowerdir=...`). Not unescaped: the kernel escapes them its own way per filesystem. */
  superOptions: string;
}

const MOUNTINFO = '/proc/self/mountinfo';

/** Turns the kernel's `\NNN` octal escapes (space, tab, newline, backslash) back into characters. */
export function unescapeMountinfo(field: string): string {
  if (!field.includes('\\')) return field;
  // Work on bytes: an escape stands for one byte, and names may be any UTF-8.
  const src = Buffer.from(field, 'utf8');
  const out = Buffer.alloc(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c !== 0x5c) {
      out[n++] = c;
      continue;
    }
    const digits = src.subarray(i + 1, i + 4).toString('latin1');
    if (!/^[0-7]{3}$/.test(digits)) throw new Error(`bad escape sequence ${JSON.stringify(`\\${digits}`)} in mountinfo field ${JSON.stringify(field)}`);
    const v = parseInt(digits, 8);
    if (v > 255) throw new Error(`escape sequence \\${digits} out of range in mountinfo field ${JSON.stringify(field)}`);
    out[n++] = v;
    i += 3;
  }
  return out.subarray(0, n).toString('utf8');
}

/** Parses one mountinfo line; throws on a line the kernel would not write. */
export function parseMountinfoLine(line: string): MountInfo {
  const fields = line.split(' ');
  if (fields.length < 10) throw new Error(`parsing mountinfo line ${JSON.stringify(line)}: not enough fields (${fields.length})`);
  // The separator is the 4th field from the end, unless an old cifs put spaces into the super
  // options; then it is further left (moby/sys/mountinfo does the same walk).
  let sep = fields.length - 4;
  while (fields[sep] !== '-') {
    sep--;
    if (sep <= 5) throw new Error(`parsing mountinfo line ${JSON.stringify(line)}: missing "-" separator`);
  }
  const [id, parent, devno, root, mountPoint, options] = fields as [string, string, string, string, string, string];
  const mm = devno.split(':');
  if (mm.length !== 2) throw new Error(`parsing mountinfo line ${JSON.stringify(line)}: bad major:minor ${JSON.stringify(devno)}`);
  return {
    id: Number(id),
    parent: Number(parent),
    major: Number(mm[0]),
    minor: Number(mm[1]),
    root: unescapeMountinfo(root),
    mountPoint: unescapeMountinfo(mountPoint),
    options,
    optional: fields.slice(6, sep).filter((f) => f !== ''),
    fsType: unescapeMountinfo(fields[sep + 1]!),
    source: unescapeMountinfo(fields[sep + 2]!),
    superOptions: fields.slice(sep + 3).join(' '),
  };
}

/** Parses a whole mountinfo text (as read from /proc/<pid>/mountinfo). */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (line !== '') out.push(parseMountinfoLine(line));
  }
  return out;
}

/** Every mount of this process's mount namespace, in the kernel's order (parents before children). */
export async function mounts(): Promise<MountInfo[]> {
  return parseMountinfo(await readFile(MOUNTINFO, 'utf8'));
}

/**
 * The absolute, symlink-free form of `path`, as mountinfo writes mount points. A path that does not
 * exist (a mount point removed meanwhile) is only made absolute and normalised.
 */
export async function canonicalMountPath(path: string): Promise<string> {
  const abs = resolve(path);
  try {
    return await realpath(abs);
  } catch {
    return abs;
  }
}

/** True when canonical path `p` is `dir` or lies below it (`/a/bc` is not under `/a/b`). */
export function isAtOrUnder(p: string, dir: string): boolean {
  if (p === dir) return true;
  return p.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** The mounts whose mount point is `path` or lies below it, in the kernel's order (parents first). */
export async function mountsUnder(path: string): Promise<MountInfo[]> {
  const dir = await canonicalMountPath(path);
  return (await mounts()).filter((m) => isAtOrUnder(m.mountPoint, dir));
}

/**
 * The mount visible at `path` when something is mounted exactly there (the topmost one when mounts
 * are stacked on one point), else undefined.
 */
export async function mountAt(path: string): Promise<MountInfo | undefined> {
  const dir = await canonicalMountPath(path);
  return topmost((await mounts()).filter((m) => m.mountPoint === dir));
}

/**
 * True when something is mounted exactly at `path`, bind mounts included (which st_dev comparison
 * misses). Fast path as in moby/sys/mountinfo: opening the last component with openat2
 * RESOLVE_NO_XDEV fails with EXDEV exactly when it is a mount point. Those two opens are
 * synchronous on purpose (refmounts asks on every get and put, and two thread-pool round trips
 * cost more than the mount itself): they only look up names in the parent directory and never
 * enter the mounted filesystem, so a hung FUSE mount at `path` cannot block them. A symlink as
 * last component, or any other answer of the kernel (ENOENT, ENOTCONN...), falls back to
 * resolving the path and reading the table.
 */
export async function isMountPoint(path: string): Promise<boolean> {
  const abs = resolve(path);
  if (abs === '/') return true;
  const fast = mountedByOpenat2(abs);
  if (fast !== undefined) return fast;
  const canonical = await canonicalMountPath(abs);
  if (canonical === '/') return true;
  if (canonical !== abs) {
    const again = mountedByOpenat2(canonical);
    if (again !== undefined) return again;
  }
  return (await mountAt(canonical)) !== undefined;
}

function mountedByOpenat2(path: string): boolean | undefined {
  let parent: number;
  try {
    parent = openat2Sync(AT.FDCWD, dirname(path), { flags: O.PATH | O.CLOEXEC | O.DIRECTORY });
  } catch {
    return undefined;
  }
  try {
    let fd: number;
    try {
      fd = openat2Sync(parent, basename(path), { flags: O.PATH | O.CLOEXEC | O.NOFOLLOW, resolve: RESOLVE.NO_XDEV });
    } catch (err) {
      return errorCode(err) === 'EXDEV' ? true : undefined;
    }
    try {
      // O_NOFOLLOW opened the symlink itself: whether its target is a mount is another question.
      return fstatSync(fd).isSymbolicLink() ? undefined : false;
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(parent);
  }
}

/** The mount that holds `path`: the topmost mount at the longest mount point that is `path` or one of its ancestors. */
export async function mountContaining(path: string): Promise<MountInfo | undefined> {
  const dir = await canonicalMountPath(path);
  const all = await mounts();
  let best: MountInfo[] = [];
  let bestLen = -1;
  for (const m of all) {
    if (!isAtOrUnder(dir, m.mountPoint)) continue;
    if (m.mountPoint.length > bestLen) {
      best = [m];
      bestLen = m.mountPoint.length;
    } else if (m.mountPoint.length === bestLen) {
      best.push(m);
    }
  }
  return topmost(best);
}

/**
 * Of several mounts on one mount point, the one on top: stacking makes the earlier mount the
 * parent of the later one, so the top is the one no other candidate names as its parent.
 */
function topmost(candidates: MountInfo[]): MountInfo | undefined {
  if (candidates.length <= 1) return candidates[0];
  const parents = new Set(candidates.map((m) => m.parent));
  return candidates.find((m) => !parents.has(m.id)) ?? candidates[candidates.length - 1];
}

/**
 * Depth of each mount in the mount tree (the root mount is 0). Used to unmount children before
 * their parents, which a sort on path length gets wrong for mounts stacked on one point.
 */
export function mountTreeDepths(all: readonly MountInfo[]): Map<number, number> {
  const byId = new Map(all.map((m) => [m.id, m] as const));
  const depth = new Map<number, number>();
  const depthOf = (m: MountInfo): number => {
    const known = depth.get(m.id);
    if (known !== undefined) return known;
    // Walk up iteratively: the tree can be thousands of mounts deep in pathological setups.
    const chain: MountInfo[] = [];
    let cur: MountInfo | undefined = m;
    let base = 0;
    const seen = new Set<number>();
    while (cur !== undefined) {
      const d = depth.get(cur.id);
      if (d !== undefined) {
        base = d + 1;
        break;
      }
      if (seen.has(cur.id)) break;
      seen.add(cur.id);
      chain.push(cur);
      if (cur.parent === cur.id) break;
      cur = byId.get(cur.parent);
    }
    for (let i = chain.length - 1; i >= 0; i--) depth.set(chain[i]!.id, base + (chain.length - 1 - i));
    return depth.get(m.id)!;
  };
  for (const m of all) depthOf(m);
  return depth;
}
